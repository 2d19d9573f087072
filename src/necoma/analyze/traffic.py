"""SQL shared by the traffic detectors: flows and sampled packets as one relation, scaled.

`TRAFFIC` is a CTE named `traffic` with one row per flow record (from
`flows`) or per sampled packet (from `packets`, i.e. sFlow or pcap), every
count multiplied by the sampling rate (0 or null counts as 1):

    t, src_ip, dst_ip, src_port, dst_port, protocol, tcp_flags,
    pkts, byts, frags (packets that were IP fragments), first_frags
    (first fragments, packets table only), via (the kind of observation)

`via` separates observations of the same traffic: 'flows' (NetFlow/IPFIX
records: exporters at different sites see different links, so they add
up), 'sflow' (flow rows made from sFlow samples, typically a core switch
seeing the same traffic again) and 'packets-<source>' (sampled packets).
Detectors group by `via` too and keep, per finding, the observation with
more bytes, so an attack seen by NetFlow and by sFlow is not counted twice.
"""
from __future__ import annotations

import math

TRAFFIC = """
traffic AS (
    SELECT start_time AS t, src_ip, dst_ip, src_port, dst_port, protocol, tcp_flags,
           CAST(packets AS BIGINT) * greatest(coalesce(sampling_rate, 1), 1) AS pkts,
           CAST(bytes AS BIGINT) * greatest(coalesce(sampling_rate, 1), 1) AS byts,
           CAST(coalesce(fragments, 0) AS BIGINT) * greatest(coalesce(sampling_rate, 1), 1) AS frags,
           CAST(0 AS BIGINT) AS first_frags,
           CASE WHEN source = 'sflow' THEN 'sflow' ELSE 'flows' END AS via
    FROM flows
    WHERE start_time >= :start AND start_time < :end
    UNION ALL
    SELECT time AS t, src_ip, dst_ip, src_port, dst_port, protocol, tcp_flags,
           CAST(greatest(coalesce(sampling_rate, 1), 1) AS BIGINT) AS pkts,
           CAST(ip_length AS BIGINT) * greatest(coalesce(sampling_rate, 1), 1) AS byts,
           CASE WHEN fragment_offset > 0 OR more_fragments
                THEN CAST(greatest(coalesce(sampling_rate, 1), 1) AS BIGINT) ELSE 0 END AS frags,
           CASE WHEN coalesce(fragment_offset, 0) = 0 AND more_fragments
                THEN CAST(greatest(coalesce(sampling_rate, 1), 1) AS BIGINT) ELSE 0 END AS first_frags,
           'packets-' || coalesce(source, '?') AS via
    FROM packets
    WHERE time >= :start AND time < :end
)"""


def evidence_traffic(where: str) -> str:
    """Evidence SQL over both sources: the raw rows matching `where` (columns of `traffic`)."""
    return f"WITH {TRAFFIC.strip()}\nSELECT * FROM traffic WHERE {where} ORDER BY t, src_ip, dst_ip"


def best_source(rows: list[dict], key: tuple[str, ...], measure: str = "byts") -> list[dict]:
    """Per `key`, the row of the source (`via`) with the larger `measure`.

    Ties (sFlow samples seen both as packets and as flow rows count the same)
    go to flows, then to the larger `via` name, so the choice never depends on row order."""
    best: dict[tuple, dict] = {}
    for r in rows:
        k = tuple(r[c] for c in key)
        cur = best.get(k)
        if cur is None or (r[measure], r["via"] == "flows", r["via"]) > (cur[measure], cur["via"] == "flows", cur["via"]):
            best[k] = r
    return list(best.values())


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for fewer than two values) of a baseline."""
    if not values:
        return 0.0, 0.0
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((x - mean) ** 2 for x in values) / max(len(values) - 1, 1))


def saturate(x: float, full: float) -> float:
    """x/full capped to [0, 1]."""
    return 0.0 if full <= 0 else max(0.0, min(1.0, x / full))


def log_ratio(x: float, threshold: float, decades: float = 2.0) -> float:
    """0 at the threshold, 1 at `decades` orders of magnitude above it."""
    if x <= threshold or threshold <= 0:
        return 0.0
    return min(1.0, math.log10(x / threshold) / decades)


def confidence_of(score: float) -> str:
    return "high" if score >= 0.7 else "medium" if score >= 0.4 else "low"
