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

def cmd(q, opcode, s1, sp, s2, dp, ls, arg0=0, arg1=0, tag=None, ctx=None):
    # ctx = 1 + (s1 >> 4) % 3: s1 high nibble 0 -> ctx 1, 1 -> ctx 2;
    # or ctx given: ls bit 6 and a u16 after ls.
    # tag: s2 bit 3 and a u16 after arg1, else the SQ index's tag.
    if tag is not None:
        s2 |= 0x08
    if ctx is not None:
        ls |= 0x40
    return (op(6, q, opcode) + bytes([s1, s2, ls]) +
            (u16(ctx) if ctx is not None else b'') + bytes([sp, dp]) +
            u64(arg0) + u64(arg1) + (u16(tag) if tag is not None else b''))

def doorbell(v): return op(11, 0, v)
# MIGRATE on queue q: b bits 0-1 entries - 1, 3 length (u16) and 5 a
# must-be-zero field (a byte) after the entries; each entry: a selector
# byte (low nibble from, high nibble to: bit 0 device page as u16, else a
# guest page as u8), then the two addresses' bytes
def migrate(q, b, entries): return op(21, q, b) + entries
# drv_ctrl: b bit 0 BUS_MASTER, 1 no new drv_ctrl_gen, 2 ring CTRL, 3 reset too
def ctrl(b): return op(19, 0, b)
def tick(): return op(12)
def service(b=0x03): return op(13, 0, b)    # map the run, replay
def reap(): return op(15)

# Context i walks root[i]; commands with s1 < 0x10 use context 1, and a
# map op's b bits 1-2 = 0 pick root[1] too (bit 0: writable, bit 7: 2 MiB).
def map1(sel, page, write=True):
    return op(0, sel, 0x01 if write else 0x00) + bytes([page])

def map2(sel, page):                 # context 2's tables (root[2]), writable
    return op(0, sel, 0x03) + bytes([page])

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
    # parking: context 1 faults and parks; context 2 and the fences go on
    'parking': cfg() + cmd(1, 3, 0x02, 0, 0x02, 0, 3) + map2(3, 0) +
               cmd(1, 3, 0x13, 0, 0x03, 0, 3) + cmd(1, 1, 0x02, 0, 0x02, 0, 0) +
               cmd(1, 1, 0x12, 0, 0x02, 0, 0) + cmd(1, 1, 0, 0, 0, 0, 0, ctx=0) +
               doorbell(0) + reap() + service() + reap(),
    # tags: a duplicate of a parked command's tag, one out of range, reuse
    'tags': cfg() + cmd(1, 3, 0x02, 0, 0x02, 0, 3, tag=2) +
            cmd(1, 0, 0x02, 0, 0x02, 0, 0, tag=2) +
            cmd(1, 0, 0x02, 0, 0x02, 0, 0, tag=0xffff) + doorbell(0) +
            service() + cmd(1, 0, 0x02, 0, 0x02, 0, 0, tag=2) + doorbell(0) + reap(),
    # bus mastering: off (acknowledged), held commands, on without and with
    # its acknowledgement; then the driver's dead path (off + reset)
    'bus_master': cfg() + map1(2, 0) + ctrl(0x04) +
                  cmd(1, 4, 0x02, 0, 0x02, 0, 8, arg0=0x77) +
                  cmd(2, 3, 0x02, 5, 0x02, 0, 3) + cmd(0, 1, 0, 0, 0, 0, 0) +
                  doorbell(0) + tick() + ctrl(0x03) + doorbell(0) + ctrl(0x05) +
                  service() + reap() + ctrl(0x0c) + reap(),
    # 57-bit addresses: 5-level walks above 2^48, a fault up there
    'va57': cfg(c0=0x4d) + map1(6, 0) + map1(7, 1) +
            cmd(1, 3, 0x06, 0, 0x06, 0, 3) + cmd(1, 3, 0x07, 1, 0x07, 0, 3) +
            cmd(2, 3, 0x06, 5, 0x06, 0, 9) + doorbell(0) + service() + reap(),
    # device memory (ABI 2.1): a VRAM leaf under FILL and READ, then MIGRATE
    # device page 5 -> high guest page 3 and low guest page 2 -> device page 7
    'vram': cfg() + op(0, 2, 0x21) + bytes([0]) + u16(5) +
            cmd(1, 4, 0x02, 0, 0x02, 0, 6, arg0=0x55) +
            cmd(1, 3, 0x02, 0, 0x02, 0, 6) +
            migrate(1, 0x01, bytes([0x21]) + u16(5) + bytes([3]) +
                    bytes([0x10, 2]) + u16(7)) +
            doorbell(0) + reap(),
    # bad device memory: offset past the end, VRAM on a huge leaf, MIGRATE
    # of 513 pages, with a ctx, with an entry past the end; bus mastering off
    'vram_bad': cfg() + op(0, 2, 0x21) + bytes([0]) + u16(300) +
                op(0, 3, 0xa1) + bytes([0]) + u16(1) +
                cmd(1, 3, 0x02, 0, 0x02, 0, 6) + cmd(2, 3, 0x03, 0, 0x03, 0, 6) +
                migrate(1, 0x08, bytes([0x01]) + u16(1) + bytes([0]) + u16(513)) +
                migrate(2, 0x20, bytes([0x01]) + u16(1) + bytes([0, 0])) +
                migrate(1, 0x01, bytes([0x01]) + u16(2) + bytes([0]) +
                        bytes([0x01]) + u16(310) + bytes([0])) +
                doorbell(0) + ctrl(0x04) + migrate(2, 0x00, bytes([0x11]) +
                u16(3) + u16(4)) + doorbell(0) + tick() + ctrl(0x05) + reap(),
}

os.makedirs(os.path.join(HERE, 'corpus'), exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(HERE, 'corpus', name + '.bin'), 'wb') as f:
        f.write(data)
