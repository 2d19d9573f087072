"""`necoma actions points | init-point | speaker ...`: the enforcement points as an operator runs them
(registered on the `actions` group)."""
from __future__ import annotations

from typing import Optional

import typer
from rich.table import Table

from necoma.cli.common import console, fail

speaker_app = typer.Typer(
    help="The BGP speaker (gobgpd or ExaBGP) necoma runs for a FlowSpec/RTBH point: it keeps running after "
         "necoma exits so the session stays up. See it, start, stop or restart it.",
    no_args_is_help=True)


def _ids(ids: set[str], most: int = 4) -> str:
    s = sorted(ids)
    return ", ".join(s[:most]) + (f" +{len(s) - most}" if len(s) > most else "")


def points(ctx: typer.Context) -> None:
    """List the enforcement points: driver, kinds, mode, condition, what each holds against the store.

    Missing actions are applied in the store but not at the point (run reconcile). Changes
    nothing and starts no speaker. Exit 1 when a point is out of step, not ready or cannot be asked."""
    from necoma.cli.actions_cmd import _mode, _protector
    from necoma.protect.model import KINDS
    from necoma.protect.point_admin import describe

    p = _protector(ctx)
    console.print(_mode(p.settings))
    t = Table(title="enforcement points")
    for col in ("point", "driver", "kinds", "mode", "condition", "holds", "store: applied", "differences"):
        t.add_column(col, overflow="fold")
    trouble = False
    for v in describe(p):
        diff = []
        if v.missing:
            diff.append(f"missing {_ids(v.missing)} (run reconcile)")
        if v.extra:
            diff.append(f"not applied in the store {_ids(v.extra)}")
        if v.error:
            diff.append(v.error)
        trouble |= bool(diff) or not v.healthy
        t.add_row(v.name, v.driver, "all" if v.kinds == frozenset(KINDS) else ", ".join(sorted(v.kinds)), "dry run" if v.dry else "enforced", v.ready,
                  "?" if v.installed is None else str(len(v.installed)), str(len(v.applied)), "; ".join(diff) or "in step")
    console.print(t)
    if trouble:
        raise typer.Exit(1)


def init_point(
    ctx: typer.Context,
    names: Optional[list[str]] = typer.Argument(None, help="Point names (\\[protect.points.NAME]); default: every configured point."),
) -> None:
    """Get enforcement points ready before first use (RPZ zone file, nftables table, BGP speaker).

    Writes the empty RPZ zone the resolver needs before it starts, creates necoma's nftables
    table, starts the BGP speaker necoma runs (then announces what the store has applied there).
    Safe to repeat: what exists is left as it is."""
    from necoma.cli.actions_cmd import _protector
    from necoma.protect.model import DriverError
    from necoma.protect.point_admin import init_point as prepare

    p = _protector(ctx)
    failed = False
    for name in names or list(p.points.configs):
        try:
            console.print(prepare(p, name), highlight=False, markup=False)
        except (DriverError, ValueError, OSError) as exc:
            console.print(f"[red]{name}: {exc}[/]", highlight=False)
            failed = True
            continue
        if p.points.configs[name]["driver"] in ("gobgp", "exabgp") and not p.points.dry(name):
            failed |= _reconcile(p, name)
    if not p.settings.protect.enforce:
        console.print("note: protect.enforce is false, so nothing is installed at these points until it is true",
                      highlight=False)
    if failed:
        raise typer.Exit(1)


def _reconcile(p, name: str) -> bool:
    """Announce what the store has applied at the point again; True on errors."""
    rep = p.reconcile(only=[name])
    console.print(f"{name}: reconciled: re-applied {len(rep.reapplied)}, withdrawn {len(rep.removed)}"
                  + (f", unknown to the store {len(rep.orphans.get(name, []))}" if rep.orphans.get(name) else ""),
                  highlight=False)
    for e in rep.errors:
        console.print(f"[red]{e}[/]", highlight=False)
    return bool(rep.errors)


POINT = typer.Argument(..., help="A BGP point (\\[protect.points.NAME] with driver gobgp or exabgp).")


@speaker_app.command("status")
def speaker_status(ctx: typer.Context, point: str = POINT) -> None:
    """Whether the speaker runs, its BGP sessions, and what it announces against the store.

    Never starts it. Exit 1 when it is down or a session is not established."""
    from necoma.cli.actions_cmd import _protector
    from necoma.protect import speakers

    p = _protector(ctx)
    try:
        st = speakers.status(p.points, point)
    except speakers.NotASpeaker as exc:
        fail(str(exc))
    who = "necoma runs it" if st.managed else "the operator runs it (manage = false)"
    if st.managed and st.pid is None:
        console.print(f"{point}: {st.driver} speaker not running ({who}; run_dir {st.run_dir}); nothing is announced",
                      highlight=False)
        if st.log_tail:
            console.print(f"log tail:\n{st.log_tail}", highlight=False, markup=False)
        raise typer.Exit(1)
    console.print(f"{point}: {st.driver} speaker " + (f"running, pid {st.pid}" if st.pid else "")
                  + f" ({who}" + (f"; run_dir {st.run_dir})" if st.run_dir else ")"), highlight=False)
    if st.error:
        console.print(f"[red]{st.error}[/]", highlight=False)
        raise typer.Exit(1)
    for peer, state in st.sessions:
        console.print(f"  session to {peer}: {state}", highlight=False)
    applied = {r.action.id for r in p.store.find(("applied",), point=point) if not r.action.dry_run}
    announced = st.announced or set()
    console.print(f"  announces {len(announced)} actions; the store has {len(applied)} applied here"
                  + (f"; missing {_ids(applied - announced)} (run reconcile)" if applied - announced else "")
                  + (f"; not applied in the store {_ids(announced - applied)}" if announced - applied else ""),
                  highlight=False)
    if not st.sessions or any(state != "established" for _, state in st.sessions):
        raise typer.Exit(1)


@speaker_app.command("start")
def speaker_start(ctx: typer.Context, point: str = POINT) -> None:
    """Start the speaker if it is not running, then announce what the store has applied there.

    Its config is written from the point's current options."""
    _start(ctx, point)


def _start(ctx: typer.Context, point: str) -> None:
    from necoma.cli.actions_cmd import _protector
    from necoma.protect import speakers
    from necoma.protect.model import DriverError

    p = _protector(ctx)
    try:
        pid, started = speakers.start(p, point)
    except (speakers.NotASpeaker, DriverError) as exc:
        fail(str(exc))
    console.print(f"{point}: speaker " + (f"started, pid {pid}" if started else f"running already, pid {pid}"),
                  highlight=False)
    if p.points.dry(point):
        console.print("note: protect.enforce is false: nothing is announced through it", highlight=False)
    elif _reconcile(p, point):
        raise typer.Exit(1)


@speaker_app.command("stop")
def speaker_stop(
    ctx: typer.Context,
    point: str = POINT,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask: stopping drops the BGP session and the peer withdraws every rule."),
    by: Optional[str] = typer.Option(None, "--by", help="Who stops it, for the audit rows of the affected actions (default: your login name)."),
) -> None:
    """Stop the speaker necoma runs for the point: the peer withdraws every rule it announced.

    Each applied action there gets an audit row saying so; `speaker start` (or reconcile)
    announces them again."""
    from necoma.cli.actions_cmd import _protector, _who
    from necoma.protect import speakers

    p = _protector(ctx)
    applied = [r for r in p.store.find(("applied",), point=point) if not r.action.dry_run]
    if not yes and not typer.confirm(f"stop the speaker of {point}? The peer withdraws its rules "
                                     f"({len(applied)} applied actions)", default=False):
        fail("not stopped")
    try:
        pid = speakers.stop(p, point, _who(by))
    except speakers.NotASpeaker as exc:
        fail(str(exc))
    console.print(f"{point}: " + (f"speaker pid {pid} stopped; {len(applied)} applied actions are no longer announced"
                                  if pid else "speaker was not running"), highlight=False)


@speaker_app.command("restart")
def speaker_restart(
    ctx: typer.Context,
    point: str = POINT,
    by: Optional[str] = typer.Option(None, "--by", help="Who restarts it, for the audit log (default: your login name)."),
) -> None:
    """Stop and start the speaker (e.g. to take changed peers), then announce what is applied there.

    The peer sees the session drop and come back; reconcile re-announces every applied action."""
    from necoma.cli.actions_cmd import _protector, _who
    from necoma.protect import speakers

    p = _protector(ctx)
    try:
        pid = speakers.stop(p, point, _who(by))
    except speakers.NotASpeaker as exc:
        fail(str(exc))
    p.close()
    console.print(f"{point}: " + (f"speaker pid {pid} stopped" if pid else "speaker was not running"), highlight=False)
    _start(ctx, point)
