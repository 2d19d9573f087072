"""Network endpoints of `necoma collect`: UDP datagram readers and the TCP syslog server.

Each endpoint hands whole datagrams (or framed TCP messages) to one decoder,
in the event-loop thread, so decoders need no locks.
"""
from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import os
import socket
import time
from dataclasses import dataclass

import numpy as np

from necoma.collect.decoder import Decoder
from necoma.collect.framing import SyslogFramer
from necoma.collect.recvmmsg import BatchReceiver
from necoma.collect.syslog import SyslogDecoder

log = logging.getLogger(__name__)

UDP_RCVBUF = 32 * 1024 * 1024  # bytes; absorbs bursts while a flush or a slow decode runs
UDP_BUDGET = 512  # datagrams read per readiness event before yielding to other endpoints
UDP_CLOSE_BUDGET = 200_000  # datagrams read from the kernel buffer at shutdown, at most
UDP_BATCH_BYTES = 2 * 1024 * 1024  # receive buffer of decoders that take batches (feed_many)
MAX_DATAGRAM = 65535
TCP_READ = 64 * 1024
TCP_IDLE_SECONDS = 600.0  # a silent TCP sender is disconnected after this long
TCP_MAX_CONNECTIONS = 512
MAX_MESSAGE = 64 * 1024  # longest syslog message accepted over TCP


class ListenError(Exception):
    """A listen address is invalid or cannot be bound; the message says which and why."""


@dataclass(frozen=True)
class ListenAddress:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_address(text: str) -> ListenAddress:
    """`HOST:PORT`, `[IPv6]:PORT` or `:PORT` (all IPv4 addresses) → ListenAddress."""
    text = text.strip()
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        if not sep:
            raise ListenError(f"{text!r}: expected [IPv6]:PORT")
    else:
        host, sep, port = text.rpartition(":")
        if not sep:
            raise ListenError(f"{text!r}: expected HOST:PORT, e.g. 127.0.0.1:2055 or [::1]:2055")
        if ":" in host:
            raise ListenError(f"{text!r}: put IPv6 addresses in brackets, e.g. [{host}]:{port}")
        host = host or "0.0.0.0"
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ListenError(f"{text!r}: port must be a number from 1 to 65535")
    if host != "localhost":
        try:
            ipaddress.ip_address(host.split("%")[0])
        except ValueError:
            raise ListenError(f"{text!r}: {host!r} is not an IP address (or 'localhost')") from None
    return ListenAddress(host, int(port))


def _bind_error(what: str, addr: ListenAddress, exc: OSError) -> ListenError:
    reason = {
        errno.EADDRINUSE: "address already in use (another collector running?)",
        errno.EACCES: "permission denied (ports below 1024 need root)",
        errno.EADDRNOTAVAIL: "address not available on this machine",
    }.get(exc.errno or 0, exc.strerror or str(exc))
    return ListenError(f"cannot listen on {what} {addr}: {reason}")


def _family(addr: ListenAddress) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in addr.host else socket.AF_INET


def open_udp_socket(addr: ListenAddress, rcvbuf: int = UDP_RCVBUF) -> socket.socket:
    """A bound, non-blocking UDP socket with a large receive buffer."""
    host = "127.0.0.1" if addr.host == "localhost" else addr.host
    sock = socket.socket(_family(addr), socket.SOCK_DGRAM)
    try:
        if sock.family == socket.AF_INET6:
            # v6-only, so [::]:P and 0.0.0.0:P can both be listed without a conflict.
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        _grow_rcvbuf(sock, rcvbuf)
        sock.bind((host, addr.port))
    except OSError as exc:
        sock.close()
        raise _bind_error("udp", addr, exc) from None
    sock.setblocking(False)
    return sock


def _grow_rcvbuf(sock: socket.socket, size: int) -> None:
    # SO_RCVBUFFORCE passes net.core.rmem_max when we have CAP_NET_ADMIN; otherwise
    # the kernel caps SO_RCVBUF at rmem_max (the collector reports the size it got).
    force = getattr(socket, "SO_RCVBUFFORCE", None)
    try:
        if force is None:
            raise PermissionError
        sock.setsockopt(socket.SOL_SOCKET, force, size)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)


class UdpEndpoint:
    """Reads every datagram waiting on a socket at each readiness event (asyncio reads one)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket, decoder: Decoder) -> None:
        self.loop = loop
        self.sock = sock
        self.decoder = decoder
        self.paused = False
        host, port = sock.getsockname()[:2]
        self.name = f"{decoder.protocol} udp {ListenAddress(host, port)}"
        self._inode = os.fstat(sock.fileno()).st_ino
        self._final_drops: int | None = None  # read just before the socket closes
        # Decoders with feed_many get the datagrams of a readiness event in one call, received into
        # one reused buffer (recvfrom_into: Python has no recvmmsg), instead of a bytes object each.
        self._many = getattr(decoder, "feed_many", None)
        self._mmsg = BatchReceiver.create(sock) if self._many is not None else None
        if self._many is not None and self._mmsg is None:
            self._buf = bytearray(UDP_BATCH_BYTES + MAX_DATAGRAM)
            self._view = memoryview(self._buf)
            self._array = np.frombuffer(self._buf, np.uint8)
        loop.add_reader(sock.fileno(), self._ready)

    def _ready(self, budget: int = UDP_BUDGET) -> int:
        if self._many is not None:
            return self._ready_many(budget)
        recv, feed = self.sock.recvfrom, self.decoder.feed
        now = time.time()  # once per burst: these datagrams were all waiting in the kernel already
        n = 0
        while n < budget:
            try:
                data, peer = recv(65535)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:  # e.g. ECONNREFUSED from an earlier ICMP error: keep reading
                log.debug("udp recv: %s", exc)
                continue
            n += 1
            try:
                feed(data, peer[0], now)
            except Exception:  # decoders never raise by contract; if one does, count and go on
                log.exception("%s decoder raised on a datagram from %s", self.decoder.protocol, peer[0])
                self.decoder.stats.of(peer[0]).rejected["decoder error"] += 1
        return n

    def _ready_mmsg(self, budget: int) -> int:
        rx = self._mmsg
        now = time.time()
        n = 0
        while n < budget:
            try:
                got, lens, peers = rx.receive()
            except OSError as exc:  # e.g. ECONNREFUSED from an earlier ICMP error: keep reading
                log.debug("udp recvmmsg: %s", exc)
                n += 1  # counted against the budget: an error that repeats cannot hold the loop
                continue
            if not got:
                break
            n += got
            try:
                self._many(rx.buf, rx.offs[:got], lens, peers, now)
            except Exception:  # decoders never raise by contract; if one does, count and go on
                log.exception("%s decoder raised on a batch of %d datagrams", self.decoder.protocol, got)
                for p in peers:
                    self.decoder.stats.of(p).rejected["decoder error"] += 1
        return n

    def _ready_many(self, budget: int) -> int:
        if self._mmsg is not None:
            return self._ready_mmsg(budget)
        recv, view = self.sock.recvfrom_into, self._view
        now = time.time()
        n = 0
        while n < budget:
            offs: list[int] = []
            lens: list[int] = []
            peers: list[str] = []
            off = 0
            while n < budget and off <= UDP_BATCH_BYTES:
                try:
                    got, peer = recv(view[off:], MAX_DATAGRAM)
                except (BlockingIOError, InterruptedError):
                    budget = n  # nothing more waiting
                    break
                except OSError as exc:  # e.g. ECONNREFUSED from an earlier ICMP error: keep reading
                    log.debug("udp recv: %s", exc)
                    continue
                offs.append(off)
                lens.append(got)
                peers.append(peer[0])
                off += got
                n += 1
            if not offs:
                break
            try:
                self._many(self._array, np.array(offs, np.int64), np.array(lens, np.int64), peers, now)
            except Exception:  # decoders never raise by contract; if one does, count and go on
                log.exception("%s decoder raised on a batch of %d datagrams", self.decoder.protocol, len(offs))
                for p in peers:
                    self.decoder.stats.of(p).rejected["decoder error"] += 1
        return n

    def pause(self) -> None:
        """Stop reading (back-pressure): datagrams wait in the kernel buffer, then the kernel drops them."""
        if not self.paused:
            self.paused = True
            self.loop.remove_reader(self.sock.fileno())

    def resume(self) -> None:
        if self.paused:
            self.paused = False
            self.loop.add_reader(self.sock.fileno(), self._ready)

    def kernel_drops(self) -> int:
        """Datagrams the kernel dropped for this socket (buffer full), from /proc/net/udp[6]; -1 if unknown."""
        if self._final_drops is not None:
            return self._final_drops
        return socket_drops(self._inode, self.sock.family)

    def close(self) -> None:
        """Stop, after reading what the kernel already holds: it was received before the stop."""
        if not self.paused:
            self.loop.remove_reader(self.sock.fileno())
        # Bounded: enough for a full 64 MiB buffer of small datagrams, yet a sender
        # that keeps flooding cannot hold the shutdown forever.
        self._ready(budget=UDP_CLOSE_BUDGET)
        self._final_drops = self.kernel_drops()
        self.sock.close()


def socket_drops(inode: int, family: socket.AddressFamily) -> int:
    """The kernel's drop counter of the UDP socket with this inode (last column of /proc/net/udp)."""
    path = "/proc/net/udp6" if family == socket.AF_INET6 else "/proc/net/udp"
    want = str(inode)
    try:
        with open(path) as fh:
            next(fh, None)
            for line in fh:
                f = line.split()
                if len(f) > 12 and f[9] == want:
                    return int(f[-1])
    except OSError:
        pass
    return -1


class TcpSyslogEndpoint:
    """Syslog over TCP: one task per connection, each with bounded buffers and an idle timeout."""

    def __init__(self, decoder: SyslogDecoder, max_message: int = MAX_MESSAGE) -> None:
        self.decoder = decoder
        self.max_message = max_message
        self.server: asyncio.base_events.Server | None = None
        self._conns: dict[asyncio.Task, tuple[asyncio.StreamReader, asyncio.StreamWriter]] = {}

    async def start(self, addr: ListenAddress) -> None:
        host = "127.0.0.1" if addr.host == "localhost" else addr.host
        try:
            self.server = await asyncio.start_server(
                self._serve, host, addr.port, family=_family(addr), reuse_address=True, backlog=256)
        except OSError as exc:
            raise _bind_error("tcp", addr, exc) from None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername") or ("unknown",)
        exporter = str(peer[0])
        if len(self._conns) >= TCP_MAX_CONNECTIONS:
            log.warning("syslog tcp: refusing %s, %d connections open", exporter, len(self._conns))
            writer.close()
            return
        task = asyncio.current_task()
        assert task is not None
        self._conns[task] = (reader, writer)
        framer = SyslogFramer(self.max_message)
        try:
            while not framer.broken:
                try:
                    # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a
                    # cancellation when data is ready at the same moment.
                    async with asyncio.timeout(TCP_IDLE_SECONDS):
                        data = await reader.read(TCP_READ)
                except (TimeoutError, ConnectionError):
                    break
                if not data:
                    break
                self._deliver(exporter, *framer.feed(data))
        except asyncio.CancelledError:
            pass  # forced shutdown: deliver what the framer holds below
        finally:
            self._conns.pop(task, None)
            self._deliver(exporter, *framer.close())
            writer.close()

    def _deliver(self, exporter: str, msgs: list[bytes], rejects: list[str]) -> None:
        now = time.time()
        for m in msgs:
            self.decoder.feed(m, exporter, now)
        for reason in rejects:  # framing errors: a message that never reached the parser
            self.decoder.stats.of(exporter).datagrams += 1
            self.decoder.reject(exporter, reason)

    async def close(self, grace: float = 0.2, timeout: float = 5.0) -> None:
        """Stop accepting; read what is already queued; then end every connection.

        For `grace` seconds connections keep reading what the kernel holds. Then
        reading stops and each reader gets an EOF after its buffered bytes, so
        every byte taken from the socket is still framed and decoded.
        """
        if self.server is not None:
            self.server.close()
        if self._conns:
            await asyncio.sleep(grace)
        for reader, writer in list(self._conns.values()):
            writer.transport.pause_reading()
            reader.feed_eof()
        tasks = list(self._conns)
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=timeout)
            for task in late:
                task.cancel()
            if late:
                await asyncio.gather(*late, return_exceptions=True)
