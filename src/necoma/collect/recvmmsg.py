"""recvmmsg(2) through ctypes: up to SLOTS datagrams per system call, into one reused buffer.

Python's socket module has no recvmmsg, and one recvfrom per datagram costs a
system call and a few Python objects each (~0.1 CPU s per million NetFlow
records here, a fifth of the collector's receive thread). ctypes calls libc
directly and releases the GIL during the call; no third-party package offers
recvmmsg for Python. Linux only: `BatchReceiver.create` returns None elsewhere,
and the caller reads one datagram at a time.

Each datagram gets a slot of 65,536 bytes, more than a UDP payload can be, so
nothing is ever truncated.
"""
from __future__ import annotations

import ctypes
import errno
import logging
import os
import socket
import sys

import numpy as np

log = logging.getLogger(__name__)

SLOTS = 64  # datagrams per call: 64 x 64 KiB = 4 MiB of buffer
SLOT_SIZE = 65536
NAME_SIZE = 128  # sockaddr_storage
MSG_DONTWAIT = 0x40
MSG_TRUNC = 0x20


class _IoVec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class _MsgHdr(ctypes.Structure):
    _fields_ = [("msg_name", ctypes.c_void_p), ("msg_namelen", ctypes.c_uint32),
                ("msg_iov", ctypes.c_void_p), ("msg_iovlen", ctypes.c_size_t),
                ("msg_control", ctypes.c_void_p), ("msg_controllen", ctypes.c_size_t),
                ("msg_flags", ctypes.c_int)]


class _MMsgHdr(ctypes.Structure):
    _fields_ = [("msg_hdr", _MsgHdr), ("msg_len", ctypes.c_uint)]


def _libc_recvmmsg():
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).recvmmsg
    except (OSError, AttributeError):
        return None
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_void_p]
    return fn


_recvmmsg = _libc_recvmmsg()


class BatchReceiver:
    """Receives into `buf`: datagram i at offs[i], lens[i] bytes long, from peers[i] (address text)."""

    def __init__(self, sock: socket.socket, slots: int = SLOTS) -> None:
        self.fd = sock.fileno()
        self.slots = slots
        self.buf = np.zeros(slots * SLOT_SIZE, np.uint8)
        self.offs = np.arange(slots, dtype=np.int64) * SLOT_SIZE
        self._names = np.zeros((slots, NAME_SIZE), np.uint8)
        self._iov = (_IoVec * slots)()
        self._msgs = (_MMsgHdr * slots)()
        base, names = self.buf.ctypes.data, self._names.ctypes.data
        for i in range(slots):
            self._iov[i].iov_base, self._iov[i].iov_len = base + i * SLOT_SIZE, SLOT_SIZE
            h = self._msgs[i].msg_hdr
            h.msg_name, h.msg_namelen = names + i * NAME_SIZE, NAME_SIZE
            h.msg_iov, h.msg_iovlen = ctypes.addressof(self._iov[i]), 1
        # numpy views of the fields the kernel writes (lengths, flags) or that need resetting (name length)
        raw = np.frombuffer(self._msgs, np.uint8).reshape(slots, ctypes.sizeof(_MMsgHdr))
        self._namelen = _field(raw, _MMsgHdr.msg_hdr.offset + _MsgHdr.msg_namelen.offset, np.uint32)
        self._flags = _field(raw, _MMsgHdr.msg_hdr.offset + _MsgHdr.msg_flags.offset, np.int32)
        self._len = _field(raw, _MMsgHdr.msg_len.offset, np.uint32)
        assert all(np.shares_memory(v, raw) for v in (self._namelen, self._flags, self._len))
        self._peer_text: dict[bytes, str] = {}

    @classmethod
    def create(cls, sock: socket.socket) -> "BatchReceiver | None":
        if _recvmmsg is None or sock.type != socket.SOCK_DGRAM:
            return None
        return cls(sock)

    def receive(self) -> tuple[int, np.ndarray, list[str]]:
        """(datagrams received, their lengths, their senders); 0 when none is waiting."""
        self._namelen[:] = NAME_SIZE
        n = _recvmmsg(self.fd, ctypes.addressof(self._msgs), self.slots, MSG_DONTWAIT, None)
        if n < 0:
            err = ctypes.get_errno()
            if err in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR):
                return 0, self._len[:0], []
            raise OSError(err, os.strerror(err))
        if (self._flags[:n] & MSG_TRUNC).any():  # cannot happen with 64 KiB slots; never silent if it does
            log.warning("udp: a datagram was longer than %d bytes and was truncated", SLOT_SIZE)
        return n, self._len[:n].astype(np.int64), self._peers(n)

    def _peers(self, n: int) -> list[str]:
        names = self._names[:n, :28]  # family, port, address (and IPv6 scope) of sockaddr_in / sockaddr_in6
        if n == 1 or (names == names[0]).all():
            return [self._text(names[0].tobytes())] * n
        return [self._text(r.tobytes()) for r in names]

    def _text(self, raw: bytes) -> str:
        text = self._peer_text.get(raw)
        if text is None:
            family = int.from_bytes(raw[:2], sys.byteorder)
            if family == socket.AF_INET:
                text = socket.inet_ntop(socket.AF_INET, raw[4:8])
            elif family == socket.AF_INET6:
                text = socket.inet_ntop(socket.AF_INET6, raw[8:24])
                scope = int.from_bytes(raw[24:28], sys.byteorder)
                if scope:  # link-local: as recvfrom names it, fe80::1%eth0
                    try:
                        text += "%" + socket.if_indextoname(scope)
                    except OSError:
                        text += f"%{scope}"
            else:
                text = "unknown"
            if len(self._peer_text) >= 65_536:
                self._peer_text.clear()
            self._peer_text[raw] = text
        return text


def _field(raw: np.ndarray, offset: int, dtype) -> np.ndarray:
    """A strided view of one field of every mmsghdr."""
    size = np.dtype(dtype).itemsize
    return raw[:, offset:offset + size].view(dtype).reshape(-1)
