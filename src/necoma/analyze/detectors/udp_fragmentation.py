"""UDP fragmentation floods: far more IP fragments at a destination than its own history.

Method. A fragmentation flood sends large UDP datagrams (or bare fragments)
so the victim must buffer and reassemble; routers see a burst of first and
non-first fragments towards one address. Per destination and 5-minute bin
we count UDP packets that were IP fragments (sampled packets: offset > 0 or
more-fragments set; flows: their `fragments` count), scaled by the sampling
rate. The baseline is the mean and standard deviation of that count over
the destination's previous `baseline_bins` bins (bins without fragments
count as zero), so hosts that always receive fragments (VPN endpoints,
resolvers getting large EDNS answers) learn their own normal. A bin above
`mean + k·σ` *and* above the absolute floor `min_fragments` alerts.

Evidence: the UDP fragments to the victim in the bin.
"""
from __future__ import annotations

import datetime as dt
import math

from pydantic import Field

from necoma.analyze.alert import Alert
from necoma.analyze.detector import Context, Detector, DetectorParams, Schedule
from necoma.analyze.traffic import TRAFFIC, best_source, confidence_of, evidence_traffic, log_ratio


class UdpFragmentation(Detector):
    name = "udp_fragmentation"
    title = "UDP fragment floods far above a destination's learned baseline"
    raises = "one alert per victim and 5-minute bin: victim, top sources as attackers; fragments, baseline mean/σ, bytes"
    tables = ("flows", "packets")
    schedule = Schedule.sliding(5)
    history = dt.timedelta(hours=24)

    class Params(DetectorParams):
        k: float = Field(6.0, description="Alert when fragments exceed the baseline mean by k standard deviations.")
        min_fragments: int = Field(10_000, description="Absolute floor: scaled fragment packets per bin below which nothing alerts.")
        baseline_bins: int = Field(288, description="Past bins of the same destination forming the baseline (288 × 5 min = 24 h).")
        max_sources: int = Field(20, description="Largest number of top sources named in an alert.")

    SQL = f"""
WITH {TRAFFIC.strip()}
SELECT time_bin(t) AS bin, via, dst_ip AS victim,
       sum(frags) AS frags, sum(first_frags) AS first_frags, sum(byts) AS byts
FROM traffic
WHERE protocol = 17 AND frags > 0
GROUP BY time_bin(t), via, dst_ip
"""

    SOURCES = f"""
WITH {TRAFFIC.strip()}
SELECT src_ip, sum(frags) AS frags FROM traffic
WHERE protocol = 17 AND frags > 0 AND dst_ip = :victim AND via = :via
GROUP BY src_ip ORDER BY frags DESC, src_ip LIMIT :max_sources
"""

    def detect(self, ctx: Context) -> list[Alert]:
        p = self.params
        width = dt.timedelta(minutes=self.schedule.minutes)
        hist_start = ctx.start - width * p.baseline_bins
        counts = {}  # (victim, bin) -> best source row
        for r in best_source(ctx.query(self.SQL, start=hist_start), ("bin", "victim"), "frags"):
            counts[(r["victim"], r["bin"])] = r
        alerts = []
        for (victim, b), r in sorted(counts.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            if b < ctx.start or r["frags"] < p.min_fragments:
                continue
            past = [counts[(victim, b - width * i)]["frags"] if (victim, b - width * i) in counts else 0
                    for i in range(1, p.baseline_bins + 1)]
            mean = sum(past) / len(past)
            std = math.sqrt(sum((x - mean) ** 2 for x in past) / max(len(past) - 1, 1))
            if r["frags"] <= mean + p.k * std:
                continue
            sources = ctx.query(self.SOURCES, start=b, end=b + width, victim=victim, via=r["via"], max_sources=p.max_sources)
            sigmas = (r["frags"] - mean) / std if std > 0 else float("inf")
            score = 0.5 * log_ratio(r["frags"], p.min_fragments / 10, 3) + 0.5 * (1.0 if std == 0 else min(1.0, sigmas / (4 * p.k)))
            alerts.append(ctx.alert(
                window_start=b,
                subjects=[ctx.subject("victim", victim, r["frags"], geo=True)]
                + [ctx.subject("attacker", s["src_ip"], s["frags"]) for s in sources],
                score=score,
                confidence=confidence_of(score),
                summary=f"UDP fragment flood at {victim}: {r['frags']:,} fragments in {self.schedule.minutes} min (baseline {mean:,.0f} ± {std:,.0f})",
                metrics={"fragments": r["frags"], "first_fragments": r["first_frags"], "bytes": r["byts"],
                         "baseline_mean": mean, "baseline_std": std},
                evidence=ctx.evidence(
                    evidence_traffic("protocol = 17 AND frags > 0 AND dst_ip = :victim AND via = :via"),
                    victim=victim, via=r["via"], start=b, end=b + width),
            ))
        return alerts
