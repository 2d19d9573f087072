"""Decide and protect on the testbed: an NTP amplification incident becomes proposals with a preview,
approval applies them on the (persistent) dry-run point, expiry removes them, every transition is audited;
unsafe actions are refused; a point failing half-way rolls the batch back; reconcile repairs after a restart."""
from __future__ import annotations

import datetime as dt
import ipaddress
import sqlite3

import pytest

from necoma.config import LakeSettings, ProtectSettings, Settings
from necoma.protect.drivers import DRIVERS
from necoma.protect.model import DriverError
from necoma.protect.lifecycle import Protector, Refused
from necoma.protect.model import Action, Match
from necoma.protect.points import Points
from necoma.protect.preview import preview
from necoma.protect.store import ActionStore, TransitionError


@pytest.fixture(scope="module")
def testbed(tmp_path_factory):
    """A small ntp_amplification scenario imported into a lake, the detector run, its incident correlated."""
    from necoma.analyze.registry import instantiate
    from necoma.analyze.runner import run_all
    from necoma.knowledge.correlate import correlate
    from necoma.lake.engines import open_engine
    from necoma.testbed.importer import import_scenario
    from necoma.testbed.scenario import generate

    root = tmp_path_factory.mktemp("protect-tb")
    gen = generate("ntp_amplification", 3, root / "scenario", scale=0.1, history_hours=2)
    base = Settings(data_dir=root / "data")
    import_scenario(root / "scenario", base)
    start = dt.datetime.fromisoformat(gen.truth["start"].replace("Z", "+00:00"))
    end = dt.datetime.fromisoformat(gen.truth["end"].replace("Z", "+00:00"))
    with open_engine("duckdb", base.lake_path) as eng:
        runs = run_all(instantiate(["ntp_amplifier"]), eng, start, end)
    (incident,) = correlate([a for r in runs for a in r.alerts])
    return base.lake_path, incident


def make(tmp_path, lake, **protect) -> Settings:
    return Settings(data_dir=tmp_path / "data", lake=LakeSettings(path=lake), protect=ProtectSettings(**protect))


def victim_of(incident) -> str:
    (v,) = incident.subjects_with("victim")
    return v


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.timezone.utc)

    def __call__(self) -> dt.datetime:
        return self.now


def test_ntp_incident_proposals_preview_approve_expire_audit(tmp_path, testbed):
    lake, inc = testbed
    clock = Clock()
    p = Protector(make(tmp_path, lake), clock=clock)
    outcomes = p.propose([inc])
    victim = victim_of(inc)
    drops = [o for o in outcomes if o.action.kind == "drop"]
    reports = [o for o in outcomes if o.action.kind == "report_abuse"]
    assert len(drops) == 1
    drop = drops[0].action
    assert drop.match.dst_prefixes == (f"{victim}/32",) and drop.match.protocol == 17
    assert [str(r) for r in drop.match.src_ports] == ["123"] and drop.match.packet_length == (201, 65535)
    assert drop.point == "dryrun" and drop.state == "proposed" and drop.playbook == "ntp_amplification"
    # one abuse report per amplifier network (/24 here: the testbed has no AS data), all amplifiers covered
    amps = set(inc.subjects_with("amplifier"))
    assert {ipaddress.ip_network(s).network_address.exploded for o in reports for s in o.action.match.src_prefixes} == amps
    assert len(reports) == len({ipaddress.ip_network(a + "/24", strict=False) for a in amps})
    # the preview ran on the lake: the rule matches only the attack, which is left out as not legitimate
    view = drops[0].preview
    assert view["applies"] and view["flows"] == 0 and view["over"] == []
    attack = preview(drop, lake, p.cfg, excluded=None, now=clock())
    assert attack["flows"] > 0 and attack["bytes"] > 0 and attack["hosts"] == 1
    # nothing applies without a person by default
    assert all(o.action.state == "proposed" and "waits for a person" in o.decision for o in outcomes)
    assert p.points.driver("dryrun").installed() == set()
    # proposing again is idempotent
    again = p.propose([inc])
    assert {o.action.id for o in again} == {o.action.id for o in outcomes} and all(o.decision.startswith("known") for o in again)

    (applied,) = p.approve([drop.id], "alice", "victim asked for it")
    assert applied.state == "applied" and applied.decided_by == "alice"
    assert applied.expires_at == clock.now + dt.timedelta(seconds=drop.ttl_seconds)
    assert drop.id in p.points.driver("dryrun").installed()
    with pytest.raises(TransitionError):
        p.approve([drop.id], "alice")  # already applied: idempotent, refused as a transition

    clock.now += dt.timedelta(seconds=drop.ttl_seconds - 1)
    assert p.expire() == []
    clock.now += dt.timedelta(seconds=2)
    (expired,) = p.expire()
    assert expired.id == drop.id and expired.state == "expired"
    assert drop.id not in p.points.driver("dryrun").installed()

    trail = [(r.who, r.from_state, r.to_state) for r in p.store.audit(drop.id)]
    assert trail == [("necoma", None, "proposed"), ("policy:default-needs-person", "proposed", "proposed"),
                     ("alice", "proposed", "approved"), ("alice", "approved", "applied"), ("necoma", "applied", "expired")]
    assert "victim asked for it" in p.store.audit(drop.id)[2].why


def test_policy_auto_applies_own_prefix_filter_and_preview_threshold_refuses(tmp_path, testbed):
    lake, inc = testbed
    victim = victim_of(inc)
    p = Protector(make(tmp_path, lake, own_prefixes=[f"{victim}/24"]))
    (drop,) = [o for o in p.propose([inc]) if o.action.kind == "drop"]
    assert drop.action.state == "applied" and drop.action.decided_by == "policy:own-prefix-filter-1h"
    assert drop.action.id in p.points.driver("dryrun").installed()

    # A playbook that drops all UDP from the amplifiers (our own NTP servers): they serve real clients outside
    # the attack, so the preview counts legitimate-looking flows and auto-apply is refused with the reason.
    amps = inc.subjects_with("amplifier")
    wide = {"description": "too blunt", "detectors": ["ntp_amplifier"],
            "steps": [{"kind": "drop", "per": "amplifier", "src": "each", "protocol": 17, "reason": "drop {subjects}"}]}
    s = make(tmp_path / "b", lake, own_prefixes=["0.0.0.0/0"], preview_max_flows=0, playbooks={"blunt": wide},
             policies=[{"name": "auto-everything", "decision": "auto"}])
    q = Protector(s)
    blunt = [o for o in q.propose([inc]) if o.action.playbook == "blunt"]
    assert len(blunt) == len(amps)
    refused = [o for o in blunt if o.preview["flows"] > 0]
    assert refused, "the amplifiers' ordinary NTP service should show in the preview"
    for o in refused:
        assert o.action.state == "proposed" and o.decision.startswith("auto-apply refused: preview over threshold: flows")
        assert q.store.get(o.action.id).note == o.decision
        assert q.store.audit(o.action.id)[-1].why == o.decision


def _stored(p: Protector, **kw) -> Action:
    a = Action(point="dryrun", reason="test", **kw).with_id()
    p.store.add(a, "test", "hand-made proposal")
    return a


def test_unsafe_actions_are_refused_with_reasons(tmp_path, testbed):
    lake, inc = testbed
    p = Protector(make(tmp_path, lake, allow_list=["198.51.100.0/24", "2001:db8:100::/48", "example.org"],
                       infrastructure=["10.1.0.53"], max_rules_per_point=2))
    # allow-listed: overlap, not only equality, IPv4 and IPv6, and domains
    for kw, words in (
        ({"kind": "drop", "match": Match(src_prefixes=("198.51.100.7/32",))}, "overlaps the allow list"),
        ({"kind": "drop", "match": Match(dst_prefixes=("198.51.0.0/16",))}, "overlaps the allow list"),
        ({"kind": "drop", "match": Match(dst_prefixes=("2001:db8::/32",))}, "overlaps the allow list"),
        ({"kind": "rate_limit", "match": Match(dst_prefixes=("2001:db8:100:5::1/128",))}, "overlaps the allow list"),
        ({"kind": "isolate", "match": Match(src_prefixes=("10.1.0.53/32",))}, "overlaps the allow list"),
        ({"kind": "block_domain", "match": Match(domains=("login.example.org",))}, "on the allow list"),
        ({"kind": "drop", "match": Match(protocol=17)}, "would match all traffic"),
    ):
        a = _stored(p, **kw)
        with pytest.raises(Refused, match=words):
            p.approve([a.id], "alice")
        assert p.store.get(a.id).action.state == "proposed"
        assert p.store.audit(a.id)[-1].why.startswith("refused: ")
    # too wide: a person may, a policy may not
    wide = _stored(p, kind="drop", match=Match(dst_prefixes=("203.0.113.0/23",)))
    with pytest.raises(Refused, match=r"needs a person: 203.0.112.0/23 is wider than /24"):
        p._approve_and_apply([wide.id], "policy:auto", "test")
    wide6 = _stored(p, kind="drop", match=Match(dst_prefixes=("2001:db8:beef::/40",)))
    with pytest.raises(Refused, match="wider than /48"):
        p._approve_and_apply([wide6.id], "policy:auto", "test")
    assert p.approve([wide.id], "alice")[0].state == "applied"
    # blackhole and isolation never without a person; nobody approves as a policy by hand
    bh = _stored(p, kind="blackhole", match=Match(dst_prefixes=("203.0.113.9/32",)))
    with pytest.raises(Refused, match="needs a person: any blackhole"):
        p._approve_and_apply([bh.id], "policy:auto", "test")
    with pytest.raises(Refused, match="under their own name"):
        p.approve([bh.id], "policy:sneaky")
    # too many rules at one point (maximum 2, one applied): a batch of two is refused as a whole
    more = [_stored(p, kind="drop", match=Match(dst_prefixes=(f"203.0.113.{i}/32",))) for i in (20, 21)]
    with pytest.raises(Refused, match="already has 2 rules applied"):
        p.approve([a.id for a in more], "alice")
    assert {p.store.get(a.id).action.state for a in more} == {"proposed"}
    assert p.store.count_applied("dryrun") == 1


class HalfwayDriver:
    """A point that installs the first action of a call, then fails without undoing it (a buggy driver)."""

    installed_ids: set[str] = set()

    def __init__(self, point, options):
        self.name, self.kinds = point, frozenset({"drop"})

    def apply(self, actions):
        HalfwayDriver.installed_ids.add(actions[0].id)
        if len(actions) > 1:
            raise DriverError(f"{self.name}: router refused rule {actions[1].id}")

    def withdraw(self, actions):
        HalfwayDriver.installed_ids -= {a.id for a in actions}

    def installed(self):
        return set(HalfwayDriver.installed_ids)


def test_driver_failing_half_way_rolls_the_batch_back(tmp_path, testbed, monkeypatch):
    lake, _ = testbed
    monkeypatch.setitem(DRIVERS, "halfway", f"{__name__}:HalfwayDriver")
    s = make(tmp_path, lake, enforce=True, points={"first": {"driver": "dryrun"}, "edge": {"driver": "halfway"}})
    p = Protector(s)
    a, b, c = (Action(kind="drop", point=pt, match=Match(dst_prefixes=(f"203.0.113.{i}/32",)), reason="t").with_id()
               for i, pt in ((1, "first"), (2, "edge"), (3, "edge")))
    for x in (a, b, c):
        p.store.add(x, "test", "hand-made proposal")
    done = p.approve([a.id, b.id, c.id], "alice")
    assert {x.state for x in done} == {"failed"}
    assert p.points.driver("first").installed() == set() and HalfwayDriver.installed_ids == set()
    why = p.store.audit(b.id)[-1].why
    assert "router refused rule" in why and "rolled back the batch at first, edge" in why


def test_reconcile_after_restart(tmp_path, testbed):
    lake, inc = testbed
    s = make(tmp_path, lake)
    clock = Clock()
    p = Protector(s, clock=clock)
    out = p.propose([inc])
    drop = next(o.action for o in out if o.action.kind == "drop")
    r1, r2 = [o.action for o in out if o.action.kind == "report_abuse"][:2]
    p.approve([drop.id, r1.id, r2.id], "alice")
    p.withdraw(r2.id, "alice", "sent by hand")
    p.close()

    # "restart": the point lost r1, still holds r2 that was withdrawn meanwhile, and the drop is overdue
    point = Points(s).driver("dryrun")
    point.withdraw([r1])
    point.apply([r2])
    clock.now += dt.timedelta(hours=2)  # past the drop's 1 h TTL, within the reports' 24 h
    again = Protector(s, store=ActionStore(s.data_dir / "protect.sqlite"), clock=clock)
    rep = again.reconcile()
    assert rep.expired == [drop.id] and rep.reapplied == [r1.id] and rep.removed == [r2.id] and not rep.errors
    assert Points(s).driver("dryrun").installed() == {r1.id}
    assert again.reconcile().reapplied == []  # a second pass has nothing to do
    assert "reconcile: missing at dryrun, re-applied" in [r.why for r in again.store.audit(r1.id)]


def test_audit_log_only_grows_and_transitions_are_enforced(tmp_path, testbed):
    lake, inc = testbed
    p = Protector(make(tmp_path, lake))
    sizes = [len(p.store.audit())]
    out = p.propose([inc])
    sizes.append(len(p.store.audit()))
    a, b = out[0].action, out[1].action
    p.reject(a.id, "bob", "not our fight")
    sizes.append(len(p.store.audit()))
    with pytest.raises(TransitionError, match="rejected; it cannot become approved"):
        p.store.transition(a.id, "approved", "bob", "changed my mind")
    with pytest.raises(TransitionError, match="reject it instead"):
        p.withdraw(b.id, "bob", "x")
    before = p.store.audit()
    for sql in ("UPDATE audit SET who = 'mallory'", "DELETE FROM audit", f"UPDATE audit SET why = '' WHERE action_id = '{a.id}'"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            p.store.db.execute(sql)
    raw = sqlite3.connect(p.store.path)  # another connection, outside necoma's code: still refused
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        raw.execute("DELETE FROM audit WHERE seq = 1")
    raw.close()
    assert p.store.audit() == before
    assert sizes == sorted(sizes) and sizes[0] < sizes[1] < sizes[2]
    assert not [m for m in dir(ActionStore) if m.startswith(("delete", "remove", "update_audit", "purge"))]


def test_blackhole_wider_than_the_limit_is_refused_even_for_a_person(tmp_path, testbed):
    lake, _ = testbed
    p = Protector(make(tmp_path, lake))
    wide = _stored(p, kind="blackhole", match=Match(dst_prefixes=("198.19.0.0/16",)))
    with pytest.raises(Refused, match=r"not even for a person \(198.19.0.0/16 is wider than /24\)"):
        p.approve([wide.id], "alice")
    assert p.store.get(wide.id).action.state == "proposed"
    v6 = _stored(p, kind="blackhole", match=Match(dst_prefixes=("2001:db8:1::/47",)))
    with pytest.raises(Refused, match="wider than /48"):
        p.approve([v6.id], "alice")
    host = _stored(p, kind="blackhole", match=Match(dst_prefixes=("198.19.141.126/32",)))
    assert p.approve([host.id], "alice")[0].state == "applied"  # a host route is what RTBH is for


class MemoryDriver:
    """A stand-in for a real point, to tell real installs from dry-run ones."""

    held: dict[str, Action] = {}

    def __init__(self, point, options):
        self.name, self.kinds = point, frozenset({"drop"})

    def apply(self, actions):
        MemoryDriver.held.update({a.id: a for a in actions})

    def withdraw(self, actions):
        for a in actions:
            MemoryDriver.held.pop(a.id, None)

    def installed(self):
        return set(MemoryDriver.held)


def test_switching_enforcement_on_never_installs_dry_run_approvals(tmp_path, testbed, monkeypatch):
    lake, _ = testbed
    monkeypatch.setitem(DRIVERS, "memory", f"{__name__}:MemoryDriver")
    MemoryDriver.held = {}
    clock = Clock()
    points = {"edge": {"driver": "memory"}}
    dry = Protector(make(tmp_path, lake, points=points), clock=clock)
    a = Action(kind="drop", point="edge", match=Match(dst_prefixes=("203.0.113.1/32",)), reason="t").with_id()
    dry.store.add(a, "test", "hand-made proposal")
    (done,) = dry.approve([a.id], "alice")
    assert done.dry_run and "(dry run)" in dry.store.audit(a.id)[-1].why
    assert MemoryDriver.held == {} and dry.points.recorded("edge").installed() == {a.id}

    live = Protector(make(tmp_path, lake, points=points, enforce=True), store=dry.store, clock=clock)
    rep = live.reconcile()
    assert rep.reapplied == [] and rep.removed == [] and MemoryDriver.held == {}
    b = Action(kind="drop", point="edge", match=Match(dst_prefixes=("203.0.113.2/32",)), reason="t").with_id()
    live.store.add(b, "test", "hand-made proposal")
    (real,) = live.approve([b.id], "alice")
    assert not real.dry_run and set(MemoryDriver.held) == {b.id}
    live.withdraw(a.id, "alice", "done")  # goes to the dry-run record that holds it
    assert live.points.recorded("edge").installed() == set() and set(MemoryDriver.held) == {b.id}

    # enforcement off again: the real rule is still removed for real when its TTL is over
    back = Protector(make(tmp_path, lake, points=points), store=dry.store, clock=clock)
    clock.now += dt.timedelta(seconds=real.ttl_seconds + 1)
    assert back.reconcile().expired == [b.id] and back.store.get(b.id).action.state == "expired"
    assert MemoryDriver.held == {}


def test_reconcile_fails_an_apply_interrupted_half_way(tmp_path, testbed, monkeypatch):
    lake, _ = testbed
    monkeypatch.setitem(DRIVERS, "memory", f"{__name__}:MemoryDriver")
    MemoryDriver.held = {}
    clock = Clock()
    p = Protector(make(tmp_path, lake, points={"edge": {"driver": "memory"}}, enforce=True), clock=clock)
    a = Action(kind="drop", point="edge", match=Match(dst_prefixes=("203.0.113.3/32",)), reason="t").with_id()
    p.store.add(a, "test", "hand-made proposal")
    # necoma died after approving and after the point took the rule, before recording "applied"
    p.store.transition(a.id, "approved", "alice", "approved")
    p.points.driver("edge").apply([a])
    assert p.reconcile().interrupted == []  # too recent: another process may be applying it now
    assert a.id in MemoryDriver.held
    clock.now += dt.timedelta(minutes=10)
    rep = p.reconcile()
    assert rep.interrupted == [a.id] and not rep.errors
    assert MemoryDriver.held == {} and p.store.get(a.id).action.state == "failed"
    assert "never applied" in p.store.audit(a.id)[-1].why
