"""The detectors' fast paths give what the plain queries they replaced give, on the analysis benchmark's lake.

- `time_bin` on DuckDB: integer arithmetic on the epoch instead of date_trunc / time_bucket (ICU);
- heavy_hitter: one pass (per-address sums, prefixes cut from distinct addresses, joins instead of
  windows) instead of the prefix, host-rule and own-history queries;
- dns_amplifier: only the pairs with one large (or fragmented) response are summed.
"""
from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import pytest

from necoma.analyze.detector import Context, Schedule
from necoma.analyze.detectors.dns_amplifier import DnsAmplifier
from necoma.analyze.detectors.heavy_hitter import V4_KEY, HeavyHitter
from necoma.analyze.traffic import TRAFFIC
from necoma.lake.engines import open_engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import analyze_lake  # noqa: E402

DAY = analyze_lake.DAY


@pytest.fixture(scope="module")
def eng(tmp_path_factory):
    lake = analyze_lake.ensure_lake(tmp_path_factory.mktemp("bench"), 300_000, log=lambda _: None)
    with open_engine("duckdb", lake) as e:
        yield e


def ctx(eng, schedule=Schedule.hourly(), epoch=True):
    c = Context(engine=eng, start=DAY, end=DAY + dt.timedelta(days=1), schedule=schedule)
    if not epoch:
        c.expand_macros = lambda sql: Context(engine=None, start=DAY, end=DAY, schedule=schedule).expand_macros(sql)
    return c


@pytest.mark.parametrize("schedule", [Schedule.hourly(), Schedule.daily(), Schedule.sliding(5), Schedule.sliding(15)])
@pytest.mark.parametrize("table,col", [("flows", "start_time"), ("packets", "time"), ("dns", "time")])
def test_epoch_bins_are_date_trunc_bins(eng, schedule, table, col):
    sql = f"SELECT {col} AS t, time_bin({col}) AS bin FROM {table} ORDER BY {col}"
    fast, plain = ctx(eng, schedule).query(sql), ctx(eng, schedule, epoch=False).query(sql)
    assert "epoch_us" in ctx(eng, schedule).expand_macros(sql).lower()
    assert "epoch_us" not in ctx(eng, schedule, epoch=False).expand_macros(sql).lower()
    assert len(fast) > 1000 and fast == plain


@pytest.mark.parametrize("minutes", [5, 15])
def test_time_bin_of_a_given_width_is_time_bucket(eng, minutes):
    sql = f"SELECT time AS t, time_bin(time, {minutes}) AS bin FROM packets ORDER BY time"
    fast, plain = ctx(eng).query(sql), ctx(eng, epoch=False).query(sql)
    bucket = eng.query(f"SELECT time AS t, time_bucket(INTERVAL '{minutes} minutes', time) AS bin FROM packets ORDER BY time")
    assert len(fast) > 1000 and fast == plain == bucket
    with pytest.raises(ValueError, match="whole number of minutes"):
        ctx(eng).expand_macros("SELECT time_bin(time, minutes) FROM packets")


# what heavy_hitter ran before its one-pass query
PREFIXES = f"""
WITH {TRAFFIC.strip()},
sides AS (
    SELECT t, via, 'source' AS side, {V4_KEY.format(c="src_ip")} AS k, byts, pkts FROM traffic
    UNION ALL
    SELECT t, via, 'destination' AS side, {V4_KEY.format(c="dst_ip")} AS k, byts, pkts FROM traffic
)
SELECT time_bin(t) AS bin, via, side, k, sum(byts) AS byts, sum(pkts) AS pkts FROM sides GROUP BY time_bin(t), via, side, k
"""
HOSTS = f"""
WITH {TRAFFIC.strip()},
per_host AS (SELECT time_bin(t) AS bin, via, src_ip AS host, sum(byts) AS byts, sum(pkts) AS pkts FROM traffic
             GROUP BY time_bin(t), via, src_ip),
stats AS (SELECT *, avg(pkts) OVER (PARTITION BY bin, via) AS mean,
                    stddev_samp(pkts) OVER (PARTITION BY bin, via) AS std FROM per_host)
SELECT bin, via, host, byts, pkts, mean, std, pkts >= :min_host_packets AND pkts > mean + :k * coalesce(std, 0) AS heavy
FROM stats
"""


def test_heavy_hitter_one_pass_equals_the_plain_queries(eng):
    p = HeavyHitter.Params()
    c = ctx(eng, epoch=False)
    start = DAY - dt.timedelta(hours=p.novelty_reports)
    near = 0.999 * p.min_share
    main = ctx(eng).query(HeavyHitter.MAIN, start=start, near=near, k=p.k, min_host_packets=p.min_host_packets)
    # prefixes: every hour of each prefix near the share in some hour, `near` where it is
    keys = c.query(PREFIXES, start=start)
    totals = {}
    for r in keys:
        t = totals.setdefault((r["bin"], r["via"], r["side"]), [0, 0])
        t[0] += r["byts"]
        t[1] += r["pkts"]
    for r in keys:
        tb, tp = totals[(r["bin"], r["via"], r["side"])]
        r["near"] = int(":" in r["k"] or r["byts"] > near * tb or r["pkts"] > near * tp)
    ever = {(r["via"], r["side"], r["k"]) for r in keys if r["near"]}
    want = sorted((r["bin"], r["via"], r["side"], r["k"], r["byts"], r["pkts"], r["near"]) for r in keys
                  if (r["via"], r["side"], r["k"]) in ever)
    got = sorted((r["bin"], r["via"], r["side"], r["k"], r["byts"], r["pkts"], r["near"]) for r in main
                 if r["side"] in ("source", "destination"))
    assert sum(w[-1] for w in want) > 10 and got == want
    assert {(r["bin"], r["via"]): (r["byts"], r["pkts"]) for r in main if r["side"] == "total"} == {
        (b, v): tuple(t) for (b, v, s), t in totals.items() if s == "source"}
    # hosts: every hour of each host over the σ line in some hour, with the hour's mean and σ
    hosts = c.query(HOSTS, start=start, k=p.k, min_host_packets=p.min_host_packets)
    hot = {(r["via"], r["host"]) for r in hosts if r["heavy"]}
    want = sorted((r["bin"], r["via"], r["host"], r["byts"], r["pkts"], int(r["heavy"])) for r in hosts
                  if (r["via"], r["host"]) in hot)
    rows = [r for r in main if r["side"] == "host"]
    assert len(hot) > 0 and sorted((r["bin"], r["via"], r["k"], r["byts"], r["pkts"], r["near"]) for r in rows) == want
    stats = {(r["bin"], r["via"]): (r["mean"], r["std"]) for r in hosts}
    for r in rows:
        assert (r["mean"], r["std"]) == pytest.approx(stats[(r["bin"], r["via"])], rel=1e-12)


# what dns_amplifier ran before it summed only candidate pairs
DNS_AMPLIFIER = f"""
WITH {TRAFFIC.strip()},
responses AS (
    SELECT time_bin(t) AS bin, via, dst_ip AS victim, src_ip AS resolver,
           sum(byts) AS byts, sum(pkts) AS pkts, sum(frags) AS frags
    FROM traffic WHERE protocol = 17 AND src_port = 53
    GROUP BY time_bin(t), via, dst_ip, src_ip
),
queries AS (
    SELECT time_bin(t) AS bin, via, src_ip AS victim, dst_ip AS resolver, sum(pkts) AS pkts
    FROM traffic WHERE protocol = 17 AND dst_port = 53
    GROUP BY time_bin(t), via, src_ip, dst_ip
)
SELECT r.bin, r.via, r.victim, r.resolver, r.byts, r.pkts, r.frags, coalesce(q.pkts, 0) AS queries
FROM responses r
LEFT JOIN queries q ON q.bin = r.bin AND q.via = r.via AND q.victim = r.victim AND q.resolver = r.resolver
WHERE (r.byts >= :min_response_bytes * r.pkts OR r.frags > 0)
  AND coalesce(q.pkts, 0) < :max_query_ratio * r.pkts
"""


@pytest.mark.parametrize("min_response_bytes,max_query_ratio", [(512.0, 0.2), (200.0, 0.5), (100.0, 2.0)])
def test_dns_amplifier_candidate_pairs_equal_summing_every_pair(eng, min_response_bytes, max_query_ratio):
    c = ctx(eng)
    args = {"min_response_bytes": min_response_bytes, "max_query_ratio": max_query_ratio}
    key = lambda r: (r["bin"], r["via"], r["victim"], r["resolver"])  # noqa: E731
    fast = sorted(c.query(DnsAmplifier.SQL, **args), key=key)
    assert len(fast) >= 10 and fast == sorted(c.query(DNS_AMPLIFIER, **args), key=key)


def _detector_statements():
    from necoma.analyze.registry import all_detectors

    for name, cls in sorted(all_detectors().items()):
        for attr, value in sorted(vars(cls).items()):
            if isinstance(value, str) and "time_bin" in value:
                sql = value.replace("{measure}", "byts").replace("{col}", "src_ip").replace("{where}", "true")
                yield pytest.param(sql, id=f"{name}.{attr}")


@pytest.mark.parametrize("epoch", [True, False])
@pytest.mark.parametrize("sql", list(_detector_statements()))
def test_time_bin_text_rewrite_equals_the_parsed_rewrite(sql, epoch):
    """The text fast path of time_bin gives the same statement as rewriting sqlglot's tree, for every detector's SQL."""
    import sqlglot

    from necoma.analyze.detector import _expand_macros, _expand_parsed

    for schedule in (Schedule.hourly(), Schedule.daily()):
        fast = _expand_macros(sql, schedule, epoch)
        assert "time_bin" not in fast.lower()
        assert sqlglot.parse_one(fast, read="duckdb") == sqlglot.parse_one(_expand_parsed(sql, schedule, epoch), read="duckdb")


def test_time_bin_over_an_expression_still_rewritten():
    sql = "SELECT time_bin(coalesce(t, now())) AS b, time_bin(x.t, 5) AS f FROM x"
    out = Context(engine=None, start=DAY, end=DAY, schedule=Schedule.hourly()).expand_macros(sql)
    assert "time_bin" not in out.lower() and "date_trunc('hour', COALESCE(t, NOW()))".lower() in out.lower()
