"""DNS RPZ driver: zone text and refusals, named-checkzone on what it writes, then a real Unbound.

The Unbound (tests/_unbound.py) listens on 127.0.0.1 on a free port and resolves a local
authoritative zone `lab.test.` offline; every blocking assertion is preceded by the same
name resolving, so a resolver that answers NXDOMAIN for everything cannot pass.
"""
from __future__ import annotations

import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dns.exception
import dns.name
import pytest

from necoma.protect.drivers import load_driver, rpz_zone
from necoma.protect.drivers.rpz import RpzDriver
from necoma.protect.model import Action, DriverError, Match
from tests._unbound import LAB_RECORDS, RPZ_ZONE, control, start_unbound
from tests.conftest import require_tool

ORIGIN = dns.name.from_text(RPZ_ZONE)
NOW = datetime.now(timezone.utc)


def _block(*domains: str, ttl: int = 600, **params) -> Action:
    return Action(kind="block_domain", point="resolvers", match=Match(domains=domains), params=params,
                  ttl_seconds=ttl).with_id()


def _entry(a: Action, garden=()):
    return rpz_zone.entry_for(a, ORIGIN, 60, list(garden), NOW)


def _checkzone(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["named-checkzone", RPZ_ZONE, str(path)], capture_output=True, text=True, timeout=30)


# -- zone text and refusals (no resolver needed) ------------------------------------------


def test_entry_records_for_each_policy():
    a = _block("Evil.Example.")
    assert _entry(a).records == ("evil.example 60 IN CNAME .", "*.evil.example 60 IN CNAME .")
    assert _entry(_block("evil.example", subdomains=False)).records == ("evil.example 60 IN CNAME .",)
    assert _entry(_block("e.example", rpz_action="nodata")).records[0].endswith("CNAME *.")
    assert _entry(_block("e.example", rpz_action="drop")).records[0].endswith("CNAME rpz-drop.")
    assert _entry(_block("e.example", rpz_action="passthru")).records[0].endswith("CNAME rpz-passthru.")
    red = _entry(_block("e.example", rpz_action="redirect", subdomains=False), garden=["192.0.2.1", "2001:db8::1"])
    assert red.records == ("e.example 60 IN A 192.0.2.1", "e.example 60 IN AAAA 2001:db8::1")
    own = _entry(_block("e.example", rpz_action="redirect", redirect_to="198.51.100.9", subdomains=False),
                 garden=["192.0.2.1"])
    assert own.records == ("e.example 60 IN A 198.51.100.9",)


def test_idn_names_block_every_encoding_clients_use():
    assert _entry(_block("bücher.example", subdomains=False)).records == ("xn--bcher-kva.example 60 IN CNAME .",)
    # IDNA 2008 and 2003 disagree on ß: both forms are blocked.
    assert [r.split()[0] for r in _entry(_block("faß.example", subdomains=False)).records] == \
        ["xn--fa-hia.example", "fass.example"]
    assert _entry(_block("i❤.example", subdomains=False)).records[0].startswith("xn--i-7iq.example ")  # IDNA 2003 only


def test_render_parse_round_trip():
    entries = [_entry(_block("a.example")), _entry(_block("b.example", rpz_action="nodata"))]
    text = rpz_zone.render(ORIGIN, 2024010101, entries, "resolvers")
    serial, back = rpz_zone.parse(text)
    assert serial == 2024010101 and back == entries


@pytest.mark.parametrize("domain,why", [
    ("", "is empty"),
    ("192.0.2.1", "is an IP address"),
    ("2001:db8::1", "is an IP address"),
    ("*.evil.example", "without '\\*.'"),
    ("a..example", "not a valid"),
    ("bad name.example", "may hold only"),
    ("-dash.example", "may hold only"),
    ("evil\\.dot.example", "may hold only"),
    ("x" * 64 + ".example", "longer than 63"),
    (".".join(["a" * 60] * 4), "too long"),
    ("32.1.2.0.192.rpz-ip", "trigger keyword"),
    ("ns.evil.rpz-nsdname", "trigger keyword"),
    ("\u0000.example", "may hold only|not a valid"),
])
def test_bad_domains_are_refused_clearly(domain, why):
    with pytest.raises(DriverError, match=why):
        _entry(_block(domain))


@pytest.mark.parametrize("action,why", [
    (Action(kind="drop", point="r", match=Match(domains=("e.example",))).with_id(), "not 'drop'"),
    (Action(kind="block_domain", point="r", match=Match(domains=("e.example",), protocol=17)).with_id(),
     "domain names only"),
    (Action(kind="block_domain", point="r").with_id(), "names no domain"),
    (_block("e.example", rpz_action="sinkhole"), "not one of"),
    (_block("e.example", rpz_action="redirect"), "redirect_to or option walled_garden"),
    (_block("e.example", rpz_action="redirect", redirect_to="not-an-ip"), "not an IP address"),
    (_block("e.example", subdomains="yes"), "true or false"),
    (_block("e.example").model_copy(update={"id": "x\nevil CNAME ."}), "unsafe"),
    (_block("e.example").model_copy(update={"expires_at": NOW - timedelta(seconds=1)}), "expired"),
])
def test_bad_actions_are_refused_clearly(action, why):
    with pytest.raises(DriverError, match=why):
        _entry(action)


def test_two_policies_on_one_name_conflict():
    with pytest.raises(DriverError, match="conflicts with"):
        rpz_zone.conflicts([_entry(_block("e.example")), _entry(_block("e.example", rpz_action="nodata"))])
    rpz_zone.conflicts([_entry(_block("e.example")), _entry(_block("e.example", "f.example"))])  # same policy: fine


def test_driver_options_are_checked(tmp_path):
    assert isinstance(load_driver("rpz", "resolvers", {"path": str(tmp_path / "z")}), RpzDriver)
    for opts, why in [({}, "'path'"), ({"path": "z", "sever": "bind"}, "unknown options"),
                      ({"path": "z", "server": "knot"}, "server must be"),
                      ({"path": "z", "zone": "bad zone"}, "host-style"), ({"path": "z", "zone": "."}, "host-style"),
                      ({"path": "z", "walled_garden": ["nowhere"]}, "not an IP"),
                      ({"path": "z", "record_ttl": -1}, "record_ttl")]:
        with pytest.raises(ValueError, match=why):
            RpzDriver("resolvers", opts)


# -- what the driver writes, checked by named-checkzone -------------------------------------


def _offline(tmp_path: Path, **opts) -> RpzDriver:
    return RpzDriver("resolvers", {"path": str(tmp_path / "necoma.rpz"), "server": "none",
                                   "walled_garden": ["192.0.2.250", "2001:db8::250"], **opts})


def test_written_zone_passes_named_checkzone_and_reads_back(tmp_path):
    require_tool("named-checkzone")
    d = _offline(tmp_path)
    actions = [_block("evil.example", "bücher.example"), _block("faß.example", rpz_action="nodata"),
               _block("drop.example", rpz_action="drop", subdomains=False), _block("ok.evil.example", rpz_action="passthru"),
               _block("garden.example", rpz_action="redirect"), _block("_dmarc.evil2.example")]
    d.apply(actions)
    zone = tmp_path / "necoma.rpz"
    r = _checkzone(zone)
    assert r.returncode == 0, r.stdout + r.stderr
    serial = rpz_zone.parse(zone.read_text())[0]
    assert f"loaded serial {serial}" in r.stdout
    assert d.installed() == {a.id for a in actions}
    text = zone.read_text()
    for line in ("evil.example 60 IN CNAME .", "*.xn--bcher-kva.example 60 IN CNAME .",
                 "xn--fa-hia.example 60 IN CNAME *.", "fass.example 60 IN CNAME *.",
                 "drop.example 60 IN CNAME rpz-drop.", "*.garden.example 60 IN AAAA 2001:db8::250"):
        assert line in text.splitlines(), line
    assert "*.drop.example" not in text

    before = zone.read_bytes()
    d.apply(actions[:2])  # idempotent: nothing rewritten, serial kept
    assert zone.read_bytes() == before

    d.withdraw([actions[0], _block("never.applied.example")])
    assert d.installed() == {a.id for a in actions[1:]}
    lines = zone.read_text().splitlines()
    assert "evil.example 60 IN CNAME ." not in lines and "fass.example 60 IN CNAME *." in lines
    serial2 = rpz_zone.parse(zone.read_text())[0]
    assert serial2 > serial and f"loaded serial {serial2}" in _checkzone(zone).stdout
    d.withdraw(actions)
    assert d.installed() == set() and _checkzone(zone).returncode == 0
    d.withdraw(actions)  # withdrawing what is absent is fine


def test_init_zone_writes_a_valid_empty_zone_once(tmp_path):
    require_tool("named-checkzone")
    d = _offline(tmp_path)
    d.init_zone()
    zone = tmp_path / "necoma.rpz"
    assert _checkzone(zone).returncode == 0 and d.installed() == set()
    d.apply([_block("evil.example")])
    before = zone.read_bytes()
    d.init_zone()  # an existing zone is kept
    assert zone.read_bytes() == before


def test_a_bad_action_leaves_the_zone_untouched(tmp_path):
    require_tool("named-checkzone")
    d = _offline(tmp_path)
    good = _block("evil.example")
    d.apply([good])
    before = (tmp_path / "necoma.rpz").read_bytes()
    with pytest.raises(DriverError, match="label"):
        d.apply([_block("fine.example"), _block("bad label.example")])
    with pytest.raises(DriverError, match="conflicts"):
        d.apply([_block("evil.example", rpz_action="nodata")])
    assert (tmp_path / "necoma.rpz").read_bytes() == before and d.installed() == {good.id}


def test_a_rejected_zone_never_replaces_the_live_one(tmp_path):
    d = _offline(tmp_path, checkzone="false")  # a checker that refuses everything
    (tmp_path / "necoma.rpz").write_text(rpz_zone.render(ORIGIN, 7, [], "resolvers"))
    with pytest.raises(DriverError, match="rejected by named-checkzone, live zone left untouched"):
        d.apply([_block("evil.example")])
    assert d.installed() == set() and rpz_zone.parse((tmp_path / "necoma.rpz").read_text())[0] == 7
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left


def test_unreadable_zone_is_a_clear_error(tmp_path):
    (tmp_path / "necoma.rpz").write_text("; necoma id=act-1 expires=yesterday policy=nxdomain\n")
    with pytest.raises(DriverError, match="cannot read zone"):
        _offline(tmp_path).installed()
    with pytest.raises(DriverError, match="does not exist"):
        RpzDriver("resolvers", {"path": str(tmp_path / "no" / "dir.rpz"), "server": "none"}).apply([_block("e.example")])


def test_bind_reload_command_and_rollback(tmp_path):
    """The BIND path up to rndc: a stand-in rndc records its arguments and fails on demand."""
    require_tool("named-checkzone")
    log, fail = tmp_path / "rndc.args", tmp_path / "fail"
    rndc = tmp_path / "rndc"
    rndc.write_text(f"#!/bin/sh\necho \"$@\" >> {log}\nif [ -e {fail} ]; then echo 'rndc: reload failed: not found'; "
                    "exit 1; fi\necho 'zone reload queued'\n")
    rndc.chmod(0o755)
    d = RpzDriver("resolvers", {"path": str(tmp_path / "necoma.rpz"), "server": "bind", "rndc": str(rndc),
                                "rndc_conf": "/etc/bind/rndc.conf", "rndc_server": "127.0.0.1", "rndc_port": 953})
    a = _block("evil.example")
    d.apply([a])
    assert log.read_text().split() == ["-c", "/etc/bind/rndc.conf", "-s", "127.0.0.1", "-p", "953", "reload", RPZ_ZONE]
    before = (tmp_path / "necoma.rpz").read_bytes()
    fail.touch()
    with pytest.raises(DriverError, match="bind did not reload zone rpz.necoma, previous zone restored"):
        d.apply([_block("other.example")])
    assert (tmp_path / "necoma.rpz").read_bytes() == before and d.installed() == {a.id}


# -- a real Unbound ---------------------------------------------------------------------------


@pytest.fixture
def unbound(tmp_path):
    require_tool("unbound", "unbound-control", "named-checkzone")
    ub = start_unbound(tmp_path / "unbound")
    try:
        yield ub
    finally:
        ub.stop()


def _driver(ub, **opts) -> RpzDriver:
    return RpzDriver("resolvers", {"path": str(ub.rpz_path), "zone": RPZ_ZONE, "server": "unbound",
                                   "unbound_conf": str(ub.conf), **opts})


def _resolves(ub, name: str) -> bool:
    rcode, addrs = ub.query(f"{name}.lab.test")
    return rcode == "NOERROR" and addrs == [LAB_RECORDS[name]]


def test_unbound_blocks_then_withdrawal_restores(unbound):
    ub = unbound
    assert all(_resolves(ub, n) for n in ("good", "evil", "www.evil"))  # the lab resolves before any block
    d = _driver(ub)
    block = _block("evil.lab.test")
    d.apply([block])
    assert d.installed() == {block.id}
    assert ub.query("evil.lab.test") == ("NXDOMAIN", [])
    assert ub.query("www.evil.lab.test") == ("NXDOMAIN", [])  # subdomains by the wildcard
    assert ub.query("any.thing.evil.lab.test") == ("NXDOMAIN", [])
    assert _resolves(ub, "good")  # an unblocked name still resolves
    serial = rpz_zone.parse(ub.rpz_path.read_text())[0]
    d.apply([block])  # idempotent: no rewrite, no reload
    assert rpz_zone.parse(ub.rpz_path.read_text())[0] == serial

    d.withdraw([block])
    assert d.installed() == set()
    assert _resolves(ub, "evil") and _resolves(ub, "www.evil") and _resolves(ub, "good")


def test_unbound_policies_subdomains_and_idn(unbound):
    ub = unbound
    assert all(_resolves(ub, n) for n in ("cnc", "deep.sub.cnc", "xn--bcher-kva", "xn--fa-hia", "fass", "evil"))
    d = _driver(ub, walled_garden="192.0.2.250")
    exact = _block("cnc.lab.test", subdomains=False)
    idn = _block("bücher.lab.test", "faß.lab.test", rpz_action="nodata")
    garden = _block("evil.lab.test", rpz_action="redirect")
    d.apply([exact, idn, garden])
    assert ub.query("cnc.lab.test") == ("NXDOMAIN", [])
    assert _resolves(ub, "deep.sub.cnc")  # subdomains = false: only the name itself
    for name in ("xn--bcher-kva.lab.test", "xn--fa-hia.lab.test", "fass.lab.test"):
        assert ub.query(name) == ("NOERROR", [])  # NODATA: the name exists, no address
    assert ub.query("evil.lab.test") == ("NOERROR", ["192.0.2.250"])  # to the walled garden
    assert ub.query("www.evil.lab.test") == ("NOERROR", ["192.0.2.250"])
    d.withdraw([idn])  # the others stay
    assert d.installed() == {exact.id, garden.id}
    assert _resolves(ub, "xn--bcher-kva") and _resolves(ub, "fass")
    assert ub.query("cnc.lab.test") == ("NXDOMAIN", [])


def test_unbound_passthru_exception_and_drop(unbound):
    ub = unbound
    assert _resolves(ub, "www.evil") and _resolves(ub, "cnc")
    d = _driver(ub)
    # An exception inside a wildcard block: the exact name beats the wildcard.
    d.apply([_block("evil.lab.test"), _block("www.evil.lab.test", rpz_action="passthru", subdomains=False),
             _block("cnc.lab.test", rpz_action="drop")])
    assert ub.query("evil.lab.test")[0] == "NXDOMAIN" and ub.query("other.evil.lab.test")[0] == "NXDOMAIN"
    assert _resolves(ub, "www.evil")
    with pytest.raises(dns.exception.Timeout):  # rpz-drop: no answer at all
        ub.query("cnc.lab.test", timeout=0.5)
    assert _resolves(ub, "good")


def test_unbound_expired_blocks_are_purged(unbound):
    ub = unbound
    d = _driver(ub)
    short, long_ = _block("evil.lab.test", ttl=1), _block("cnc.lab.test", ttl=600)
    d.apply([short, long_])
    assert ub.query("evil.lab.test")[0] == "NXDOMAIN"
    time.sleep(1.2)
    assert d.purge_expired() == {short.id}
    assert _resolves(ub, "evil") and ub.query("cnc.lab.test")[0] == "NXDOMAIN"
    assert d.installed() == {long_.id}


def test_unbound_failed_reload_restores_the_previous_zone(unbound):
    ub = unbound
    d = _driver(ub)
    kept = _block("evil.lab.test")
    d.apply([kept])
    before = ub.rpz_path.read_bytes()
    # The same file under a zone name Unbound does not serve: the reload fails, the file comes back.
    wrong = RpzDriver("resolvers", {"path": str(ub.rpz_path), "zone": "other.rpz", "server": "unbound",
                                    "unbound_conf": str(ub.conf)})
    with pytest.raises(DriverError, match="unbound did not reload zone other.rpz, previous zone restored"):
        wrong.apply([_block("cnc.lab.test")])
    assert ub.rpz_path.read_bytes() == before
    assert control(ub, "auth_zone_reload", RPZ_ZONE).returncode == 0  # the restored file is still loadable
    assert ub.query("evil.lab.test")[0] == "NXDOMAIN" and _resolves(ub, "cnc")


def test_unbound_control_unreachable_is_a_clear_error(tmp_path):
    require_tool("unbound-control", "named-checkzone")
    conf = tmp_path / "u.conf"
    conf.write_text(f'remote-control:\n  control-enable: yes\n  control-interface: "{tmp_path / "none.sock"}"\n')
    d = RpzDriver("resolvers", {"path": str(tmp_path / "necoma.rpz"), "unbound_conf": str(conf), "timeout": 10})
    with pytest.raises(DriverError, match="unbound did not reload"):
        d.apply([_block("evil.example")])
    assert not (tmp_path / "necoma.rpz").exists() and d.installed() == set()
