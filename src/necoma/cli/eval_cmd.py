"""`necoma eval`: score the detectors on one labelled scenario, or on every scenario and seed (`--all`)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from necoma.cli.common import console, err_console, fail, settings_from


def _fmt(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}"


def _ttd(s) -> str:
    vals = [v for v in s.time_to_detect.values() if v is not None]
    if not vals:
        return "—"
    worst = max(vals)
    return f"{worst / 60:.0f} min" if worst >= 60 else f"{worst:.0f} s"


def eval_table(report) -> Table:
    table = Table(title=f"necoma eval: scenario {report.scenario} (seed {report.seed})")
    for col, just in (("detector", "left"), ("status", "left"), ("alerts", "right"), ("precision", "right"),
                      ("recall", "right"), ("F1", "right"), ("time to detect", "right"), ("false pos.", "right"),
                      ("misses", "right")):
        table.add_column(col, justify=just)
    for s in report.scores:
        if s.status != "scored":
            table.add_row(s.name, s.status if s.status != "error" else f"error: {s.error}", "", "", "", "", "", "", "")
            continue
        alerts = str(s.alerts - s.warmup_alerts) + (f" (+{s.warmup_alerts} warm-up)" if s.warmup_alerts else "")
        table.add_row(s.name, "scored", alerts, _fmt(s.precision), _fmt(s.recall), _fmt(s.f1), _ttd(s),
                      str(s.fp), str(len(s.misses)))
    return table


def print_mistakes(report, show: int, prefix: str = "") -> None:
    for s in report.scores:
        if s.status == "scored" and (s.false_positives or s.misses):
            if s.false_positives:
                fps = ", ".join(f"{f['value']} ({f['role']})" for f in s.false_positives[:show])
                more = f" … +{len(s.false_positives) - show}" if len(s.false_positives) > show else ""
                console.print(f"{prefix}{s.name} false positives: {fps}{more}", highlight=False)
            if s.misses:
                ms = ", ".join(f"{m['value']} ({m['field']})" for m in s.misses[:show])
                more = f" … +{len(s.misses) - show}" if len(s.misses) > show else ""
                console.print(f"{prefix}{s.name} misses: {ms}{more}", highlight=False)


def suite_table(reports) -> str:
    """The scenario × detector table as Markdown (it goes into docs/evaluation.md as is); misses in bold."""
    from necoma.testbed.suite import cells

    names = [s.name for s in reports[0].scores]
    lines = ["| scenario | seed | " + " | ".join(names) + " |", "|" + "---|" * (len(names) + 2)]
    for r in reports:
        row = [c.text if c.ok else f"**{c.text}**" for c in cells(r)]
        lines.append(f"| {r.scenario} | {r.seed} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def _ints(text: str, what: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        fail(f"{what}: {text!r} is not a comma-separated list of integers")
    return []


def _eval_all(ctx, scenarios, seeds, work, scale, history_hours, names, as_json, figures_path, show) -> None:
    import time

    from necoma.testbed.scenario import SCENARIOS
    from necoma.testbed.suite import BAR, figures, meets_bar, run_suite

    chosen = [n.strip() for n in scenarios.split(",") if n.strip()] if scenarios else list(SCENARIOS)
    unknown = [n for n in chosen if n not in SCENARIOS]
    if unknown:
        fail(f"unknown scenario {unknown[0]!r}; known: {', '.join(SCENARIOS)}")
    seed_list = _ints(seeds, "--seeds")
    if not seed_list or not chosen:
        fail("nothing to evaluate: give at least one scenario and one seed")
    began = time.perf_counter()

    def progress(r) -> None:
        err_console.print(f"  {r.scenario} seed {r.seed}: {r.seconds:.0f} s", highlight=False)

    try:
        reports = run_suite(chosen, seed_list, work=work, scale=scale, history_hours=history_hours,
                            settings=settings_from(ctx), only=names, on_done=progress)
    except ValueError as exc:
        fail(str(exc))
    ok = meets_bar(reports)
    command = f"necoma eval --all --seeds {','.join(map(str, seed_list))}" + (f" --scale {scale:g}" if scale != 1 else "")
    if figures_path:
        figures_path.write_text(json.dumps(figures(reports, command), indent=1) + "\n")
    if as_json:
        print(json.dumps({"command": command, "bar": BAR, "met": ok, "runs": [r.as_dict() for r in reports]},
                         indent=1, default=str))
    else:
        console.print(suite_table(reports), highlight=False, soft_wrap=True)
        for r in reports:
            print_mistakes(r, show, prefix=f"{r.scenario} seed {r.seed}: ")
        console.print(f"\n{len(reports)} runs in {time.perf_counter() - began:.0f} s; bar: precision and recall ≥ {BAR} "
                      "where there is something to find, no entity named where there is none: "
                      + ("met" if ok else "NOT met (bold cells)"), highlight=False)
    if not ok:
        raise typer.Exit(1)


def eval_cmd(
    ctx: typer.Context,
    directory: Optional[Path] = typer.Argument(None, help="A scenario directory written by `necoma testbed generate` (not with --all)."),
    all_: bool = typer.Option(False, "--all", help="Generate every testbed scenario for each of --seeds, score them all, print the "
                              "scenario × detector table and exit 1 if any cell misses the bar (P, R ≥ 0.95; no alert without truth)."),
    seeds: str = typer.Option("1,2", "--seeds", help="With --all: comma-separated scenario seeds."),
    scenarios: Optional[str] = typer.Option(None, "--scenarios", help="With --all: comma-separated scenario names (default: every one)."),
    work: Optional[Path] = typer.Option(None, "--work", help="With --all: where scenario directories are generated and reused "
                                        "on the next run (default: a temporary directory, removed)."),
    scale: float = typer.Option(1.0, "--scale", help="With --all: traffic volume multiplier of the generated scenarios."),
    history_hours: int = typer.Option(6, "--history-hours", help="With --all: attack-free warm-up hours before the scenario day."),
    figures_path: Optional[Path] = typer.Option(None, "--figures", help="With --all: also write per-detector figures as JSON "
                                                "(docs/detectors/eval.json feeds the detector pages)."),
    as_json: bool = typer.Option(False, "--json", help="Print the full report as JSON (every false positive and miss)."),
    lake: Optional[Path] = typer.Option(None, "--lake", help="Use this lake, already holding the scenario, instead of importing it into a temporary one."),
    only: Optional[str] = typer.Option(None, "--only", help="Comma-separated detector names to score (default: all)."),
    show: int = typer.Option(5, "--show", help="False positives and misses listed per detector in the table view."),
) -> None:
    """Score every detector against a scenario's truth.json, or against every scenario (--all).

    Precision, recall and F1 at entity level (victim, amplifier, bot, scanner, domain, ...), time to detect,
    false positives and misses. Detectors that do not exist yet show as "not implemented". Method:
    docs/evaluation.md.
    """
    from necoma.testbed.evaluate import evaluate

    names = {n.strip() for n in only.split(",") if n.strip()} if only else None
    if all_:
        if directory is not None or lake is not None:
            fail("--all generates its own scenarios: give no DIRECTORY and no --lake")
        _eval_all(ctx, scenarios, seeds, work, scale, history_hours, names, as_json, figures_path, show)
        return
    if directory is None:
        fail("give a scenario DIRECTORY, or --all to evaluate every scenario")
    settings = settings_from(ctx)
    try:
        report = evaluate(directory, lake=lake, settings=settings, only=names)
    except FileNotFoundError as exc:
        fail(str(exc))
    if as_json:
        print(json.dumps(report.as_dict(), indent=1, default=str))
        return
    console.print(eval_table(report))
    print_mistakes(report, show)
    console.print(f"({report.seconds:.1f} s; lake {report.lake})", highlight=False)
