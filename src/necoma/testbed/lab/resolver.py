"""Unbound as an open resolver with a big local zone: the amplifier of the lab.

It answers anyone (`access-control: 0.0.0.0/0 allow`: the misconfiguration
that makes a resolver an amplifier) and serves `AMP_ZONE` from local data,
with a TXT set of several kB, so a ~70-byte query with EDNS0 brings a ~3.7 kB
answer that leaves the resolver as IPv4 fragments. Every other name is answered
NXDOMAIN locally (`local-zone: "." static`): the lab resolver never sends a
packet towards the internet, even if someone asks it for a real name.
"""
from __future__ import annotations

from pathlib import Path

from necoma.testbed.lab.topology import AMP_NAME, AMP_ZONE

#: TXT strings in the big answer, each `TXT_LEN` bytes (a TXT string holds at most 255).
TXT_RECORDS = 14
TXT_LEN = 250
#: Largest UDP answer Unbound sends. Its default (1232) would truncate the big answer
#: and set TC; open resolvers abused in the wild answer up to the client's EDNS size.
MAX_UDP = 4096


def zone_lines() -> list[str]:
    """local-data lines of the amplification zone."""
    lines = [
        f'local-zone: "{AMP_ZONE}." static',
        f'local-data: "{AMP_ZONE}. 3600 IN SOA ns.{AMP_ZONE}. hostmaster.{AMP_ZONE}. 1 3600 600 86400 300"',
        f'local-data: "{AMP_ZONE}. 3600 IN NS ns.{AMP_ZONE}."',
        f'local-data: "www.{AMP_ZONE}. 300 IN A 10.77.20.80"',
        f'local-data: "{AMP_NAME}. 300 IN A 10.77.20.81"',
    ]
    for i in range(TXT_RECORDS):
        # Distinct strings: Unbound drops duplicate RRs from a set.
        head = f"v=lab{i:02d} "
        text = head + ("necoma-amplification-" * 20)[: TXT_LEN - len(head)]
        lines.append(f"local-data: '{AMP_NAME}. 300 IN TXT \"{text}\"'")
    return lines


def render_conf(*, listen: list[str], workdir: Path) -> str:
    """unbound.conf for the resolver namespace; all of its files stay in `workdir`."""
    server = [
        # One socket per address (not 0.0.0.0), so each answer leaves from the
        # address that was asked, as from distinct resolvers.
        *(f"interface: {addr}" for addr in listen),
        "port: 53",
        "do-ip6: no",
        "do-daemonize: no",
        'username: ""',
        'chroot: ""',
        f'directory: "{workdir}"',
        f'pidfile: "{workdir / "unbound.pid"}"',
        "use-syslog: no",
        f'logfile: "{workdir / "unbound.log"}"',
        "log-time-ascii: yes",
        "verbosity: 1",
        "num-threads: 1",
        "so-reuseport: no",
        # The open resolver: anyone may ask. This is the point of the lab.
        "access-control: 0.0.0.0/0 allow",
        f"max-udp-size: {MAX_UDP}",
        f"edns-buffer-size: {MAX_UDP}",
        "minimal-responses: no",
        "deny-any: no",
        "ratelimit: 0",
        "ip-ratelimit: 0",
        # Validator off: it would want a root trust anchor and fetch DNSKEYs.
        'module-config: "iterator"',
        # Everything outside the lab zone is answered here, NXDOMAIN: no packet to the internet.
        'local-zone: "." static',
        *zone_lines(),
    ]
    body = "\n".join("    " + line for line in server)
    return f"server:\n{body}\n\nremote-control:\n    control-enable: no\n"


def write_conf(workdir: Path, listen: list[str]) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "unbound.conf"
    path.write_text(render_conf(listen=listen, workdir=workdir))
    return path
