"""DNS amplification: resolvers sending large responses to a victim that never asked.

Method. The attacker sends small ANY/TXT/RRSIG queries with the victim's
address as source to many open resolvers, whose large responses (over 512
bytes, often fragmented) all land on the victim. Per bin we take UDP traffic
*from* port 53 and, for each (resolver, destination) pair, the scaled bytes,
packets and fragments. A pair is *amplified* when its mean packet size is at
least `min_response_bytes` or it carries fragments; it is *unsolicited* when
the destination sent that resolver fewer query packets than
`max_query_ratio` × the response packets (a resolver doing its own lookups
asks as often as it is answered). A destination receiving amplified,
unsolicited responses from at least `min_resolvers` resolvers and
`min_bytes` in total is a victim. Amplifiers on the open-resolver list
(`iplists`, list `open_resolver_list`) are counted and named in the summary.

Evidence: traffic from UDP port 53 to the victim in the bin.
"""
from __future__ import annotations

from pydantic import Field

from necoma.analyze import iplists
from necoma.analyze.alert import Alert
from necoma.analyze.detector import Context, Detector, DetectorParams, Schedule
from necoma.analyze.traffic import TRAFFIC, best_source, confidence_of, evidence_traffic, log_ratio, saturate


class DnsAmplifier(Detector):
    name = "dns_amplifier"
    title = "Open resolvers reflecting large DNS responses at a victim that sent no queries"
    raises = "one alert per victim and hour: victim, amplifiers (resolvers); bytes, packets, resolvers, open resolvers"
    tables = ("flows", "packets", "iplists")
    schedule = Schedule.hourly()

    class Params(DetectorParams):
        min_response_bytes: float = Field(512.0, description="Mean response packet size (IP bytes) above which DNS replies count as amplified.")
        max_query_ratio: float = Field(0.2, description="A pair is unsolicited if the destination sent fewer than this × the response packets as queries.")
        min_resolvers: int = Field(5, description="Distinct resolvers sending amplified, unsolicited responses to one victim in a bin.")
        min_bytes: int = Field(1_000_000, description="Amplified bytes (scaled by sampling rate) a victim receives per bin.")
        open_resolver_list: str = Field("open-resolvers", description="Name of the iplists list of known open resolvers.")
        full_resolvers: int = Field(100, description="Resolver count at which the resolver part of the score saturates.")

    # A pair's mean response size can reach the line only if one of its records does (and fragments only if
    # one record has some), so the pairs with such a record are found first and only their rows are summed:
    # the same rows come out, without grouping every ordinary DNS exchange of the day.
    SQL = f"""
WITH {TRAFFIC.strip()},
candidates AS (
    SELECT DISTINCT via, dst_ip AS victim, src_ip AS resolver FROM traffic
    WHERE protocol = 17 AND src_port = 53 AND (byts >= :min_response_bytes * pkts OR frags > 0)
),
responses AS (
    SELECT time_bin(x.t) AS bin, x.via, x.dst_ip AS victim, x.src_ip AS resolver,
           sum(x.byts) AS byts, sum(x.pkts) AS pkts, sum(x.frags) AS frags
    FROM traffic x JOIN candidates c ON x.via = c.via AND x.dst_ip = c.victim AND x.src_ip = c.resolver
    WHERE x.protocol = 17 AND x.src_port = 53
    GROUP BY time_bin(x.t), x.via, x.dst_ip, x.src_ip
),
queries AS (
    SELECT time_bin(x.t) AS bin, x.via, x.src_ip AS victim, x.dst_ip AS resolver, sum(x.pkts) AS pkts
    FROM traffic x JOIN candidates c ON x.via = c.via AND x.src_ip = c.victim AND x.dst_ip = c.resolver
    WHERE x.protocol = 17 AND x.dst_port = 53
    GROUP BY time_bin(x.t), x.via, x.src_ip, x.dst_ip
)
SELECT r.bin, r.via, r.victim, r.resolver, r.byts, r.pkts, r.frags, coalesce(q.pkts, 0) AS queries
FROM responses r
LEFT JOIN queries q ON q.bin = r.bin AND q.via = r.via AND q.victim = r.victim AND q.resolver = r.resolver
WHERE (r.byts >= :min_response_bytes * r.pkts OR r.frags > 0)
  AND coalesce(q.pkts, 0) < :max_query_ratio * r.pkts
"""

    def detect(self, ctx: Context) -> list[Alert]:
        p = self.params
        victims: dict[tuple, dict] = {}
        for r in ctx.query(self.SQL, min_response_bytes=p.min_response_bytes, max_query_ratio=p.max_query_ratio):
            v = victims.setdefault((r["bin"], r["victim"], r["via"]), {"byts": 0, "pkts": 0, "frags": 0, "res": {}})
            for k in ("byts", "pkts", "frags"):
                v[k] += r[k]
            v["res"][r["resolver"]] = r["byts"]
        rows = [{"bin": b, "victim": vic, "via": via, **v} for (b, vic, via), v in victims.items()]
        found = [r for r in best_source(rows, ("bin", "victim")) if len(r["res"]) >= p.min_resolvers and r["byts"] >= p.min_bytes]
        open_resolvers = iplists.members(ctx.engine, p.open_resolver_list, {a for r in found for a in r["res"]})
        alerts = []
        for r in found:
            n = len(r["res"])
            listed = sorted(set(r["res"]) & open_resolvers)
            score = 0.5 * saturate(n, p.full_resolvers) + 0.5 * log_ratio(r["byts"], p.min_bytes / 10, 3)
            alerts.append(ctx.alert(
                window_start=r["bin"],
                subjects=[ctx.subject("victim", r["victim"], r["byts"], geo=True)]
                + [ctx.subject("amplifier", a, b, geo=True) for a, b in r["res"].items()],
                score=score,
                confidence=confidence_of(score),
                summary=f"DNS amplification at {r['victim']}: {n} resolvers ({len(listed)} on the open-resolver list), {r['byts']:,} bytes",
                metrics={"bytes": r["byts"], "packets": r["pkts"], "fragments": r["frags"], "resolvers": n,
                         "open_resolvers": len(listed), "mean_packet_bytes": r["byts"] / max(r["pkts"], 1)},
                evidence=ctx.evidence(
                    evidence_traffic("protocol = 17 AND src_port = 53 AND dst_ip = :victim AND via = :via"),
                    victim=r["victim"], via=r["via"], start=r["bin"], end=ctx.bin_end(r["bin"])),
            ))
        return alerts
