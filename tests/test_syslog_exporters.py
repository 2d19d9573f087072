"""Syslog from a real sender: util-linux `logger` to `necoma collect` on loopback.

`logger` is what operators' scripts and cron jobs use to send syslog; it writes
RFC 5424 (with structured data and msgid) or RFC 3164, over UDP or TCP, and on
TCP with RFC 6587 octet counting or newline framing. Every combination must
land as one row with the fields `logger` was given.
"""
from __future__ import annotations

import json
import signal
import socket
import subprocess
import time

import pytest

from tests.conftest import require_tool
from tests.test_collect_runtime import Collector, free_port

# (name, logger's framing/format flags, expected format): each sent over UDP and TCP where it applies
CASES = [
    ("udp-5424", ["--udp", "--rfc5424"], "rfc5424"),
    ("udp-3164", ["--udp", "--rfc3164"], "rfc3164"),
    ("tcp-5424-octet", ["--tcp", "--rfc5424", "--octet-count"], "rfc5424"),
    ("tcp-5424-newline", ["--tcp", "--rfc5424"], "rfc5424"),
    ("tcp-3164-newline", ["--tcp", "--rfc3164"], "rfc3164"),
]


@pytest.fixture
def collector(tmp_path):
    require_tool("logger")
    port = free_port()
    c = Collector(tmp_path, "--syslog", f"127.0.0.1:{port}", flush=0.3)
    c.port = port
    try:
        c.wait_listening()
        yield c
    finally:
        c.kill()


def logger(port: int, flags: list[str], message: str, *extra: str) -> None:
    subprocess.run(["logger", "--server", "127.0.0.1", "--port", str(port), "--tag", "necoma-test",
                    "--priority", "local3.warning", *flags, *extra, message], check=True, timeout=30)


def test_logger_every_format_and_framing_lands_once(collector):
    sent_at = time.time()
    for name, flags, _ in CASES:
        extra = ["--msgid", "ID7", "--sd-id", "probe@32473", "--sd-param", 'case="' + name + '"'] \
            if "--rfc5424" in flags else []
        logger(collector.port, flags, f"hello from {name}", *extra)
    # one TCP connection carrying several octet-counted messages, one of them multi-line
    with subprocess.Popen(["logger", "--server", "127.0.0.1", "--port", str(collector.port), "--tcp",
                           "--octet-count", "--rfc5424", "--tag", "necoma-test"], stdin=subprocess.PIPE) as p:
        p.communicate(b"stdin line one\nstdin line two\n", timeout=30)
    assert p.returncode == 0

    deadline = time.time() + 20
    while time.time() < deadline:
        if collector.stats_file.exists() and collector.status()["rows_written"].get("syslog", 0) >= len(CASES) + 2:
            break
        time.sleep(0.1)
    assert collector.stop(signal.SIGTERM) == 0, collector.stderr

    rows = collector.query("SELECT message, format, facility, severity, host, app, msgid, structured_data, "
                           "epoch_us(time), exporter FROM syslog ORDER BY message")
    by_msg = {r[0]: r for r in rows}
    assert len(rows) == len(CASES) + 2, rows  # nothing lost, nothing doubled
    for name, flags, fmt in CASES:
        msg, got_fmt, facility, severity, host, app, msgid, sd, t_us, exporter = by_msg[f"hello from {name}"]
        assert (got_fmt, facility, severity, app, exporter) == (fmt, 19, 4, "necoma-test", "127.0.0.1"), name
        assert host == socket.gethostname() or host.startswith(socket.gethostname().split(".")[0]), (name, host)
        assert abs(t_us / 1e6 - sent_at) < 120, name  # logger's own timestamp, parsed (3164: no year, no zone)
        if fmt == "rfc5424":
            assert msgid == "ID7", name
            sd = json.loads(sd)
            assert sd["probe@32473"] == {"case": name}, name
    assert {"stdin line one", "stdin line two"} <= set(by_msg)
    local = collector.status()["protocols"]["syslog"]["127.0.0.1"]
    assert local["records"] == len(CASES) + 2 and not local["rejected"], local
