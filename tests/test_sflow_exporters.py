"""sFlow v5 from a real exporter (pmacct's pmacctd + sfprobe), checked against the pcap and sfcapd.

Each test runs its own pmacctd over a pcap, receives the export on a loopback
UDP port with a tiny receiver (the collector's listener is not under test
here), tees every datagram to nfdump's sfcapd, and feeds the datagrams to
SflowDecoder. Two independent oracles:
- tshark on the same pcap: every exported packet decoded with the same fields;
- sfcapd + `nfdump -o csv` on the same datagrams: equal packet and byte totals
  per 5-tuple, scaled by the sampling rate.

pmacct 1.7.7 quirks seen here: it exports only IP frames (ARP etc. are not
sampled), adds the 4-byte FCS to frame_length (and says so in `stripped`), and
at shutdown exports the packets of one stale pipe buffer a second time, so the
export is the pcap's IP packets, in order, followed by a repeat of one run of
them (the last 40 of lab_mixed; 47 near the end of pathspider_real).
It flushes only on SIGINT.
"""
from __future__ import annotations

import csv
import gzip
import io
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest

from necoma.collect.sflow import SflowDecoder
from tests.conftest import require_tool

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]

packet = pytest.importorskip("necoma.collect.packet", reason="shared frame decoder not written yet")


class UdpReceiver(threading.Thread):
    """Collects datagrams on a free loopback port; optionally forwards each one to `tee_port`."""

    def __init__(self, tee_port: int | None = None) -> None:
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.tee_port = tee_port
        self.datagrams: list[tuple[bytes, str, float]] = []
        self.last = time.monotonic()
        self._done = threading.Event()

    def run(self) -> None:
        out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        while not self._done.is_set():
            try:
                data, addr = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            self.datagrams.append((data, addr[0], time.time()))
            self.last = time.monotonic()
            if self.tee_port:
                out.sendto(data, ("127.0.0.1", self.tee_port))
                if len(self.datagrams) % 64 == 0:
                    time.sleep(0.0005)  # sfcapd reads with a default socket buffer: do not overrun it

    def wait_idle(self, seconds: float, timeout: float = 60) -> None:
        """Return once nothing has arrived for `seconds`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() - self.last < seconds and time.monotonic() < deadline:
            time.sleep(0.1)

    def stop(self) -> None:
        self._done.set()
        self.join(5)
        self.sock.close()


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pmacctd_export(pcap: Path, tmp: Path, rate: int, tee_port: int | None = None,
                   extra_conf: str = "") -> list[tuple[bytes, str, float]]:
    """Run pmacctd's sFlow probe over `pcap`; return the datagrams it sent."""
    rx = UdpReceiver(tee_port)
    rx.start()
    conf, log = tmp / "pmacctd.conf", tmp / "pmacctd.log"
    log.unlink(missing_ok=True)  # a previous run's "finished reading" must not end this one
    conf.write_text(f"""daemonize: false
logfile: {log}
pcap_savefile: {pcap}
pcap_savefile_wait: true
plugins: sfprobe[sf]
sfprobe_receiver[sf]: 127.0.0.1:{rx.port}
sampling_rate[sf]: {rate}
{extra_conf}""")
    proc = subprocess.Popen(["pmacctd", "-f", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while "finished reading PCAP" not in (log.read_text() if log.exists() else ""):
            assert proc.poll() is None, f"pmacctd exited early:\n{log.read_text() if log.exists() else ''}"
            assert time.monotonic() < deadline, "pmacctd did not finish reading the pcap"
            time.sleep(0.2)
        rx.wait_idle(1.5)
    finally:
        proc.send_signal(signal.SIGINT)  # SIGTERM would lose the buffered samples
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    rx.wait_idle(1.0)
    rx.stop()
    return rx.datagrams


def decode(datagrams: list[tuple[bytes, str, float]]) -> tuple[SflowDecoder, dict[str, pa.Table]]:
    dec = SflowDecoder()
    for data, addr, t in datagrams:
        dec.feed(data, addr, t)
    return dec, dec.drain(time.time())


def tshark_ip_packets(pcap: Path) -> list[tuple]:
    """(src, dst, proto, sport, dport, ip length, dns query name, ntp mode) of each IPv4 frame, in order."""
    out = subprocess.run(
        ["tshark", "-r", str(pcap), "-Y", "ip", "-T", "fields", "-E", "separator=|", "-e", "ip.src", "-e", "ip.dst",
         "-e", "ip.proto", "-e", "tcp.srcport", "-e", "tcp.dstport", "-e", "udp.srcport", "-e", "udp.dstport",
         "-e", "ip.len", "-e", "dns.qry.name", "-e", "ntp.flags.mode", "-e", "ip.frag_offset", "-e", "ip.flags.mf"],
        capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        src, dst, proto, ts, td, us, ud, iplen, qname, mode, frag, mf = (line.split("|") + [""] * 12)[:12]
        proto_n = int(proto.split(",")[0])
        # only the outer packet counts: tshark also dissects what ICMP errors quote,
        # and ports exist only in unfragmented packets and first fragments
        outer = proto_n in (6, 17) and frag.split(",")[0] in ("", "0") and mf.split(",")[0] in ("", "0", "False")
        sport = int((ts or us).split(",")[0]) if (ts or us) and outer else None
        dport = int((td or ud).split(",")[0]) if (td or ud) and outer else None
        udp = outer and proto_n == 17
        rows.append((src.split(",")[0], dst.split(",")[0], proto_n, sport, dport, int(iplen.split(",")[0]),
                     (qname.split(",")[0] or None) if udp else None, int(mode.split(",")[0]) if mode and udp else None))
    return rows


def our_packets(packets: pa.Table) -> list[tuple]:
    cols = ["src_ip", "dst_ip", "protocol", "src_port", "dst_port", "ip_length", "dns_qname", "ntp_mode"]
    rows = zip(*(packets.column(c).to_pylist() for c in cols))
    # ICMP type/code sit in the port columns (as nfdump does); tshark has no ports there
    return [r if r[2] in (6, 17) else r[:3] + (None, None) + r[5:] for r in rows]


def assert_export_is_the_pcap(ours: list[tuple], pcap_rows: list[tuple]) -> None:
    """The pcap's IP packets in order, then (pmacct quirk, see module doc) one run of them again."""
    n = len(pcap_rows)
    assert len(ours) >= n
    mismatch = next((i for i in range(n) if ours[i] != pcap_rows[i]), None)
    assert mismatch is None, f"packet {mismatch}: ours {ours[mismatch]} != tshark {pcap_rows[mismatch]}"
    extra = ours[n:]
    assert len(extra) < 200
    if extra:
        assert any(pcap_rows[k:k + len(extra)] == extra for k in range(n - len(extra) + 1)), \
            "the packets exported after the pcap are not a repeat of one run of it"


def sfcapd_totals(port: int, out_dir: Path, start) -> Counter:
    """Start sfcapd; `start()` runs the export; returns {(src, dst, proto, sport, dport): [packets, bytes]}."""
    proc = subprocess.Popen(["sfcapd", "-b", "127.0.0.1", "-p", str(port), "-w", str(out_dir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        time.sleep(0.5)
        result = start()
        time.sleep(1.0)
    finally:
        proc.terminate()  # sfcapd flushes its file on SIGTERM
        proc.wait(30)
    text = subprocess.run(["nfdump", "-R", str(out_dir), "-o", "csv"], capture_output=True, text=True,
                          check=True).stdout
    names = {"TCP": 6, "UDP": 17, "ICMP": 1, "IGMP": 2, "ICMP6": 58}
    totals: Counter = Counter()
    reader = csv.reader(io.StringIO(text))
    header = next(reader)
    at = {name: i for i, name in enumerate(header)}
    for row in reader:
        if len(row) != len(header):
            continue  # the summary lines
        proto = names.get(row[at["pr"]]) or int(row[at["pr"]])
        ports = (int(row[at["sp"]]), int(float(row[at["dp"]]))) if proto in (6, 17) else (0, 0)
        key = (row[at["sa"]], row[at["da"]], proto) + ports
        totals[key + ("packets",)] += int(row[at["ipkt"]])
        totals[key + ("bytes",)] += int(row[at["ibyt"]])
    return totals, result


def our_totals(flows: pa.Table) -> Counter:
    totals: Counter = Counter()
    for r in flows.to_pylist():
        ports = (r["src_port"] or 0, r["dst_port"] or 0) if r["protocol"] in (6, 17) else (0, 0)
        key = (r["src_ip"], r["dst_ip"], r["protocol"]) + ports
        totals[key + ("packets",)] += r["packets"] * r["sampling_rate"]
        totals[key + ("bytes",)] += r["bytes"] * r["sampling_rate"]
    return totals


@pytest.fixture
def pathspider(shared_data: Path, tmp_path: Path) -> Path:
    out = tmp_path / "pathspider_real.pcap"
    with gzip.open(shared_data / "pcap" / "pathspider_real.pcap.gz") as src, out.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    return out


def test_pmacct_lab_mixed_dns_and_ntp_match_tshark(shared_data: Path, tmp_path: Path):
    require_tool("pmacctd", "tshark")
    pcap = shared_data / "pcap" / "lab_mixed.pcap"
    datagrams = pmacctd_export(pcap, tmp_path, rate=1)
    dec, tables = decode(datagrams)
    st = dec.stats.of("127.0.0.1")
    assert st.datagrams == len(datagrams) > 0
    assert dict(st.rejected) == {} and st.sequence_gaps == 0
    packets, flows = tables["packets"], tables["flows"]
    # pmacct sends a counter sample every 20 s of probe clock, so sometimes one lands in
    # this export: a record too, and one interfaces row (one generic interface block)
    counter_samples = tables["interfaces"].num_rows if "interfaces" in tables else 0
    assert st.records == flows.num_rows + counter_samples and flows.num_rows == packets.num_rows
    pcap_rows = tshark_ip_packets(pcap)
    assert_export_is_the_pcap(our_packets(packets), pcap_rows)
    # the lab's story, counted once per pcap packet (the repeated tail excluded)
    head = packets.slice(0, len(pcap_rows))
    qnames = Counter(q for q in head.column("dns_qname").to_pylist() if q)
    assert qnames == Counter(r[6] for r in pcap_rows if r[6])
    mode7 = [r for r in head.to_pylist() if r["ntp_mode"] == 7]
    assert len(mode7) == 40 and {r["ip_length"] for r in mode7} == {468}
    assert {r["ntp_request_code"] for r in mode7} == {42}  # MON_GETLIST_1: the amplification request
    assert set(packets.column("exporter").to_pylist()) == {"127.0.0.1"}  # pmacct's agent address
    assert set(flows.column("sampling_rate").to_pylist()) == {1}
    assert set(flows.column("source").to_pylist()) == {"sflow"}


def test_pmacct_pathspider_matches_tshark_sfcapd_and_counters(pathspider: Path, tmp_path: Path):
    require_tool("pmacctd", "tshark", "sfcapd", "nfdump")
    port = free_udp_port()
    (tmp_path / "nfcap").mkdir()
    theirs, datagrams = sfcapd_totals(port, tmp_path / "nfcap",
                                      lambda: pmacctd_export(pathspider, tmp_path, rate=1, tee_port=port))
    dec, tables = decode(datagrams)
    st = dec.stats.of("127.0.0.1")
    assert st.datagrams == len(datagrams) and st.sequence_gaps == 0
    assert not [r for r in st.rejected if not r.startswith("header: ")], st.rejected
    pcap_rows = tshark_ip_packets(pathspider)
    assert len(pcap_rows) == 62038
    assert_export_is_the_pcap(our_packets(tables["packets"]), pcap_rows)
    assert our_totals(tables["flows"]) == theirs
    for row in tables["interfaces"].to_pylist() if "interfaces" in tables else []:  # timing-dependent, see below
        assert row["if_type"] == 6 and 0 < row["in_octets"] <= 4_626_848


def test_pmacct_counter_samples_land_in_interfaces(shared_data: Path, tmp_path: Path):
    """pmacct polls its (software) interface counters every 20 s of probe clock, and its
    clock only ticks while packets arrive: replaying the pcap once a second for 22 s
    makes at least one counter sample certain."""
    require_tool("pmacctd")
    pcap = shared_data / "pcap" / "lab_mixed.pcap"
    datagrams = pmacctd_export(pcap, tmp_path, rate=1,
                               extra_conf="pcap_savefile_replay: 22\npcap_savefile_delay: 1\n")
    dec, tables = decode(datagrams)
    st = dec.stats.of("127.0.0.1")
    assert dict(st.rejected) == {} and st.sequence_gaps == 0
    ifaces = tables["interfaces"].to_pylist()
    assert ifaces, "no counter sample in 22 s of export"
    for row in ifaces:
        assert row["exporter"] == "127.0.0.1"
        assert (row["if_type"], row["if_speed"], row["if_direction"], row["if_status"]) == (6, 100_000_000, 1, 3)
        # frames it counted in software so far: at most 22 copies of the pcap's 200
        seen = row["in_ucast_pkts"] + row["in_mcast_pkts"] + row["in_bcast_pkts"]
        assert 0 < seen <= 22 * 200 and 0 < row["in_octets"] <= 22 * 31_170
    assert tables["flows"].num_rows >= 200


def test_pmacct_sampled_export_scales_like_sfcapd(pathspider: Path, tmp_path: Path):
    require_tool("pmacctd", "sfcapd", "nfdump")
    port = free_udp_port()
    (tmp_path / "nfcap").mkdir()
    theirs, datagrams = sfcapd_totals(port, tmp_path / "nfcap",
                                      lambda: pmacctd_export(pathspider, tmp_path, rate=16, tee_port=port))
    dec, tables = decode(datagrams)
    flows = tables["flows"]
    assert set(flows.column("sampling_rate").to_pylist()) == {16}
    assert set(tables["packets"].column("sampling_rate").to_pylist()) == {16}
    assert 62038 / 16 * 0.8 < flows.num_rows < 62038 / 16 * 1.2
    assert our_totals(flows) == theirs
