"""SSL/TLS scans: a source SYN-probing TLS ports across many addresses and networks, mostly unanswered.

Method. A scanner looking for TLS services (to fingerprint them, or to find
ones vulnerable to Heartbleed-like bugs) sends TCP SYNs to port 443 and
friends on thousands of addresses. In flow records a probe is a TCP flow
to a TLS port whose flags have SYN without ACK — a completed connection
always shows ACK — of at most `max_probe_packets` packets (scaled). Per bin
and source we count distinct target addresses, distinct target /24s (/48
for IPv6) and how many probes were answered (a SYN-ACK flow back from the
target port). A source probing at least `min_targets` addresses in at least
`min_networks` networks, with at most `max_answered` of them answering, is
a scanner. Sampling hides probes: with sampled data lower `min_targets`.

Evidence: the source's SYN-only flows to the TLS ports in the bin.
"""
from __future__ import annotations

from pydantic import Field

from necoma.analyze.alert import Alert
from necoma.analyze.detector import Context, Detector, DetectorParams, Schedule
from necoma.analyze.prefixes import prefix_of
from necoma.analyze.traffic import TRAFFIC, best_source, confidence_of, evidence_traffic, log_ratio


class SslScan(Detector):
    name = "ssl_scan"
    title = "Sources SYN-probing TLS ports on many addresses and networks, mostly unanswered"
    raises = "one alert per scanner and hour: scanner; targets, networks, answered fraction, probes, ports"
    tables = ("flows", "packets")
    schedule = Schedule.hourly()

    class Params(DetectorParams):
        ports: list[int] = Field([443, 8443, 993, 995, 465], description="TLS ports whose probing counts.")
        min_targets: int = Field(200, description="Distinct addresses a source must probe in a bin.")
        min_networks: int = Field(10, description="Distinct target /24s (IPv6 /48s) a source must probe in a bin.")
        max_answered: float = Field(0.5, description="Largest fraction of probed addresses that may answer with SYN-ACK.")
        max_probe_packets: int = Field(3, description="Largest flow (scaled packets per target and port) still counted as a probe.")

    SQL = f"""
WITH {TRAFFIC.strip()},
probes AS (
    SELECT time_bin(t) AS bin, via, src_ip AS scanner, dst_ip AS target, dst_port AS port, sum(pkts) AS pkts
    FROM traffic
    WHERE protocol = 6 AND dst_port IN :ports AND (tcp_flags & 2) = 2 AND (tcp_flags & 16) = 0
    GROUP BY time_bin(t), via, src_ip, dst_ip, dst_port
    HAVING sum(pkts) <= :max_probe_packets
),
scanners AS (  -- sources probing enough targets in some bin; only their answers are looked up
    SELECT DISTINCT scanner FROM probes GROUP BY bin, via, scanner HAVING count(DISTINCT target) >= :min_targets
),
answers AS (
    SELECT DISTINCT time_bin(t) AS bin, via, dst_ip AS scanner, src_ip AS target, src_port AS port
    FROM traffic
    WHERE protocol = 6 AND src_port IN :ports AND (tcp_flags & 18) = 18 AND dst_ip IN (SELECT scanner FROM scanners)
)
SELECT p.bin, p.via, p.scanner, p.target, max(p.port) AS port, sum(p.pkts) AS pkts,
       max(CASE WHEN a.target IS NULL THEN 0 ELSE 1 END) AS answered
FROM probes p
LEFT JOIN answers a ON a.bin = p.bin AND a.via = p.via AND a.scanner = p.scanner
                   AND a.target = p.target AND a.port = p.port
WHERE p.scanner IN (SELECT scanner FROM scanners)
GROUP BY p.bin, p.via, p.scanner, p.target
"""

    def detect(self, ctx: Context) -> list[Alert]:
        p = self.params
        rows = ctx.query(self.SQL, ports=p.ports, max_probe_packets=p.max_probe_packets, min_targets=p.min_targets)
        agg: dict[tuple, dict] = {}
        for r in rows:
            s = agg.setdefault((r["bin"], r["scanner"], r["via"]), {"targets": 0, "nets": set(), "answered": 0, "pkts": 0, "ports": set()})
            s["targets"] += 1
            s["nets"].add(prefix_of(r["target"]))
            s["answered"] += r["answered"]
            s["pkts"] += r["pkts"]
            s["ports"].add(r["port"])
        cands = [{"bin": b, "scanner": sc, "via": via, **s} for (b, sc, via), s in agg.items()]
        alerts = []
        for s in best_source(cands, ("bin", "scanner"), "targets"):
            answered = s["answered"] / s["targets"]
            if s["targets"] < p.min_targets or len(s["nets"]) < p.min_networks or answered > p.max_answered:
                continue
            score = 0.6 * log_ratio(s["targets"], p.min_targets / 10, 3) + 0.4 * (1 - answered)
            alerts.append(ctx.alert(
                window_start=s["bin"],
                subjects=[ctx.subject("scanner", s["scanner"], s["targets"], geo=True)],
                score=score,
                confidence=confidence_of(score),
                summary=f"TLS scan from {s['scanner']}: {s['targets']} addresses in {len(s['nets'])} networks, {answered:.0%} answered",
                metrics={"targets": s["targets"], "networks": len(s["nets"]), "answered_fraction": answered,
                         "probes": s["pkts"], "ports": len(s["ports"])},
                evidence=ctx.evidence(
                    evidence_traffic("protocol = 6 AND src_ip = :scanner AND dst_port IN :ports AND via = :via "
                                     "AND (tcp_flags & 2) = 2 AND (tcp_flags & 16) = 0"),
                    scanner=s["scanner"], ports=p.ports, via=s["via"], start=s["bin"], end=ctx.bin_end(s["bin"])),
            ))
        return alerts
