"""nftables driver: translation and refusals, then real traffic between two network namespaces.

The lab: namespaces attacker and victim joined by a veth pair, IPv4 and IPv6; the driver
works inside the victim namespace (its `netns` option). Counts are what a UDP socket in
the victim really received, so a rule that does not bite fails the test.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from necoma.protect.drivers import load_driver, nft_rules
from necoma.protect.drivers.nftables import NftablesDriver
from necoma.protect.model import Action, DriverError, Match, PortRange
from tests.conftest import require_tool

PROBE = str(Path(__file__).with_name("_netns_probe.py"))
ATT4, ATT4_OK, VIC4 = "10.251.0.1", "10.251.0.3", "10.251.0.2"
ATT6, ATT6_OK, VIC6 = "fd00:251::1", "fd00:251::3", "fd00:251::2"
PORT = 5353


def _action(kind="drop", ttl=60, **match) -> Action:
    params = match.pop("params", {})
    return Action(kind=kind, point="edge", match=Match(**match), params=params, ttl_seconds=ttl).with_id()


# -- translation and refusals (no root needed) -------------------------------------------


def test_plan_expresses_every_match_field():
    a = _action(dst_prefixes=("192.0.2.0/24", "192.0.2.7/32"), src_prefixes=("198.51.100.0/24",), protocol=17,
                src_ports=(PortRange.parse("123"),), dst_ports=(PortRange.parse("1000-2000"),),
                packet_length=(200, 1500), fragment="is-fragment", ttl=600)
    p = nft_rules.plan(a, "necoma")
    assert len(p.sets) == 1 and len(p.rules) == 1  # IPv4 only: the prefixes name no IPv6
    assert "192.0.2.0/24 timeout 600s" in p.sets[0] and "192.0.2.7" not in p.sets[0]  # collapsed
    assert f'comment "{a.id}"' in p.sets[0]
    rule = p.rules[0]
    for part in ("ip saddr { 198.51.100.0/24 }", "meta l4proto 17", "th sport { 123 }", "th dport { 1000-2000 }",
                 "ip length 200-1500", "ip frag-off & 0x3fff != 0", "counter drop", f'comment "{a.id}"'):
        assert part in rule, part


def test_plan_ipv6_length_flags_and_rates():
    a = _action("rate_limit", dst_prefixes=("2001:db8::/48",), tcp_flags="S/SA", packet_length=(100, 1500),
                params={"rate_bps": 8_000_000})
    rule = nft_rules.plan(a, "t").rules[0]
    assert "ip6 daddr @k6_" in rule and "ip6 length 60-1460" in rule
    assert "meta l4proto 6" in rule and "tcp flags & (syn|ack) == syn" in rule
    assert "tcp flags & syn == syn" in nft_rules.plan(_action(tcp_flags="S"), "t").rules[0]
    assert "limit rate over 1000000 bytes/second" in rule
    b = _action("rate_limit", params={"rate_pps": 100})  # no prefixes: both families, keyed on the whole space
    p = nft_rules.plan(b, "t")
    assert "0.0.0.0/0" in p.sets[0] and "::/0" in p.sets[1]
    assert all("limit rate over 100/second" in r for r in p.rules)


@pytest.mark.parametrize("kind,match,params,why", [
    ("block_domain", {"domains": ("evil.example",)}, {}, "not 'block_domain'"),
    ("drop", {"domains": ("evil.example",)}, {}, "cannot match domains"),
    ("drop", {"protocol": 1, "dst_ports": (PortRange.parse("53"),)}, {}, "carry ports"),
    ("drop", {"protocol": 17, "tcp_flags": "S"}, {}, "only in TCP"),
    ("drop", {"tcp_flags": "SX"}, {}, "FSRPAUEC"),
    ("drop", {"dst_prefixes": ("2001:db8::1",), "fragment": "dont-fragment"}, {}, "no IPv6 meaning"),
    ("drop", {"dst_prefixes": ("192.0.2.1",), "src_prefixes": ("2001:db8::1",)}, {}, "different IP versions"),
    ("rate_limit", {"dst_prefixes": ("192.0.2.1",)}, {}, "rate_bps or rate_pps"),
    ("rate_limit", {"dst_prefixes": ("192.0.2.1",)}, {"rate_pps": -5}, "positive"),
    ("isolate", {"dst_prefixes": ("192.0.2.1",), "protocol": 6}, {}, "cannot also match"),
    ("isolate", {}, {}, "names no host"),
    ("isolate", {"dst_prefixes": ("192.0.2.1",)}, {"allow": ["not-an-ip"]}, "bad allow prefix"),
])
def test_plan_refuses_what_it_cannot_express(kind, match, params, why):
    with pytest.raises(DriverError, match=why):
        nft_rules.plan(_action(kind, **match, params=params), "necoma")


def test_plan_refuses_expired_and_unsafe_ids():
    a = _action(dst_prefixes=("192.0.2.1",)).model_copy(
        update={"expires_at": datetime.now(timezone.utc) - timedelta(seconds=5)})
    with pytest.raises(DriverError, match="expired"):
        nft_rules.plan(a, "necoma")
    with pytest.raises(DriverError, match="unsafe"):
        nft_rules.plan(_action(dst_prefixes=("192.0.2.1",)).model_copy(update={"id": 'x" drop'}), "necoma")


def test_driver_options_are_checked():
    assert isinstance(load_driver("nftables", "edge", {"table": "nec", "netns": "ns1"}), NftablesDriver)
    with pytest.raises(ValueError, match="unknown options"):
        NftablesDriver("edge", {"tabel": "x"})
    with pytest.raises(ValueError, match="not a valid nft identifier"):
        NftablesDriver("edge", {"table": "bad name"})


# -- the namespace lab ------------------------------------------------------------------


def _sh(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, timeout=30)


@pytest.fixture
def lab():
    if os.geteuid() != 0:
        pytest.skip("the nftables lab needs root to create network namespaces")
    require_tool("ip", "nft", "ping")
    tag = uuid.uuid4().hex[:6]
    att, vic = f"nxa-{tag}", f"nxv-{tag}"
    try:
        _sh("ip", "netns", "add", att)
    except subprocess.CalledProcessError as e:
        pytest.skip(f"cannot create network namespaces here: {e.stderr.decode().strip()}")
    try:
        _sh("ip", "netns", "add", vic)
        _sh("ip", "link", "add", f"a{tag}", "netns", att, "type", "veth", "peer", "name", f"v{tag}", "netns", vic)
        for ns, dev, addrs in ((att, f"a{tag}", (ATT4, ATT4_OK, ATT6, ATT6_OK)), (vic, f"v{tag}", (VIC4, VIC6))):
            for addr in addrs:
                plen = "24" if "." in addr else "64"
                _sh("ip", "-n", ns, "addr", "add", f"{addr}/{plen}", "dev", dev, *(["nodad"] if ":" in addr else []))
            _sh("ip", "-n", ns, "link", "set", dev, "up")
            _sh("ip", "-n", ns, "link", "set", "lo", "up")
        # IPv6 on a fresh veth needs a moment (link-local DAD, neighbour discovery): wait for it
        # so that a first count of 0 means a rule bit, not a link still coming up.
        for dst in (VIC4, VIC6):
            for _ in range(50):
                if subprocess.run(["ip", "netns", "exec", att, "ping", "-c", "1", "-W", "1", dst],
                                  capture_output=True, timeout=30).returncode == 0:
                    break
                time.sleep(0.2)
            else:
                pytest.fail(f"the lab link to {dst} never came up")
        yield att, vic
    finally:
        for ns in (att, vic):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)


def _udp(lab, src: str, dst: str, n: int = 20, pps: float = 200) -> tuple[int, float]:
    """Send n datagrams attacker -> victim; return (received, seconds the sending took)."""
    att, vic = lab
    rx = subprocess.Popen(["ip", "netns", "exec", vic, sys.executable, PROBE, "recv", str(PORT)],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert rx.stdout.readline().strip() == "ready"
        tx = subprocess.run(["ip", "netns", "exec", att, sys.executable, PROBE, "send", src, dst, str(PORT),
                             str(n), str(pps)], capture_output=True, text=True, timeout=60, check=True)
        time.sleep(0.4)  # let the last datagrams land
        out, _ = rx.communicate("", timeout=10)
        return int(out.strip()), float(tx.stdout.strip())
    finally:
        if rx.poll() is None:
            rx.kill()
            rx.wait()


def _ping(lab, dst: str) -> bool:
    att, _ = lab
    r = subprocess.run(["ip", "netns", "exec", att, "ping", "-c", "2", "-i", "0.2", "-W", "1", dst],
                       capture_output=True, timeout=30)
    return r.returncode == 0


def _tcp(lab, src: str, dst: str) -> str:
    att, vic = lab
    rx = subprocess.Popen(["ip", "netns", "exec", vic, sys.executable, PROBE, "recv", str(PORT)],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert rx.stdout.readline().strip() == "ready"
        r = subprocess.run(["ip", "netns", "exec", att, sys.executable, PROBE, "tcp", src, dst, str(PORT)],
                           capture_output=True, text=True, timeout=30, check=True)
        return r.stdout.strip()
    finally:
        rx.communicate("", timeout=10)


def _driver(lab) -> NftablesDriver:
    return NftablesDriver("victim-edge", {"netns": lab[1]})


def test_drop_stops_udp_icmp_tcp_and_withdraw_restores(lab):
    d = _driver(lab)
    assert _udp(lab, ATT4, VIC4)[0] == 20 and _ping(lab, VIC4) and _tcp(lab, ATT4, VIC4) == "open"
    everything = _action(dst_prefixes=(f"{VIC4}/32",), src_prefixes=(f"{ATT4}/32",))
    d.apply([everything])
    assert d.installed() == {everything.id}
    assert _udp(lab, ATT4, VIC4)[0] == 0
    assert not _ping(lab, VIC4)
    assert _tcp(lab, ATT4, VIC4) == "timeout"
    assert _udp(lab, ATT4_OK, VIC4)[0] == 20  # another source is not matched
    d.apply([everything])  # idempotent: nothing added twice
    listing = subprocess.run(["ip", "netns", "exec", lab[1], "nft", "list", "table", "inet", "necoma"],
                             capture_output=True, text=True, check=True).stdout
    assert listing.count(f'comment "{everything.id}"') == 3  # the set, its element, one rule
    d.withdraw([everything])
    assert d.installed() == set()
    assert _udp(lab, ATT4, VIC4)[0] == 20 and _ping(lab, VIC4)
    d.withdraw([everything])  # withdrawing an absent action is fine


def test_drop_matches_protocol_and_port_only(lab):
    d = _driver(lab)
    udp_only = _action(dst_prefixes=(f"{VIC4}/32", f"{VIC6}/128"), protocol=17, dst_ports=(PortRange.parse(str(PORT)),))
    other = _action(dst_prefixes=("192.0.2.0/24",))  # a second action must survive the first one's withdrawal
    d.apply([udp_only, other])
    assert d.installed() == {udp_only.id, other.id}
    assert _udp(lab, ATT4, VIC4)[0] == 0 and _udp(lab, ATT6, VIC6)[0] == 0
    assert _ping(lab, VIC4) and _ping(lab, VIC6) and _tcp(lab, ATT4, VIC4) == "open"
    d.withdraw([udp_only])
    assert d.installed() == {other.id}
    assert _udp(lab, ATT6, VIC6)[0] == 20


def test_ttl_expires_in_the_kernel(lab):
    d = _driver(lab)
    short = _action(dst_prefixes=(f"{VIC6}/128",), ttl=2)
    d.apply([short])
    assert _udp(lab, ATT6, VIC6)[0] == 0
    time.sleep(2.5)  # necoma does nothing here: the kernel times the elements out
    assert d.installed() == set()
    assert _udp(lab, ATT6, VIC6)[0] == 20 and _ping(lab, VIC6)
    assert d.sweep() == {short.id}  # the remnant rule and set are cleaned up
    listing = subprocess.run(["ip", "netns", "exec", lab[1], "nft", "list", "table", "inet", "necoma"],
                             capture_output=True, text=True, check=True).stdout
    assert short.id not in listing
    d.apply([short])  # re-applying after expiry installs it afresh
    assert d.installed() == {short.id} and _udp(lab, ATT6, VIC6)[0] == 0


def test_rate_limit_passes_about_the_limit(lab):
    d = _driver(lab)
    pps = 50
    limit = _action("rate_limit", dst_prefixes=(f"{VIC4}/32",), protocol=17, params={"rate_pps": pps})
    d.apply([limit])
    got, seconds = _udp(lab, ATT4, VIC4, n=400, pps=200)
    burst = max(5, pps // 5)
    expected = pps * seconds + burst
    assert 0.6 * expected <= got <= 1.3 * expected + 5, (got, expected, seconds)
    assert got < 400 * 0.5  # far below what was sent
    d.withdraw([limit])
    assert _udp(lab, ATT4, VIC4, n=100, pps=200)[0] == 100


def test_isolate_keeps_only_the_allowed_prefixes(lab):
    d = _driver(lab)
    iso = _action("isolate", dst_prefixes=(f"{VIC4}/32", f"{VIC6}/128"),
                  params={"allow": [f"{ATT4_OK}/32", f"{ATT6_OK}/128"]})
    d.apply([iso])
    assert _udp(lab, ATT4, VIC4)[0] == 0 and _udp(lab, ATT6, VIC6)[0] == 0
    assert _udp(lab, ATT4_OK, VIC4)[0] == 20 and _udp(lab, ATT6_OK, VIC6)[0] == 20
    assert _tcp(lab, ATT4, VIC4) == "timeout" and _tcp(lab, ATT4_OK, VIC4) == "open"  # replies pass the out chain
    d.withdraw([iso])
    assert _udp(lab, ATT4, VIC4)[0] == 20


def test_failed_transaction_changes_nothing(lab):
    d = _driver(lab)
    good = _action(dst_prefixes=(f"{VIC4}/32",))
    d.apply([good])
    # A second driver on the same table with another hook priority: the kernel refuses to
    # redefine the base chains, so the whole transaction, new action included, is refused.
    clash = NftablesDriver("victim-edge", {"netns": lab[1], "priority": 10})
    other = _action(dst_prefixes=(f"{VIC6}/128",))
    with pytest.raises(DriverError, match="nothing changed"):
        clash.apply([other])
    assert d.installed() == {good.id}
    assert _udp(lab, ATT6, VIC6)[0] == 20


def test_missing_namespace_is_a_clear_error():
    if os.geteuid() != 0 or shutil.which("nft") is None:
        pytest.skip("needs root and nft")
    d = NftablesDriver("edge", {"netns": f"nx-absent-{uuid.uuid4().hex[:6]}"})
    with pytest.raises(DriverError, match="cannot read table"):
        d.installed()
