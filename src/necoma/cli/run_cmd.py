"""`necoma run`: the main job, driving the pipeline end to end on the embedded default."""
from __future__ import annotations

import typer
from rich.table import Table

from necoma.cli.common import console, settings_from
from necoma.cli.run_collect import collecting
from necoma.lake import connect
from necoma.schemas import TABLES


def lake_summary_table(settings) -> Table:
    con = connect(settings.lake_path)
    table = Table(title=f"lake at {settings.lake_path}")
    table.add_column("table")
    table.add_column("rows", justify="right")
    table.add_column("first")
    table.add_column("last")
    for name, (_, time_col, _) in TABLES.items():
        n, first, last = con.execute(f"SELECT count(*), min({time_col}), max({time_col}) FROM {name}").fetchone()
        table.add_row(name, str(n), str(first or ""), str(last or ""))
    return table


def demo_data(settings) -> None:
    """Generate the `mixed` testbed scenario into <data_dir>/demo once, and import it (the ledger makes re-runs cheap)."""
    from necoma.testbed.importer import import_scenario
    from necoma.testbed.scenario import generate

    demo = settings.data_dir / "demo"
    if not (demo / "truth.json").is_file():
        console.print(f"generating demo data (testbed scenario 'mixed', seed 1) in {demo} ...")
        generate("mixed", 1, demo)
    results = import_scenario(demo, settings)
    new = [r for r in results if not r.skipped]
    if new:
        console.print(f"imported {sum(sum(r.rows.values()) for r in new)} rows from {len(new)} demo files")


def run(
    ctx: typer.Context,
    serve: bool = typer.Option(True, "--serve/--no-serve", help="At the end, serve the exchange API (TAXII 2.1, timeline) until Ctrl-C, printing its URL and a reader key."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address the API listens on (with --serve)."),
    port: int = typer.Option(8080, "--port", help="TCP port of the API (with --serve)."),
) -> None:
    """Run the pipeline on the embedded default: demo data in, lake summary, then the detectors' alerts. Needs no server or network.

    When necoma.toml names listeners ([collect] netflow, sflow, syslog), the collectors start first
    (as `necoma collect` would) and run until SIGTERM or Ctrl-C (with --serve, the signal that stops
    the API; with --no-serve, after the other stages), which flush everything received and exit 0."""
    from necoma.cli.analyze_cmd import analyze_stage
    from necoma.cli.share_stage import serve_stage, share_stage

    settings = settings_from(ctx)
    # Collectors first (when [collect] names listeners), so nothing sent during the stages is lost;
    # after the block they keep collecting until SIGTERM or Ctrl-C (the server's, when served).
    with collecting(ctx, settings, wait_after=not serve):
        demo_data(settings)
        console.print(lake_summary_table(settings))
        alerts = analyze_stage(settings)
        incidents = share_stage(settings, alerts)  # noqa: F841 -- correlated, rated, published; for the stages after
        from necoma.cli.actions_cmd import protect_stage

        protect_stage(settings, alerts=alerts)  # proposes; applies per policy (dry run unless protect.enforce)
        if serve:
            serve_stage(settings, host, port)  # blocks until Ctrl-C or SIGTERM
