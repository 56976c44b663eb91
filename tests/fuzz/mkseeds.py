#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Write the seed corpus of fuzz_hmdev (tests/fuzz/corpus/*.bin): small
# guest programs in the target's input language (see fuzz_hmdev.c), so the
# fuzzer starts from walks that succeed, faults that get serviced and
# commands that complete.
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

def u16(v): return struct.pack('<H', v & 0xffff)
def u64(v): return struct.pack('<Q', v & (2**64 - 1))

def cfg(c0=0x0d, c1=0x20):          # 2 engines, tlb 9, reset done
    return bytes([c0, c1])

def op(o, a=0, b=0): return bytes([o, a, b])

def cmd(q, opcode, s1, sp, s2, dp, ls, arg0=0, arg1=0):
    # ctx = 1 + (s1 >> 4) % 3: keep s1 high nibble 0 -> ctx 1 (root[2]?)
    return op(6, q, opcode) + bytes([s1, s2, ls, sp, dp]) + u64(arg0) + u64(arg1)

def doorbell(v): return op(11, 0, v)
def tick(): return op(12)
def service(b=0x03): return op(13, 0, b)    # map the run, replay
def reap(): return op(15)

# Context i walks root[i]; commands with s1 < 0x10 use context 1, and a
# map op's b bits 1-2 = 0 pick root[1] too (bit 0: writable, bit 7: 2 MiB).
def map1(sel, page, write=True):
    return op(0, sel, 0x01 if write else 0x00) + bytes([page])

def huge1(sel, page, write=True):
    return op(0, sel, 0x81 if write else 0x80) + bytes([page])

seeds = {
    # READ 3 pages (len sel 9 = 3*4096+24 -> 4 pages) nothing mapped:
    # fault, service, replay, done
    'read_fault': cfg() + cmd(1, 3, 0x02, 0, 0x02, 0, 9) + doorbell(0) +
                  service() + reap(),
    # COPY 64 pages (len sel 10) unmapped both sides: two faults
    'copy_faults': cfg() + cmd(1, 2, 0x02, 0, 0x03, 0, 10) + doorbell(0) +
                   service() + service() + reap(),
    # mapped pages: FILL, READ, ATOMIC add and cmpxchg
    'data_ops': cfg() + map1(2, 0) + map1(2, 1) + map1(2, 2) +
                cmd(1, 4, 0x02, 0, 0x02, 0, 8, arg0=0x1122334455667788) +
                cmd(1, 3, 0x02, 0, 0x02, 0, 8) +
                cmd(2, 5, 0x02, 0, 0x02, 1, 3, arg0=5) +
                cmd(2, 5, 0x02, 0, 0x02, 1, 0x23, arg0=5, arg1=9) +
                doorbell(0) + reap(),
    # 2 MiB leaf, READ across it, TLB_INVAL, READ again
    'huge': cfg() + huge1(3, 0) + cmd(1, 3, 0x03, 0, 0x03, 0, 11) +
            doorbell(0) + op(18, 3, 0) + bytes([0, 11]) + doorbell(0) +
            cmd(1, 3, 0x03, 0, 0x03, 0, 11) + doorbell(0) + reap(),
    # bad entries: reserved bit, then a HUGE at level 1
    'bad_pte': cfg() + map1(2, 0) + op(3, 2, 0x00) + u64(9) + bytes([0]) +
               cmd(1, 3, 0x02, 0, 0x02, 0, 3) + doorbell(0) +
               op(3, 2, 0x40) + u64(0x10081) + bytes([0]) +
               cmd(1, 3, 0x02, 0, 0x02, 0, 3) + doorbell(0) + reap(),
    # cancel, bad answer, stale id, tick, reset while stalled
    'answers': cfg() + cmd(1, 3, 0x02, 0, 0x02, 0, 3) + doorbell(0) +
               op(13, 0, 0x06) + cmd(1, 3, 0x02, 0, 0x02, 0, 3) + doorbell(0) +
               op(13, 0, 0x0a) + cmd(1, 3, 0x02, 5, 0x02, 0, 3) + doorbell(0) +
               op(13, 0, 0x13) + tick() + op(17) + reap(),
    # hostile indices and BAR scribbles
    'hostile': cfg() + op(16, 0, 0x00) + u16(0x400) + struct.pack('<I', 99) +
               doorbell(0) + op(16, 0, 0x00) + u16(0xc00) + struct.pack('<I', 7) +
               cmd(1, 3, 0x02, 0, 0x02, 0, 3) + doorbell(0) + op(17) +
               op(10, 1, 0) + bytes(range(64)) + doorbell(0) + reap(),
    # contexts: invalid id, bad root, TLB_INVAL of everything
    'contexts': cfg() + op(5, 0x02, 3) + u64(0x12345) +
                cmd(1, 3, 0x22, 0, 0x02, 0, 3) + op(5, 0x00, 1) +
                cmd(1, 3, 0x02, 0, 0x02, 0, 3) + op(18, 0, 0) + bytes([0, 15]) +
                doorbell(0) + service() + reap(),
}

os.makedirs(os.path.join(HERE, 'corpus'), exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(HERE, 'corpus', name + '.bin'), 'wb') as f:
        f.write(data)
