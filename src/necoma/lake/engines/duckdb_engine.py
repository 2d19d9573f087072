"""The embedded engine: DuckDB over the lake's Parquet files (a path, file://, or a URL through httpfs)."""
from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
from sqlglot import exp

from necoma.lake.catalog import connect
from necoma.lake.engines.base import DIALECT, Engine, EngineError, join_url
from necoma.lake.engines.location import local_path, require_directory, scheme
from necoma.schemas import TABLES

# what DuckDB reads through its httpfs extension; hdfs:// and other Hadoop filesystems need Spark
HTTPFS_SCHEMES = ("s3", "s3a", "s3n", "gs", "gcs", "r2", "http", "https")


def _quote(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


class DuckDBEngine(Engine):
    name = "duckdb"

    def __init__(self, location: str | Path, *, threads: int | None = None, must_exist: bool = False) -> None:
        """`must_exist`: a configured lake location (`[analyze] lake_url`) must be there; the default
        lake path may not exist yet on a fresh install and then reads as empty."""
        self.location = str(location)
        path = local_path(self.location)
        if path is not None and must_exist:
            require_directory(path, self.location)
        self.con = duckdb.connect()
        try:
            # Lake files never change once renamed into place, so their footers can be kept between
            # queries: without this every query re-reads the footer of every file (union_by_name), about
            # 140 ms per query on a 100 M-row day, and a detector runs hundreds of small queries.
            self.con.execute("SET parquet_metadata_cache = true")
            if threads:
                self.con.execute(f"SET threads = {int(threads)}")
            if path is not None:
                connect(path, self.con)
            else:
                self._attach_remote(self.location)
        except BaseException:
            self.con.close()
            raise

    def _attach_remote(self, root: str) -> None:
        """Views over a lake on object storage or HTTP, read through DuckDB's httpfs extension."""
        if scheme(root) not in HTTPFS_SCHEMES:
            raise EngineError(
                f"DuckDB cannot read the lake at {root}: {scheme(root)}:// is not supported. DuckDB reads a path, "
                f"file://, or {', '.join(s + '://' for s in HTTPFS_SCHEMES)} (httpfs); use --engine spark for "
                "hdfs:// and other Hadoop filesystems")
        self.con.execute("SET TimeZone = 'UTC'")
        try:
            self.con.execute("INSTALL httpfs; LOAD httpfs;")
        except duckdb.Error as exc:
            raise EngineError(
                f"DuckDB needs its httpfs extension to read {root} and could not install it ({_first_line(exc)}); "
                "on a machine without internet access copy the extension into ~/.duckdb/extensions, or use a "
                "mounted path (file://) or --engine spark") from None
        for name, (schema, _, _) in TABLES.items():
            pattern = join_url(root, name, "**", "*.parquet")
            try:
                self.con.execute(
                    f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM "
                    f"read_parquet({_quote(pattern)}, hive_partitioning=false, union_by_name=true)"
                )
                self.con.execute(f"SELECT * FROM {name} LIMIT 0")
            except duckdb.Error as exc:
                if "No files found" not in str(exc):  # credentials, network: not an empty table
                    raise EngineError(f"DuckDB cannot read {pattern}: {_first_line(exc)}") from None
                self.con.register(f"_empty_{name}", schema.empty_table())
                self.con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM _empty_{name}")

    def translate(self, tree: exp.Expression) -> str:
        return tree.sql(DIALECT)

    def _execute(self, sql: str) -> pa.Table:
        return self.con.sql(sql).to_arrow_table()

    def close(self) -> None:
        self.con.close()
