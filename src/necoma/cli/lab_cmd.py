"""`necoma testbed lab`: the network-namespace lab (up, down, status, run)."""
from __future__ import annotations

import json
import signal

import typer
from rich.table import Table

from necoma.cli.common import console, err_console, fail, settings_from

app = typer.Typer(help="A small network of namespaces with real tools: attacker, victim, open resolver, "
                       "router with NetFlow exporter and packet mirror. Needs root.", no_args_is_help=True)


@app.command("up")
def up(ctx: typer.Context) -> None:
    """Build the lab, or leave it as it is if it is already up and healthy (a broken one is rebuilt)."""
    from necoma.testbed import lab

    settings = settings_from(ctx)
    try:
        st, created = lab.up(settings)
    except lab.LabError as exc:
        fail(str(exc), 1)
    word = "up" if created else "already up"
    console.print(f"lab {st.lab_id} {word}: namespaces {', '.join(st.namespaces.values())}")
    console.print(f"state {lab.workdir_of(settings) / 'state.json'}; live capture in {st.sensors_dir}")


@app.command("down")
def down(ctx: typer.Context) -> None:
    """Stop the lab's processes (by PID) and delete the veths and namespaces it made. Run data is kept."""
    from necoma.testbed import lab

    try:
        removed = lab.down(settings_from(ctx))
    except lab.LabError as exc:
        fail(str(exc), 1)
    console.print(f"lab down: removed {len(removed)} items" if removed else "lab is not up: nothing to remove")


@app.command("status")
def status(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print the checks as JSON."),
    probe: bool = typer.Option(True, "--probe/--no-probe", help="Also ask the resolver through the router."),
) -> None:
    """Show what is up and whether it is healthy. Exit code 0 healthy, 1 unhealthy, 3 not up."""
    from necoma.testbed import lab

    st, checks = lab.status(settings_from(ctx), probe=probe)
    healthy = st is not None and all(c.ok for c in checks)
    if as_json:
        print(json.dumps({"up": st is not None, "healthy": healthy, "lab_id": st.lab_id if st else None,
                          "addresses": st.addresses if st else {},
                          "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in checks]}, indent=2))
    elif st is None:
        console.print("lab is not up")
    else:
        table = Table(title=f"lab {st.lab_id}: {'healthy' if healthy else 'NOT healthy'}")
        for col in ("check", "ok", "detail"):
            table.add_column(col)
        for c in checks:
            table.add_row(c.name, "[green]yes[/]" if c.ok else "[red]no[/]", c.detail)
        console.print(table)
        console.print("addresses: " + ", ".join(f"{k} {v}" for k, v in st.addresses.items()))
    raise typer.Exit(3 if st is None else 0 if healthy else 1)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@app.command("run")
def run(
    ctx: typer.Context,
    scenario: str = typer.Argument(..., help="Lab scenario: dns-amplification."),
    seconds: float = typer.Option(5.0, "--seconds", min=0.5, max=600, help="How long the attack tools send."),
    query_rate: float = typer.Option(200.0, "--query-rate", min=1, help="Spoofed DNS queries per second."),
    frag_rate: float = typer.Option(1000.0, "--frag-rate", min=1, help="hping3 fragmented packets per second."),
    scan: bool = typer.Option(True, "--scan/--no-scan", help="Also run an nmap SYN scan of port 443."),
    import_pcap: bool = typer.Option(True, "--import/--no-import", help="Import the router pcap into the lake."),
) -> None:
    """Run a scenario with real tools through the lab; keeps pcaps, NetFlow, truth.json in a run directory."""
    from necoma.testbed import lab

    settings = settings_from(ctx)
    opts = lab.RunOptions(seconds=seconds, query_rate=query_rate, frag_rate=frag_rate, scan=scan,
                          import_pcap=import_pcap)
    # SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C: the run stops its attack
    # tools, closes its captures and restarts the lab's live sensors on the way out.
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        result = lab.run(settings, scenario, opts)
    except lab.LabError as exc:
        fail(str(exc), 1)
    except KeyboardInterrupt:
        fail("interrupted; the attack tools were stopped and the lab's live sensors restarted", 130)
    finally:
        signal.signal(signal.SIGTERM, previous)
    console.print(f"{scenario}: {result.end - result.start:.1f} s of attack; run directory {result.rundir}")
    for k, v in result.counts.items():
        console.print(f"  {k}: {v}")
    if result.imported:
        console.print("  imported: " + ", ".join(f"{n} {t}" for t, n in sorted(result.imported.items())))
    for note in result.notes:
        err_console.print(f"  note: {note}", highlight=False)
