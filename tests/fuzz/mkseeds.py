#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Write the seed corpus of the guest targets (fuzz_hmdev, fuzz_engines):
# tests/fuzz/corpus/*.bin, small programs in the input language of
# fuzz_guest.c, so the fuzzer starts from walks that succeed, faults that
# get serviced, commands that complete, a full fault ring, 2 MiB leaves
# across a RAM window's end, load triggers, device memory (VRAM leaves,
# MIGRATE tables, good and bad), the polling hints, and (threaded) resets
# and bus mastering changes under a running command or MIGRATE.
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

def u8(v): return bytes([v & 0xff])
def u16(v): return struct.pack('<H', v & 0xffff)
def u32(v): return struct.pack('<I', v & 0xffffffff)
def u64(v): return struct.pack('<Q', v & (2**64 - 1))

# c0: bits 0-1 engines-1, 2 sq 8, 3-4 cq 2<<v, 5 fault ring 4, 6 57-bit,
#     7 no reset at start
# c1: bits 0-1 contexts-4, 2-6 tlb-1, 7 try a bad configuration (+1 byte)
# c2: bits 0-1 device memory: 0 1 MiB (256 pages), 1 none, 2 2 MiB, 3 4 MiB
# RAM: r0 bits 0-1 files-1, 2-4 lowmem choice, 5-7 a bad layout first;
#      then a u16 per file, a u16 for lowmem (fuzz_ram.c)
VRAM_1M, VRAM_NONE, VRAM_2M, VRAM_4M = range(4)
def header(c0=0x0d, c1=0x20, ram=None, bad_cfg=None, c2=VRAM_1M):
    h = u8(c0) + u8(c1 | (0x80 if bad_cfg is not None else 0)) + u8(c2)
    if bad_cfg is not None:
        h += u8(bad_cfg)
    return h + (ram if ram is not None else RAM_4M_SPLIT)

def ram(files, lowsel, lw=0, bad=0):
    r0 = (len(files) - 1) | (lowsel << 2) | (bad << 5)
    return u8(r0) + b''.join(u16(f) for f in files) + u16(lw)

MODE_2M = 0x4000        # size 512 * (1 + v % 3) pages
MODE_OFF = 0x8000       # 512 * k +- d pages (v bit 6: minus)
# one 4 MiB file split in two 2 MiB windows (lowmem = total / 2)
RAM_4M_SPLIT = ram([MODE_2M | 1], 7)
# 2 MiB + 3 pages, all low: the last 2 MiB leaf straddles RAM's end
RAM_LOW_ODD = ram([MODE_OFF | 9], 1)
# 4 MiB, lowmem 2 MiB + 5 pages: the low window ends off 2 MiB, RAM goes on
RAM_LOWMEM_ODD = ram([MODE_2M | 1], 3, lw=(4 << 2) | 0)
# two files, 2 MiB - 2 pages and 2 MiB + 1 page, lowmem half of it:
# a low window of 511 pages, a high one of 512
RAM_TWO_FILES = ram([MODE_OFF | 0x42, MODE_OFF | 0], 7)

def op(o, a=0, b=0): return bytes([o, a, b])

# structured command: q, opcode; s1/s2 pick the va base (low 3 bits) and
# ctx (s1 >> 4: 0 -> ctx 1, 1 -> ctx 2, 2 -> ctx 3); sp/dp pages; ls
# picks the length (bits 0-3, lens[] in fuzz_guest.c), bit 5 flags=1
def cmd(q, opcode, s1, sp, s2, dp, ls, arg0=0, arg1=0, tag=None, ctx=None,
        force=False):
    if tag is not None:
        s2 |= 0x08
    if force:
        s2 |= 0x10
    if ctx is not None:
        ls |= 0x40
    return (op(6, q, opcode) + bytes([s1, s2, ls]) +
            (u16(ctx) if ctx is not None else b'') + bytes([sp, dp]) +
            u64(arg0) + u64(arg1) + (u16(tag) if tag is not None else b''))

NOP, FENCE, COPY, READ, FILL, ATOMIC, TLBI, MIGRATE = range(8)
L_8, L_4K, L_4097, L_8K, L_3P, L_64P, L_2M = 3, 6, 7, 8, 9, 10, 11

def doorbell(v=0): return op(11, 0, v)
def tick(): return op(12)
def service(b=0x03): return op(13, 0, b)    # map the run, replay
def reap(): return op(15)
def reset(): return op(17)
# drv_ctrl: b bit 0 BUS_MASTER, 1 no new drv_ctrl_gen, 2 ring CTRL, 3 reset too
def ctrl(b): return op(19, 0, b)
def tlb_inval(sel, page, ctx_b, lsel): return op(18, sel, ctx_b) + bytes([page, lsel])

# map ops: ctx i walks root[i]; b bits 1-2 = 0 pick root[1] (ctx 1),
# bit 0 writable, bit 7 a 2 MiB leaf (then a byte choosing its address)
def map1(sel, page, write=True):
    return op(0, sel, 0x01 if write else 0x00) + u8(page)

def map2(sel, page):                 # context 2's tables, writable
    return op(0, sel, 0x03) + u8(page)

# a device page (offset vpage pages) under ctx 1 (b bit 5); huge: the HUGE
# bit too, level2: at level 2 (both BAD_PTE)
def vmap1(sel, page, vpage, write=True, huge=False, level2=False):
    b = 0x20 | (1 if write else 0) | (0x80 if huge else 0) | (0x40 if level2 else 0)
    return op(0, sel, b) + u8(page) + u16(vpage)

# huge sel: bit 0 window (0 low, 1 high), bits 1-2: 0 the one holding the
# window's end, 1 the last whole one, 2 the first, 3 any (bits 3-7)
HUGE_END, HUGE_LAST, HUGE_FIRST = 0, 2, 4
def huge1(sel, page, where, write=True, high=False):
    return (op(0, sel, 0x81 if write else 0x80) + u8(page) +
            u8(where | (1 if high else 0)))

def hostile(sel, page, root_b, level, value=None, flip=None):
    # b: bits 0-1 root, 2-3 level-1, 6 raw value (else flip bit v & 63)
    b = root_b | ((level - 1) << 2) | (0x40 if value is not None else 0)
    return op(3, sel, b) + u64(value if value is not None else flip) + u8(page)

def burst(q, sel, n, page_hi=0, two_pages=False):
    # n one-page READs (1..8) on queue q at consecutive 16-page steps
    return op(27, (sel << 4) | (q - 1), (n - 1) | (page_hi << 5) |
              (0x80 if two_pages else 0))

# load triggers (fuzz_oracle.c): kind 0 context 1 + a % 3 loses VALID at
# its root load; 1 a missing page appears on the 2nd load of its entry
def trig_ctx_flip(ctx, count=1): return op(21, ctx - 1, 0 | ((count - 1) << 2))
def trig_page_appears(sel, page, write=False, third=False):
    return op(21, sel, 1 | (4 if third else 0) | (0x40 if write else 0)) + u8(page)
def trig_pte_change(sel, page, level, value, count=1):
    return (op(21, sel, 2 | 0x20 | ((count - 1) << 2) | ((level - 1) << 6)) +
            u8(page) + u64(value))
def trig_root_moves(ctx, root_idx, count=2):
    return op(21, ctx - 1, 3 | ((count - 1) << 2) | (root_idx << 4))

# MIGRATE on queue q (op 28): b bits 0-1 entries - 1, 2 table at a window's
# edge (a byte first), 3 len (u16 after the entries), 4 table address
# offset (s16, after), 5 a must-be-zero field set (a byte, last).  Each
# entry: a selector byte, low nibble from, high nibble to, then their
# bytes: nibble bit 0 a device page (u16), else bits 1-2: 0 a data frame
# (no byte), 1 an edge frame (u8), 2 any RAM page (u16), 3 any value
# (u64); bit 3 hostile low bits (u16 after the address's bytes)
M_VRAM, M_DATA, M_EDGE, M_RAM, M_RAW, M_LOW = 1, 0, 2, 4, 6, 8
def ent(fn, fb, tn, tb): return u8(fn | (tn << 4)) + fb + tb
def migrate(q, entries, edge=None, length=None, offset=None, nonzero=None):
    assert 1 <= len(entries) <= 4
    b = (len(entries) - 1) | (4 if edge is not None else 0) | \
        (8 if length is not None else 0) | (0x10 if offset is not None else 0) | \
        (0x20 if nonzero is not None else 0)
    return (op(28, q, b) + (u8(edge) if edge is not None else b'') +
            b''.join(entries) + (u16(length) if length is not None else b'') +
            (u16(offset) if offset is not None else b'') +
            (u8(nonzero) if nonzero is not None else b''))
# polling hints (op 29): b bits 0-1 drv_poll_us (0, 20, 200, 5000),
# 2 set queue q's drv_polling to bit 3
def poll(q, us_sel, polling=None):
    b = us_sel | ((4 | (8 if polling else 0)) if polling is not None else 0)
    return op(29, q, b)

def probe(s, d, v=0): return op(22) + u8(s) + u16(d) + u64(v)
def wait(b=0x0f): return op(23, 0, b)
def reset_mid(): return op(24)
def bus_off_mid(): return op(25)
def stop_start(b=0x07): return op(26, 0, b)

seeds = {
    # READ 3 pages, nothing mapped: fault, service, replay, done
    'read_fault': header() + cmd(1, READ, 0x02, 0, 0x02, 0, L_3P) + doorbell() +
                  service() + reap(),
    # COPY 64 pages unmapped both sides: two faults
    'copy_faults': header() + cmd(1, COPY, 0x02, 0, 0x03, 0, L_64P) + doorbell() +
                   service() + service() + reap(),
    # mapped pages: FILL, READ, ATOMIC add and cmpxchg
    'data_ops': header() + map1(2, 0) + map1(2, 1) + map1(2, 2) +
                cmd(1, FILL, 0x02, 0, 0x02, 0, L_8K, arg0=0x1122334455667788) +
                cmd(1, READ, 0x02, 0, 0x02, 0, L_8K) +
                cmd(2, ATOMIC, 0x02, 0, 0x02, 1, L_8, arg0=5) +
                cmd(2, ATOMIC, 0x02, 0, 0x02, 1, 0x23, arg0=5, arg1=9) +
                doorbell() + reap(),
    # COPY of odd lengths between mapped pages, within and across pages
    'copy_ok': header() + map1(2, 0) + map1(2, 1) + map1(2, 2) + map1(2, 3) +
               cmd(1, COPY, 0x02, 0, 0x02, 2, L_4097) +
               cmd(2, COPY, 0x02, 1, 0x02, 3, 2) + doorbell() + reap(),
    # a reserved bit in a directory entry (level 2, then 3): BAD_PTE
    'bad_dir': header() + map1(2, 0) + map1(2, 1) + hostile(2, 0, 0, 2, flip=52) +
               cmd(1, READ, 0x02, 0, 0x02, 0, L_8) + doorbell() +
               hostile(2, 1, 0, 3, flip=62) +
               cmd(1, READ, 0x02, 1, 0x02, 0, L_8) + doorbell() + reap(),
    # 2 MiB leaf (the first of the high window), READ across it,
    # TLB_INVAL, READ again
    'huge': header() + huge1(3, 0, HUGE_FIRST, high=True) +
            cmd(1, READ, 0x03, 0, 0x03, 0, L_2M) + doorbell() +
            tlb_inval(3, 0, 0, L_2M) + doorbell() +
            cmd(1, READ, 0x03, 0, 0x03, 0, L_2M) + doorbell() + reap(),
    # a 2 MiB leaf holding the end of RAM (2 MiB + 3 pages): refused
    'straddle_end': header(ram=RAM_LOW_ODD) + huge1(3, 0, HUGE_END) +
                    cmd(1, READ, 0x03, 0, 0x03, 0, L_2M) + doorbell() +
                    cmd(1, FILL, 0x03, 0, 0x03, 0, L_2M) + doorbell() + reap(),
    # the low window ends 5 pages past 2 MiB and the high one follows
    # in the file: a leaf across lowmem must not reach the high window
    'straddle_lowmem': header(ram=RAM_LOWMEM_ODD) + huge1(3, 0, HUGE_END) +
                       cmd(1, FILL, 0x03, 0, 0x03, 0, L_2M, arg0=0xdead) +
                       doorbell() + huge1(4, 0, HUGE_LAST, high=True) +
                       cmd(1, READ, 0x04, 0, 0x04, 0, L_2M) + doorbell() + reap(),
    # two files, the first 2 MiB - 1 page: leaves at both windows' ends
    'straddle_files': header(ram=RAM_TWO_FILES) + huge1(3, 0, HUGE_END) +
                      huge1(4, 0, HUGE_END, high=True) +
                      cmd(1, COPY, 0x03, 0, 0x03, 0x80, L_2M) +
                      cmd(2, READ, 0x04, 0, 0x04, 0, L_2M) + doorbell() + reap() +
                      probe(0x01, 0) + probe(0x42, 1) + probe(0x13, 4096),
    # 4 KiB leaves at window edges and just outside
    'edge_frames': header(ram=RAM_LOWMEM_ODD) +
                   op(0, 2, 0x41) + u8(0) + u8(0) + op(0, 2, 0x41) + u8(1) + u8(1) +
                   op(0, 2, 0x41) + u8(2) + u8(3) + op(0, 2, 0x41) + u8(3) + u8(5) +
                   cmd(1, READ, 0x02, 0, 0x02, 0, L_8K) +
                   cmd(1, FILL, 0x02, 2, 0x02, 2, L_8K) + doorbell() + reap(),
    # bad entries: reserved bit, then a HUGE at level 1
    'bad_pte': header() + map1(2, 0) + hostile(2, 0, 0, 1, flip=9) +
               cmd(1, READ, 0x02, 0, 0x02, 0, L_8) + doorbell() +
               hostile(2, 0, 0, 1, value=0x10081) +
               cmd(1, READ, 0x02, 0, 0x02, 0, L_8) + doorbell() + reap(),
    # cancel, bad answer, stale id, tick, reset while stalled
    'answers': header() + cmd(1, READ, 0x02, 0, 0x02, 0, L_8) + doorbell() +
               service(0x06) + cmd(1, READ, 0x02, 0, 0x02, 0, L_8) + doorbell() +
               service(0x0a) + cmd(1, READ, 0x02, 5, 0x02, 0, L_8) + doorbell() +
               service(0x13) + tick() + reset() + reap(),
    # hostile indices and BAR scribbles
    'hostile': header() + op(16, 0, 0x00) + u16(0x400) + u32(99) +
               doorbell() + op(16, 0, 0x00) + u16(0xc00) + u32(7) +
               cmd(1, READ, 0x02, 0, 0x02, 0, L_8) + doorbell() + reset() +
               op(10, 1, 0) + bytes(range(64)) + doorbell() + reap(),
    # a cq_head behind what the driver read, with commands waiting
    'bad_cq_head': header() + cmd(1, NOP, 0, 0, 0, 0, 0) + doorbell() + reap() +
                   op(16, 0, 0x00) + u16(0x484) + u32(0xfffffff0) +
                   cmd(1, NOP, 0, 0, 0, 0, 0) + doorbell() + reset() + reap(),
    # contexts: invalid id, bad root, TLB_INVAL of everything
    'contexts': header() + op(5, 0x02, 3) + u64(0x12345) +
                cmd(1, READ, 0x22, 0, 0x02, 0, L_8) + op(5, 0x00, 1) +
                cmd(1, READ, 0x02, 0, 0x02, 0, L_8) + tlb_inval(0, 0, 0, 15) +
                doorbell() + service() + reap(),
    # parking: context 1 faults and parks; context 2 and the fences go on
    'parking': header() + cmd(1, READ, 0x02, 0, 0x02, 0, L_8) + map2(3, 0) +
               cmd(1, READ, 0x13, 0, 0x03, 0, L_8) + cmd(1, FENCE, 0x02, 0, 0x02, 0, 0) +
               cmd(1, FENCE, 0x12, 0, 0x02, 0, 0) + cmd(1, FENCE, 0, 0, 0, 0, 0, ctx=0) +
               doorbell() + reap() + service() + reap(),
    # tags: a duplicate of a parked command's tag, one out of range, reuse
    'tags': header() + cmd(1, READ, 0x02, 0, 0x02, 0, L_8, tag=2) +
            cmd(1, NOP, 0x02, 0, 0x02, 0, 0, tag=2) +
            cmd(1, NOP, 0x02, 0, 0x02, 0, 0, tag=0xffff) + doorbell() +
            service() + cmd(1, NOP, 0x02, 0, 0x02, 0, 0, tag=2) + doorbell() + reap(),
    # bus mastering: off (acknowledged), held commands, on without and with
    # its acknowledgement; then the driver's dead path (off + reset)
    'bus_master': header() + map1(2, 0) + ctrl(0x04) +
                  cmd(1, FILL, 0x02, 0, 0x02, 0, L_8, arg0=0x77) +
                  cmd(2, READ, 0x02, 5, 0x02, 0, L_8) + cmd(0, FENCE, 0, 0, 0, 0, 0) +
                  doorbell() + tick() + ctrl(0x03) + doorbell() + ctrl(0x05) +
                  service() + reap() + ctrl(0x0c) + reap(),
    # 57-bit addresses: 5-level walks above 2^48, a fault up there
    'va57': header(c0=0x4d) + map1(6, 0) + map1(7, 1) +
            cmd(1, READ, 0x06, 0, 0x06, 0, L_8) + cmd(1, READ, 0x07, 1, 0x07, 0, L_8) +
            cmd(2, READ, 0x06, 5, 0x06, 0, L_3P) + doorbell() + service() + reap(),
    # the fault ring (2 records) full: 1 engine, 8 commands faulting, the
    # rest wait for room; then serviced one by one as room appears
    'fault_ring_full': header(c0=0x04 | 0x18) + burst(1, 2, 8) +
                       tick() + service(0x06) + tick() + service(0x06) +
                       doorbell(1) + service(0x03) + service(0x03) + doorbell(1) +
                       reap() + burst(1, 2, 8, two_pages=True) + doorbell(1) + reap(),
    # a TLB_INVAL of one page that finds the entry a READ cached
    'tlb_drop_hit': header(c1=0x7c) + map1(2, 0) + map1(2, 1) +
                    cmd(1, READ, 0x02, 0, 0x02, 0, L_8K) + doorbell() +
                    tlb_inval(2, 0, 0, L_8) + doorbell() +
                    cmd(1, READ, 0x02, 0, 0x02, 0, L_8K) + doorbell() + reap(),
    # a TLB_INVAL of 16 MiB: too many pages to probe, so a scan of the
    # whole TLB, which finds the entries two READs cached
    'tlb_scan_hit': header() + map1(2, 0) + map1(2, 1) +
                    cmd(1, READ, 0x02, 0, 0x02, 0, L_8K) + doorbell() +
                    tlb_inval(2, 0, 0, 13) + doorbell() +
                    cmd(1, READ, 0x02, 0, 0x02, 0, L_8K) + doorbell() + reap(),
    # a read-only page cached, made writable in place, then written:
    # a permission miss that re-inserts the same key
    'perm_upgrade': header() + map1(2, 0, write=False) +
                    cmd(1, READ, 0x02, 0, 0x02, 0, L_8) + doorbell() +
                    hostile(2, 0, 0, 1, flip=1) +
                    cmd(1, FILL, 0x02, 0, 0x02, 0, L_8, arg0=1) + doorbell() + reap(),
    # context 1 loses VALID between the device's two reads of its flags
    # (threaded: wait() lets the engines catch up with the program)
    'ctx_flip': header() + map1(2, 0) + trig_ctx_flip(1) +
                cmd(1, READ, 0x02, 0, 0x02, 0, L_8) + doorbell() + wait() +
                op(5, 0x05, 1) + trig_ctx_flip(1, count=2) +
                cmd(1, READ, 0x02, 0, 0x02, 0, L_8) + doorbell() + wait() + reap(),
    # the root moves while the context stays VALID
    'root_moves': header() + map1(2, 0) + map2(2, 0) + trig_root_moves(1, 2) +
                  cmd(1, READ, 0x02, 0, 0x02, 0, L_8) + doorbell() + reap(),
    # a missing page appears between the walk that faults and the one
    # sizing the run; and a writable one for a FILL
    'page_appears': header() + trig_page_appears(2, 0) +
                    cmd(1, READ, 0x02, 0, 0x02, 0, L_3P) + doorbell() + wait() +
                    service() + trig_page_appears(2, 8, write=True) +
                    cmd(1, FILL, 0x02, 8, 0x02, 8, L_3P) + doorbell() + wait() +
                    service() + reap(),
    # a level-2 entry vanishes under the walk of a READ
    'pte_changes': header() + map1(2, 0) + trig_pte_change(2, 0, 2, 0) +
                   cmd(1, READ, 0x02, 0, 0x02, 0, L_8) + doorbell() + service() + reap(),
    # threaded: a 2 MiB FILL held in its first chunk while the device is
    # reset under it; then bus mastering turned off under another
    'reset_mid': header() + huge1(3, 0, HUGE_FIRST) +
                 cmd(1, FILL, 0x03, 0, 0x03, 0, L_2M, arg0=0x55) + reset_mid() +
                 cmd(1, FILL, 0x03, 0, 0x03, 0, L_2M, arg0=0x66) + bus_off_mid() +
                 ctrl(0x05) + wait() + reap(),
    'bus_off_mid': header() + huge1(3, 0, HUGE_FIRST) +
                   cmd(1, READ, 0x03, 0, 0x03, 0, L_2M) +
                   cmd(2, COPY, 0x03, 0, 0x03, 0x80, L_64P) + bus_off_mid() +
                   tick() + ctrl(0x05) + wait() + reap(),
    # threaded: the engine threads stopped and started again with
    # commands in flight; stopped, a doorbell runs them inline
    'stop_start': header() + map1(2, 0) + cmd(1, READ, 0x02, 0, 0x02, 0, L_8) +
                  cmd(2, READ, 0x02, 3, 0x02, 0, L_8) + doorbell() + stop_start() +
                  service() + stop_start(0x01) + wait() + reap(),
    # configurations the model must refuse, RAM layouts guest_ram_open must
    'bad_config': header(bad_cfg=0x00) + doorbell() + reap(),
    'bad_config_bar': header(bad_cfg=0x08) + doorbell() + reap(),
    'bad_config_tlb': header(bad_cfg=0x09) + doorbell() + reap(),
    'bad_config_vram': header(bad_cfg=0x0a) + doorbell() + reap(),
    'bad_ram_many': header(ram=ram([MODE_2M | 1], 7, bad=6)) + doorbell(),
    'bad_ram_big': header(ram=ram([MODE_2M | 1], 7, lw=1, bad=7)) + doorbell(),
    'bad_ram_odd': header(ram=ram([MODE_2M | 1], 7, bad=5)) + doorbell(),
    # device memory (ABI 2.1): a VRAM leaf under FILL and READ, then
    # MIGRATE device page 5 -> a data frame and RAM page 3 -> device page
    # 7, device page 5 -> 6, a data frame onto itself; READ device page 5
    # again through its leaf
    'vram': header() + vmap1(2, 0, 5) +
            cmd(1, FILL, 0x02, 0, 0x02, 0, L_4K, arg0=0x55) +
            cmd(1, READ, 0x02, 0, 0x02, 0, L_4K) + doorbell() +
            migrate(1, [ent(M_VRAM, u16(5), M_DATA, b''),
                        ent(M_RAM, u16(3), M_VRAM, u16(7)),
                        ent(M_VRAM, u16(5), M_VRAM, u16(6))]) +
            cmd(2, READ, 0x02, 0, 0x02, 0, L_4K) + doorbell() + reap(),
    # bad device memory: a leaf past the end (300 of 256 pages), VRAM with
    # HUGE, VRAM at level 2; MIGRATE of 513 pages, with a ctx, on queue 0,
    # with an entry past the end (after one page copied), with hostile low
    # bits, a misaligned table, a table outside RAM; one held while bus
    # mastering is off, then let go
    'vram_bad': header() + vmap1(2, 0, 300) + vmap1(3, 0, 1, huge=True) +
                vmap1(4, 0, 2, level2=True) +
                cmd(1, READ, 0x02, 0, 0x02, 0, L_8) + cmd(2, READ, 0x03, 0, 0x03, 0, L_8) +
                cmd(1, FILL, 0x04, 0, 0x04, 0, L_8) +
                migrate(1, [ent(M_VRAM, u16(1), M_DATA, b'')], length=513) +
                migrate(2, [ent(M_VRAM, u16(1), M_DATA, b'')], nonzero=0) +
                migrate(0, [ent(M_VRAM, u16(1), M_DATA, b'')]) +
                migrate(1, [ent(M_VRAM, u16(2), M_DATA, b''),
                            ent(M_VRAM, u16(310), M_DATA, b'')]) +
                migrate(2, [ent(M_VRAM | M_LOW, u16(3) + u16(0x10), M_DATA, b'')]) +
                migrate(1, [ent(M_DATA, b'', M_DATA, b'')], offset=4) +
                migrate(2, [ent(M_DATA, b'', M_DATA, b'')], edge=5) +
                doorbell() + ctrl(0x04) +
                migrate(2, [ent(M_VRAM, u16(3), M_VRAM, u16(4))]) + doorbell() +
                tick() + ctrl(0x05) + reap(),
    # no device memory: bit 8 is reserved (BAD_PTE), VRAM entries are past
    # the end; guest to guest still copies
    'vram_none': header(c2=VRAM_NONE) + vmap1(2, 0, 0) +
                 cmd(1, READ, 0x02, 0, 0x02, 0, L_8) +
                 migrate(1, [ent(M_DATA, b'', M_DATA, b''),
                             ent(M_VRAM, u16(0), M_DATA, b'')]) +
                 migrate(2, [ent(M_RAM, u16(1), M_RAM, u16(2))]) +
                 doorbell() + reap(),
    # faults serviced with device pages (4 MiB of them): READ, FILL and
    # ATOMIC then run on device memory; a COPY from it to a guest page
    'vram_fault': header(c2=VRAM_4M) + cmd(1, READ, 0x02, 0, 0x02, 0, L_3P) +
                  doorbell() + service(0x23) + map1(2, 8) +
                  cmd(1, FILL, 0x02, 1, 0x02, 1, L_8K, arg0=7) +
                  cmd(2, ATOMIC, 0x02, 0, 0x02, 2, L_8, arg0=5) +
                  cmd(2, COPY, 0x02, 0, 0x02, 8, L_4097) + doorbell() + reap(),
    # a read-only device page: READ works, FILL and ATOMIC fault for the
    # write (and are cancelled at the end); a COPY onto it from a guest page
    'vram_ro': header() + vmap1(2, 0, 12, write=False) + map1(2, 1) +
               cmd(1, READ, 0x02, 0, 0x02, 0, L_4K) +
               cmd(1, FILL, 0x02, 0, 0x02, 0, L_8, arg0=3) +
               cmd(2, ATOMIC, 0x02, 0, 0x02, 0, L_8, arg0=1) +
               cmd(2, COPY, 0x02, 1, 0x02, 0, L_4097) + doorbell() + reap(),
    # MIGRATE and a READ of its guest page from the other engine; the
    # table's guest pages at window edges and just outside
    'migrate_edges': header(ram=RAM_LOWMEM_ODD) +
                     migrate(1, [ent(M_EDGE, u8(0), M_VRAM, u16(9)),
                                 ent(M_EDGE, u8(2), M_VRAM, u16(10)),
                                 ent(M_EDGE, u8(5), M_VRAM, u16(11)),
                                 ent(M_VRAM, u16(9), M_EDGE, u8(4))]) +
                     doorbell() + reap(),
    # threaded: a MIGRATE of 4 pages held in its first page while the
    # device is reset under it, then one held while bus mastering goes off
    'migrate_mid': header() +
                   migrate(1, [ent(M_DATA, b'', M_VRAM, u16(i)) for i in range(4)]) +
                   reset_mid() +
                   migrate(1, [ent(M_VRAM, u16(i), M_DATA, b'') for i in range(4)]) +
                   bus_off_mid() + ctrl(0x05) + wait() + reap(),
    # polling hints: engines spin 200 us after a pass, queue 1's waiter
    # polls; commands on both engines; the threads stopped and started
    'poll': header() + poll(1, 2, polling=True) + map1(2, 0) +
            cmd(1, READ, 0x02, 0, 0x02, 0, L_8) + cmd(2, FILL, 0x02, 0, 0x02, 0, L_8) +
            doorbell() + wait() +
            migrate(2, [ent(M_DATA, b'', M_VRAM, u16(1))]) + wait() +
            stop_start() + poll(1, 3, polling=False) +
            cmd(1, READ, 0x02, 0, 0x02, 0, L_8) + doorbell() + wait() + reap(),
    # the RAM map probed at its edges
    'probe': header(ram=RAM_LOWMEM_ODD) + probe(0x01, 0) + probe(0x41, 8) +
             probe(0x02, 0) + probe(0x43, 0) + probe(0x04, 1) + probe(0x85, 4095) +
             probe(0x47, 0, v=0x123456789),
}

os.makedirs(os.path.join(HERE, 'corpus'), exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(HERE, 'corpus', name + '.bin'), 'wb') as f:
        f.write(data)
