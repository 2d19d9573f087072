"""Run detectors over a time range on an engine, and store their alerts in the lake."""
from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from necoma.analyze.alert import Alert
from necoma.analyze.detector import Context, Detector
from necoma.lake.engines.base import Engine


@dataclass
class DetectorRun:
    name: str
    start: dt.datetime
    end: dt.datetime
    alerts: list[Alert] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None


def run_detector(
    detector: Detector, engine: Engine, start: dt.datetime, end: dt.datetime, *, enricher=None,
    now: dt.datetime | None = None,
) -> DetectorRun:
    """Run one detector over [start, end), widened to whole bins of its schedule."""
    sched = detector.schedule
    s, e = sched.floor(start), sched.ceil(end)
    ctx = Context(engine=engine, start=s, end=e, schedule=sched, enricher=enricher, detector=detector.name)
    run = DetectorRun(detector.name, s, e)
    t0 = time.perf_counter()
    created = now or dt.datetime.now(dt.timezone.utc)
    alerts = detector.detect(ctx)
    for a in alerts:
        a.created = a.created or created
    run.alerts = sorted(alerts, key=lambda a: (a.window_start, a.id))
    run.seconds = time.perf_counter() - t0
    return run


def run_all(
    detectors: Sequence[Detector],
    engine: Engine,
    start: dt.datetime,
    end: dt.datetime,
    *,
    enricher=None,
    on_start: Callable[[Detector], None] | None = None,
    on_done: Callable[[DetectorRun], None] | None = None,
    keep_going: bool = True,
) -> list[DetectorRun]:
    """Run every detector in turn; a failing detector is reported, the others still run."""
    runs = []
    for det in detectors:
        if on_start:
            on_start(det)
        try:
            run = run_detector(det, engine, start, end, enricher=enricher)
        except Exception as exc:
            if not keep_going:
                raise
            run = DetectorRun(det.name, start, end, error=f"{type(exc).__name__}: {exc}")
        runs.append(run)
        if on_done:
            on_done(run)
    return runs


def store_alerts(lake: Path, alerts: Sequence[Alert]) -> int:
    """Append alerts not already in the lake (same id) to the alerts table; returns how many were new."""
    from necoma.lake.catalog import connect
    from necoma.lake.writer import LakeWriter

    if not alerts:
        return 0
    con = connect(lake)
    ids = [a.id for a in alerts]
    con.execute("CREATE TEMP TABLE _new_ids(id VARCHAR)")
    con.executemany("INSERT INTO _new_ids VALUES (?)", [(i,) for i in ids])
    existing = {r[0] for r in con.execute("SELECT a.id FROM alerts a JOIN _new_ids n ON a.id = n.id").fetchall()}
    con.close()
    fresh, seen = [], set(existing)
    for a in alerts:
        if a.id not in seen:
            seen.add(a.id)
            fresh.append(a)
    if fresh:
        with LakeWriter(lake, tag="alerts") as w:
            w.write("alerts", [a.to_row() for a in fresh])
    return len(fresh)


def load_alerts(
    lake: Path, *, since: dt.datetime | None = None, until: dt.datetime | None = None,
    detector: str | None = None, alert_id: str | None = None,
) -> list[Alert]:
    """Alerts stored in the lake, newest window first."""
    from necoma.lake.catalog import connect

    from necoma.lake.engines.base import bind, rows_from_arrow

    where, params = [], {}
    if since:
        where.append("window_end > :since")
        params["since"] = since
    if until:
        where.append("window_start < :until")
        params["until"] = until
    if detector:
        where.append("detector = :detector")
        params["detector"] = detector
    if alert_id:
        where.append("starts_with(id, :alert_id)")
        params["alert_id"] = alert_id
    sql = "SELECT * FROM alerts" + (" WHERE " + " AND ".join(where) if where else "")
    sql += " ORDER BY window_start DESC, detector, id"
    con = connect(lake)
    table = con.sql(bind(sql, params).sql("duckdb")).to_arrow_table()
    con.close()
    return [Alert.from_row(r) for r in rows_from_arrow(table)]
