"""The lake writer and catalog: partitions, atomic writes, schema conformance, empty tables."""
from __future__ import annotations

from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from necoma.lake import LakeWriter, connect, table_files
from necoma.lake.writer import conform
from necoma.schemas import TABLES


def _flow(hour: int, day: int = 3, **kw) -> dict:
    t = datetime(2026, 12, day, hour, 5, tzinfo=timezone.utc)
    row = {"start_time": t, "end_time": t, "src_ip": "10.0.0.1", "dst_ip": "2001:db8::1",
           "src_port": 1234, "dst_port": 443, "protocol": 6, "packets": 3, "bytes": 180, "source": "pcap"}
    row.update(kw)
    return row


def test_partitions_by_day_and_hour(tmp_path):
    with LakeWriter(tmp_path, tag="t") as w:
        w.write("flows", [_flow(1), _flow(1), _flow(2), _flow(23, day=4)])
    parts = sorted(str(p.relative_to(tmp_path).parent) for p in table_files(tmp_path, "flows"))
    assert parts == ["flows/dt=20261203/hr=01", "flows/dt=20261203/hr=02", "flows/dt=20261204/hr=23"]
    con = connect(tmp_path)
    assert con.execute("SELECT count(*) FROM flows WHERE src_ip = '10.0.0.1'").fetchone()[0] == 4
    assert con.execute("SELECT count(*) FROM flows WHERE dst_ip = '2001:db8::1'").fetchone()[0] == 4


@pytest.mark.parametrize("pattern", ["runs", "interleaved", "many"])
def test_rows_land_in_their_hour_whatever_their_order(tmp_path, pattern):
    # runs: a few contiguous hours (sliced); interleaved: too many runs to slice (a filter per hour);
    # many: too many hours to filter (one reordering take)
    hours = {"runs": [1] * 5 + [2] * 5 + [1] * 3, "interleaved": [1, 2, 3] * 40,
             "many": [h % 11 for h in range(200)]}[pattern]
    rows = [_flow(h, src_port=i) for i, h in enumerate(hours)]
    with LakeWriter(tmp_path, tag="t") as w:
        w.write("flows", rows)
    con = connect(tmp_path)
    got = con.execute("SELECT hour(start_time) AS h, list(src_port ORDER BY src_port) FROM flows GROUP BY h ORDER BY h").fetchall()
    want = {h: [i for i, x in enumerate(hours) if x == h] for h in sorted(set(hours))}
    assert [(int(h), ports) for h, ports in got] == list(want.items())
    for f in table_files(tmp_path, "flows"):  # each file holds rows of its own hour only
        hrs = {r.hour for r in pq.read_table(f).column("start_time").to_pylist()}
        assert f.parent.name == f"hr={hrs.pop():02d}" and not hrs


def test_daily_tables_have_no_hour_level(tmp_path):
    t = datetime(2026, 12, 3, 8, tzinfo=timezone.utc)
    with LakeWriter(tmp_path) as w:
        w.write("iplists", [{"network": "192.0.2.0/24", "list_name": "open-resolvers", "first_seen": t, "last_seen": t}])
    (f,) = table_files(tmp_path, "iplists")
    assert f.parent.name == "dt=20261203"


def test_batches_until_batch_rows(tmp_path):
    w = LakeWriter(tmp_path, batch_rows=3)
    w.write("flows", [_flow(1), _flow(1)])
    assert table_files(tmp_path, "flows") == []  # still buffered
    w.write("flows", [_flow(1)])
    assert len(table_files(tmp_path, "flows")) == 1
    w.close()
    assert w.rows_written == {"flows": 3}


def test_unknown_column_is_an_error_not_a_silent_drop():
    with pytest.raises(ValueError, match="unknown columns"):
        conform("flows", pa.table({"start_time": [1], "src_addr": ["x"]}))


def test_missing_columns_become_null_and_types_are_cast():
    t = conform("flows", pa.table({"start_time": pa.array([0], pa.timestamp("us", tz="UTC")),
                                   "packets": pa.array([5], pa.int64())}))
    assert t.schema == TABLES["flows"][0]
    assert t.column("packets").type == pa.uint64()
    assert t.column("src_ip").null_count == 1


def test_rows_without_time_are_refused(tmp_path):
    w = LakeWriter(tmp_path)
    with pytest.raises(ValueError, match="without start_time"):
        w.write("flows", [_flow(1, start_time=None)])
        w.close()


def test_crash_mid_write_leaves_nothing_visible(tmp_path, monkeypatch):
    with LakeWriter(tmp_path) as w:
        w.write("flows", [_flow(1)])
    import necoma.lake.writer as writer_mod

    def crash(table, path, **kw):
        with open(path, "wb") as fh:
            fh.write(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(writer_mod.pq, "write_table", crash)
    w2 = LakeWriter(tmp_path)
    w2.write("flows", [_flow(1), _flow(1)])
    with pytest.raises(OSError):
        w2.close()
    # The half-written file is a .tmp that readers never see; the earlier row is intact.
    assert list(tmp_path.glob("flows/**/*.parquet.tmp"))
    assert connect(tmp_path).execute("SELECT count(*) FROM flows").fetchone()[0] == 1


def test_empty_lake_has_every_table_with_its_schema(tmp_path):
    con = connect(tmp_path)
    for name, (schema, _, _) in TABLES.items():
        cols = [r[0] for r in con.execute(f"DESCRIBE {name}").fetchall()]
        assert cols == schema.names
        assert con.execute(f"SELECT count(*) FROM {name}").fetchone()[0] == 0
