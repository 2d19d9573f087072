"""Expose every lake table as a DuckDB view.

Views read `*.parquet` only, never the `.parquet.tmp` files of a write in
progress. A table with no files yet is still a view, with its full schema and
no rows, so queries and detectors never fail on an empty lake.
"""
from __future__ import annotations

from pathlib import Path

import duckdb

from necoma.schemas import TABLES


def table_files(root: Path, table: str) -> list[Path]:
    return sorted((Path(root) / table).glob("**/*.parquet"))


def _quote(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def connect(root: Path, con: duckdb.DuckDBPyConnection | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with one view per lake table."""
    con = con or duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    root = Path(root)
    for name, (schema, _, _) in TABLES.items():
        if table_files(root, name):
            pattern = str((root / name).resolve()) + "/**/*.parquet"
            con.execute(
                f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM "
                f"read_parquet({_quote(pattern)}, hive_partitioning=false, union_by_name=true)"
            )
        else:
            empty = schema.empty_table()
            con.register(f"_empty_{name}", empty)
            con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM _empty_{name}")
    return con
