"""What every query engine shares: the portable SQL dialect, parameter binding, result normalization.

Detector SQL is written once in *necoma's portable dialect*: DuckDB syntax
restricted to what sqlglot translates faithfully to Spark SQL (plain
SELECT/JOIN/GROUP BY/HAVING/window functions, `date_trunc`, `time_bucket`
with a fixed interval, `unnest`, `CASE`, `coalesce`, `count(DISTINCT)`,
`stddev_samp`, `split_part`, `regexp_*`, `IN`, `LIKE`). Parameters are written
`:name` and bound here, as SQL literals, by rewriting the syntax tree; so the
SQL stored as an alert's evidence is complete and runs on its own.

Results come back as plain Python rows: ints (never Decimal), floats, str,
bool, UTC-aware datetimes, lists and dicts, identical whatever the engine.
"""
from __future__ import annotations

import datetime as dt
import decimal
import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa
import sqlglot
from sqlglot import exp

DIALECT = "duckdb"  # necoma's portable dialect is written in DuckDB syntax


class EngineError(Exception):
    """A query failed on the engine; the message names the engine and the SQL."""


def literal(value: Any) -> exp.Expression:
    """A Python value as a SQL literal expression."""
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, (int, float, decimal.Decimal)):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"cannot bind non-finite float {value}")
        return exp.Literal.number(value)
    if isinstance(value, dt.datetime):
        t = value.astimezone(dt.timezone.utc) if value.tzinfo else value
        return exp.cast(exp.Literal.string(t.strftime("%Y-%m-%d %H:%M:%S.%f")), exp.DataType.build("TIMESTAMPTZ"))
    if isinstance(value, dt.date):
        return exp.cast(exp.Literal.string(value.isoformat()), exp.DataType.build("DATE"))
    if isinstance(value, str):
        return exp.Literal.string(value)
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else list(value)
        if not items:
            # `x IN (NULL)` is never true: an empty list matches nothing, on every engine
            return exp.Tuple(expressions=[exp.Null()])
        return exp.Tuple(expressions=[literal(v) for v in items])
    raise TypeError(f"cannot bind {type(value).__name__} as a SQL literal")


def bind(sql: str, params: Mapping[str, Any] | None = None) -> exp.Expression:
    """Parse portable SQL and replace every `:name` placeholder by its value as a literal."""
    try:
        tree = sqlglot.parse_one(sql, read=DIALECT)
    except sqlglot.errors.ParseError as exc:
        raise EngineError(f"SQL does not parse: {exc}") from None
    params = dict(params or {})
    missing: set[str] = set()

    def replace(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Placeholder) and node.name:
            if node.name not in params:
                missing.add(node.name)
                return node
            return literal(params[node.name])
        return node

    tree = tree.transform(replace)
    if missing:
        raise EngineError(f"SQL parameters without a value: {', '.join(sorted(missing))}")
    return tree


def render(sql: str, params: Mapping[str, Any] | None = None) -> str:
    """Portable SQL with its parameters bound, in the portable dialect (for evidence)."""
    return bind(sql, params).sql(DIALECT, pretty=True)


def normalize(value: Any) -> Any:
    """Engine-independent Python values."""
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)
    if isinstance(value, list):
        if value and all(isinstance(v, tuple) and len(v) == 2 for v in value):  # an Arrow map
            return {normalize(k): normalize(v) for k, v in value}
        return [normalize(v) for v in value]
    if isinstance(value, dict):
        return {k: normalize(v) for k, v in value.items()}
    return value


def _column_values(col: pa.ChunkedArray) -> list[Any]:
    """One result column as engine-independent Python values (what `normalize` gives, column at a time).

    Detectors can get a million rows back (per-hour prefix totals), so the
    common types convert without a per-value Python call."""
    t = col.type
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t) or pa.types.is_string(t) \
            or pa.types.is_large_string(t) or pa.types.is_null(t):
        return col.to_pylist()
    if pa.types.is_decimal(t) and t.scale == 0:  # integer sums (DuckDB HUGEINT, Spark decimal(20,0))
        try:
            return col.cast(pa.int64()).to_pylist()
        except pa.ArrowInvalid:  # beyond int64: exact Python ints
            return [None if v is None else int(v) for v in col.to_pylist()]
    if pa.types.is_timestamp(t):  # stored as UTC instants whatever the zone; naive ones are UTC already
        utc = dt.timezone.utc
        return [None if v is None else v.replace(tzinfo=utc) for v in col.cast(pa.timestamp(t.unit)).to_pylist()]
    return [normalize(v) for v in col.to_pylist()]


def rows_from_arrow(table: pa.Table) -> list[dict[str, Any]]:
    names = table.column_names
    if len(set(names)) != len(names):  # duplicate names: the last one wins, as in a dict
        return [{k: normalize(v) for k, v in row.items()} for row in table.to_pylist()]
    columns = [_column_values(table.column(i)) for i in range(table.num_columns)]
    return [dict(zip(names, values)) for values in zip(*columns)] if columns else [{} for _ in range(table.num_rows)]


class Engine(ABC):
    """A query engine over the lake tables. Detectors see only `query`."""

    name: str = "?"

    @abstractmethod
    def translate(self, tree: exp.Expression) -> str:
        """The bound query in this engine's own SQL."""

    @abstractmethod
    def _execute(self, sql: str) -> pa.Table: ...

    def native(self, sql: str, params: Mapping[str, Any] | None = None) -> str:
        """The portable SQL with its parameters bound, in this engine's SQL (translated once per statement)."""
        templates = self.__dict__.get("_templates")
        if templates is None:
            from necoma.lake.engines.templates import Templates

            templates = self._templates = Templates(
                DIALECT, self.translate, lambda v: self.translate(literal(v)),
                lambda s, p: self.translate(bind(s, p)))
        return templates.native(sql, dict(params or {}))

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run portable SQL with `:name` parameters; rows as engine-independent dicts."""
        native = self.native(sql, params)
        try:
            table = self._execute(native)
        except EngineError:
            raise
        except Exception as exc:  # each engine raises its own error types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise EngineError(f"{self.name}: {first}\n--- SQL ---\n{native}") from exc
        return rows_from_arrow(table)

    def close(self) -> None:
        pass

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def join_url(root: str, *parts: str) -> str:
    return "/".join([root.rstrip("/"), *parts])


def is_url(location: str) -> bool:
    return "://" in location


def tables_in(names: Iterable[str] | None = None) -> list[str]:
    from necoma.schemas import TABLES

    return list(names) if names else list(TABLES)
