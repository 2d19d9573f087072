"""Issue 7 end to end, on the testbed: incident -> proposals with a preview -> `necoma actions approve`
-> enforced on real points -> TTL expiry removes them -> every transition in the audit log; unsafe
actions refused with their reason.

The `mixed` scenario is imported into a temporary lake and `necoma analyze` finds an NTP
amplification (our NTP servers reflecting toward an outside victim) and a DGA botnet. The
real CLI (CliRunner, in-process) proposes, approves and expires. Enforcement points:
- edge: nftables on a router namespace between an "inside" and an "outside" namespace that
  hold the incident's own addresses; counts are what a UDP socket outside really received;
- isp: necoma's own gobgpd (FlowSpec) peered with a receiving gobgpd on loopback; the peer's
  RIB is decoded and compared with the rule written out by hand;
- resolvers: an RPZ zone loaded by a real Unbound on loopback that serves (offline) the DGA
  names' top-level domain, so a blocked name is seen to answer NXDOMAIN where it resolved
  before, while an unblocked name in the same domain keeps resolving;
- paper: abuse reports, notices and advice go to a recorded dry-run point here (their drivers
  have their own tests against real SMTP/HTTP servers).
"""
from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from necoma.cli.main import app
from tests.conftest import require_tool

pytestmark = pytest.mark.slow

PROBE = str(Path(__file__).with_name("_netns_probe.py"))
PORT = 40123  # the victim's port the reflected responses land on
TTL = 20  # every action's TTL here (protect.max_ttl_seconds caps the playbooks' hours to it)
MAX_RULES = 3  # per point: the edge takes the NTP drop and the two C&C drops, no more


# -- the testbed: scenario -> lake -> alerts (shared by the tests of this module) ----------


@dataclass
class World:
    root: Path
    lake: Path
    victim: str
    amplifier: str
    bot: str
    cncs: list[str]
    window: tuple[dt.datetime, dt.datetime]  # of the NTP incident
    dga_names: list[str]


@pytest.fixture(scope="module")
def world():
    from necoma.config import Settings
    from necoma.knowledge.correlate import correlate
    from necoma.analyze.runner import load_alerts
    from necoma.testbed.importer import import_scenario
    from necoma.testbed.scenario import generate

    root = Path(tempfile.mkdtemp(prefix="necoma-e2e-"))
    generate("mixed", 3, root / "scenario", scale=0.1, history_hours=2)
    settings = Settings(data_dir=root / "data")
    import_scenario(root / "scenario", settings)
    cfg = root / "analyze.toml"
    cfg.write_text(f'data_dir = "{root / "data"}"\n')
    res = CliRunner().invoke(app, ["-c", str(cfg), "analyze", "--only", "ntp_amplifier,zeus_dga"])
    assert res.exit_code == 0, res.output
    incidents = {i.category: i for i in correlate(load_alerts(settings.lake_path))}
    ntp, dga = incidents["amplifier"], incidents["bots"]
    yield World(root, settings.lake_path, ntp.subjects_with("victim")[0], sorted(ntp.subjects_with("amplifier"))[0],
                sorted(dga.subjects_with("bot"))[0], sorted(dga.subjects_with("cnc")), (ntp.window_start, ntp.window_end),
                sorted(dga.subjects_with("domain")))
    shutil.rmtree(root, ignore_errors=True)


def toml_value(v) -> str:
    """Strings, numbers, booleans, lists and inline tables: all a point's options need."""
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return json.dumps(v)  # a JSON string, number or true/false is TOML too


def write_config(path: Path, data_dir: Path, points: dict[str, dict], enforce: bool = True) -> Path:
    lines = [f'data_dir = "{data_dir}"', "[protect]", f"enforce = {str(enforce).lower()}",
             'own_prefixes = ["10.1.0.0/16", "10.2.0.0/16", "2001:db8:100::/48"]',
             'infrastructure = ["10.1.0.53", "10.2.0.53", "2001:db8:100::53"]',
             f"max_rules_per_point = {MAX_RULES}", f"max_ttl_seconds = {TTL}",
             "[protect.routes]", 'drop = "edge"', 'isolate = "edge"', 'rate_limit = "isp"', 'blackhole = "isp"',
             'block_domain = "resolvers"', 'report_abuse = "paper"', 'notify = "paper"', 'advise = "paper"']
    for name, opts in points.items():
        lines.append(f"[protect.points.{name}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in opts.items()]
    # A playbook from configuration: besides the drop at our edge, ask the upstream to police the reflection.
    lines += ["[protect.playbooks.ntp_upstream]",
              'description = "NTP reflection: police monlist-sized responses toward the victim at the upstream (FlowSpec)"',
              'detectors = ["ntp_amplifier"]', "[[protect.playbooks.ntp_upstream.steps]]",
              'kind = "rate_limit"', 'per = "victim"', 'dst = "each"', "protocol = 17", 'src_ports = ["123"]',
              "packet_length = [201, 65535]", "params = { rate_bps = 1000000 }",
              'reason = "police UDP from port 123 longer than 200 bytes toward {subjects} to 1 Mbit/s upstream"']
    path.write_text("\n".join(lines) + "\n")
    return path


def cli(cfg: Path, *args: str):
    res = CliRunner().invoke(app, ["-c", str(cfg), "actions", *args], env={"COLUMNS": "200"})
    return res


def listed(cfg: Path) -> list[dict]:
    res = cli(cfg, "list", "--json")
    assert res.exit_code == 0, res.output
    return [json.loads(line) for line in res.output.splitlines() if line.startswith("{")]


# -- the namespace lab: inside -- edge (router, nftables) -- outside -----------------------


def _sh(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, timeout=30)


@dataclass
class Lab:
    inside: str
    edge: str
    outside: str

    def udp(self, src: str, dst: str, sport: int = 0, size: int = 64, n: int = 20) -> int:
        """Datagrams sent inside -> outside through the edge that a socket outside received."""
        rx = subprocess.Popen(["ip", "netns", "exec", self.outside, sys.executable, PROBE, "recv", str(PORT)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert rx.stdout.readline().strip() == "ready"
            subprocess.run(["ip", "netns", "exec", self.inside, sys.executable, PROBE, "send", src, dst, str(PORT),
                            str(n), "400", str(sport), str(size)], capture_output=True, timeout=60, check=True)
            time.sleep(0.3)
            out, _ = rx.communicate("", timeout=10)
            return int(out.strip())
        finally:
            if rx.poll() is None:
                rx.kill()
                rx.wait()

    def nft_table(self) -> str:
        r = subprocess.run(["ip", "netns", "exec", self.edge, "nft", "list", "table", "inet", "necoma"],
                           capture_output=True, text=True, timeout=30)
        return r.stdout


@pytest.fixture
def lab(world):
    if os.geteuid() != 0:
        pytest.skip("the enforcement lab needs root (network namespaces, nftables)")
    require_tool("ip", "nft")
    tag = uuid.uuid4().hex[:6]
    ins, edge, out = f"e2i-{tag}", f"e2e-{tag}", f"e2o-{tag}"
    try:
        _sh("ip", "netns", "add", ins)
    except subprocess.CalledProcessError as e:
        pytest.skip(f"cannot create network namespaces here: {e.stderr.decode().strip()}")
    try:
        _sh("ip", "netns", "add", edge)
        _sh("ip", "netns", "add", out)
        for ns, dev, peer, addr, gw in ((ins, f"i{tag}", f"ei{tag}", "172.30.0.2/30", "172.30.0.1"),
                                        (out, f"o{tag}", f"eo{tag}", "172.31.0.2/30", "172.31.0.1")):
            _sh("ip", "link", "add", dev, "netns", ns, "type", "veth", "peer", "name", peer, "netns", edge)
            _sh("ip", "-n", ns, "addr", "add", addr, "dev", dev)
            _sh("ip", "-n", edge, "addr", "add", f"{gw}/30", "dev", peer)
            for n, d in ((ns, dev), (edge, peer), (ns, "lo")):
                _sh("ip", "-n", n, "link", "set", d, "up")
            _sh("ip", "-n", ns, "route", "add", "default", "via", gw)
        _sh("ip", "-n", edge, "link", "set", "lo", "up")
        # the incident's own addresses: our NTP server (the amplifier) and a bot inside, victim and C&C outside
        for a in (world.amplifier, world.bot):
            _sh("ip", "-n", ins, "addr", "add", f"{a}/32", "dev", "lo")
        for a in (world.victim, *world.cncs):
            _sh("ip", "-n", out, "addr", "add", f"{a}/32", "dev", "lo")
        for net in ("10.0.0.0/8",):
            _sh("ip", "-n", edge, "route", "add", net, "via", "172.30.0.2")
        for net in ("198.18.0.0/15", "198.51.100.0/24"):
            _sh("ip", "-n", edge, "route", "add", net, "via", "172.31.0.2")
        _sh("ip", "netns", "exec", edge, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        lab = Lab(ins, edge, out)
        for _ in range(25):  # the veths come up in a moment
            if lab.udp(world.bot, world.cncs[0], n=3) == 3:
                break
            time.sleep(0.2)
        else:
            pytest.fail("the lab's route inside -> edge -> outside never worked")
        yield lab
    finally:
        for ns in (ins, edge, out):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)


@pytest.fixture
def bgp_peer():
    require_tool("gobgpd", "gobgp")
    from tests._bgp_peer import GobgpPeer

    tmp = Path(tempfile.mkdtemp(prefix="necoma-e2e-bgp-"))
    peer = GobgpPeer(tmp / "peer")
    try:
        yield peer, tmp
    finally:
        for pidfile in (tmp / "speaker").glob("*.pid"):  # necoma's own gobgpd, started by the first CLI call
            try:
                os.kill(int(pidfile.read_text()), signal.SIGTERM)
            except (OSError, ValueError):
                pass
        peer.stop()
        shutil.rmtree(tmp, ignore_errors=True)


@dataclass
class Resolver:
    ub: object  # tests._unbound.Unbound
    blocked: str  # a DGA name of the incident, served by the resolver's zone
    good: str  # an ordinary name in the same top-level domain

    def answer(self, name: str) -> str:
        return self.ub.query(name)[0]


@pytest.fixture
def resolver(world, tmp_path):
    """Unbound with respip + our RPZ zone, authoritative (offline) for the first DGA name's TLD."""
    require_tool("unbound", "unbound-control", "named-checkzone")
    from tests._unbound import EMPTY_RPZ, RPZ_ZONE, Unbound, _free_port

    blocked = world.dga_names[0]
    tld = blocked.rsplit(".", 1)[1]
    good = f"www.ordinary-shop.{tld}"
    d = tmp_path / "unbound"
    d.mkdir()
    (d / "tld.zone").write_text(f"$ORIGIN {tld}.\n$TTL 300\n@ IN SOA ns.{tld}. h.{tld}. ( 1 3600 600 86400 60 )\n"
                                f"@ IN NS ns.{tld}.\nns IN A 127.0.0.1\n{blocked}. IN A 192.0.2.66\n"
                                f"{good}. IN A 192.0.2.10\n")
    (d / "necoma.rpz").write_text(EMPTY_RPZ)
    port = _free_port()
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
  num-threads: 1
  do-ip6: no
  access-control: 127.0.0.0/8 allow
  module-config: "respip iterator"
auth-zone:
  name: "{tld}."
  zonefile: "{d / 'tld.zone'}"
  for-upstream: yes
  for-downstream: no
  fallback-enabled: no
rpz:
  name: "{RPZ_ZONE}."
  zonefile: "{d / 'necoma.rpz'}"
remote-control:
  control-enable: yes
  control-interface: "{d / 'control.sock'}"
""")
    log = open(d / "unbound.log", "w")
    proc = subprocess.Popen(["unbound", "-d", "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    log.close()
    ub = Unbound(port, conf, d / "necoma.rpz", proc, d / "unbound.log")
    try:
        res = Resolver(ub, blocked, good)
        for _ in range(50):
            try:
                if res.answer(good) == "NOERROR":
                    break
            except Exception:  # not listening yet
                pass
            time.sleep(0.2)
        else:
            pytest.fail(f"unbound never answered: {(d / 'unbound.log').read_text()[-1500:]}")
        yield res
    finally:
        ub.stop()


# -- the scenario ------------------------------------------------------------------------


def _flows(lake: Path, where: str) -> int:
    from necoma.lake import connect

    con = connect(lake)
    try:
        return con.execute(f"SELECT count(*) FROM flows WHERE {where}").fetchone()[0]
    finally:
        con.close()


def test_incident_to_real_enforcement_and_expiry(world, lab, bgp_peer, resolver, tmp_path):
    from necoma.protect.drivers.flowspec import FlowRule, Term, id_tag
    from necoma.protect.store import ActionStore
    from tests._bgp_peer import PEER_ADDRESS, PEER_AS, SPEAKER_ADDRESS, SPEAKER_AS, free_port

    peer, bgp_dir = bgp_peer
    points = {
        "edge": {"driver": "nftables", "netns": lab.edge},
        "isp": {"driver": "gobgp", "manage": True, "local_as": SPEAKER_AS, "router_id": SPEAKER_ADDRESS,
                "local_address": SPEAKER_ADDRESS, "run_dir": str(bgp_dir / "speaker"),
                "api_port": free_port("127.0.0.1"),
                "peers": [{"address": PEER_ADDRESS, "as": PEER_AS, "port": peer.bgp_port}]},
        "resolvers": {"driver": "rpz", "path": str(resolver.ub.rpz_path), "zone": "rpz.necoma", "server": "unbound",
                      "unbound_conf": str(resolver.ub.conf)},
        "paper": {"driver": "dryrun"},
    }
    cfg = write_config(tmp_path / "necoma.toml", tmp_path / "data", points)
    (tmp_path / "data").mkdir()
    os.symlink(world.lake, tmp_path / "data" / "lake")

    # before: the reflection reaches the victim, ordinary NTP too, the bot reaches its C&C
    monlist, ntp, cnc = (dict(src=world.amplifier, dst=world.victim, sport=123, size=440),
                         dict(src=world.amplifier, dst=world.victim, sport=123, size=48),
                         dict(src=world.bot, dst=world.cncs[0]))
    assert (lab.udp(**monlist), lab.udp(**ntp), lab.udp(**cnc)) == (20, 20, 20)
    assert resolver.answer(resolver.blocked) == "NOERROR" and resolver.answer(resolver.good) == "NOERROR"

    # 1. incidents -> proposals with their preview; nothing blocking applies without a person
    res = cli(cfg, "propose")
    assert res.exit_code == 0, res.output
    assert "enforcing" in res.output and "proposals from 2 incidents" in res.output
    acts = listed(cfg)
    by = lambda kind, **kw: [a for a in acts if a["kind"] == kind  # noqa: E731
                             and all(a["match"].get(k) == v or a["params"].get(k) == v for k, v in kw.items())]
    (drop,) = by("drop", dst_prefixes=[f"{world.victim}/32"])
    (police,) = by("rate_limit")
    cnc_drops = sorted((a for a in by("drop") if a["match"]["dst_prefixes"][0][:-3] in world.cncs),
                       key=lambda a: a["match"]["dst_prefixes"])
    assert [a["match"]["dst_prefixes"] for a in cnc_drops] == [[f"{c}/32"] for c in world.cncs]
    (iso,) = [a for a in by("isolate") if a["match"]["src_prefixes"] == [f"{world.bot}/32"]]
    assert drop["match"]["src_ports"] == [{"lo": 123, "hi": 123}] and drop["match"]["packet_length"] == [201, 65535]
    assert police["playbook"] == "ntp_upstream" and police["point"] == "isp"
    for a in (drop, police, *cnc_drops, iso):
        assert a["state"] == "proposed" and a["ttl_seconds"] == TTL
        assert a["note"].startswith("waits for a person (policy:")
    assert iso["note"] == "waits for a person (policy:isolation-needs-person)"
    # ... but a policy may: the DGA names of a high-confidence incident are blocked at once, on the resolvers
    (block,) = by("block_domain")
    assert block["state"] == "applied" and block["decided_by"] == "policy:dga-domains-auto"
    assert len(block["match"]["domains"]) > 100 and block["preview"]["queries"] == 0  # only the bots ask for them
    assert resolver.blocked in block["match"]["domains"]
    assert resolver.answer(resolver.blocked) == "NXDOMAIN" and resolver.answer(f"www.{resolver.blocked}") == "NXDOMAIN"
    assert resolver.answer(resolver.good) == "NOERROR"
    # the amplifiers are our own hosts: advice to fix them, no abuse report to ourselves
    assert f"{world.amplifier}/32" in [a["match"]["dst_prefixes"][0] for a in by("advise")] and not by("report_abuse")

    # the preview's figures, against counts taken here straight from the lake
    start, end = (t.isoformat() for t in world.window)
    reflection = (f"dst_ip = '{world.victim}' AND protocol = 17 AND src_port = 123 "
                  "AND bytes::DOUBLE / greatest(packets, 1) >= 201")
    attack = _flows(world.lake, reflection)
    in_window = _flows(world.lake, f"{reflection} AND start_time >= '{start}' AND start_time < '{end}'")
    assert attack > 0 and in_window == attack  # the rule matches the attack and nothing else in the lake ...
    assert drop["preview"]["flows"] == 0 and drop["preview"]["over"] == []  # ... so no legitimate flow
    assert police["preview"]["flows"] == 0
    bot = f"(src_ip = '{world.bot}' OR dst_ip = '{world.bot}')"
    cnc_in = ", ".join(f"'{c}'" for c in world.cncs)
    lo, hi = iso["preview"]["range"]
    dga_start, dga_end = iso["preview"]["excluded"]["window"]
    everything = _flows(world.lake, f"{bot} AND start_time >= '{lo}' AND start_time <= '{hi}'")
    with_cnc = _flows(world.lake, f"{bot} AND (src_ip IN ({cnc_in}) OR dst_ip IN ({cnc_in})) "
                                  f"AND start_time >= '{dga_start}' AND start_time < '{dga_end}'")
    assert everything > 100 and iso["preview"]["flows"] == everything - with_cnc  # what the bot's user would lose
    assert iso["preview"]["over"][0].startswith("flows ")
    res = cli(cfg, "preview", drop["id"], "--json")
    assert res.exit_code == 0 and json.loads(res.output)["flows"] == 0

    # 2. a person approves: enforced on nftables and at the BGP peer
    ids = [drop["id"], police["id"], *(a["id"] for a in cnc_drops)]
    res = cli(cfg, "approve", *ids, "--by", "alice", "--why", "victim's NOC called")
    assert res.exit_code == 0, res.output
    assert res.output.count(": applied, expires") == len(ids)
    assert lab.udp(**monlist) == 0 and lab.udp(**ntp) == 20 and lab.udp(**cnc) == 0
    want = {(FlowRule(4, ((1, f"{world.victim}/32"),), ((3, (Term(0x01, 17),)), (6, (Term(0x01, 123),)),
                                                       (10, (Term(0x03, 201),))), 125000.0),
             frozenset({id_tag(SPEAKER_AS, police["id"])}))}
    assert peer.wait_received(want) == want

    # over the maximum of rules at the edge: refused with its reason, nothing changes
    res = cli(cfg, "approve", iso["id"], "--by", "alice")
    assert res.exit_code != 0 and f"point edge already has {MAX_RULES} rules applied (maximum {MAX_RULES})" in res.output
    assert lab.udp(src=world.bot, dst=world.cncs[1]) == 0  # still enforced

    # the edge router reboots and loses its ruleset: reconcile puts exactly the applied rules back
    _sh("ip", "netns", "exec", lab.edge, "nft", "delete", "table", "inet", "necoma")
    assert lab.udp(**monlist) == 20
    res = cli(cfg, "reconcile")
    assert res.exit_code == 0 and "expired 0, re-applied 3, withdrawn 0" in res.output, res.output
    assert lab.udp(**monlist) == 0 and lab.udp(**cnc) == 0 and lab.udp(**ntp) == 20

    # 3. the TTL ends: the kernel times the nftables elements out by itself; `necoma actions expire`
    # withdraws the FlowSpec rule and cleans the table
    applied = [a for a in listed(cfg) if a["state"] == "applied"]
    assert {a["id"] for a in applied} == {*ids, block["id"]}
    last = max(dt.datetime.fromisoformat(a["expires_at"]) for a in applied)
    while dt.datetime.now(dt.timezone.utc) < last + dt.timedelta(seconds=1):
        time.sleep(0.5)
    assert peer.received() == want  # BGP has no timer of its own: still there until necoma expires it
    res = cli(cfg, "expire")
    assert res.exit_code == 0 and f"{len(ids) + 1} actions expired" in res.output
    assert peer.wait_received(set()) == set()
    assert lab.udp(**monlist) == 20 and lab.udp(**cnc) == 20
    assert resolver.answer(resolver.blocked) == "NOERROR"
    assert not any(i in lab.nft_table() for i in ids)
    res = cli(cfg, "reconcile")
    assert res.exit_code == 0 and "expired 0, re-applied 0, withdrawn 0" in res.output

    # 4. the audit log tells the whole story
    store = ActionStore(tmp_path / "data" / "protect.sqlite")
    for i in ids:
        trail = [(r.who, r.from_state, r.to_state) for r in store.audit(i)]
        assert trail[0] == ("necoma", None, "proposed") and trail[1][2] == "proposed"
        assert store.audit(i)[0].why.endswith(f"[TTL capped from 3600s to {TTL}s]")
        moves = [t for t in trail[2:] if t[1] != t[2]]  # transitions (remarks like a reconcile repair have from == to)
        assert moves == [("alice", "proposed", "approved"), ("alice", "approved", "applied"),
                         ("necoma", "applied", "expired")], trail
    for a in (drop, *cnc_drops):
        assert "reconcile: missing at edge, re-applied" in [r.why for r in store.audit(a["id"])]
    assert [(r.who, r.to_state) for r in store.audit(block["id"])] == [
        ("necoma", "proposed"), ("policy:dga-domains-auto", "approved"), ("policy:dga-domains-auto", "applied"),
        ("necoma", "expired")]
    assert store.audit(drop["id"])[3].why == f"applied at edge (enforced), expires in {TTL}s"
    assert store.audit(iso["id"])[-1].why.startswith("refused: point edge already has")
    store.close()
    res = cli(cfg, "show", police["id"])
    assert res.exit_code == 0 and "victim's NOC called" in res.output and "TTL of 20s over" in res.output


def test_unsafe_actions_are_refused_with_their_reason(world, tmp_path):
    """Hand-written proposals (as an operator's tool would file them) that must never apply, whoever approves."""
    from necoma.config import load_settings
    from necoma.protect.model import Action, Match
    from necoma.protect.points import Points
    from necoma.protect.store import ActionStore

    points = {p: {"driver": "dryrun"} for p in ("edge", "isp", "resolvers", "paper")}
    cfg = write_config(tmp_path / "necoma.toml", tmp_path / "data", points, enforce=False)
    settings = load_settings(cfg)
    store = ActionStore(settings.data_dir / "protect.sqlite")
    cases = {
        "resolver": (Action(kind="drop", point="edge", match=Match(dst_prefixes=("10.1.0.53/32",), protocol=17),
                            reason="drop DNS to our resolver", ttl_seconds=10),
                     "10.1.0.53/32 overlaps the allow list / own infrastructure (10.1.0.53/32)"),
        "resolver6": (Action(kind="drop", point="edge", match=Match(src_prefixes=("2001:db8:100::/64",)),
                             reason="drop a whole site LAN", ttl_seconds=10),
                      "2001:db8:100::/64 overlaps the allow list / own infrastructure (2001:db8:100::53/128)"),
        "blackhole16": (Action(kind="blackhole", point="isp", match=Match(dst_prefixes=(f"{world.victim}/16",)),
                               reason="blackhole the victim's /16", ttl_seconds=10),
                        "not even for a person (198.19.0.0/16 is wider than /24)"),
    }
    for a, _ in cases.values():
        store.add(a.with_id(), "operator-tool", "filed by hand")
    for name, (a, why) in cases.items():
        res = cli(cfg, "approve", a.with_id().id, "--by", "alice")
        assert res.exit_code == 2 and "not approved" in res.output, (name, res.output)
        assert why in " ".join(res.output.split()), (name, res.output)
        rec = store.get(a.with_id().id)
        assert rec.action.state == "proposed" and why in rec.note
        assert store.audit(a.with_id().id)[-1].why.startswith("refused: ")
    pts = Points(settings)
    assert all(pts.recorded(p).installed() == set() for p in points)
    store.close()
