"""Traffic ends for the namespace lab, run as `ip netns exec NS python _netns_probe.py MODE ...`.

recv PORT            count UDP datagrams on PORT (IPv4 and IPv6) until stdin closes; print the count
send SRC DST PORT N PPS [SPORT [SIZE]]   send N UDP datagrams (SIZE payload bytes, default 64) from SRC:SPORT
                     (default: any port) to DST:PORT at about PPS; print seconds taken
tcp SRC DST PORT     try one TCP connect; print "open", "refused" or "timeout"
"""
from __future__ import annotations

import socket
import sys
import threading
import time


def recv(port: int) -> None:
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", port))
    t = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)  # a TCP listener too, for connect probes
    t.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    t.bind(("::", port))
    t.listen(16)
    s.settimeout(0.2)
    count = 0
    done = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    print("ready", flush=True)
    while not done.is_set():
        try:
            s.recvfrom(2048)
            count += 1
        except socket.timeout:
            pass
    print(count, flush=True)


def send(src: str, dst: str, port: int, n: int, pps: float, sport: int = 0, size: int = 64) -> None:
    fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.bind((src, sport))
    start = time.monotonic()
    for i in range(n):
        due = start + i / pps
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        try:
            s.sendto(b"x" * size, (dst, port))
        except OSError:
            pass  # a drop in the output path answers EPERM; the receiver's count is what matters
    print(f"{time.monotonic() - start:.3f}", flush=True)


def tcp(src: str, dst: str, port: int) -> None:
    fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
    c = socket.socket(fam, socket.SOCK_STREAM)
    c.bind((src, 0))
    c.settimeout(1.0)
    try:
        c.connect((dst, port))
        print("open")
    except ConnectionRefusedError:
        print("refused")
    except (socket.timeout, OSError):
        print("timeout")


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    if mode == "recv":
        recv(int(args[0]))
    elif mode == "send":
        send(args[0], args[1], int(args[2]), int(args[3]), float(args[4]), *map(int, args[5:7]))
    elif mode == "tcp":
        tcp(args[0], args[1], int(args[2]))
    else:
        sys.exit(f"unknown mode {mode}")
