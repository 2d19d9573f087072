"""Every detector on DuckDB and on Spark local[2] over the same lake: identical alerts required."""
from __future__ import annotations

import datetime as dt

import pytest

from necoma.analyze.registry import all_detectors
from necoma.analyze.runner import run_detector
from necoma.lake.engines import open_engine
from tests import test_analyze_dns_amplifier as dnsamp
from tests import test_analyze_heavy_hitter as hh
from tests import test_analyze_ntp_amplifier as ntp
from tests import test_analyze_reflection as refl
from tests import test_analyze_ssl_scan as ssl
from tests import test_analyze_udp_fragmentation as frag
from tests import test_analyze_zeus_dga as zeus
from tests.test_analyze_support import DAY, write_lake

pytest.importorskip("pyspark")
pytestmark = pytest.mark.slow

START, END = DAY, DAY + dt.timedelta(days=1)


def build_lake(root):
    d, f = zeus.botnet()
    iplist = [{"network": f"{r}/32", "list_name": "open-resolvers", "first_seen": DAY} for r in dnsamp.RESOLVERS[:10]]
    flows = (ntp.amplified() + ntp.normal_ntp() + dnsamp.attack() + dnsamp.recursive_resolver_traffic()
             + refl.reflected(11211, 1400) + refl.snmp_polling() + ssl.scan(ports=(443, 8443)) + ssl.busy_proxy()
             + hh.background() + hh.exfiltration() + f)
    packets = frag.vpn_background() + frag.fragments(DAY + dt.timedelta(hours=10, minutes=15), frag.VICTIM, 200)
    write_lake(root, flows=flows, packets=packets, dns=d + zeus.normal_dns(), iplists=iplist)
    return root


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    return build_lake(tmp_path_factory.mktemp("lake"))


@pytest.fixture(scope="module")
def spark(lake):
    eng = open_engine("spark", lake, spark_master="local[2]")
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def duck(lake):
    eng = open_engine("duckdb", lake)
    yield eng
    eng.close()


def comparable(alerts):
    return [a.model_dump(exclude={"created"}) for a in sorted(alerts, key=lambda a: a.id)]


@pytest.mark.parametrize("name", list(all_detectors()))
def test_identical_alerts_on_duckdb_and_spark(name, duck, spark):
    cls = all_detectors()[name]
    on_duck = run_detector(cls(), duck, START, END).alerts
    on_spark = run_detector(cls(), spark, START, END).alerts
    assert on_duck, f"{name} found nothing in the test lake: the comparison would prove nothing"
    assert comparable(on_duck) == comparable(on_spark)
    # the evidence SQL is portable too, and returns the same rows on both engines
    for a in on_duck[:3]:
        assert sorted(map(repr, duck.query(a.evidence))) == sorted(map(repr, spark.query(a.evidence)))
        assert duck.query(a.evidence), f"{a.id}: evidence returns no rows"


def test_spark_reads_unsigned_columns_with_canonical_types(spark, duck):
    sql = "SELECT sum(bytes) AS b, max(packets) AS p, max(sampling_rate) AS r, count(*) AS n FROM flows"
    assert spark.query(sql) == duck.query(sql)
    assert isinstance(spark.query(sql)[0]["b"], int)


def test_time_bucket_translated_for_spark(spark, duck):
    sql = ("SELECT time_bucket(INTERVAL '5 minutes', time) AS b, count(*) AS n FROM packets "
           "GROUP BY time_bucket(INTERVAL '5 minutes', time) ORDER BY b LIMIT 5")
    assert spark.query(sql) == duck.query(sql)


def test_empty_tables_are_queryable_on_spark(spark):
    assert spark.query("SELECT count(*) AS n FROM syslog") == [{"n": 0}]
