#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Write the seed corpus of fuzz_server (tests/fuzz/corpus-server/*.bin):
# programs in the target's input language (see fuzz_server.c) for QEMU's
# handshake and for each kind of hostile peer, so the fuzzer starts from
# every path of the server's protocol.
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def u16(v): return struct.pack('<H', v & 0xffff)


def head(how=0, nvec=3, handshake_ms=1000):
    return bytes([how, nvec]) + u16(handshake_ms)


def op(o, a=0): return bytes([o, a])


CONNECT, ACCEPT, ACCEPT_ANY, POLL, TIME, READ, READ_ALL, WRITE, FLOOD, \
    SHUTDOWN, CLOSE, RESIZE, CLIENT_EVENT, RING, NOTIFY, DROP, OTHER_UID, \
    PARTIAL = range(18)


def qemu(p=0):          # connect, get the setup, read it all, become QEMU
    return op(CONNECT, p) + op(ACCEPT) + op(READ_ALL, p) + op(POLL)


seeds = {
    'qemu': head() + qemu() + op(CLIENT_EVENT) + op(RING, 0) + bytes([0]) +
    op(NOTIFY) + bytes([2]) + op(RESIZE) + u16(0) + op(CLOSE) +
    op(CLIENT_EVENT),
    'early_close': head() + op(CONNECT, 0) + op(CLOSE, 0) + op(ACCEPT) +
    op(POLL) + op(CONNECT, 1) + op(ACCEPT) + op(READ, 1) + op(CLOSE, 1) +
    op(POLL) + qemu(2),
    'silent': head(handshake_ms=100) +
    b''.join(op(CONNECT, i) + op(ACCEPT) for i in range(5)) +
    op(TIME) + u16(200) + op(ACCEPT) + op(READ_ALL, 4) + op(POLL),
    'writer': head() + op(CONNECT, 0) + op(ACCEPT) + op(WRITE, 0) +
    bytes([8]) + u16(0x4d48) * 4 + op(POLL) + qemu(1) + op(WRITE, 1) +
    bytes([3, 1, 2, 3]) + op(CLIENT_EVENT) + qemu(2),
    'flood': head() + op(CONNECT, 0) + op(ACCEPT) + op(FLOOD, 0x38) +
    bytes([252]) + op(POLL) + qemu(1) + op(FLOOD, 1) + bytes([16]) +
    op(CLIENT_EVENT),
    'half_close': head() + op(CONNECT, 0) + op(ACCEPT) +
    op(SHUTDOWN, 1 << 3) + op(POLL) + qemu(1) + op(SHUTDOWN, 1 << 3) +
    op(CLIENT_EVENT),
    'other_uid': head() + op(OTHER_UID) + op(CONNECT, 0) + op(ACCEPT) +
    op(READ_ALL, 0) + op(POLL),
    'second_client': head() + qemu(0) + op(CONNECT, 1) + op(ACCEPT) +
    op(READ_ALL, 1) + op(DROP) + qemu(2),
    'partial': head(nvec=8) + op(CONNECT, 0) + op(ACCEPT) + op(PARTIAL, 3) +
    op(POLL) + qemu(1) + op(PARTIAL, 1) + op(CLIENT_EVENT),
}
for how in range(1, 6):
    seeds['listen_%d' % how] = head(how=how) + qemu()
seeds['bad_nvec'] = head(nvec=0) + qemu()

out = os.path.join(HERE, 'corpus-server')
os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(out, name + '.bin'), 'wb') as f:
        f.write(data)
print('wrote %d seeds to %s' % (len(seeds), out))
