"""`necoma testbed import`: a scenario lands in every lake table, cross-checked with truth.json, only once."""
from __future__ import annotations

import json

from typer.testing import CliRunner

from necoma.cli.main import app
from necoma.config import Settings
from necoma.lake import connect
from necoma.testbed.importer import import_scenario
from tests._testbed import imported, scenario


def _truth() -> dict:
    return json.loads((scenario() / "truth.json").read_text())


def _attack(kind: str) -> dict:
    return next(a for a in _truth()["attacks"] if a["kind"] == kind)


def test_every_table_gets_rows():
    con = connect(imported().lake_path)
    counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
              for t in ("flows", "packets", "dns", "urls", "iplists", "syslog", "interfaces")}
    assert all(n > 0 for n in counts.values()), counts
    sources = {r[0] for r in con.execute("SELECT DISTINCT source FROM flows").fetchall()}
    assert {"netflow9", "ipfix", "sflow", "pcap"} <= sources
    assert {r[0] for r in con.execute("SELECT DISTINCT source FROM dns").fetchall()} == {"pcap", "bind"}


def test_cross_layer_truth_in_the_lake():
    con = connect(imported().lake_path)
    zeus = _attack("zeus_dga")
    bots = {r[0] for r in con.execute("SELECT DISTINCT client_ip FROM dns WHERE qname IN (SELECT unnest(?))",
                                      [zeus["domains"]]).fetchall()}
    assert bots == set(zeus["bots"])
    ntp = _attack("ntp_amplification")
    rows = con.execute("SELECT DISTINCT src_ip, dst_ip FROM packets WHERE ntp_request_code = 42 AND ip_length = 468"
                       ).fetchall()
    assert {r[0] for r in rows} == set(ntp["amplifiers"]) and {r[1] for r in rows} == set(ntp["victims"])
    scan = _attack("ssl_scan")
    n = con.execute("SELECT count(DISTINCT dst_ip) FROM flows WHERE src_ip = ? AND tcp_flags = 2 AND source = 'ipfix'",
                    [scan["scanners"][0]]).fetchone()[0]
    assert n > 100  # site B's unsampled exporter sees every probe to its half
    phish = _attack("phishing")
    urls = {r[0] for r in con.execute("SELECT url FROM urls WHERE kind = 'phishing'").fetchall()}
    assert set(phish["urls"]) <= urls
    dns_amp = _attack("dns_amplification")
    listed = {r[0].split("/")[0] for r in con.execute("SELECT network FROM iplists WHERE list_name = 'open-resolvers'"
                                                      ).fetchall()}
    assert set(dns_amp["amplifiers"]) <= listed
    senders = con.execute("SELECT count(*) FROM syslog WHERE app = 'postfix/smtpd' AND message LIKE 'connect from%'"
                          " AND regexp_extract(message, '\\[(.*)\\]', 1) IN (SELECT unnest(?))",
                          [phish["senders"]]).fetchone()[0]
    assert senders == 3 * len(phish["senders"])
    # every NetFlow v9 record says it was sampled 1:10, as its options template announced
    assert con.execute("SELECT DISTINCT sampling_rate FROM flows WHERE source = 'netflow9'").fetchall() == [(10,)]


def test_reimport_is_a_no_op(tmp_path):
    settings = Settings(data_dir=tmp_path / "d")
    first = import_scenario(scenario("background", scale=0.1), settings)
    assert not any(r.skipped for r in first)
    again = import_scenario(scenario("background", scale=0.1), settings)
    assert all(r.skipped for r in again)
    assert [r.rows for r in again] == [r.rows for r in first]


def test_cli_import(tmp_path):
    cfg = tmp_path / "necoma.toml"
    cfg.write_text(f'data_dir = "{tmp_path / "data"}"\n')
    directory = scenario("background", scale=0.1)
    res = CliRunner().invoke(app, ["-c", str(cfg), "testbed", "import", str(directory)])
    assert res.exit_code == 0, res.output
    assert "dns.pcap: imported" in res.output and "sflow/sflow-core.bin: imported" in res.output
    res = CliRunner().invoke(app, ["-c", str(cfg), "testbed", "import", str(directory)])
    assert res.exit_code == 0 and "already imported" in res.output
