"""Operating the real enforcement points through the CLI: `init-point` prepares them, `points` compares
what they hold with the store, `expire` purges expired entries the store does not know, and `speaker`
sees, stops and restarts the BGP speaker necoma runs (restart re-announces what is applied).

Real parts: Unbound on loopback (tests/_unbound.py) started on the zone file `init-point` wrote; nftables
in a network namespace the test creates; a receiving gobgpd on 127.0.0.2 (tests/_bgp_peer.py) and
ExaBGP as necoma's speaker.
"""
from __future__ import annotations

import os
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from necoma.cli.main import app
from necoma.protect.drivers import rpz_zone
from necoma.protect.model import Action, Match
from tests._bgp_peer import PEER_ADDRESS, PEER_AS, SPEAKER_ADDRESS, SPEAKER_AS, GobgpPeer
from tests._unbound import LAB_RECORDS, RPZ_ZONE, start_unbound
from tests.conftest import require_tool
from tests.test_protect_e2e import toml_value

pytestmark = pytest.mark.slow


def write_config(path: Path, points: dict[str, dict], enforce: bool = True) -> Path:
    lines = [f'data_dir = "{path.parent / "data"}"', "[protect]", f"enforce = {str(enforce).lower()}"]
    for name, opts in points.items():
        lines.append(f"[protect.points.{name}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in opts.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def cli(cfg: Path, *args: str):
    return CliRunner().invoke(app, ["-c", str(cfg), "actions", *args], env={"COLUMNS": "250"})


def ok(cfg: Path, *args: str) -> str:
    res = cli(cfg, *args)
    assert res.exit_code == 0, res.output
    return " ".join(res.output.split())


def point_row(output: str, name: str) -> list[str]:
    row = next(line for line in output.splitlines() if line.startswith(f"│ {name} "))
    return [c.strip() for c in row.strip("│").split("│")]


# -- DNS RPZ on a real Unbound ------------------------------------------------------------------


def test_rpz_init_point_lets_unbound_start_and_expire_purges_orphans(tmp_path):
    require_tool("unbound", "unbound-control", "named-checkzone")
    d = tmp_path / "unbound"
    d.mkdir()
    zone = d / "necoma.rpz"  # where tests/_unbound.py's `rpz:` clause loads it from
    cfg = write_config(tmp_path / "necoma.toml", {"resolvers": {
        "driver": "rpz", "path": str(zone), "zone": RPZ_ZONE, "server": "unbound", "unbound_conf": str(d / "unbound.conf")}})

    res = cli(cfg, "points")
    assert res.exit_code == 1 and "zone file missing: run init-point" in " ".join(res.output.split())
    out = ok(cfg, "init-point", "resolvers")
    assert f"resolvers: wrote an empty zone {RPZ_ZONE} to {zone}" in out
    check = subprocess.run(["named-checkzone", RPZ_ZONE, str(zone)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
    assert rpz_zone.parse(zone.read_text())[1] == []
    before = zone.read_bytes()
    assert "exists already (0 blocks), left as it is" in ok(cfg, "init-point", "resolvers")
    assert zone.read_bytes() == before

    ub = start_unbound(d)  # uses the zone necoma wrote (it writes its own only when the file is missing)
    try:
        assert zone.read_bytes() == before
        assert ub.query("evil.lab.test") == ("NOERROR", [LAB_RECORDS["evil"]])
        ok(cfg, "add", "block_domain", "--domain", "evil.lab.test", "--reason", "phishing", "--by", "alice", "--approve")
        assert ub.query("evil.lab.test") == ("NXDOMAIN", [])
        cells = point_row(ok_table(cfg), "resolvers")
        assert cells[1:4] == ["rpz", "block_domain", "enforced"] and cells[5:] == ["1", "1", "in step"]

        # An entry the store does not know (another store's, a lost store's), already expired: reconcile
        # would leave an unknown entry alone forever; expire drops it because it is past its own expiry.
        from necoma.protect.drivers.rpz import RpzDriver

        drv = RpzDriver("resolvers", {"path": str(zone), "zone": RPZ_ZONE, "unbound_conf": str(ub.conf)})
        orphan = Action(kind="block_domain", point="resolvers", match=Match(domains=("cnc.lab.test",)),
                        ttl_seconds=1, reason="from a store that is gone").with_id()
        drv.apply([orphan])
        assert ub.query("cnc.lab.test") == ("NXDOMAIN", [])
        time.sleep(1.2)
        assert ub.query("cnc.lab.test") == ("NXDOMAIN", [])  # still blocked: the resolver knows no TTL
        res = cli(cfg, "points")
        assert res.exit_code == 1 and f"not applied in the store {orphan.id}" in res.output
        out = ok(cfg, "expire")
        assert "0 actions expired" in out and f"resolvers: dropped 1 expired entries: {orphan.id}" in out
        assert ub.query("cnc.lab.test") == ("NOERROR", [LAB_RECORDS["cnc"]])
        assert ub.query("evil.lab.test") == ("NXDOMAIN", [])  # the store's live block stays
        assert point_row(ok_table(cfg), "resolvers")[5:] == ["1", "1", "in step"]
    finally:
        ub.stop()


def ok_table(cfg: Path) -> str:
    res = cli(cfg, "points")
    assert res.exit_code == 0, res.output
    return res.output


# -- nftables in a network namespace --------------------------------------------------------------


@pytest.fixture
def netns():
    if os.geteuid() != 0:
        pytest.skip("nftables in a namespace needs root")
    require_tool("ip", "nft")
    name = f"nop-{uuid.uuid4().hex[:6]}"
    r = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot create network namespaces here: {r.stderr.strip()}")
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def nft(ns: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", ns, "nft", *args], capture_output=True, text=True, timeout=30)


def test_nftables_init_point_and_expire_sweeps_kernel_expired_rules(tmp_path, netns):
    cfg = write_config(tmp_path / "necoma.toml", {"edge": {"driver": "nftables", "netns": netns}})
    assert "no table yet" in " ".join(ok_table(cfg).split())
    assert nft(netns, "list", "table", "inet", "necoma").returncode != 0
    assert f"edge: table inet necoma in netns {netns} created, with empty chains pre and out" in ok(cfg, "init-point", "edge")
    table = nft(netns, "list", "table", "inet", "necoma").stdout
    assert "chain pre" in table and "hook prerouting priority -450" in table and "chain out" in table
    assert "present already" in ok(cfg, "init-point", "edge")
    assert point_row(ok_table(cfg), "edge")[4:] == ["table present", "0", "0", "in step"]

    # a rule the kernel times out (set element timeout) leaves its rule and empty set behind
    from necoma.protect.drivers.nftables import NftablesDriver

    short = Action(kind="drop", point="edge", match=Match(dst_prefixes=("192.0.2.9/32",)), ttl_seconds=1).with_id()
    NftablesDriver("edge", {"netns": netns}).apply([short])
    assert short.id in nft(netns, "list", "table", "inet", "necoma").stdout
    time.sleep(1.5)
    assert short.id in nft(netns, "list", "table", "inet", "necoma").stdout  # remnants
    assert f"edge: dropped 1 expired entries: {short.id}" in ok(cfg, "expire")
    table = nft(netns, "list", "table", "inet", "necoma").stdout
    assert short.id not in table and "chain pre" in table


def test_nothing_is_purged_when_not_enforcing(tmp_path, netns):
    """A necoma that does not enforce leaves the real points alone (it may not even be allowed to run nft)."""
    from necoma.protect.drivers.nftables import NftablesDriver

    cfg = write_config(tmp_path / "necoma.toml", {"edge": {"driver": "nftables", "netns": netns}}, enforce=False)
    short = Action(kind="drop", point="edge", match=Match(dst_prefixes=("192.0.2.9/32",)), ttl_seconds=1).with_id()
    NftablesDriver("edge", {"netns": netns}).apply([short])
    time.sleep(1.2)
    assert "dropped" not in ok(cfg, "expire")
    assert short.id in nft(netns, "list", "table", "inet", "necoma").stdout


# -- the BGP speaker necoma runs ------------------------------------------------------------------


def _listed(cfg: Path) -> list[dict]:
    import json

    res = cli(cfg, "list", "--json")
    return [json.loads(line) for line in res.output.splitlines() if line.startswith("{")]


def test_speaker_status_stop_start_restart_reannounce(tmp_path):
    require_tool("gobgpd", "gobgp")
    pytest.importorskip("exabgp", reason="ExaBGP (PyPI exabgp) not installed")
    from necoma.protect.drivers.flowspec import FlowRule, Term, id_tag

    with tempfile.TemporaryDirectory(prefix="necoma-spk-") as tmp:  # short: ExaBGP's API socket path
        peer = GobgpPeer(Path(tmp) / "peer")
        run_dir = Path(tmp) / "ixp"
        cfg = write_config(tmp_path / "necoma.toml", {"ixp": {
            "driver": "exabgp", "local_as": SPEAKER_AS, "router_id": SPEAKER_ADDRESS, "local_address": SPEAKER_ADDRESS,
            "run_dir": str(run_dir), "peers": [{"address": PEER_ADDRESS, "as": PEER_AS, "port": peer.bgp_port}]}})
        try:
            res = cli(cfg, "speaker", "status", "ixp")
            assert res.exit_code == 1 and "ixp: exabgp speaker not running" in res.output
            res = cli(cfg, "points")
            assert res.exit_code == 1 and "speaker not running: nothing is announced" in " ".join(res.output.split())
            assert not (run_dir / "exabgp.pid").exists()  # looking started nothing

            assert "ixp: speaker started, pid" in ok(cfg, "init-point", "ixp")
            first = int((run_dir / "exabgp.pid").read_text())
            peer.wait_established()
            ok(cfg, "add", "drop", "--dst", "192.0.2.10", "--proto", "udp", "--src-port", "123", "--reason", "NTP",
               "--by", "alice", "--approve")
            (action,) = _listed(cfg)
            want = {(FlowRule(4, ((1, "192.0.2.10/32"),), ((3, (Term(0x01, 17),)), (6, (Term(0x01, 123),))), 0.0),
                     frozenset({id_tag(SPEAKER_AS, action["id"])}))}
            assert peer.wait_received(want) == want

            out = ok(cfg, "speaker", "status", "ixp")
            assert f"ixp: exabgp speaker running, pid {first} (necoma runs it; run_dir {run_dir})" in out
            assert f"session to {PEER_ADDRESS}: established" in out
            assert "announces 1 actions; the store has 1 applied here" in out

            res = CliRunner().invoke(app, ["-c", str(cfg), "actions", "speaker", "stop", "ixp"], input="n\n")
            assert res.exit_code != 0 and "not stopped" in res.output
            assert peer.received() == want
            out = ok(cfg, "speaker", "stop", "ixp", "--yes", "--by", "bob")
            assert f"ixp: speaker pid {first} stopped; 1 applied actions are no longer announced" in out
            assert peer.wait_received(set()) == set()  # the session dropped: the peer withdrew the rule
            res = cli(cfg, "speaker", "status", "ixp")
            assert res.exit_code == 1 and "not running" in res.output
            from necoma.config import load_settings
            from necoma.protect.store import ActionStore
            from necoma.protect.lifecycle import store_path

            store = ActionStore(store_path(load_settings(cfg)))
            last = store.audit(action["id"])[-1]
            assert last.who == "bob" and last.to_state == "applied" and "stopped by bob" in last.why
            store.close()

            out = ok(cfg, "speaker", "start", "ixp")
            assert "ixp: speaker started, pid" in out and "ixp: reconciled: re-applied 1, withdrawn 0" in out
            second = int((run_dir / "exabgp.pid").read_text())
            assert second != first
            peer.wait_established()
            assert peer.wait_received(want) == want

            out = ok(cfg, "speaker", "restart", "ixp", "--by", "bob")
            third = int((run_dir / "exabgp.pid").read_text())
            assert f"ixp: speaker pid {second} stopped" in out and f"ixp: speaker started, pid {third}" in out
            assert "ixp: reconciled: re-applied 1, withdrawn 0" in out and third != second
            peer.wait_established()
            assert peer.wait_received(want) == want
            assert "announces 1 actions; the store has 1 applied here" in ok(cfg, "speaker", "status", "ixp")
        finally:
            cli(cfg, "speaker", "stop", "ixp", "--yes")
            peer.stop()


def test_speaker_commands_refuse_what_necoma_does_not_run(tmp_path):
    cfg = write_config(tmp_path / "necoma.toml", {
        "edge": {"driver": "nftables"},
        "upstream": {"driver": "gobgp", "local_as": SPEAKER_AS, "api_port": 1}})  # the operator's gobgpd
    for args, words in ((["stop", "edge", "--yes"], "point 'edge' is a nftables point, not a BGP speaker"),
                        (["status", "nowhere"], "point 'nowhere' is not configured"),
                        (["stop", "upstream", "--yes"], "uses the operator's gobgpd (manage = false)"),
                        (["restart", "upstream"], "uses the operator's gobgpd (manage = false)")):
        res = cli(cfg, "speaker", *args)
        assert res.exit_code != 0 and words in " ".join(res.output.split()), res.output
