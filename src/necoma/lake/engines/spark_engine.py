"""The cluster engine: Apache Spark SQL over the same Parquet lake.

`master` is `local[N]` for a single machine or `spark://host:7077`,
`yarn`, `k8s://...` for a cluster; the lake location is a path or any URL
Spark's Hadoop layer reads (file://, hdfs://, s3a://). pyspark is imported
only here and only when this engine is chosen, so the default path never
starts a JVM.

Misconfiguration fails fast with one line, not a Java stack trace: a
standalone master is probed over TCP before the JVM starts (Spark itself
retries for a minute), the lake's filesystem is asked for through Hadoop
(an unknown scheme or a missing lake), and on a cluster the engine waits a
bounded time for an executor (a worker too small for spark.executor.memory
would otherwise leave every query waiting forever).

Spark reads Parquet's unsigned integers widened (uint64 as decimal(20,0),
uint32 as bigint, uint16 as int, uint8 as smallint); every view is cast to
one canonical type per column so that results match DuckDB's.
"""
from __future__ import annotations

import re
import socket
import time
from collections.abc import Mapping
from pathlib import Path

import pyarrow as pa
import sqlglot
from sqlglot import exp

from necoma.lake.engines.base import EngineError, Engine, join_url
from necoma.lake.engines.location import local_path, require_directory
from necoma.schemas import TABLES

_SECONDS = {"SECOND": 1, "MINUTE": 60, "HOUR": 3600, "DAY": 86400}


def _interval_seconds(node: exp.Expression) -> int:
    if not isinstance(node, exp.Interval):
        raise EngineError(f"time_bucket needs a literal interval, got {node.sql()}")
    text = node.this.name if node.this is not None else ""
    unit = node.unit.name.upper() if node.unit is not None else ""
    if not unit and " " in text:  # INTERVAL '5 minutes'
        text, unit = text.split(None, 1)
    unit = unit.upper().rstrip("S")
    if unit not in _SECONDS:
        raise EngineError(f"time_bucket interval unit {unit!r} is not portable")
    return int(float(text)) * _SECONDS[unit]


def _spark_fixups(node: exp.Expression) -> exp.Expression:
    """DuckDB-only functions of the portable dialect, rewritten for Spark."""
    if isinstance(node, exp.DateBin):
        n = _interval_seconds(node.this)
        ts = node.expression.sql("spark")
        return sqlglot.parse_one(f"TIMESTAMP_SECONDS(FLOOR(UNIX_SECONDS({ts}) / {n}) * {n})", read="spark")
    return node


def spark_type(t: pa.DataType):
    """The canonical Spark type of an Arrow lake column."""
    from pyspark.sql import types as T

    if pa.types.is_uint64(t) or pa.types.is_uint32(t) or pa.types.is_int64(t):
        return T.LongType()
    if pa.types.is_uint16(t) or pa.types.is_int32(t):
        return T.IntegerType()
    if pa.types.is_uint8(t) or pa.types.is_int16(t):
        return T.ShortType()
    if pa.types.is_int8(t):
        return T.ByteType()
    if pa.types.is_floating(t):
        return T.DoubleType()
    if pa.types.is_boolean(t):
        return T.BooleanType()
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return T.StringType()
    if pa.types.is_timestamp(t):
        return T.TimestampType()
    if pa.types.is_date(t):
        return T.DateType()
    if pa.types.is_binary(t):
        return T.BinaryType()
    if pa.types.is_map(t):
        return T.MapType(spark_type(t.key_type), spark_type(t.item_type))
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return T.ArrayType(spark_type(t.value_type))
    if pa.types.is_struct(t):
        return T.StructType([T.StructField(f.name, spark_type(f.type)) for f in t])
    raise TypeError(f"no Spark type for {t}")


def spark_schema(schema: pa.Schema):
    from pyspark.sql import types as T

    return T.StructType([T.StructField(f.name, spark_type(f.type)) for f in schema])


def java_message(exc: BaseException) -> str:
    """The one line that says what went wrong in a Py4J/Spark error (not the Java stack trace)."""
    java = getattr(exc, "java_exception", None)
    if java is not None:
        try:
            cause = java
            while cause.getCause() is not None:  # the root cause names the real problem
                cause = cause.getCause()
            return str(cause.toString())
        except Exception:  # the gateway is gone: fall back to the Python text
            pass
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def check_master(master: str, timeout: float = 5.0) -> None:
    """A master URL Spark knows; a standalone master (spark://h1:p1[,h2:p2]) must accept TCP before a
    driver is started for it (else spark-submit prints a Java stack trace, or retries for a minute)."""
    if not (master == "yarn" or master.startswith(("local", "spark://", "k8s://"))):
        raise EngineError(f"Spark master {master!r} is not one Spark knows: local[N], spark://HOST:PORT, yarn or k8s://...")
    if not master.startswith("spark://"):
        return
    problems = []
    for hostport in master.removeprefix("spark://").split(","):
        host, _, port = hostport.strip().rpartition(":")
        if not host or not port.isdigit():
            raise EngineError(f"Spark master {master!r}: {hostport!r} is not HOST:PORT (spark://head:7077)")
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
            return
        except OSError as exc:
            problems.append(f"{hostport}: {exc.strerror or exc}")
    raise EngineError(
        f"cannot reach the Spark master {master} ({'; '.join(problems)}): is it running? "
        "Check --spark-master or [analyze] spark_master")


class SparkEngine(Engine):
    name = "spark"

    def __init__(
        self,
        location: str | Path,
        *,
        master: str = "local[2]",
        conf: Mapping[str, str] | None = None,
        session=None,
        must_exist: bool = False,
        executor_wait: float = 60.0,
    ) -> None:
        """`must_exist`: a configured lake location must be there (see DuckDBEngine); `executor_wait`:
        seconds a cluster may take to give the application its first executor."""
        loc = str(location)
        path = local_path(loc)
        if path is not None and must_exist:  # before starting a JVM for nothing
            require_directory(path, loc)
        self.location = path.resolve().as_uri() if path is not None else loc
        self._owns_session = session is None
        if session is None:
            check_master(master)
        self.spark = session or self._start(master, conf or {})
        try:
            if self._owns_session and master.startswith("spark://"):
                self._wait_for_executor(master, executor_wait)
            self._check_lake(must_exist)
            self.refresh()
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _start(master: str, conf: Mapping[str, str]):
        try:
            from pyspark.sql import SparkSession
        except ImportError:
            raise EngineError("the Spark engine needs pyspark: pip install 'necoma[spark]'") from None
        builder = (
            SparkSession.builder.master(master)
            .appName("necoma-analyze")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.shuffle.partitions", "8")
            .config("spark.sql.ansi.enabled", "false")
        )
        for key, value in conf.items():
            builder = builder.config(key, str(value))
        try:
            spark = builder.getOrCreate()
        except Exception as exc:  # a bad master URL, no Java, a bad setting
            raise EngineError(f"Spark did not start with master {master!r}: {java_message(exc)}") from None
        spark.sparkContext.setLogLevel("FATAL")
        return spark

    def _wait_for_executor(self, master: str, seconds: float) -> None:
        """A standalone cluster accepts an application even when no worker can run it."""
        status = self.spark.sparkContext._jsc.sc().getExecutorMemoryStatus
        deadline = time.monotonic() + seconds
        while status().size() < 2:  # the driver counts as one
            if time.monotonic() > deadline:
                memory = self.spark.conf.get("spark.executor.memory", "1g")
                raise EngineError(
                    f"the Spark master {master} gave necoma no executor within {seconds:.0f} s: are workers "
                    f"registered with free cores and at least spark.executor.memory={memory}?")
            time.sleep(0.2)

    def _check_lake(self, must_exist: bool) -> None:
        """The lake's filesystem must be one Hadoop knows; a configured lake must exist."""
        jvm = self.spark._jvm
        try:
            root = jvm.org.apache.hadoop.fs.Path(self.location)
            exists = root.getFileSystem(self.spark._jsc.hadoopConfiguration()).exists(root)
        except Exception as exc:
            raise EngineError(
                f"Spark cannot read the lake at {self.location}: {java_message(exc)} (file:// and hdfs:// work "
                "as shipped; s3a:// needs the hadoop-aws jars in spark.jars)") from None
        if must_exist and not exists:
            raise EngineError(f"the lake {self.location} does not exist (check [analyze] lake_url)")

    def refresh(self) -> None:
        """Forget the table views: each is (re)created when a query first names it.

        Reading a table's Parquet footers is a Spark job (about half a second on
        a cluster, 15 tables): a run whose detectors read two tables should not
        pay for all of them."""
        self._views: set[str] = set()

    def _create_view(self, name: str) -> None:
        """One temporary view over a lake table, cast to the canonical types."""
        from pyspark.sql import functions as F

        schema = TABLES[name][0]
        path = join_url(self.location, name)
        want = spark_schema(schema)
        try:
            df = (
                self.spark.read.option("recursiveFileLookup", "true")
                .option("pathGlobFilter", "*.parquet")
                .option("mergeSchema", "true")
                .parquet(path)
            )
        except Exception as exc:
            condition = getattr(exc, "getCondition", lambda: None)()
            if condition not in ("PATH_NOT_FOUND", "UNABLE_TO_INFER_SCHEMA"):  # not merely "no files yet"
                raise EngineError(f"Spark cannot read {path}: {java_message(exc)}") from None
            df = self.spark.createDataFrame([], want)
        have = {f.name: f.dataType for f in df.schema}
        cols = []
        for field in want:
            if field.name not in have:
                cols.append(F.lit(None).cast(field.dataType).alias(field.name))
            elif have[field.name] != field.dataType:
                cols.append(F.col(field.name).cast(field.dataType).alias(field.name))
            else:
                cols.append(F.col(field.name))
        df.select(*cols).createOrReplaceTempView(name)

    def translate(self, tree: exp.Expression) -> str:
        return tree.transform(_spark_fixups).sql("spark")

    def _execute(self, sql: str) -> pa.Table:
        for name in TABLES:
            if name not in self._views and re.search(rf"\b{name}\b", sql, re.IGNORECASE):
                self._create_view(name)  # a column of the same name only costs an unneeded view
                self._views.add(name)
        return self.spark.sql(sql).toArrow()

    def close(self) -> None:
        if self._owns_session:
            self.spark.stop()
