"""Anomalous heavy hitters: prefixes or hosts suddenly carrying a large share of the traffic.

Method, two rules evaluated hourly:

(a) NECOMA's rule: every hour, source and destination prefixes (/24 IPv4,
    /48 IPv6) carrying more than `min_share` of the hour's bytes or packets.
(b) Hashdoop's simple detector: hosts (as sources) whose packet count in the
    hour exceeds the mean + `k`·σ over all hosts of that hour, and at least
    `min_host_packets`.

A heavy finding is reported only if it is new in two senses:

- NECOMA's novelty: the same prefix/host was not heavy in any of the
  previous `novelty_reports` hourly reports (history before the analysed
  range is read, so warm-up hours count), and at least
  `min_history_reports` hours precede (learning);
- its own volume surged: its bytes or packets this hour exceed its own
  mean over those previous hours (absent hours count as zero) by `k`·σ and
  by the factor `min_growth`. A steady heavy hitter whose *share* crosses
  the line only because the rest of the network went quiet (a backup's ACK
  stream in the night trough) is not new.

A heavy hitter is also a sustained new *pair*, not a whole network growing
through the day, a busy server, nor a burst. A prefix is reported only when
one host behind it carries at least `min_top_host_share` of its bytes; a
source prefix (and a host) only when that host sends that share of its
bytes (hosts: packets) to one destination, and that pair is sustained: its
busiest 5 minutes hold at most `max_burst_share` of the pair's hour. A
destination prefix may receive from many sources (a flood's victim is
reported) but must be sustained itself. So one large download is a burst,
and a CDN whose hour crosses the line with a few unrelated downloads to
many clients stays silent, while an upload streaming all hour is
reported.

Subjects: the prefix (role source/destination) with the hosts behind it
that made it new (at least `min_share` of its bytes and a surge against
their own history; steady neighbours in the same /24 are not named), or the
host. Evidence: the prefix's or host's traffic in the hour.
"""
from __future__ import annotations

import datetime as dt

from pydantic import Field

from necoma.analyze.alert import Alert
from necoma.analyze.detector import Context, Detector, DetectorParams, Schedule
from necoma.analyze.prefixes import prefix_of
from necoma.analyze.traffic import TRAFFIC, best_source, confidence_of, mean_std, saturate

V4_KEY = "CASE WHEN {c} LIKE '%:%' THEN {c} ELSE regexp_replace({c}, '[.][0-9]+$', '') END"


class HeavyHitter(Detector):
    name = "heavy_hitter"
    title = "New prefixes or hosts suddenly carrying a large share of bytes or packets"
    raises = "per hour: a source/destination prefix over the share (with its top hosts), or a host far above all hosts' packets"
    tables = ("flows", "packets")
    schedule = Schedule.hourly()
    history = dt.timedelta(hours=24)

    class Params(DetectorParams):
        min_share: float = Field(0.10, description="Share of the hour's bytes or packets that makes a prefix heavy (NECOMA: 10 %).")
        novelty_reports: int = Field(24, description="Report only if not heavy in this many previous hourly reports.")
        min_history_reports: int = Field(3, description="Hours of data that must precede before anything is reported (learning).")
        k: float = Field(3.0, description="Host rule: packets above the mean + k·σ over all hosts of the hour (Hashdoop).")
        min_host_packets: int = Field(10_000, description="Host rule: scaled packets per hour below which a host is never reported.")
        top_hosts: int = Field(3, description="Heaviest hosts named inside a reported prefix.")
        min_top_host_share: float = Field(0.5, description="Report a prefix only if its heaviest host carries this share of its bytes; a host only if its heaviest peer gets this share of its packets (a new pair).")
        min_growth: float = Field(2.0, description="A new heavy hitter's own bytes or packets must also exceed its mean over the previous `novelty_reports` hours by k·σ and by this factor (steady ones whose share only rises when the network is quiet stay silent).")
        max_burst_share: float = Field(0.5, description="Largest share of the hour its busiest 5 minutes may hold (a destination prefix's bytes; a source's or host's heaviest pair's bytes or packets); above, a burst is not reported.")

    # One pass for both rules: per hour and observation, every source and destination address, summed (the
    # host rule's input); its prefixes summed from those (a /24 cut for each address, not for each flow). Rows
    # back: the hour's totals; every hour of each prefix over (nearly) the share in some hour (its own history
    # comes with it), `near` saying in which; every hour of each host over the σ line in some hour, likewise.
    # The exact tests are redone in Python. IPv6 rows come back per address (portable SQL cannot cut a /48).
    # Joins on small distinct sets instead of window functions: DuckDB's partitioned windows cost a sort each.
    MAIN = f"""
WITH {TRAFFIC.strip()},
per_addr AS (
    SELECT time_bin(t) AS bin, via, 'source' AS side, src_ip AS a, sum(byts) AS byts, sum(pkts) AS pkts, count(*) AS n
    FROM traffic GROUP BY time_bin(t), via, src_ip
    UNION ALL
    SELECT time_bin(t) AS bin, via, 'destination' AS side, dst_ip AS a, sum(byts) AS byts, sum(pkts) AS pkts, count(*) AS n
    FROM traffic GROUP BY time_bin(t), via, dst_ip
),
per_key AS (SELECT bin, via, side, {V4_KEY.format(c="a")} AS k, sum(byts) AS byts, sum(pkts) AS pkts, sum(n) AS n
            FROM per_addr GROUP BY bin, via, side, {V4_KEY.format(c="a")}),
totals AS (SELECT bin, via, side, sum(byts) AS tot_b, sum(pkts) AS tot_p, sum(n) AS tot_n FROM per_key GROUP BY bin, via, side),
marked AS (SELECT p.bin, p.via, p.side, p.k, p.byts, p.pkts, t.tot_b, t.tot_p, t.tot_n,
                  CASE WHEN p.k LIKE '%:%' OR p.byts > :near * t.tot_b OR p.pkts > :near * t.tot_p THEN 1 ELSE 0 END AS near
           FROM per_key p JOIN totals t ON p.bin = t.bin AND p.via = t.via AND p.side = t.side),
near_keys AS (SELECT DISTINCT via, side, k FROM marked WHERE near = 1),
stats AS (SELECT bin, via, avg(pkts) AS mean, stddev_samp(pkts) AS std FROM per_addr WHERE side = 'source' GROUP BY bin, via),
hosts AS (SELECT a.bin, a.via, a.a, a.byts, a.pkts, s.mean, s.std,
                 CASE WHEN a.pkts >= :min_host_packets AND a.pkts > s.mean + :k * coalesce(s.std, 0) THEN 1 ELSE 0 END AS heavy
          FROM per_addr a JOIN stats s ON a.bin = s.bin AND a.via = s.via WHERE a.side = 'source'),
hot_hosts AS (SELECT DISTINCT via, a FROM hosts WHERE heavy = 1)
SELECT 'total' AS side, bin, via, CAST(NULL AS VARCHAR) AS k, tot_b AS byts, tot_p AS pkts, tot_n AS n, 0 AS near,
       CAST(NULL AS DOUBLE) AS mean, CAST(NULL AS DOUBLE) AS std FROM totals WHERE side = 'source'
UNION ALL
SELECT m.side, m.bin, m.via, m.k, m.byts, m.pkts, m.tot_n AS n, m.near, CAST(NULL AS DOUBLE) AS mean, CAST(NULL AS DOUBLE) AS std
FROM marked m JOIN near_keys n ON m.via = n.via AND m.side = n.side AND m.k = n.k
UNION ALL
SELECT 'host' AS side, h.bin, h.via, h.a AS k, h.byts, h.pkts, 0 AS n, h.heavy AS near, h.mean, h.std
FROM hosts h JOIN hot_hosts o ON h.via = o.via AND h.a = o.a
"""

    TOP = f"""
WITH {TRAFFIC.strip()}
SELECT {{col}} AS host, sum(byts) AS byts FROM traffic
WHERE via = :via AND {V4_KEY.format(c="{col}")} IN :keys
GROUP BY {{col}} ORDER BY byts DESC, host LIMIT :n
"""

    # the busiest 5 minutes of a prefix's hour (5-minute bins by time_bin: DuckDB's time_bucket costs an ICU call a row)
    BURST = f"""
WITH {TRAFFIC.strip()},
sub AS (SELECT time_bin(t, 5) AS five, sum({{measure}}) AS m FROM traffic
        WHERE via = :via AND {{where}} GROUP BY time_bin(t, 5))
SELECT max(m) AS busiest, sum(m) AS total FROM sub
"""

    SERIES = f"""
WITH {TRAFFIC.strip()}
SELECT time_bin(t) AS bin, {{col}} AS host, sum(byts) AS byts, sum(pkts) AS pkts FROM traffic
WHERE via = :via AND {{col}} IN :hosts GROUP BY time_bin(t), {{col}}
"""

    # for many hosts in one pass: each (hour, host)'s heaviest peer (ties: the lower address), with that pair's hour
    # total and busiest 5 minutes
    PAIRS = f"""
WITH {TRAFFIC.strip()},
sub AS (SELECT time_bin(t) AS bin, time_bin(t, 5) AS five, src_ip AS host, dst_ip AS peer, sum({{measure}}) AS m
        FROM traffic WHERE via = :via AND src_ip IN :hosts GROUP BY time_bin(t), time_bin(t, 5), src_ip, dst_ip),
pairs AS (SELECT bin, host, peer, sum(m) AS total, max(m) AS busiest FROM sub GROUP BY bin, host, peer),
ranked AS (SELECT bin, host, peer, total, busiest,
                  row_number() OVER (PARTITION BY bin, host ORDER BY total DESC, peer) AS r FROM pairs)
SELECT bin, host, peer, total, busiest FROM ranked WHERE r = 1
"""

    def _sustained(self, ctx: Context, b: dt.datetime, side: str, key: str, h: dict) -> bool:
        if side == "host":
            return (b, key) in h["pair_ok"]  # a new pair, not a busy server talking to many peers (see _pairs_ok)
        col = "src_ip" if side == "source" else "dst_ip"
        q = self.BURST.format(measure="byts", where=f"{V4_KEY.format(c=col)} IN :keys")
        return self._spread(ctx.query(q, start=b, end=ctx.bin_end(b), via=h["via"], keys=sorted(h["keys"]))[0])

    def _spread(self, r: dict) -> bool:
        return bool(r["total"]) and r["busiest"] <= self.params.max_burst_share * r["total"]

    def detect(self, ctx: Context) -> list[Alert]:
        p = self.params
        hist = ctx.start - dt.timedelta(hours=p.novelty_reports)
        # (a) prefixes: aggregate IPv6 hosts to their /48 here (portable SQL cannot), pick the source with more records
        totals: dict[tuple, tuple[int, int, int]] = {}
        agg: dict[tuple, dict] = {}
        history: list[dict] = []  # other hours of prefixes heavy in one, and every hour of hosts over the σ line in one
        for r in ctx.query(self.MAIN, start=hist, near=0.999 * p.min_share, k=p.k, min_host_packets=p.min_host_packets):
            if r["side"] == "total":
                totals[(r["bin"], r["via"])] = (r["byts"], r["pkts"], r["n"])
            elif r["side"] != "host" and r["near"]:
                self._add(agg, r)
            else:
                history.append(r)
        # per hour, the observation with the most records (sparse sFlow samples make random heavy hitters)
        rows = [{"bin": b, "via": v, "n": t[2]} for (b, v), t in totals.items()]
        via_of = {r["bin"]: r["via"] for r in best_source(rows, ("bin",), "n")}
        heavy: dict[dt.datetime, dict[tuple, dict]] = {b: {} for b in via_of}
        for (b, via, side, pfx), a in agg.items():
            tb, tp, _ = totals[(b, via)]
            if via == via_of[b] and (a["byts"] > p.min_share * tb or a["pkts"] > p.min_share * tp):
                heavy[b][(side, pfx)] = {**a, "byte_share": a["byts"] / tb, "packet_share": a["pkts"] / max(tp, 1), "via": via}
        # (b) hosts far above the hour's mean; the own history of every host that was, and of every heavy prefix
        own: dict[tuple, dict[str, dict]] = {}
        for r in history:
            if r["side"] != "host":
                self._add(agg, r)
                continue
            own.setdefault(("host", r["via"]), {}).setdefault(r["k"], {})[r["bin"]] = (r["byts"], r["pkts"])
            if r["near"] and r["via"] == via_of.get(r["bin"]):
                heavy[r["bin"]][("host", r["k"])] = {"pkts": r["pkts"], "mean": r["mean"], "std": r["std"] or 0.0, "via": r["via"]}
        # novelty: not heavy in any of the previous reports, warm-up hours included
        novel: list[tuple[dt.datetime, str, str, dict]] = []
        for b in sorted(heavy):
            prior = [heavy[b - dt.timedelta(hours=i)] for i in range(1, p.novelty_reports + 1) if b - dt.timedelta(hours=i) in heavy]
            if b < ctx.start or len(prior) < p.min_history_reports:
                continue
            novel += [(b, side, key, h) for (side, key), h in sorted(heavy[b].items())
                      if not any((side, key) in seen for seen in prior)]
        # own history: a share can cross the line only because the whole network got quiet (a backup's steady
        # ACK stream in the night trough); only an entity whose own volume surged is reported
        past_of = {b: [bb for bb in via_of if b - dt.timedelta(hours=p.novelty_reports) <= bb < b and via_of[bb] == via_of[b]]
                   for b in {b for b, _, _, _ in novel}}
        surged_hosts: dict[str, list[tuple[dt.datetime, str, float]]] = {}  # via -> (hour, host, packets)
        for b, side, key, h in novel:
            if side == "host":
                series = own[("host", h["via"])].get(key, {})
                if self._surge(series.get(b, (0, 0))[1], [series.get(bb, (0, 0))[1] for bb in past_of[b]]):
                    surged_hosts.setdefault(h["via"], []).append((b, key, h["pkts"]))
        pair_ok = {via: self._pairs_ok(ctx, via, items, "pkts") for via, items in surged_hosts.items()}
        alerts = []
        for b, side, key, h in novel:
            past = past_of[b]
            if side == "host":
                surged = (b, key, h["pkts"]) in surged_hosts.get(h["via"], [])
                h = {**h, "pair_ok": pair_ok.get(h["via"], set())}
            else:
                def val(bb, m):
                    return agg.get((bb, h["via"], side, key), {}).get(m, 0)
                surged = any(self._surge(val(b, m), [val(bb, m) for bb in past]) for m in ("byts", "pkts"))
            if surged and self._sustained(ctx, b, side, key, h):
                alert = self._alert(ctx, b, side, key, h, past)
                alerts += [alert] if alert else []
        return alerts

    @staticmethod
    def _add(agg: dict, r: dict) -> None:
        """A prefix row of MAIN into `agg`, keyed by (hour, via, side, prefix): IPv6 addresses summed to their /48."""
        pfx = prefix_of(r["k"], 24, 48) if ":" in r["k"] else f"{r['k']}.0/24"
        a = agg.setdefault((r["bin"], r["via"], r["side"], pfx), {"byts": 0, "pkts": 0, "keys": set()})
        a["byts"] += r["byts"]
        a["pkts"] += r["pkts"]
        a["keys"].add(r["k"])

    def _pairs_ok(self, ctx: Context, via: str, items: list[tuple[dt.datetime, str, float]], measure: str) -> set:
        """The (hour, host) of `items` (hour, host, its total `measure`) whose heaviest peer gets
        `min_top_host_share` of that total, and that pair is sustained (several downloads from one server can add
        up over an hour; one pair's single transfer is still a burst); one query for all."""
        if not items:
            return set()
        hosts = sorted({host for _, host, _ in items})
        start, end = min(b for b, _, _ in items), ctx.bin_end(max(b for b, _, _ in items))
        top = {(r["bin"], r["host"]): r for r in ctx.query(self.PAIRS.format(measure=measure), start=start, end=end,
                                                          via=via, hosts=hosts)}
        return {(b, host) for b, host, total in items if (b, host) in top
                and top[(b, host)]["total"] >= self.params.min_top_host_share * total and self._spread(top[(b, host)])}

    def _surge(self, value: float, past: list[float]) -> bool:
        """Far above the entity's own past hours (absent hours count as zero): mean + k·σ and `min_growth` × mean."""
        if not past:
            return False
        mean, std = mean_std(past)
        return value > mean + self.params.k * std and value >= self.params.min_growth * mean

    def _host_series(self, ctx: Context, col: str, via: str, hosts: list[str], since: dt.datetime,
                     until: dt.datetime | None = None) -> dict[str, dict[dt.datetime, tuple[int, int]]]:
        """host -> hour -> (bytes, packets) with `col` (src_ip or dst_ip) = host."""
        out: dict[str, dict] = {}
        if hosts:
            for r in ctx.query(self.SERIES.format(col=col), start=since, end=until or ctx.end, via=via, hosts=hosts):
                out.setdefault(r["host"], {})[r["bin"]] = (r["byts"], r["pkts"])
        return out

    def _alert(self, ctx: Context, b: dt.datetime, side: str, key: str, h: dict, past: list[dt.datetime]) -> Alert | None:
        p, end = self.params, ctx.bin_end(b)
        if side == "host":
            sigmas = (h["pkts"] - h["mean"]) / h["std"] if h["std"] else float("inf")
            score = 0.5 + 0.5 * saturate(sigmas, 10 * p.k)
            return ctx.alert(
                window_start=b, subjects=[ctx.subject("host", key, h["pkts"], geo=True)], score=score,
                confidence=confidence_of(score),
                summary=f"host {key} sent {h['pkts']:,} packets in an hour, {sigmas:.1f}σ above all hosts' mean",
                metrics={"packets": h["pkts"], "hosts_mean": h["mean"], "hosts_std": h["std"]},
                evidence=ctx.evidence(f"WITH {TRAFFIC.strip()}\nSELECT * FROM traffic WHERE src_ip = :host AND via = :via ORDER BY t",
                                      host=key, via=h["via"], start=b, end=end))
        col = "src_ip" if side == "source" else "dst_ip"
        top = ctx.query(self.TOP.format(col=col), start=b, end=end, via=h["via"], keys=sorted(h["keys"]), n=p.top_hosts)
        if not top or top[0]["byts"] < p.min_top_host_share * h["byts"]:
            return None
        if side == "source" and (b, top[0]["host"]) not in self._pairs_ok(ctx, h["via"], [(b, top[0]["host"], top[0]["byts"])], "byts"):
            return None  # a server sending to many clients (CDN, web, mail relay), or one transfer: not a heavy pair
        # name only the hosts that made the prefix new: steady neighbours behind the same /24 are not involved
        series = self._host_series(ctx, col, h["via"], [t["host"] for t in top], min(past), end)
        top = [t for t in top if t["byts"] >= p.min_share * h["byts"]
               and self._surge(t["byts"], [series.get(t["host"], {}).get(bb, (0, 0))[0] for bb in past])]
        if not top:
            return None
        share = max(h["byte_share"], h["packet_share"])
        score = 0.4 + 0.6 * saturate(share - p.min_share, 0.5)
        return ctx.alert(
            window_start=b,
            subjects=[ctx.subject(side, key, h["byts"])] + [ctx.subject("host", t["host"], t["byts"], geo=True) for t in top],
            score=score, confidence=confidence_of(score),
            summary=f"new heavy {side} prefix {key}: {h['byte_share']:.0%} of bytes, {h['packet_share']:.0%} of packets",
            metrics={"bytes": h["byts"], "packets": h["pkts"], "byte_share": h["byte_share"], "packet_share": h["packet_share"]},
            evidence=ctx.evidence(
                f"WITH {TRAFFIC.strip()}\nSELECT * FROM traffic WHERE via = :via AND {V4_KEY.format(c=col)} IN :keys ORDER BY t",
                via=h["via"], keys=sorted(h["keys"]), start=b, end=end))
