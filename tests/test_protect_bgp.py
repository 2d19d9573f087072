"""FlowSpec and RTBH drivers against a real BGP peer (gobgpd on 127.0.0.2), for both speakers.

necoma's speaker (a gobgpd it starts, or an ExaBGP it runs) peers from 127.0.0.1;
the peer's RIB is read with `gobgp -j global rib` and decoded component by
component, so the assertions compare what arrived on the wire with what was meant.
"""
from __future__ import annotations

import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests._bgp_peer import PEER_ADDRESS, PEER_AS, SPEAKER_ADDRESS, SPEAKER_AS, GobgpPeer, free_port
from tests.conftest import require_tool
from necoma.protect.drivers import load_driver
from necoma.protect.drivers.flowspec import FlowRule, RtbhRoute, Term, id_tag
from necoma.protect.model import Action, DriverError, Match, PortRange

pytestmark = pytest.mark.slow


CREATED: list[Action] = []  # every action a test may have applied: withdrawn after each test


def act(kind: str, incident: str = "inc-1", ttl: int = 3600, **match) -> Action:
    params = {"rate_bps": 100_000} if kind == "rate_limit" else {}
    a = Action(kind=kind, point="edge", match=Match(**match), params=params, incident_id=incident,
               ttl_seconds=ttl).with_id()
    CREATED.append(a)
    return a


NTP = act("rate_limit", dst_prefixes=("192.0.2.10/32",), protocol=17, src_ports=(PortRange.parse(123),),
          packet_length=(200, 65535))
SYN = act("drop", dst_prefixes=("192.0.2.11/32",), src_prefixes=("198.51.100.0/24",), protocol=6,
          dst_ports=(PortRange.parse("80-90"), PortRange.parse(443)), tcp_flags="S/SA")
DNS6 = act("drop", dst_prefixes=("2001:db8::1/128",), protocol=17, src_ports=(PortRange.parse(53),),
           fragment="is-fragment")
SMALL = act("drop", dst_prefixes=("192.0.2.13/32",), protocol=17, packet_length=(0, 100), fragment="not-a-fragment")
SCAN6 = act("drop", src_prefixes=("2001:db8:bad::/48",), protocol=6, dst_ports=(PortRange.parse("1000-2000"),),
            tcp_flags="R")
DF = act("drop", dst_prefixes=("192.0.2.14/32",), fragment="dont-fragment", packet_length=(1500, 1500))
RTBH4 = act("blackhole", dst_prefixes=("192.0.2.12/32",))
RTBH6 = act("blackhole", dst_prefixes=("2001:db8::12/128",))
# the point's own RTBH settings (what an ISP or IXP asks for), reflected in what the peer must receive
NEXT_HOP_V4 = "192.0.2.66"
CONFIGURED = ["64513:666", "64513:0:666"]


def tag(a: Action) -> frozenset:
    return frozenset({id_tag(SPEAKER_AS, a.id)})


# What the peer must decode, written out by hand from RFC 8955 §4.2.2 (not from the driver's translation):
# numeric op bits AND=0x40 lt=0x04 gt=0x02 eq=0x01; bitmask op bits AND=0x40 not=0x02 match=0x01.
EXPECTED = {
    (FlowRule(4, ((1, "192.0.2.10/32"),), ((3, (Term(0x01, 17),)), (6, (Term(0x01, 123),)),
                                           (10, (Term(0x03, 200),))), 12500.0), tag(NTP)),
    (FlowRule(4, ((1, "192.0.2.11/32"), (2, "198.51.100.0/24")),
              ((3, (Term(0x01, 6),)), (5, (Term(0x03, 80), Term(0x45, 90), Term(0x01, 443))),
               (9, (Term(0x01, 0x02), Term(0x42, 0x10)))), 0.0), tag(SYN)),
    (FlowRule(6, ((1, "2001:db8::1/128"),), ((3, (Term(0x01, 17),)), (6, (Term(0x01, 53),)),
                                             (12, (Term(0x01, 0x02),))), 0.0), tag(DNS6)),
    (FlowRule(4, ((1, "192.0.2.13/32"),), ((3, (Term(0x01, 17),)), (10, (Term(0x05, 100),)),
                                           (12, (Term(0x02, 0x02),))), 0.0), tag(SMALL)),
    (FlowRule(6, ((2, "2001:db8:bad::/48"),), ((3, (Term(0x01, 6),)), (5, (Term(0x03, 1000), Term(0x45, 2000))),
                                               (9, (Term(0x01, 0x04),))), 0.0), tag(SCAN6)),
    (FlowRule(4, ((1, "192.0.2.14/32"),), ((10, (Term(0x01, 1500),)), (12, (Term(0x01, 0x01),))), 0.0), tag(DF)),
    # RTBH: BLACKHOLE 65535:666, NO_EXPORT 65535:65281 and the configured ones, in numeric order
    (RtbhRoute(4, "192.0.2.12/32", NEXT_HOP_V4, ("64513:0:666", "64513:666", "65535:666", "65535:65281")), tag(RTBH4)),
    (RtbhRoute(6, "2001:db8::12/128", "100::1", ("64513:0:666", "64513:666", "65535:666", "65535:65281")),
     tag(RTBH6)),
}
ALL = [NTP, SYN, DNS6, SMALL, SCAN6, DF, RTBH4, RTBH6]


def _options(speaker: str, peer: GobgpPeer, run_dir: Path) -> dict:
    common = {"local_as": SPEAKER_AS, "router_id": SPEAKER_ADDRESS, "local_address": SPEAKER_ADDRESS,
              "run_dir": str(run_dir), "blackhole_next_hop_v4": NEXT_HOP_V4, "blackhole_communities": CONFIGURED,
              "peers": [{"address": PEER_ADDRESS, "as": PEER_AS, "port": peer.bgp_port}]}
    if speaker == "gobgp":
        return {**common, "manage": True, "api_port": free_port("127.0.0.1")}
    return common


@pytest.fixture(scope="module", params=["gobgp", "exabgp"])
def session(request):
    """One BGP session per speaker for the whole module: GoBGP waits 5-10 s before its first connect."""
    require_tool("gobgpd", "gobgp")
    if request.param == "exabgp":
        pytest.importorskip("exabgp", reason="ExaBGP (PyPI exabgp) not installed")
    # short path: the ExaBGP relay's Unix socket path must stay under 108 bytes
    with tempfile.TemporaryDirectory(prefix="necoma-bgp-") as tmp:
        peer = GobgpPeer(Path(tmp) / "peer")
        drivers = []
        try:
            options = _options(request.param, peer, Path(tmp) / "speaker")
            driver = load_driver(request.param, "edge", options)
            drivers.append(driver)
            peer.wait_established()
            yield request.param, driver, peer, options
        finally:
            for d in drivers:
                d.stop()
            peer.stop()


@pytest.fixture
def lab(session):
    """The shared session, left empty for the next test whatever this one did."""
    _, driver, peer, _ = session
    assert peer.received() == set(), "a previous test left routes at the peer"
    yield session
    for a in CREATED:
        try:
            driver.withdraw([a])
        except DriverError:
            pass  # an action BGP cannot express was never announced
    assert peer.wait_received(set()) == set()


def test_rules_arrive_exactly_and_are_withdrawn(lab):
    name, driver, peer, options = lab
    driver.apply(ALL)
    assert peer.wait_received(EXPECTED) == EXPECTED
    assert driver.installed() == {a.id for a in ALL}

    driver.apply(ALL)  # idempotent: nothing changes at the peer
    time.sleep(1)
    assert peer.received() == EXPECTED
    assert driver.installed() == {a.id for a in ALL}

    # reconcile after a restart: a new driver on the same point reads the same ids from the speaker
    # (for GoBGP without manage: the operator's gobgpd, reached through its API only)
    again = load_driver(name, "edge", {**options, "manage": False} if name == "gobgp" else options)
    assert again.installed() == {a.id for a in ALL}
    again.apply([NTP])  # idempotent across driver instances too
    assert again.installed() == {a.id for a in ALL}

    driver.withdraw([NTP, RTBH4])
    rest = {e for e in EXPECTED if e[1] not in (tag(NTP), tag(RTBH4))}
    assert peer.wait_received(rest) == rest
    assert driver.installed() == {a.id for a in ALL} - {NTP.id, RTBH4.id}
    driver.withdraw([NTP])  # withdrawing what is gone is fine
    again.withdraw([SYN, DNS6, SMALL, SCAN6, DF, RTBH6])
    assert peer.wait_received(set()) == set()
    assert driver.installed() == set()


def test_withdrawn_at_ttl_expiry(lab):
    _, driver, peer, _ = lab
    short = act("drop", incident="inc-ttl", ttl=2, dst_prefixes=("203.0.113.7/32",), protocol=17)
    short = short.model_copy(update={"applied_at": datetime.now(timezone.utc),
                                     "expires_at": datetime.now(timezone.utc) + timedelta(seconds=2)})
    driver.apply([short])
    want = {(FlowRule(4, ((1, "203.0.113.7/32"),), ((3, (Term(0x01, 17),)),), 0.0), tag(short))}
    assert peer.wait_received(want) == want
    while datetime.now(timezone.utc) < short.expires_at:  # what the lifecycle's expiry sweep does
        time.sleep(0.2)
    driver.withdraw([short])
    assert peer.wait_received(set()) == set()


def test_bad_rule_refused_and_nothing_half_applied(lab):
    _, driver, peer, _ = lab
    domains = act("drop", dst_prefixes=("192.0.2.20/32",), domains=("evil.example",))
    with pytest.raises(DriverError, match="domain"):
        driver.apply([NTP, domains])  # refused before anything is sent
    wide = act("blackhole", dst_prefixes=("192.0.2.0/16",))
    with pytest.raises(DriverError, match="wider than /24"):
        driver.apply([wide])
    time.sleep(1)
    assert peer.received() == set() and driver.installed() == set()

    # a failure found half-way (same rule, other action) rolls back what this call announced
    driver.apply([SYN])
    clash = act("rate_limit", incident="inc-2", **SYN.match.model_dump(exclude_defaults=True))
    with pytest.raises(DriverError, match="already announced"):
        driver.apply([NTP, clash])
    only_syn = {e for e in EXPECTED if e[1] == tag(SYN)}
    assert peer.wait_received(only_syn) == only_syn
    assert driver.installed() == {SYN.id}


def test_two_actions_share_one_rule(lab):
    _, driver, peer, _ = lab
    twin = act("drop", incident="inc-2", **SYN.match.model_dump(exclude_defaults=True))
    driver.apply([SYN])
    driver.apply([twin])
    rule = next(e[0] for e in EXPECTED if e[1] == tag(SYN))
    both = {(rule, tag(SYN) | tag(twin))}
    assert peer.wait_received(both) == both
    driver.withdraw([SYN])  # the twin still wants the rule
    assert peer.wait_received({(rule, tag(twin))}) == {(rule, tag(twin))}
    assert driver.installed() == {twin.id}
    driver.withdraw([twin])
    assert peer.wait_received(set()) == set()


def test_unreachable_speaker_is_a_clear_error_not_a_hang():
    require_tool("gobgp")
    closed = free_port("127.0.0.1")  # nothing listens there
    driver = load_driver("gobgp", "edge", {"local_as": SPEAKER_AS, "api_port": closed})
    started = time.monotonic()
    with pytest.raises(DriverError, match=f"gobgpd API at 127.0.0.1:{closed}"):
        driver.apply([NTP])
    with pytest.raises(DriverError, match=f"gobgpd API at 127.0.0.1:{closed}"):
        driver.installed()
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("speaker", ["gobgp", "exabgp"])
def test_speaker_that_cannot_start_is_a_clear_error(speaker, tmp_path):
    require_tool("gobgpd", "gobgp")
    if speaker == "exabgp":
        pytest.importorskip("exabgp", reason="ExaBGP (PyPI exabgp) not installed")
    options = {"local_as": SPEAKER_AS, "router_id": "not-an-address", "run_dir": str(tmp_path), "manage": True,
               "api_port": free_port("127.0.0.1"), "peers": [{"address": PEER_ADDRESS, "as": PEER_AS}]}
    started = time.monotonic()
    with pytest.raises(DriverError, match=r"(?s)(gobgpd|ExaBGP) exited; log tail: .*not-an-address"):
        load_driver(speaker, "edge", options)
    assert time.monotonic() - started < 15


def test_point_configured_in_necoma_toml_announces_through_exabgp(tmp_path):
    """The documented way: a [protect.points] table read by load_settings, the driver built by Points."""
    require_tool("gobgpd", "gobgp")
    pytest.importorskip("exabgp", reason="ExaBGP (PyPI exabgp) not installed")
    from necoma.config import load_settings
    from necoma.protect.points import Points

    with tempfile.TemporaryDirectory(prefix="necoma-bgp-") as tmp:  # short: the API socket path
        peer = GobgpPeer(Path(tmp) / "peer")
        conf = tmp_path / "necoma.toml"
        conf.write_text(f"""
data_dir = "{tmp_path / 'data'}"
[protect]
enforce = true
[protect.routes]
blackhole = "ixp"
[protect.points.ixp]
driver = "exabgp"
local_as = {SPEAKER_AS}
router_id = "{SPEAKER_ADDRESS}"
local_address = "{SPEAKER_ADDRESS}"
run_dir = "{tmp}/ixp"
peers = [{{ address = "{PEER_ADDRESS}", as = {PEER_AS}, port = {peer.bgp_port} }}]
blackhole_next_hop_v4 = "192.0.2.66"
blackhole_communities = ["0:6695"]
blackhole_no_export = false
""")
        points = Points(load_settings(conf))
        driver = points.driver("ixp")
        try:
            peer.wait_established()
            victim = Action(kind="blackhole", point="ixp", match=Match(dst_prefixes=("192.0.2.50/32",))).with_id()
            driver.apply([victim])
            want = {(RtbhRoute(4, "192.0.2.50/32", "192.0.2.66", ("0:6695", "65535:666")), tag(victim))}
            assert peer.wait_received(want) == want
            assert points.driver("ixp").installed() == {victim.id}
            driver.withdraw([victim])
            assert peer.wait_received(set()) == set()
        finally:
            driver.stop()
            peer.stop()


def test_concurrent_necoma_processes_do_not_lose_each_others_actions(lab):
    """Two drivers on one point (say `necoma run` applying by policy while a person approves) applying
    actions that share rules at the same moment: every rule must end up carrying both actions' tags."""
    import threading

    name, driver, peer, options = lab
    other = load_driver(name, "edge", options)
    mine = [act("drop", incident=f"inc-a{i}", dst_prefixes=(f"198.18.0.{i}/32",), protocol=17) for i in range(6)]
    theirs = [act("drop", incident=f"inc-b{i}", dst_prefixes=(f"198.18.0.{i}/32",), protocol=17) for i in range(6)]
    errors: list[Exception] = []

    def run(drv, actions):
        try:
            for a in actions:
                drv.apply([a])
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(driver, mine)), threading.Thread(target=run, args=(other, theirs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    want = {(FlowRule(4, ((1, f"198.18.0.{i}/32"),), ((3, (Term(0x01, 17),)),), 0.0), tag(mine[i]) | tag(theirs[i]))
            for i in range(6)}
    assert peer.wait_received(want) == want
    assert driver.installed() == {a.id for a in mine + theirs}


def test_speaker_status_reads_sessions_and_announcements_without_starting(lab, tmp_path):
    """`necoma actions speaker status` for both speakers: the pid from run_dir, the session as the speaker
    reports it, what it announces; a point whose speaker is down is reported down, not started."""
    from necoma.config import ProtectSettings, Settings
    from necoma.protect import speakers
    from necoma.protect.points import Points

    name, driver, peer, options = lab
    points = Points(Settings(data_dir=tmp_path, protect=ProtectSettings(enforce=True, points={
        "edge": {"driver": name, **options}, "down": {"driver": name, **options, "run_dir": str(tmp_path / "down")}})))
    driver.apply([NTP])
    st = speakers.status(points, "edge")
    assert st.managed and st.pid == driver.daemon.pid() and st.error is None
    assert st.sessions == [(PEER_ADDRESS, "established")]
    assert st.announced == {NTP.id}
    down = speakers.status(points, "down")
    assert down.pid is None and down.announced is None and not (tmp_path / "down").exists()
