"""Line-oriented importers: DNS query logs (from a real Unbound), URL feeds, IP lists; dedup and --force."""
from __future__ import annotations

import gzip
import shutil
import socket
import subprocess
import time
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import pytest

from necoma.collect.importing import ImportFailed, run_import
from necoma.lake import connect
from tests.conftest import require_tool


def _count(settings, sql):
    return connect(settings.lake_path).execute(sql).fetchone()[0]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def unbound_log(tmp_path):
    """Run a real Unbound with log-queries and log-replies, ask it questions, return its log."""
    require_tool("unbound")
    port = _free_port()
    log = tmp_path / "unbound.log"
    conf = tmp_path / "unbound.conf"
    conf.write_text(f"""server:
  interface: 127.0.0.1
  port: {port}
  do-daemonize: no
  use-syslog: no
  logfile: "{log}"
  log-queries: yes
  log-replies: yes
  verbosity: 0
  username: ""
  chroot: ""
  directory: "{tmp_path}"
  pidfile: ""
  access-control: 127.0.0.0/8 allow
  module-config: "iterator"
  do-not-query-localhost: yes
  local-zone: "lab.necoma.example." static
  local-data: "www.lab.necoma.example. 300 IN A 192.0.2.10"
  local-data: "www.lab.necoma.example. 300 IN TXT \\"hello\\""
""")
    proc = subprocess.Popen(["unbound", "-d", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        answers = {}
        for name, qtype in [("www.lab.necoma.example", "A"), ("www.lab.necoma.example", "TXT"),
                            ("nope.lab.necoma.example", "A")]:
            for _ in range(50):
                try:
                    r = dns.query.udp(dns.message.make_query(name, qtype), "127.0.0.1", port=port, timeout=0.5)
                    answers[(name, qtype)] = r.rcode()
                    break
                except (dns.exception.Timeout, ConnectionRefusedError):
                    time.sleep(0.1)
        assert len(answers) == 3, f"unbound did not answer: {proc.stderr and proc.stderr.read1()}"
    finally:
        proc.terminate()
        proc.wait(10)
    return log, answers


def test_unbound_log_queries_and_replies(settings, unbound_log):
    log, answers = unbound_log
    assert answers[("nope.lab.necoma.example", "A")] == dns.rcode.NXDOMAIN
    report = run_import("dnslog", log, settings)
    assert report.rows == {"dns": 6}  # three queries, three replies
    con = connect(settings.lake_path)
    rows = con.execute("SELECT qname, qtype, is_response, rcode, response_size, client_ip, source FROM dns "
                       "ORDER BY qname, qtype, is_response").fetchall()
    assert ("nope.lab.necoma.example", 1, True, 3) == rows[1][:4]
    assert all(r[5] == "127.0.0.1" and r[6] == "unbound" for r in rows)
    assert [r[2] for r in rows].count(True) == 3
    assert all(r[4] > 12 for r in rows if r[2])  # reply sizes are real DNS message sizes
    # The start-up/shutdown lines are not queries: counted, not silently dropped.
    assert report.rejects.by_reason["not a DNS query or reply line"] == report.rejects.total


BIND_LINES = """\
03-Dec-2026 10:00:00.123 queries: info: client @0x7f8b2c0a5b68 192.0.2.1#53012 (www.Example.com): query: www.Example.com IN A +E(0)K (198.51.100.1)
03-Dec-2026 10:00:01.000 queries: info: client @0x7f8b2c0a5b68 2001:db8::5#4242 (mail.example.org): query: mail.example.org IN MX +T (2001:db8::53)
03-Dec-2026 10:00:02.500 client 192.0.2.7#1111 (x.example): view internal: query: x.example IN TYPE65 - (198.51.100.1)
03-Dec-2026 10:00:03.000 queries: info: client @0x7f8b 192.0.2.1#53012 (a.example): query: a.example IN BOGUSTYPE + (198.51.100.1)
garbage line
"""


def test_bind_querylog(settings, tmp_path):
    log = tmp_path / "query.log.gz"
    with gzip.open(log, "wt") as fh:
        fh.write(BIND_LINES)
    report = run_import("dnslog", log, settings)
    assert report.rows == {"dns": 3}
    assert report.rejects.total == 2
    assert report.rejects.first_seen["unknown query type, class or rcode"] == "line 4"
    rows = connect(settings.lake_path).execute(
        "SELECT client_ip, client_port, server_ip, qname, qtype, transport FROM dns ORDER BY time").fetchall()
    assert rows[0] == ("192.0.2.1", 53012, "198.51.100.1", "www.example.com", 1, None)
    assert rows[1] == ("2001:db8::5", 4242, "2001:db8::53", "mail.example.org", 15, "tcp")
    assert rows[2][3:5] == ("x.example", 65)


def test_phishtank_feed(settings, shared_data):
    feed = shared_data / "urls" / "phishtank-verified-2021-03.csv"
    report = run_import("urls", feed, settings, url_kind="phishing", feed="phishtank")
    n = report.rows["urls"]
    data_lines = sum(1 for _ in open(feed, encoding="utf-8", errors="replace")) - 1
    assert n + report.rejects.total >= data_lines * 0.99 and n > 10_000
    con = connect(settings.lake_path)
    assert con.execute("SELECT count(DISTINCT feed), min(first_seen) < TIMESTAMPTZ '2021-03-15' FROM urls").fetchone() == (1, True)
    assert con.execute("SELECT count(*) FROM urls WHERE host IS NULL OR host = ''").fetchone()[0] == 0


def test_url_list_plain_lines(settings, tmp_path):
    f = tmp_path / "spam.txt"
    f.write_text("# spam urls\nhttp://Bad.Example.com/x?y=1\nwww.evil.example/login\nnot a url\n\nhttp://[2001:db8::1]/p\n")
    report = run_import("urls", f, settings, url_kind="spam")
    assert report.rows == {"urls": 3} and report.rejects.total == 1
    hosts = [r[0] for r in connect(settings.lake_path).execute("SELECT host FROM urls ORDER BY url").fetchall()]
    assert sorted(hosts) == ["2001:db8::1", "bad.example.com", "www.evil.example"]


def test_iplist_and_dedup_and_force(settings, tmp_path):
    f = tmp_path / "resolvers.txt"
    f.write_text("# open resolvers\n192.0.2.53\n198.51.100.0/24 ; SBL1\n10.1.2.3/8\n2001:db8::53\nbogus\n")
    first = run_import("iplist", f, settings, list_name="open-resolvers")
    assert first.rows == {"iplists": 4} and first.rejects.total == 1
    assert any("host bits" in n for n in first.notes)
    again = run_import("iplist", f, settings, list_name="open-resolvers")
    assert again.already_imported
    assert _count(settings, "SELECT count(*) FROM iplists") == 4
    forced = run_import("iplist", f, settings, list_name="open-resolvers", force=True)
    assert not forced.already_imported
    assert _count(settings, "SELECT count(*) FROM iplists") == 4  # replaced, not duplicated
    nets = {r[0] for r in connect(settings.lake_path).execute("SELECT network FROM iplists").fetchall()}
    assert nets == {"192.0.2.53/32", "198.51.100.0/24", "10.0.0.0/8", "2001:db8::53/128"}


def test_missing_file_and_unknown_kind(settings, tmp_path):
    with pytest.raises(ImportFailed, match="no such file"):
        run_import("urls", tmp_path / "nope.txt", settings)
    with pytest.raises(ImportFailed, match="unknown import kind"):
        run_import("nope", tmp_path, settings)
