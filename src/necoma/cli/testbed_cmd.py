"""`necoma testbed` (generate, import, replay; `lab` from lab_cmd); `necoma eval` is in eval_cmd."""
from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Optional

import typer

from necoma.cli.common import console, err_console, fail, settings_from

app = typer.Typer(help="Labelled attack scenarios: generate them, load them into the lake, replay them to "
                       "collectors.", no_args_is_help=True)

try:  # the network-namespace lab lives in its own module (another group of commands, needs root)
    from necoma.cli import lab_cmd
except ModuleNotFoundError as exc:  # pragma: no cover - only while lab_cmd does not exist
    if exc.name != "necoma.cli.lab_cmd":
        raise
    lab_cmd = None
if lab_cmd is not None:
    app.add_typer(lab_cmd.app, name="lab")


def _scenario_names() -> str:
    from necoma.testbed.scenario import SCENARIOS

    return ", ".join(SCENARIOS)


@app.command("generate")
def generate(
    scenario: str = typer.Option("mixed", "--scenario", "-s", help="Scenario: background, zeus_dga, dga_other, "
                                 "ntp_amplification, dns_amplification, udp_fragmentation, ssl_scan, heavy_hitter, "
                                 "phishing, dns_failure, reflection, or mixed (every attack on one day)."),
    seed: int = typer.Option(1, "--seed", help="Random seed: the same scenario, seed, scale and day give byte-identical files."),
    out: Path = typer.Option(..., "--out", "-o", help="Directory to write the scenario to (created; existing files are replaced)."),
    scale: float = typer.Option(1.0, "--scale", help="Traffic volume multiplier: 1 is a small office day (~60k flows); "
                                "10 is ten times the traffic and more hosts."),
    day: Optional[str] = typer.Option(None, "--day", help="Scenario day, YYYY-MM-DD (default 2025-03-10). The ZeuS "
                                      "DGA domains depend on it."),
    history_hours: int = typer.Option(6, "--history-hours", help="Hours of attack-free background before the day, "
                                      "so detectors with baselines or 'seen before' rules start with history (0-48)."),
) -> None:
    """Write a reproducible labelled scenario directory.

    Files: dns.pcap, NetFlow v9/IPFIX and sFlow datagram files, a BIND query log, syslog, URL and spam feeds,
    an open-resolver list, and truth.json (every injected attack). See docs/testbed.md.
    """
    from necoma.testbed.scenario import DEFAULT_DAY, SCENARIOS
    from necoma.testbed.scenario import generate as gen

    if scenario not in SCENARIOS:
        fail(f"unknown scenario {scenario!r}; known: {_scenario_names()}")
    try:
        the_day = date.fromisoformat(day) if day else DEFAULT_DAY
        g = gen(scenario, seed, out, scale=scale, day=the_day, history_hours=history_hours)
    except ValueError as exc:
        fail(str(exc))
    kinds = ", ".join(sorted({a["kind"] for a in g.truth["attacks"]})) or "none (background only)"
    console.print(f"scenario {scenario} (seed {seed}, scale {scale}, day {g.truth['day']}) written to {out} "
                  f"in {g.seconds:.1f} s", highlight=False)
    console.print(f"  attacks: {kinds}", highlight=False)
    console.print("  " + ", ".join(f"{k} {v}" for k, v in g.counts.items()), highlight=False)


@app.command("import")
def import_(
    ctx: typer.Context,
    directory: Path = typer.Argument(..., help="A scenario directory written by `necoma testbed generate`."),
    force: bool = typer.Option(False, "--force", help="Import files again even if the same content was imported; replaces their earlier rows."),
) -> None:
    """Load a scenario into the lake, once.

    pcap and logs go through the importers, flow and sFlow datagrams and syslog through the collectors'
    decoders. Files already imported (same content) are skipped.
    """
    from necoma.testbed.importer import import_scenario

    settings = settings_from(ctx)

    def show(r) -> None:
        rows = ", ".join(f"{n} {t}" for t, n in sorted(r.rows.items())) or "no rows"
        state = "skipped (already imported)" if r.skipped and not r.note else ("skipped" if r.skipped else "imported")
        extra = f"; rejected {r.rejected}" if r.rejected and not r.skipped else ""
        console.print(f"{r.path.relative_to(directory)}: {state} {rows}{extra}" + (f" — {r.note}" if r.note else ""),
                      highlight=False)

    try:
        import_scenario(directory, settings, force=force, progress=show)
    except FileNotFoundError as exc:
        fail(str(exc))


@app.command("replay")
def replay(
    directory: Path = typer.Argument(..., help="A scenario directory written by `necoma testbed generate`."),
    netflow: Optional[str] = typer.Option(None, "--netflow", help="HOST:PORT of a NetFlow v9/IPFIX collector; the flow datagram files are sent there."),
    sflow: Optional[str] = typer.Option(None, "--sflow", help="HOST:PORT of an sFlow collector (usually port 6343)."),
    syslog: Optional[str] = typer.Option(None, "--syslog", help="HOST:PORT of a syslog receiver; each line goes as one UDP datagram."),
    speed: str = typer.Option("1", "--speed", help="Playback speed: 1 keeps the recorded pace (a day takes a day), "
                              "3600 plays an hour per second, 'max' sends as fast as --max-rate allows."),
    max_rate: float = typer.Option(20000.0, "--max-rate", help="Upper bound in datagrams per second, so a collector's socket buffer does not overflow."),
) -> None:
    """Send a scenario to collectors as real UDP, keeping its rhythm.

    Datagrams go in time order, from one socket per file, with inter-arrival times divided by --speed.
    """
    from necoma.testbed.replay import parse_target
    from necoma.testbed.replay import replay as do_replay

    targets = {}
    try:
        for name, value in (("netflow", netflow), ("sflow", sflow), ("syslog", syslog)):
            if value:
                targets[name] = parse_target(value)
        spd = None if speed.lower() == "max" else float(speed)
    except ValueError as exc:
        fail(str(exc))
    if not targets:
        fail("nothing to send: give at least one of --netflow, --sflow, --syslog")

    def show(st) -> None:
        err_console.print(f"  {st.total} datagrams sent in {st.seconds:.0f} s", highlight=False)

    try:
        st = do_replay(directory, targets, speed=spd, max_rate=max_rate, progress=show)
    except (ValueError, FileNotFoundError, OSError) as exc:
        fail(str(exc))
    for label, n in st.sent.items():
        console.print(f"{label}: {n} datagrams", highlight=False)
    console.print(f"sent {st.total} datagrams ({st.bytes} bytes) in {st.seconds:.1f} s", highlight=False)
