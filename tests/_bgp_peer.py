"""A receiving BGP peer for the FlowSpec/RTBH driver tests: a real gobgpd on loopback.

It plays the ISP edge or IXP route server: passive, on 127.0.0.2, accepting the
FlowSpec and unicast families from necoma's speaker on 127.0.0.1. Free ports,
its own temp dir, stopped by the test.
"""
from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path

from necoma.protect.drivers.bgp_gobgp import FAMILIES, decode_rib

PEER_ADDRESS, SPEAKER_ADDRESS = "127.0.0.2", "127.0.0.1"
PEER_AS, SPEAKER_AS = 64513, 64512


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class GobgpPeer:
    def __init__(self, workdir: Path) -> None:
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.bgp_port = free_port(PEER_ADDRESS)
        self.api_port = free_port("127.0.0.1")
        fams = "".join(f'[[neighbors.afi-safis]]\n[neighbors.afi-safis.config]\n  afi-safi-name = "{f}"\n'
                       for f in ("ipv4-flowspec", "ipv6-flowspec", "ipv4-unicast", "ipv6-unicast"))
        conf = self.dir / "peer.toml"
        conf.write_text(
            f'[global.config]\n  as = {PEER_AS}\n  router-id = "{PEER_ADDRESS}"\n  port = {self.bgp_port}\n'
            f'  local-address-list = ["{PEER_ADDRESS}"]\n'
            f'[[neighbors]]\n[neighbors.config]\n  neighbor-address = "{SPEAKER_ADDRESS}"\n  peer-as = {SPEAKER_AS}\n'
            f'[neighbors.transport.config]\n  local-address = "{PEER_ADDRESS}"\n  passive-mode = true\n' + fams)
        self.log = open(self.dir / "peer.log", "wb")
        self.proc = subprocess.Popen(["gobgpd", "-f", str(conf), "--api-hosts", f"127.0.0.1:{self.api_port}",
                                      "--pprof-disable"],
                                     stdout=self.log, stderr=self.log)

    def gobgp(self, *args: str) -> str:
        return subprocess.run(["gobgp", "-p", str(self.api_port), *args], capture_output=True, text=True,
                              timeout=15, check=True).stdout

    def established(self) -> bool:
        try:
            state = json.loads(self.gobgp("-j", "neighbor", SPEAKER_ADDRESS))
        except (subprocess.CalledProcessError, ValueError):
            return False
        return state.get("state", {}).get("session_state") == 6  # ESTABLISHED

    def wait_established(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not self.established():
            if time.monotonic() > deadline:
                raise AssertionError(f"no BGP session within {timeout}s; peer log: "
                                     f"{(self.dir / 'peer.log').read_text()[-1500:]}")
            time.sleep(0.3)

    def received(self) -> set:
        """Every route the peer holds, decoded from its RIB: {(announcement, tags)}."""
        out = set()
        for fam in FAMILIES:
            text = self.gobgp("-j", "global", "rib", "-a", fam).strip()
            out |= set(decode_rib(json.loads(text) if text else {}, fam, SPEAKER_AS))
        return out

    def wait_received(self, expected: set, timeout: float = 10) -> set:
        """Poll until the peer's RIB equals `expected` (updates take a moment); return what it holds."""
        deadline = time.monotonic() + timeout
        while (got := self.received()) != expected and time.monotonic() < deadline:
            time.sleep(0.2)
        return got

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
