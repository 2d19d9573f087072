"""The engines' fast paths: statements translated once (templates), results converted column-wise."""
from __future__ import annotations

import datetime as dt
import decimal

import pyarrow as pa
import pytest

from necoma.lake.engines import base
from necoma.lake.engines.base import bind, normalize, rows_from_arrow
from necoma.lake.engines.duckdb_engine import DuckDBEngine
from necoma.lake.engines.templates import make_template

UTC = dt.timezone.utc
SQL = """
SELECT x, count(*) AS n FROM (SELECT unnest(range(10)) AS x, 'a:b' AS s)
WHERE x IN :keep AND x >= :low AND s LIKE '%:%' AND :label = :label AND x - :shift > -100
  AND current_date > :day
GROUP BY x ORDER BY x LIMIT :n
"""
CASES = [
    {"keep": [1, 2, 3], "low": 0, "label": "it's", "shift": -1, "day": dt.date(2020, 1, 1), "n": 10},
    {"keep": [5, 7], "low": 6, "label": "b", "shift": -3, "day": dt.date(2020, 1, 2), "n": 1},
    {"keep": [], "low": 0, "label": "", "shift": 2, "day": dt.date(2020, 1, 3), "n": 5},
    {"keep": (4,), "low": 1.5, "label": "x", "shift": 0, "day": dt.date(2020, 1, 4), "n": 3},
]


@pytest.fixture()
def engine(tmp_path):
    eng = DuckDBEngine(tmp_path)
    yield eng
    eng.close()


@pytest.mark.parametrize("params", CASES)
def test_template_text_equals_full_binding(engine, params):
    first = engine.native(SQL, params)  # full path only
    second = engine.native(SQL, params)  # full path, and the template is checked against it
    again = engine.native(SQL, params)  # template path
    assert first == second == again == engine.translate(bind(SQL, params))


def test_template_results_match_and_skip_sqlglot(engine, monkeypatch):
    expected = [engine.query(SQL, p) for p in CASES]
    assert expected[0] == [{"x": 1, "n": 1}, {"x": 2, "n": 1}, {"x": 3, "n": 1}]
    assert expected[2] == []  # an empty list matches nothing
    assert [engine.query(SQL, p) for p in CASES] == expected  # the second call makes the template
    # every parameter kind is now templated: no more binding, same answers for new values
    monkeypatch.setattr(base, "bind", lambda *a, **k: pytest.fail("bound again"))
    assert [engine.query(SQL, p) for p in CASES] == expected
    assert engine.query(SQL, {**CASES[0], "keep": [8, 9], "label": "o'k"}) == [{"x": 8, "n": 1}, {"x": 9, "n": 1}]


def test_missing_parameter_still_reported(engine):
    with pytest.raises(base.EngineError, match="without a value: low"):
        engine.query("SELECT 1 AS one WHERE 2 > :low", {})


def test_template_positions_follow_the_output_order():
    tpl = make_template("SELECT x, :b AS b, :a AS a FROM t LIMIT :n", "duckdb", lambda t: t.sql("duckdb"))
    assert tpl.names == ["b", "a", "n"]
    assert tpl.fill({"a": 1, "b": 2, "n": 3}, str) == "SELECT x, 2 AS b, 1 AS a FROM t LIMIT 3"
    assert make_template("SELECT necoma_param_0_ FROM t", "duckdb", lambda t: t.sql("duckdb")) is None


def test_rows_from_arrow_matches_per_value_normalize():
    t = pa.table({
        "i": pa.array([1, None, 3], pa.int64()),
        "d": pa.array([decimal.Decimal(10), None, decimal.Decimal(2**70)], pa.decimal128(38, 0)),
        "d_small": pa.array([decimal.Decimal(5), decimal.Decimal(6), None], pa.decimal128(38, 0)),
        "f": pa.array([decimal.Decimal("1.50"), decimal.Decimal("2.00"), None], pa.decimal128(10, 2)),
        "naive": pa.array([dt.datetime(2026, 3, 2, 10), None, dt.datetime(2026, 3, 2, 11)], pa.timestamp("us")),
        "tokyo": pa.array([dt.datetime(2026, 3, 2, 1, tzinfo=UTC)] * 3, pa.timestamp("us", tz="Asia/Tokyo")),
        "s": pa.array(["a", None, "c"]),
        "m": pa.array([[("k", 1.0)], [], None], pa.map_(pa.string(), pa.float64())),
        "l": pa.array([[1, 2], None, []], pa.list_(pa.int64())),
    })
    rows = rows_from_arrow(t)
    assert rows == [{k: normalize(v) for k, v in r.items()} for r in t.to_pylist()]
    assert rows[0]["d"] == 10 and type(rows[0]["d"]) is int and rows[2]["d"] == 2**70
    assert rows[0]["f"] == 1.5 and rows[1]["f"] == 2 and type(rows[1]["f"]) is int
    assert rows[0]["naive"] == dt.datetime(2026, 3, 2, 10, tzinfo=UTC) and rows[0]["naive"].utcoffset() == dt.timedelta(0)
    assert rows[0]["tokyo"] == dt.datetime(2026, 3, 2, 1, tzinfo=UTC) and rows[0]["m"] == {"k": 1.0}
    assert rows[0]["naive"].tzinfo is UTC and rows[0]["tokyo"].tzinfo is UTC  # as normalize gives


def test_rows_from_arrow_duplicate_names_and_empty():
    t = pa.Table.from_arrays([pa.array([1]), pa.array([2])], names=["a", "a"])
    assert rows_from_arrow(t) == [{"a": 2}]
    assert rows_from_arrow(pa.table({"a": pa.array([], pa.int64())})) == []
