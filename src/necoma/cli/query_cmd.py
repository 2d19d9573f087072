"""`necoma query`: SQL over the lake."""
from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import duckdb
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import typer
from rich.console import Console
from rich.table import Table

from necoma.cli.common import console, fail, settings_from
from necoma.lake import connect


class OutFormat(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"
    parquet = "parquet"


def query(
    ctx: typer.Context,
    sql: str = typer.Argument(..., help="SQL over the lake tables: flows, packets, dns, syslog, urls, iplists, interfaces."),
    fmt: OutFormat = typer.Option(OutFormat.table, "--format", "-f", help="Output format."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write to this file instead of standard output."),
    limit: int = typer.Option(100, "--limit", help="Rows shown in table format (other formats write all rows)."),
) -> None:
    """Run SQL over the lake (DuckDB dialect) and print the result.

    Example: necoma query "SELECT qname, count(*) n FROM dns GROUP BY 1 ORDER BY n DESC LIMIT 10"
    """
    settings = settings_from(ctx)
    con = connect(settings.lake_path)
    try:
        result = con.execute(sql).to_arrow_table()
    except duckdb.Error as exc:
        fail(f"query failed: {exc}")
    if fmt is OutFormat.table:
        table = Table(show_lines=False)
        for name in result.column_names:
            table.add_column(name, overflow="fold")
        for row in result.slice(0, limit).to_pylist():
            table.add_row(*["" if v is None else str(v) for v in row.values()])
        if out:
            with open(out, "w") as fh:
                Console(file=fh, width=200).print(table)
        else:
            console.print(table)
        if result.num_rows > limit:
            console.print(f"({result.num_rows} rows, {limit} shown; use --limit or --format csv)")
        return
    if fmt is OutFormat.parquet:
        if out is None and sys.stdout.isatty():
            fail("refusing to write Parquet to a terminal; use --out FILE or redirect")
        pq.write_table(result, out or sys.stdout.buffer)
        return
    sink = open(out, "wb") if out else sys.stdout.buffer
    try:
        if fmt is OutFormat.csv:
            pacsv.write_csv(result, sink)
        else:
            for row in result.to_pylist():
                sink.write((json.dumps(row, default=str) + "\n").encode())
        sink.flush()
    finally:
        if out:
            sink.close()

