"""A throwaway Unbound for tests: 127.0.0.1 on a free port, offline, with a necoma RPZ zone.

It serves a small authoritative zone (`auth-zone`, `for-upstream`) so that lookups resolve
without the Internet, and loads the RPZ zone from `rpz:` with the respip module. Control
goes through a unix socket in the temp dir, so `unbound-control -c CONF` needs no keys.
The lab names live under `lab.test.`: Unbound answers every `*.test` name NXDOMAIN from a
built-in local zone unless `local-zone: "test." nodefault` is set (here it is), which would
make a blocking test pass falsely; callers still check that the names resolve before blocking.

Used by tests/test_protect_rpz.py; the end-to-end protect tests may use it too.
"""
from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

LAB_ZONE = "lab.test"
RPZ_ZONE = "rpz.necoma"

#: The lab zone: name (relative to LAB_ZONE) -> A address.
LAB_RECORDS = {
    "good": "192.0.2.10",
    "evil": "192.0.2.66",
    "www.evil": "192.0.2.67",
    "cnc": "192.0.2.80",
    "deep.sub.cnc": "192.0.2.81",
    "xn--bcher-kva": "192.0.2.90",  # bücher.lab.test
    "xn--fa-hia": "192.0.2.91",  # faß.lab.test under IDNA 2008
    "fass": "192.0.2.92",  # faß.lab.test under IDNA 2003
}

EMPTY_RPZ = (f"$ORIGIN {RPZ_ZONE}.\n$TTL 60\n"
             "@ IN SOA localhost. hostmaster.localhost. ( 1 3600 600 86400 60 )\n@ IN NS localhost.\n")


@dataclass
class Unbound:
    port: int
    conf: Path
    rpz_path: Path
    process: subprocess.Popen
    log: Path

    def query(self, name: str, rdtype: str = "A", timeout: float = 3) -> tuple[str, list[str]]:
        """(rcode text, answer rdata texts) for one query, by dnspython over UDP."""
        q = dns.message.make_query(name, rdtype)
        r = dns.query.udp(q, "127.0.0.1", port=self.port, timeout=timeout)
        want = dns.rdatatype.from_text(rdtype)
        return dns.rcode.to_text(r.rcode()), sorted(rd.to_text() for rrset in r.answer
                                                    if rrset.rdtype == want for rd in rrset)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_conf(d: Path, port: int) -> Path:
    lab = d / "lab.zone"
    lab.write_text(f"$ORIGIN {LAB_ZONE}.\n$TTL 300\n"
                   f"@ IN SOA ns.{LAB_ZONE}. hostmaster.{LAB_ZONE}. ( 1 3600 600 86400 60 )\n"
                   f"@ IN NS ns.{LAB_ZONE}.\nns IN A 127.0.0.1\n"
                   + "".join(f"{n} IN A {a}\n" for n, a in LAB_RECORDS.items()))
    conf = d / "unbound.conf"
    conf.write_text(f"""server:
  interface: 127.0.0.1
  port: {port}
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "{d}"
  pidfile: ""
  use-syslog: no
  logfile: ""
  verbosity: 1
  num-threads: 1
  do-ip6: no
  access-control: 127.0.0.0/8 allow
  # RPZ needs the respip module; no validator: the lab zone is unsigned and offline.
  module-config: "respip iterator"
  local-zone: "test." nodefault
auth-zone:
  name: "{LAB_ZONE}."
  zonefile: "{lab}"
  for-upstream: yes
  for-downstream: no
  fallback-enabled: no
rpz:
  name: "{RPZ_ZONE}."
  zonefile: "{d / 'necoma.rpz'}"
  rpz-log: yes
remote-control:
  control-enable: yes
  control-interface: "{d / 'control.sock'}"
""")
    return conf


def start_unbound(d: Path, rpz_text: str = EMPTY_RPZ) -> Unbound:
    """Start Unbound in the foreground in directory d; wait until it answers."""
    d.mkdir(parents=True, exist_ok=True)
    rpz = d / "necoma.rpz"
    if not rpz.exists():
        rpz.write_text(rpz_text)  # Unbound refuses to start when the rpz zonefile is missing
    last = ""
    for _ in range(3):  # the free port may be taken between probe and bind: try another
        port = _free_port()
        conf = _write_conf(d, port)
        log = d / "unbound.log"
        logf = open(log, "w")
        proc = subprocess.Popen(["unbound", "-d", "-c", str(conf)], stdout=logf, stderr=subprocess.STDOUT)
        logf.close()
        ub = Unbound(port, conf, rpz, proc, log)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                rcode = ub.query(f"ns.{LAB_ZONE}", timeout=0.2)[0]
            except (dns.exception.Timeout, OSError):
                time.sleep(0.1)
                continue
            if rcode != "NOERROR":  # up, but the lab zone does not resolve: the tests would mean nothing
                ub.stop()
                raise RuntimeError(f"unbound answers {rcode} for ns.{LAB_ZONE}: {log.read_text()[-2000:]}")
            return ub
        ub.stop()
        last = log.read_text()
    raise RuntimeError(f"unbound did not start: {last[-2000:]}")


def control(ub: Unbound, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["unbound-control", "-c", str(ub.conf), *args], capture_output=True, text=True,
                          timeout=30)
