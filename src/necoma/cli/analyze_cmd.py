"""`necoma analyze` (run detectors over the lake) and `necoma alerts` (list and show their findings)."""
from __future__ import annotations

import datetime as dt
import json
from typing import Optional

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from necoma.cli.common import console, err_console, fail, settings_from


def parse_time(text: str, option: str) -> dt.datetime:
    """ISO date or date-time; naive values are UTC."""
    try:
        t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        fail(f"{option}: {text!r} is not an ISO date or time (2026-03-02, 2026-03-02T10:00)")
    return t.replace(tzinfo=dt.timezone.utc) if t.tzinfo is None else t.astimezone(dt.timezone.utc)


def newest_day(engine) -> dt.datetime | None:
    """Start of the UTC day of the newest traffic or DNS record, read through the engine (so from
    `[analyze] lake_url` when one is configured, not only from the local lake path)."""
    newest = [engine.query(f"SELECT max({c}) AS t FROM {t}")[0]["t"]
              for t, c in (("flows", "start_time"), ("packets", "time"), ("dns", "time"))]
    newest = [n for n in newest if n is not None]
    if not newest:
        return None
    top = max(n.astimezone(dt.timezone.utc) for n in newest)
    return top.replace(hour=0, minute=0, second=0, microsecond=0)


def explicit_range(day: Optional[str], since: Optional[str], until: Optional[str]) -> tuple[dt.datetime, dt.datetime] | None:
    """The range the options give, checked before any engine starts; None when they give none."""
    if day and (since or until):
        fail("use either --day or --since/--until")
    if day:
        start = parse_time(day, "--day").replace(hour=0, minute=0, second=0, microsecond=0)
        return start, start + dt.timedelta(days=1)
    if since or until:
        now = dt.datetime.now(dt.timezone.utc)
        start = parse_time(since, "--since") if since else (parse_time(until, "--until") - dt.timedelta(days=1))
        end = parse_time(until, "--until") if until else now
        if end <= start:
            fail("--until must be after --since")
        return start, end
    return None


def newest_range(engine) -> tuple[dt.datetime, dt.datetime]:
    start = newest_day(engine)
    if start is None:
        fail("the lake has no flows, packets or DNS records yet; import or collect some first (or pass --day)")
    return start, start + dt.timedelta(days=1)


def _detectors(settings, only: Optional[str]):
    from necoma.analyze.detector import ParamError
    from necoma.analyze.registry import instantiate

    names = [n.strip() for n in only.split(",") if n.strip()] if only else None
    try:
        return instantiate(names, settings.detectors)
    except (KeyError, ParamError) as exc:
        fail(str(exc).strip("'\""))


def open_configured_engine(settings, engine: Optional[str] = None, spark_master: Optional[str] = None):
    from necoma.lake.engines import EngineError, open_engine

    cfg = settings.analyze
    kind = engine or cfg.engine
    location = cfg.lake_url or settings.lake_path
    try:
        return open_engine(kind, location, spark_master=spark_master or cfg.spark_master, spark_conf=cfg.spark_conf,
                           must_exist=cfg.lake_url is not None)
    except EngineError as exc:
        from rich.markup import escape

        fail(escape(str(exc)))  # the messages name config sections such as [analyze]


def analyze(
    ctx: typer.Context,
    day: Optional[str] = typer.Option(None, "--day", "-d", help="Analyze this UTC day (YYYY-MM-DD). Default: the day of the newest data in the lake."),
    since: Optional[str] = typer.Option(None, "--since", help="Start of the range (ISO date/time, UTC if no zone); widened to whole bins of each detector's schedule."),
    until: Optional[str] = typer.Option(None, "--until", help="End of the range, exclusive (default: now, or --since + 1 day)."),
    only: Optional[str] = typer.Option(None, "--only", help="Run only these detectors, comma-separated (see --list)."),
    engine: Optional[str] = typer.Option(None, "--engine", "-e", help="Query engine: duckdb (embedded) or spark. Default: \\[analyze] engine in the config."),
    spark_master: Optional[str] = typer.Option(None, "--spark-master", help="Spark master URL (local[2], spark://HOST:7077, yarn...). Default: \\[analyze] spark_master."),
    store: bool = typer.Option(True, "--store/--no-store", help="Write the alerts to the lake's alerts table (already stored alerts are not duplicated)."),
    as_json: bool = typer.Option(False, "--json", help="Print the alerts as JSON lines instead of a table."),
    list_detectors: bool = typer.Option(False, "--list", help="List the detectors with their schedule, tables and parameters, and exit."),
) -> None:
    """Run the detectors over a time range of the lake and store their alerts.

    Each detector reads its lake tables through the chosen engine (DuckDB or
    Spark, identical results), with its parameters from \\[detectors.NAME] in
    necoma.toml. Example: necoma analyze --day 2026-03-02 --only ntp_amplifier,dns_amplifier
    """
    settings = settings_from(ctx)
    if list_detectors:
        _print_detectors(settings)
        return
    if engine and engine not in ("duckdb", "spark"):
        fail("--engine must be duckdb or spark")
    explicit = explicit_range(day, since, until)
    detectors = _detectors(settings, only)
    from necoma.analyze.runner import store_alerts
    from necoma.enrich import Enricher

    enricher = Enricher.from_settings(settings.enrich)
    out = err_console if as_json else console
    eng = open_configured_engine(settings, engine, spark_master)
    with eng:
        start, end = explicit or newest_range(eng)
        out.print(f"analyzing {start:%Y-%m-%d %H:%M} – {end:%Y-%m-%d %H:%M} UTC with {eng.name}", highlight=False)
        runs = _run_with_progress(detectors, eng, start, end, enricher, out)
    alerts = [a for r in runs for a in r.alerts]
    if store and settings.analyze.write_alerts:
        new = store_alerts(settings.lake_path, alerts)
        out.print(f"{len(alerts)} alerts ({new} new) stored in {settings.lake_path / 'alerts'}", highlight=False)
    if as_json:
        for a in alerts:
            print(a.model_dump_json())
    else:
        console.print(alerts_table(alerts))
    if any(r.error for r in runs):
        raise typer.Exit(1)


def _run_with_progress(detectors, eng, start, end, enricher, out) -> list:
    from necoma.analyze.runner import run_all

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=out, transient=False) as progress:
        task = progress.add_task("detectors", total=len(detectors))

        def started(det):
            progress.update(task, description=f"[cyan]{det.name}[/]")

        def done(run):
            status = f"[red]failed: {run.error}[/]" if run.error else f"{len(run.alerts)} alerts in {run.seconds:.1f}s"
            progress.console.print(f"  {run.name:<20} {status}", highlight=False)
            progress.advance(task)

        runs = run_all(detectors, eng, start, end, enricher=enricher, on_start=started, on_done=done)
        progress.update(task, description="done")
    return runs


def _print_detectors(settings) -> None:
    from necoma.analyze.registry import all_detectors

    for name, cls in all_detectors().items():
        console.print(f"[bold]{name}[/] — {cls.title}")
        console.print(f"  schedule: {cls.schedule}; tables: {', '.join(cls.tables)}; raises: {cls.raises}", highlight=False)
        overrides = settings.detectors.get(name, {})
        for pname, default, doc in cls.describe_params():
            value = overrides.get(pname, default)
            mark = " (from config)" if pname in overrides else ""
            console.print(f"    {pname} = {value!r}{mark}  [dim]{doc}[/]", highlight=False)


def _subjects_text(alert, limit: int = 4) -> str:
    parts = []
    for role in dict.fromkeys(s.role for s in alert.subjects):
        values = alert.subjects_with(role)
        more = f" +{len(values) - limit}" if len(values) > limit else ""
        parts.append(f"{role}: {', '.join(values[:limit])}{more}")
    return "; ".join(parts)


def _window(a) -> str:
    end = a.window_end.strftime("%H:%M" if a.window_end.date() == a.window_start.date() else "%Y-%m-%d %H:%M")
    return f"{a.window_start:%Y-%m-%d %H:%M}–{end}"


def alerts_table(alerts) -> Table:
    table = Table(title=f"{len(alerts)} alerts")
    for col in ("id", "detector", "window (UTC)", "conf", "score", "subjects"):
        table.add_column(col, overflow="fold")
    for a in alerts:
        table.add_row(a.id, a.detector, _window(a), a.confidence,
                      f"{a.score:.2f}", _subjects_text(a))
    return table


alerts_app = typer.Typer(help="List the alerts stored in the lake, or show one with its evidence.", no_args_is_help=False)


@alerts_app.callback(invoke_without_command=True)
def alerts(
    ctx: typer.Context,
    since: Optional[str] = typer.Option(None, "--since", help="Only alerts whose window ends after this time (ISO date/time, UTC)."),
    until: Optional[str] = typer.Option(None, "--until", help="Only alerts whose window starts before this time."),
    detector: Optional[str] = typer.Option(None, "--detector", help="Only alerts of this detector."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON lines (every field, all subjects) instead of a table."),
    limit: int = typer.Option(200, "--limit", help="Most alerts printed in the table (JSON prints all)."),
) -> None:
    """List stored alerts, newest first. `necoma alerts show ID` prints one with its evidence rows."""
    if ctx.invoked_subcommand is not None:
        return
    from necoma.analyze.runner import load_alerts

    settings = settings_from(ctx)
    found = load_alerts(settings.lake_path, since=parse_time(since, "--since") if since else None,
                        until=parse_time(until, "--until") if until else None, detector=detector)
    if as_json:
        for a in found:
            print(a.model_dump_json())
        return
    console.print(alerts_table(found[:limit]))
    if len(found) > limit:
        console.print(f"({len(found)} alerts, {limit} shown; use --limit or --json)")


@alerts_app.command("show")
def show(
    ctx: typer.Context,
    alert_id: str = typer.Argument(..., help="Alert id, or a unique prefix of it."),
    engine: Optional[str] = typer.Option(None, "--engine", "-e", help="Engine that runs the evidence SQL: duckdb or spark (default from config)."),
    rows: int = typer.Option(50, "--rows", help="Evidence rows printed."),
    as_json: bool = typer.Option(False, "--json", help="Print the alert and its evidence rows as one JSON object."),
) -> None:
    """Print one alert — subjects, metrics, evidence SQL — and the evidence rows it returns now."""
    from necoma.analyze.runner import load_alerts

    settings = settings_from(ctx)
    found = load_alerts(settings.lake_path, alert_id=alert_id)
    if not found:
        fail(f"no alert with id {alert_id!r}")
    if len({a.id for a in found}) > 1:
        fail(f"{alert_id!r} matches {len(found)} alerts; give more of the id")
    a = found[0]
    eng = open_configured_engine(settings, engine)
    with eng:
        evidence = eng.query(a.evidence)
    if as_json:
        print(json.dumps({"alert": a.model_dump(mode="json"), "evidence_rows": evidence}, default=str))
        return
    console.print(f"[bold]{a.id}[/]  {a.detector}  {a.window_start:%Y-%m-%d %H:%M} – {a.window_end:%Y-%m-%d %H:%M} UTC", highlight=False)
    console.print(f"{a.summary}\nscore {a.score:.2f}, confidence {a.confidence}", highlight=False)
    subj = Table(title="subjects")
    for col in ("role", "value", "weight", "country", "asn", "as_org"):
        subj.add_column(col)
    for s in a.subjects:
        subj.add_row(s.role, s.value, "" if s.weight is None else f"{s.weight:,.0f}", s.country or "", str(s.asn or ""), s.as_org or "")
    console.print(subj)
    console.print("metrics: " + ", ".join(f"{k}={v:,.6g}" for k, v in a.metrics.items()), highlight=False)
    console.print("[bold]evidence SQL[/] (run it with `necoma query`):")
    console.print(a.evidence, highlight=False, markup=False)
    ev = Table(title=f"evidence: {len(evidence)} rows" + (f", {rows} shown" if len(evidence) > rows else ""))
    if evidence:
        for col in evidence[0]:
            ev.add_column(col, overflow="fold")
        for r in evidence[:rows]:
            ev.add_row(*["" if v is None else str(v) for v in r.values()])
    console.print(ev)


def detector_summary_table(alerts, detectors, top: int = 3) -> Table:
    """One row per detector: how many alerts, the highest confidence, and its most frequent subjects."""
    from collections import Counter

    table = Table(title=f"analysis: {len(alerts)} alerts")
    for col, just in (("detector", "left"), ("alerts", "right"), ("high", "right"), ("top subjects", "left")):
        table.add_column(col, justify=just, overflow="fold")
    for name in detectors:
        mine = [a for a in alerts if a.detector == name]
        counts = Counter((s.role, s.value) for a in mine for s in a.subjects)  # named by the most alerts first
        rank = {r: i for i, r in enumerate(("victim", "cnc", "scanner", "attacker", "bot", "amplifier", "domain"))}
        best = sorted(counts.items(), key=lambda kv: (-kv[1], rank.get(kv[0][0], len(rank)), kv[0][1]))[:top]
        tops = ", ".join(f"{v} ({r})" for (r, v), _ in best)
        table.add_row(name, str(len(mine)), str(sum(a.confidence == "high" for a in mine)), tops)
    return table


def analyze_stage(settings, start: dt.datetime | None = None, end: dt.datetime | None = None) -> list:
    """`necoma run`'s analysis stage: run every detector over the newest day on the configured engine,
    store the alerts, print a per-detector summary, and return the alerts (for the stages after it)."""
    from necoma.analyze.runner import run_all, store_alerts
    from necoma.enrich import Enricher

    detectors = _detectors(settings, None)
    enricher = Enricher.from_settings(settings.enrich)

    def done(run):
        status = f"[red]failed: {run.error}[/]" if run.error else f"{len(run.alerts)} alerts in {run.seconds:.1f}s"
        console.print(f"  {run.name:<20} {status}", highlight=False)

    with open_configured_engine(settings) as eng:
        if start is None:
            start = newest_day(eng)
            if start is None:
                console.print("analysis: the lake holds no traffic or DNS yet; nothing to analyze")
                return []
        end = end or start + dt.timedelta(days=1)
        console.print(f"analyzing {start:%Y-%m-%d %H:%M} – {end:%Y-%m-%d %H:%M} UTC with {eng.name}", highlight=False)
        runs = run_all(detectors, eng, start, end, enricher=enricher, on_done=done)
    alerts = [a for r in runs for a in r.alerts]
    if settings.analyze.write_alerts:
        new = store_alerts(settings.lake_path, alerts)
        console.print(f"{len(alerts)} alerts ({new} new) stored; list them with `necoma alerts`", highlight=False)
    console.print(detector_summary_table(alerts, [d.name for d in detectors]))
    return alerts
