"""`necoma analyze` on a real Spark standalone cluster and over a lake on shared storage, by configuration.

One master and one worker on 127.0.0.1, started from the pyspark installation
for this module and stopped by PID at its end. The real CLI runs in a
subprocess and must give exactly the alerts DuckDB gives over the same lake.
Two detectors keep it cheap — reflection (flows) and dns_failure_graph (DNS,
with its co-clustering in Python); tests/test_analyze_engines.py compares
every detector on Spark local[2]. Bad configuration must fail in bounded time with one clear
line, never a Java stack trace.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("pyspark")

from tests import test_analyze_reflection as refl  # noqa: E402
from tests import test_analyze_zeus_dga as zeus  # noqa: E402
from tests.spark_standalone import QUICK_JVM, StandaloneCluster, free_port, java_missing  # noqa: E402
from tests.test_analyze_support import DAY, write_lake  # noqa: E402

pytestmark = pytest.mark.slow
needs_java = pytest.mark.skipif(java_missing() is not None, reason=java_missing() or "")

DETECTORS = "reflection,dns_failure_graph"
SHARED_MOUNT = Path("/dev/shm")  # a tmpfs: another mount point than the pytest tmp dir


def build_lake(root: Path) -> Path:
    d, f = zeus.botnet()
    return write_lake(root, flows=f + refl.reflected(11211, 1400) + refl.snmp_polling(), dns=d + zeus.normal_dns())


def necoma(config: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """The real CLI. SPARK_LOCAL_IP keeps the driver on loopback, as the cluster is."""
    env = dict(os.environ, SPARK_LOCAL_IP="127.0.0.1", NO_COLOR="1", COLUMNS="200", **QUICK_JVM)
    env.pop("NECOMA_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "necoma.cli.main", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL)


def write_config(path: Path, data_dir: Path, analyze: dict | None = None) -> Path:
    lines = [f'data_dir = "{data_dir}"']
    if analyze:
        lines.append("[analyze]")
        for key, value in analyze.items():
            if isinstance(value, dict):
                inner = ", ".join(f'"{k}" = "{v}"' for k, v in value.items())
                lines.append(f"{key} = {{ {inner} }}")
            else:
                lines.append(f'{key} = "{value}"')
    path.write_text("\n".join(lines) + "\n")
    return path


def alerts_of(result: subprocess.CompletedProcess) -> list[dict]:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stderr[-4000:]}"
    alerts = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return sorted(({k: v for k, v in a.items() if k != "created"} for a in alerts), key=lambda a: a["id"])


def assert_clear_error(result: subprocess.CompletedProcess, *expected: str) -> None:
    text = " ".join((result.stdout + result.stderr).split())  # rich wraps long messages
    assert result.returncode != 0, text
    for part in expected:
        assert part in text, text
    raw = result.stdout + result.stderr
    assert "Traceback" not in raw and "\tat org.apache" not in raw and "Py4J" not in raw, raw


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if java_missing():
        pytest.skip(java_missing())
    c = StandaloneCluster(tmp_path_factory.mktemp("spark")).start()
    yield c
    c.stop()
    deadline = time.monotonic() + 5
    while c.leftovers() and time.monotonic() < deadline:  # killed members may take a moment to be reaped
        time.sleep(0.1)
    assert not c.leftovers(), f"Spark processes still running in groups {c.leftovers()}"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The lake written under one data_dir; a second, empty data_dir for configs that point at it."""
    here = tmp_path_factory.mktemp("writer")
    build_lake(here / "data" / "lake")
    other = tmp_path_factory.mktemp("analyst")
    return here, other


@pytest.fixture(scope="module")
def reference(site):
    """DuckDB over the lake in place: the alerts every other run must reproduce."""
    here, _ = site
    cfg = write_config(here / "necoma.toml", here / "data")
    alerts = alerts_of(necoma(cfg, "analyze", "--day", DAY.date().isoformat(), "--only", DETECTORS, "--json", "--no-store"))
    assert {a["detector"] for a in alerts} == set(DETECTORS.split(",")), "a detector found nothing: the comparison would prove nothing"
    return alerts


def completed_apps(cluster) -> list[dict]:
    """Applications the master has run to their end, oldest first."""
    return sorted(cluster.state().get("completedapps", []), key=lambda a: a["starttime"])


def test_cli_spark_master_option_runs_on_the_cluster(cluster, site, reference):
    here, _ = site
    cfg = write_config(here / "necoma.toml", here / "data")
    before = len(completed_apps(cluster))
    run = necoma(cfg, "analyze", "--day", DAY.date().isoformat(), "--only", DETECTORS, "--json", "--no-store",
                 "--engine", "spark", "--spark-master", cluster.url)
    assert alerts_of(run) == reference
    apps = completed_apps(cluster)
    assert len(apps) == before + 1 and apps[-1]["name"] == "necoma-analyze", apps  # it ran there, not locally
    assert apps[-1]["cores"] == 1


def test_config_alone_runs_on_the_cluster_over_the_shared_lake(cluster, site, reference, tmp_path):
    """[analyze] engine, spark_master and lake_url — no CLI option, no --day (the newest day is read
    through the engine from lake_url): the analyst's data_dir holds no lake at all."""
    here, other = site
    lake_url = (here / "data" / "lake").as_uri()
    cfg = write_config(tmp_path / "necoma.toml", other / "spark", {
        "engine": "spark", "spark_master": cluster.url, "lake_url": lake_url,
        "spark_conf": {"spark.executor.memory": "512m"}})
    before = len(completed_apps(cluster))
    run = necoma(cfg, "analyze", "--only", DETECTORS, "--json")
    assert alerts_of(run) == reference
    apps = completed_apps(cluster)
    assert len(apps) == before + 1 and apps[-1]["memoryperexecutor"] == 512, apps  # spark_conf reached the cluster
    # the engines only read the shared lake; alerts go to the analyst's own lake
    stored = necoma(cfg, "alerts", "--json")
    assert sorted(json.loads(x)["id"] for x in stored.stdout.splitlines()) == [a["id"] for a in reference]
    assert not (here / "data" / "lake" / "alerts").exists()


@pytest.mark.parametrize("form", ["file_url", "path_on_other_mount"])
def test_duckdb_reads_the_lake_from_configured_shared_storage(site, reference, tmp_path, form):
    here, other = site
    if form == "file_url":
        location = (here / "data" / "lake").as_uri()
    else:
        if not SHARED_MOUNT.is_dir() or SHARED_MOUNT.stat().st_dev == tmp_path.stat().st_dev:
            pytest.skip(f"{SHARED_MOUNT} is not a separate mount point here")
        location = str(build_lake(Path(os.path.realpath(SHARED_MOUNT)) / f"necoma-test-{os.getpid()}" / "lake"))
    try:
        cfg = write_config(tmp_path / "necoma.toml", other / form, {"lake_url": location})
        assert alerts_of(necoma(cfg, "analyze", "--only", DETECTORS, "--json", "--no-store")) == reference
    finally:
        if form == "path_on_other_mount":
            import shutil

            shutil.rmtree(Path(location).parent, ignore_errors=True)


def test_unreachable_master_fails_fast_and_clearly(site, tmp_path):
    here, _ = site
    cfg = write_config(tmp_path / "necoma.toml", here / "data")
    closed = f"spark://127.0.0.1:{free_port()}"
    t = time.monotonic()
    run = necoma(cfg, "analyze", "--day", DAY.date().isoformat(), "--only", DETECTORS, "--engine", "spark",
                 "--spark-master", closed, timeout=60)
    assert time.monotonic() - t < 20
    assert_clear_error(run, f"cannot reach the Spark master {closed}", "Connection refused")


def test_a_master_url_spark_does_not_know_is_refused_before_starting_a_jvm(site, tmp_path):
    here, _ = site
    cfg = write_config(tmp_path / "necoma.toml", here / "data", {"engine": "spark", "spark_master": "head:7077"})
    assert_clear_error(necoma(cfg, "analyze", "--day", DAY.date().isoformat(), timeout=60),
                       "Spark master 'head:7077' is not one Spark knows")


@pytest.mark.parametrize("engine", ["duckdb", "spark"])
def test_missing_lake_url_is_an_error_not_an_empty_lake(site, tmp_path, engine):
    here, _ = site
    gone = (tmp_path / "not-mounted" / "lake").as_uri()
    cfg = write_config(tmp_path / "necoma.toml", here / "data", {"engine": engine, "lake_url": gone, "spark_master": "local[1]"})
    t = time.monotonic()
    run = necoma(cfg, "analyze", "--day", DAY.date().isoformat(), "--only", DETECTORS, timeout=60)
    assert time.monotonic() - t < 20  # refused before a JVM starts
    assert_clear_error(run, f"the lake {gone} does not exist", "check [analyze] lake_url")


def test_duckdb_refuses_a_scheme_it_cannot_read(site, tmp_path):
    here, _ = site
    cfg = write_config(tmp_path / "necoma.toml", here / "data", {"lake_url": "hdfs://namenode:8020/necoma/lake"})
    assert_clear_error(necoma(cfg, "analyze", "--day", DAY.date().isoformat()),
                       "DuckDB cannot read the lake at hdfs://namenode:8020/necoma/lake", "--engine spark")


@needs_java
def test_spark_names_the_missing_filesystem(site, tmp_path):
    """s3a:// needs hadoop-aws, which pyspark does not ship: say so instead of showing an empty lake."""
    here, _ = site
    cfg = write_config(tmp_path / "necoma.toml", here / "data",
                       {"engine": "spark", "spark_master": "local[1]", "lake_url": "s3a://necoma/lake"})
    assert_clear_error(necoma(cfg, "analyze", "--day", DAY.date().isoformat(), timeout=90),
                       "Spark cannot read the lake at s3a://necoma/lake", "S3AFileSystem not found", "hadoop-aws")


def test_a_cluster_that_cannot_run_the_application_fails_in_bounded_time(cluster, site):
    """A worker smaller than spark.executor.memory: Spark accepts the application and waits forever."""
    from necoma.lake.engines import EngineError
    from necoma.lake.engines.spark_engine import SparkEngine

    here, _ = site
    conf = {"spark.executor.memory": "4g", "spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1"}
    t = time.monotonic()
    with pytest.raises(EngineError) as err:
        SparkEngine(here / "data" / "lake", master=cluster.url, conf=conf, executor_wait=3)
    assert time.monotonic() - t < 40
    assert f"the Spark master {cluster.url} gave necoma no executor within 3 s" in str(err.value)
    assert "spark.executor.memory=4g" in str(err.value)
    deadline = time.monotonic() + 10  # the engine stopped its session: the master saw the application end
    while cluster.state().get("activeapps") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not cluster.state().get("activeapps"), cluster.state()["activeapps"]
