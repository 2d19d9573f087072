"""What an operator does besides approving: file an action by hand (`necoma actions add`), see a recurring
attack proposed again after the earlier action ended, list the points against the store.

On the NTP amplification testbed of test_protect_lifecycle (its lake and incident), through the real CLI
(CliRunner, in-process) on the recorded dry-run point; the enforcing points are in test_protect_points.py.
"""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from necoma.analyze.runner import store_alerts
from necoma.cli.main import app
from necoma.protect.lifecycle import Protector
from tests.test_protect_lifecycle import Clock, make, testbed, victim_of  # noqa: F401 - testbed is a fixture


def write_config(path: Path, lake: Path, **protect) -> Path:
    lines = [f'data_dir = "{path.parent / "data"}"', "[lake]", f'path = "{lake}"', "[protect]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in protect.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def cli(cfg: Path, *args: str):
    return CliRunner().invoke(app, ["-c", str(cfg), "actions", *args], env={"COLUMNS": "200"})


def stored(cfg: Path) -> list[dict]:
    res = cli(cfg, "list", "--json")
    assert res.exit_code == 0, res.output
    return [json.loads(line) for line in res.output.splitlines() if line.startswith("{")]


def attack_flows(lake: Path, victim: str) -> int:
    """Flows toward the victim from UDP port 123 with a mean packet over 200 bytes, counted straight from the lake."""
    con = duckdb.connect()
    try:
        return con.execute(f"SELECT count(*) FROM read_parquet('{lake}/flows/**/*.parquet', hive_partitioning=true) "
                           "WHERE dst_ip = ? AND protocol = 17 AND src_port = 123 "
                           "AND bytes::DOUBLE / greatest(packets, 1) BETWEEN 201 AND 65535", [victim]).fetchone()[0]
    finally:
        con.close()


def test_add_by_hand_same_preview_policy_and_audit(tmp_path, testbed):  # noqa: F811
    lake, inc = testbed
    victim = victim_of(inc)
    cfg = write_config(tmp_path / "necoma.toml", lake, infrastructure=["10.1.0.53", "2001:db8:100::53"])
    ntp = ["--dst", victim, "--proto", "udp", "--src-port", "123", "--length", "201-65535"]

    # Without an incident the preview counts every matching flow: here, the attack itself.
    res = cli(cfg, "add", "drop", *ntp, "--ttl", "2h", "--reason", "NTP reflection toward our customer", "--by", "alice")
    assert res.exit_code == 0, res.output
    (a,) = stored(cfg)
    assert a["note"] == "waits for a person (policy:default-needs-person)"
    assert a["state"] == "proposed" and a["kind"] == "drop" and a["point"] == "dryrun" and a["ttl_seconds"] == 7200
    assert a["match"]["dst_prefixes"] == [f"{victim}/32"] and a["match"]["src_ports"] == [{"lo": 123, "hi": 123}]
    assert a["match"]["packet_length"] == [201, 65535] and a["match"]["protocol"] == 17
    want = attack_flows(lake, victim)
    assert want > 0 and a["preview"]["flows"] == want and a["preview"]["excluded"] is None
    assert a["decided_by"] is None and a["incident_id"] is None
    p = Protector(make(tmp_path, lake))
    first = p.store.audit(a["id"])[0]
    assert (first.who, first.from_state, first.to_state) == ("alice", None, "proposed")
    assert first.why == "filed by hand by alice: NTP reflection toward our customer"

    # The same for the incident (found among the alerts stored in the lake, as `necoma analyze` leaves them):
    # its own attack traffic is left out, as for the playbook's proposal.
    store_alerts(lake, inc.alerts)
    res = cli(cfg, "add", "drop", *ntp, "--incident", inc.id[:10], "--reason", "same, for the incident", "--by", "bob")
    assert res.exit_code == 0, res.output
    b = next(x for x in stored(cfg) if x["incident_id"] == inc.id)
    assert b["preview"]["flows"] == 0 and b["preview"]["excluded"]["addresses"] and b["rating"] == inc.rating

    # Filing what is already there is a no-op that says so.
    res = cli(cfg, "add", "drop", *ntp, "--reason", "again", "--by", "carol")
    assert res.exit_code == 0 and f"{a['id']}: the same action is already proposed; nothing filed" in res.output
    assert len(stored(cfg)) == 2

    # --approve: approved and applied at once under the filer's name, after the safety checks.
    res = cli(cfg, "add", "block_domain", "--domain", "evil.example.net", "--ttl", "30m", "--reason", "phishing kit",
              "--by", "alice", "--approve", "--why", "seen in our users' mail")
    assert res.exit_code == 0, res.output
    c = next(x for x in stored(cfg) if x["kind"] == "block_domain")
    assert c["state"] == "applied" and c["decided_by"] == "alice" and c["dry_run"] is True
    assert [(r.who, r.from_state, r.to_state) for r in p.store.audit(c["id"])] == [
        ("alice", None, "proposed"), ("policy:default-needs-person", "proposed", "proposed"),
        ("alice", "proposed", "approved"), ("alice", "approved", "applied")]
    assert p.store.audit(c["id"])[2].why == "seen in our users' mail"
    assert c["id"] in p.points.driver("dryrun").installed()


def test_add_by_hand_policy_can_auto_apply(tmp_path, testbed):  # noqa: F811
    """A policy decides a hand-filed action as it decides a proposal: a filter for our own prefix, 1 h, applies."""
    lake, inc = testbed
    victim = victim_of(inc)
    cfg = write_config(tmp_path / "necoma.toml", lake, own_prefixes=[f"{victim}/24"])
    store_alerts(lake, inc.alerts)
    res = cli(cfg, "add", "drop", "--dst", victim, "--proto", "udp", "--src-port", "123", "--incident", inc.id,
              "--reason", "our customer", "--by", "alice")
    assert res.exit_code == 0, res.output
    (a,) = stored(cfg)
    assert a["state"] == "applied" and a["decided_by"] == "policy:own-prefix-filter-1h"


@pytest.mark.parametrize("args, words", [
    (["drop", "--dst", "10.1.0.0/24"], "10.1.0.0/24 overlaps the allow list / own infrastructure (10.1.0.53/32)"),
    (["drop", "--dst", "2001:db8:100::/64"], "overlaps the allow list / own infrastructure (2001:db8:100::53/128)"),
    (["drop", "--proto", "udp"], "the rule names no prefix: it would match all traffic"),
    (["blackhole", "--dst", "198.19.0.0/16"], "never wider than max_prefix_v4/v6, not even for a person"),
    (["drop", "--dst", "10.9.0.0/33"], "--dst: '10.9.0.0/33' does not appear to be an IPv4 or IPv6 network"),
    (["drop", "--dst", "192.0.2.1", "--dst-port", "70000"], "--dst-port '70000': give a port"),
    (["drop", "--dst", "192.0.2.1", "--proto", "udpp"], "--proto 'udpp': give a name"),
    (["drop", "--dst", "192.0.2.1", "--length", "900-100"], "--length '900-100': must satisfy"),
    (["drop", "--dst", "192.0.2.1", "--fragment", "sometimes"], "--fragment 'sometimes'"),
    (["drop", "--dst", "192.0.2.1", "--tcp-flags", "S/SA"], "--tcp-flags needs --proto tcp"),
    (["drop", "--dst", "192.0.2.1", "--proto", "tcp", "--tcp-flags", "SYN"], "--tcp-flags 'SYN'"),
    (["drop", "--dst", "192.0.2.1", "--ttl", "0"], "--ttl '0': give a positive duration"),
    (["rate_limit", "--dst", "192.0.2.1"], "a rate_limit needs --rate"),
    (["drop", "--dst", "192.0.2.1", "--domain", "x.example"], "--domain is for block_domain"),
    (["block_domain", "--domain", "x.example", "--dst", "192.0.2.1"], "a block_domain matches names only"),
    (["block_domain", "--domain", "login.example.org"], "domain login.example.org is on the allow list"),
    (["shutdown", "--dst", "192.0.2.1"], "kind 'shutdown': one of drop"),
    (["drop", "--dst", "192.0.2.1", "--point", "nowhere"], "point 'nowhere' (for 'drop') is not configured"),
    (["drop", "--dst", "192.0.2.1", "--by", "policy:auto"], "carries its author's own name"),
])
def test_add_refuses_bad_or_unsafe_input_and_files_nothing(tmp_path, testbed, args, words):  # noqa: F811
    lake, _ = testbed
    cfg = write_config(tmp_path / "necoma.toml", lake, infrastructure=["10.1.0.53", "2001:db8:100::53"],
                       allow_list=["example.org"])
    res = cli(cfg, "add", *args, "--reason", "test")
    assert res.exit_code != 0
    assert "not filed: " in res.output and words in " ".join(res.output.split()), res.output
    assert stored(cfg) == []


def test_add_refuses_a_kind_the_point_does_not_enforce(tmp_path, testbed):  # noqa: F811
    lake, _ = testbed
    cfg = write_config(tmp_path / "necoma.toml", lake)
    with cfg.open("a") as f:
        f.write('[protect.points.edge]\ndriver = "nftables"\n')
    res = cli(cfg, "add", "block_domain", "--domain", "evil.example", "--point", "edge", "--reason", "x")
    assert res.exit_code != 0 and "point edge (nftables) enforces drop, isolate, rate_limit, not block_domain" in res.output
    assert stored(cfg) == []


def test_recurring_attack_is_proposed_again_after_the_action_ended(tmp_path, testbed):  # noqa: F811
    lake, inc = testbed
    clock = Clock()
    p = Protector(make(tmp_path, lake), clock=clock)
    (drop,) = [o.action for o in p.propose([inc]) if o.action.kind == "drop"]
    p.approve([drop.id], "alice")
    again = {o.action.kind: o for o in p.propose([inc])}
    assert again["drop"].decision == "known (applied)" and again["drop"].action.id == drop.id  # dedup while active

    clock.now += dt.timedelta(seconds=drop.ttl_seconds + 1)
    assert [a.id for a in p.expire()] == [drop.id]
    # the attack is back: the same rule is proposed anew, under a new id with its own trail
    (second,) = [o for o in p.propose([inc]) if o.action.kind == "drop"]
    assert second.action.id != drop.id and second.action.state == "proposed"
    assert second.decision.startswith("waits for a person")
    assert second.action.match == drop.match and second.action.incident_id == inc.id
    assert [r.to_state for r in p.store.audit(second.action.id)] == ["proposed", "proposed"]
    assert p.store.get(drop.id).action.state == "expired"  # the old one keeps its history
    # ... and while the new one is pending, proposing again is idempotent
    (third,) = [o for o in p.propose([inc]) if o.action.kind == "drop"]
    assert third.decision == "known (proposed)" and third.action.id == second.action.id

    # withdrawn and failed end an action too; a rejection is a person's "no" and stands
    p.approve([second.action.id], "alice")
    p.withdraw(second.action.id, "alice", "the customer's own scrubbing took over")
    (fourth,) = [o for o in p.propose([inc]) if o.action.kind == "drop"]
    assert fourth.action.id not in (drop.id, second.action.id) and fourth.action.state == "proposed"
    p.reject(fourth.action.id, "bob", "not our call")
    (fifth,) = [o for o in p.propose([inc]) if o.action.kind == "drop"]
    assert fifth.decision == "known (rejected)" and fifth.action.id == fourth.action.id
    assert len({r.action.id for r in p.store.find() if r.action.kind == "drop"}) == 3


def test_points_lists_what_each_holds_against_the_store(tmp_path, testbed):  # noqa: F811
    lake, _ = testbed
    cfg = write_config(tmp_path / "necoma.toml", lake)
    res = cli(cfg, "add", "drop", "--dst", "192.0.2.77", "--reason", "x", "--by", "alice", "--approve")
    assert res.exit_code == 0, res.output
    res = cli(cfg, "points")
    assert res.exit_code == 0, res.output
    row = next(line for line in res.output.splitlines() if line.startswith("│ dryrun"))
    cells = [c.strip() for c in row.strip("│").split("│")]
    assert cells[:4] == ["dryrun", "dryrun", "all", "dry run"] and cells[5:] == ["1", "1", "in step"]
    # the point loses what it held (its record file emptied): points says what is missing, reconcile repairs
    (state,) = (tmp_path / "data" / "protect-dryrun").glob("*.json")
    state.write_text("[]")
    res = cli(cfg, "points")
    assert res.exit_code == 1 and "missing act-" in res.output and "(run reconcile)" in res.output
    assert cli(cfg, "reconcile").exit_code == 0
    assert cli(cfg, "points").exit_code == 0
