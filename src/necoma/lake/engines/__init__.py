"""Query engines over the lake: the only code that knows DuckDB or Spark.

    engine = open_engine("duckdb", "/data/lake")            # embedded, default
    engine = open_engine("spark", "s3a://bucket/lake", spark_master="spark://h:7077")
    rows = engine.query("SELECT count(*) AS n FROM flows WHERE dst_port = :p", {"p": 123})

SQL is necoma's portable dialect (see `base`), translated with sqlglot for
Spark. The Spark engine (and pyspark) is loaded only when asked for.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from necoma.lake.engines.base import DIALECT, Engine, EngineError, bind, normalize, render

ENGINES = ("duckdb", "spark")


def open_engine(
    kind: str,
    location: str | Path,
    *,
    spark_master: str = "local[2]",
    spark_conf: Mapping[str, str] | None = None,
    must_exist: bool = False,
) -> Engine:
    """An engine of `kind` over the lake at `location` (a path or URL). `must_exist`: the location
    was configured (`[analyze] lake_url`), so a missing lake is an error rather than an empty one."""
    if kind == "duckdb":
        from necoma.lake.engines.duckdb_engine import DuckDBEngine

        return DuckDBEngine(location, must_exist=must_exist)
    if kind == "spark":
        from necoma.lake.engines.spark_engine import SparkEngine

        return SparkEngine(location, master=spark_master, conf=spark_conf, must_exist=must_exist)
    raise EngineError(f"unknown engine {kind!r}; choose one of {', '.join(ENGINES)}")


__all__ = ["DIALECT", "ENGINES", "Engine", "EngineError", "bind", "normalize", "open_engine", "render"]
