"""The cluster engine: Apache Spark SQL over the same Parquet lake.

`master` is `local[N]` for a single machine or `spark://host:7077`,
`yarn`, `k8s://...` for a cluster; the lake location is a path or any URL
Spark's Hadoop layer reads (file://, hdfs://, s3a://). pyspark is imported
only here and only when this engine is chosen, so the default path never
starts a JVM.

Spark reads Parquet's unsigned integers widened (uint64 as decimal(20,0),
uint32 as bigint, uint16 as int, uint8 as smallint); every view is cast to
one canonical type per column so that results match DuckDB's.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pyarrow as pa
import sqlglot
from sqlglot import exp

from necoma.lake.engines.base import EngineError, Engine, is_url, join_url
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


class SparkEngine(Engine):
    name = "spark"

    def __init__(
        self,
        location: str | Path,
        *,
        master: str = "local[2]",
        conf: Mapping[str, str] | None = None,
        session=None,
    ) -> None:
        loc = str(location)
        self.location = loc if is_url(loc) else Path(loc).resolve().as_uri()
        self._owns_session = session is None
        self.spark = session or self._start(master, conf or {})
        self.refresh()

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
        spark = builder.getOrCreate()
        spark.sparkContext.setLogLevel("FATAL")
        return spark

    def refresh(self) -> None:
        """(Re)create one temporary view per lake table, cast to the canonical types."""
        from pyspark.sql import functions as F

        for name, (schema, _, _) in TABLES.items():
            path = join_url(self.location, name)
            want = spark_schema(schema)
            try:
                df = (
                    self.spark.read.option("recursiveFileLookup", "true")
                    .option("pathGlobFilter", "*.parquet")
                    .option("mergeSchema", "true")
                    .parquet(path)
                )
            except Exception:  # the table has no files yet
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
        return self.spark.sql(sql).toArrow()

    def close(self) -> None:
        if self._owns_session:
            self.spark.stop()
