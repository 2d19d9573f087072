"""BatchReceiver (recvmmsg through ctypes) against what was sent: bytes, lengths and senders, IPv4 and IPv6."""
from __future__ import annotations

import socket

import pytest

from necoma.collect.recvmmsg import SLOTS, BatchReceiver

pytestmark = pytest.mark.skipif(BatchReceiver.create(socket.socket(socket.AF_INET, socket.SOCK_DGRAM)) is None,
                                reason="recvmmsg is Linux-only")


def _pair(family: int, host: str) -> tuple[socket.socket, socket.socket]:
    rx = socket.socket(family, socket.SOCK_DGRAM)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
    rx.bind((host, 0))
    rx.setblocking(False)
    tx = socket.socket(family, socket.SOCK_DGRAM)
    tx.bind((host, 0))
    return rx, tx


def _receive_all(r: BatchReceiver) -> tuple[list[bytes], list[str]]:
    data, peers = [], []
    while True:
        n, lens, who = r.receive()
        if not n:
            return data, peers
        data += [r.buf[r.offs[i]:r.offs[i] + lens[i]].tobytes() for i in range(n)]
        peers += who


def test_many_datagrams_in_few_calls_with_their_bytes_and_sender():
    rx, tx = _pair(socket.AF_INET, "127.0.0.1")
    tx2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx2.bind(("127.0.0.2", 0))
    sent = [bytes([i % 256]) * (i * 37 % 1500) for i in range(3 * SLOTS + 5)]  # includes an empty datagram
    sent.append(b"\xab" * 65507)  # the largest IPv4 UDP payload: not truncated
    senders = []
    for i, d in enumerate(sent):
        (tx2 if i % 3 == 0 else tx).sendto(d, rx.getsockname())
        senders.append("127.0.0.2" if i % 3 == 0 else "127.0.0.1")
    r = BatchReceiver.create(rx)
    data, peers = _receive_all(r)
    assert data == sent and peers == senders
    assert r.receive()[0] == 0  # nothing waiting: no error, no block
    for s in (rx, tx, tx2):
        s.close()


def test_ipv6_sender_text_matches_recvfrom():
    try:
        rx, tx = _pair(socket.AF_INET6, "::1")
    except OSError:
        pytest.skip("no IPv6 loopback")
    tx.sendto(b"hello", rx.getsockname()[:2])
    tx.sendto(b"again", rx.getsockname()[:2])
    data, peers = _receive_all(BatchReceiver.create(rx))
    assert data == [b"hello", b"again"] and peers == ["::1", "::1"]
    tx.sendto(b"x", rx.getsockname()[:2])
    rx.setblocking(True)
    assert rx.recvfrom(10)[1][0] == "::1"  # the same text recvfrom gives
    rx.close()
    tx.close()
