"""`necoma actions`: the human decision on countermeasures, and `necoma run`'s protect stage."""
from __future__ import annotations

import getpass
import json
from typing import Optional

import typer
from rich.table import Table

from necoma.cli.common import console, fail, settings_from
from necoma.protect.preview import summary

app = typer.Typer(help="Countermeasures: list, preview, approve, reject, withdraw; propose from incidents or add by hand; "
                       "expire and reconcile; enforcement points and their BGP speakers.",
                  no_args_is_help=True)


def _protector(ctx: typer.Context):
    from necoma.protect.lifecycle import Protector
    from necoma.protect.playbooks import PlaybookError
    from necoma.protect.policies import PolicyError

    settings = settings_from(ctx)
    try:
        return Protector(settings)
    except (PlaybookError, PolicyError, ValueError) as exc:
        fail(str(exc))


def _mode(settings) -> str:
    return "[bold green]enforcing[/]" if settings.protect.enforce else \
        "[yellow]dry run[/] (protect.enforce = false: actions go to the dry-run driver, nothing is installed)"


def _target(a) -> str:
    m = a.match
    parts = []
    if m.src_prefixes:
        parts.append("src " + ",".join(m.src_prefixes[:3]) + (f" +{len(m.src_prefixes) - 3}" if len(m.src_prefixes) > 3 else ""))
    if m.dst_prefixes:
        parts.append("dst " + ",".join(m.dst_prefixes[:3]) + (f" +{len(m.dst_prefixes) - 3}" if len(m.dst_prefixes) > 3 else ""))
    if m.protocol is not None:
        parts.append({6: "tcp", 17: "udp", 1: "icmp"}.get(m.protocol, f"proto {m.protocol}"))
    if m.src_ports:
        parts.append("sport " + ",".join(map(str, m.src_ports)))
    if m.dst_ports:
        parts.append("dport " + ",".join(map(str, m.dst_ports)))
    if m.packet_length:
        parts.append(f"len {m.packet_length[0]}-{m.packet_length[1]}")
    if m.fragment:
        parts.append(m.fragment)
    if m.tcp_flags:
        parts.append(f"flags {m.tcp_flags}")
    if m.domains:
        parts.append(", ".join(m.domains[:3]) + (f" +{len(m.domains) - 3}" if len(m.domains) > 3 else ""))
    return " ".join(parts)


def actions_table(rows, title: str) -> Table:
    """rows: (action, decision or note, preview dict)."""
    t = Table(title=title)
    for col in ("id", "state", "kind", "point", "target", "ttl", "preview (legitimate-looking, last 24 h)", "decision"):
        t.add_column(col, overflow="fold")
    for a, decision, view in rows:
        t.add_row(a.id, a.state, a.kind, a.point, _target(a), f"{a.ttl_seconds}s", summary(view), decision or "")
    return t


@app.command("list")
def list_cmd(
    ctx: typer.Context,
    state: Optional[str] = typer.Option(None, "--state", "-s", help="Only actions in these states, comma-separated (proposed, approved, applied, rejected, expired, withdrawn, failed)."),
    incident: Optional[str] = typer.Option(None, "--incident", help="Only actions proposed for this incident id."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON lines (every field) instead of a table."),
) -> None:
    """List actions with their state, target, preview and why they stand there."""
    from necoma.protect.store import TRANSITIONS

    states = tuple(s.strip() for s in state.split(",")) if state else None
    unknown = sorted(set(states or ()) - set(TRANSITIONS))
    if unknown:
        fail(f"--state: unknown state(s) {', '.join(unknown)}; states are {', '.join(TRANSITIONS)}")
    p = _protector(ctx)
    recs = p.store.find(states, incident=incident)
    if as_json:
        for r in recs:
            print(json.dumps({**r.action.model_dump(mode="json"), "policy": r.policy, "preview": r.preview, "note": r.note}))
        return
    console.print(_mode(p.settings))
    console.print(actions_table([(r.action, r.note, r.preview) for r in recs], f"{len(recs)} actions"))


@app.command("show")
def show(ctx: typer.Context, action_id: str = typer.Argument(..., help="Action id, or a unique prefix of it.")) -> None:
    """One action in full, with its preview and its audit trail."""
    from necoma.protect.store import TransitionError

    p = _protector(ctx)
    try:
        r = p.store.get(action_id)
    except TransitionError as exc:
        fail(str(exc))
    a = r.action
    console.print(f"[bold]{a.id}[/]  {a.kind} at {a.point}  state [bold]{a.state}[/]", highlight=False)
    console.print(f"reason: {a.reason}\nplaybook: {a.playbook}  incident: {a.incident_id} (rating {a.rating})  "
                  f"policy: {r.policy}  decided by: {a.decided_by or '-'}", highlight=False, markup=False)
    console.print(f"match: {a.match.model_dump_json(exclude_defaults=True)}", highlight=False, markup=False)
    if a.params:
        console.print(f"params: {json.dumps(a.params)}", highlight=False, markup=False)
    console.print(f"ttl {a.ttl_seconds}s  applied {a.applied_at or '-'}  expires {a.expires_at or '-'}", highlight=False)
    console.print(f"preview: {summary(r.preview)}", highlight=False, markup=False)
    if r.note:
        console.print(f"note: {r.note}", highlight=False, markup=False)
    t = Table(title="audit")
    for col in ("#", "at (UTC)", "who", "from", "to", "why"):
        t.add_column(col, overflow="fold")
    for row in p.store.audit(a.id):
        t.add_row(str(row.seq), f"{row.at:%Y-%m-%d %H:%M:%S}", row.who, row.from_state or "", row.to_state, row.why)
    console.print(t)


def _who(by: Optional[str]) -> str:
    return by or getpass.getuser()


@app.command("approve")
def approve(
    ctx: typer.Context,
    action_ids: list[str] = typer.Argument(..., help="Action ids (or unique prefixes); applied together, rolled back together."),
    by: Optional[str] = typer.Option(None, "--by", help="Who approves (default: your login name)."),
    why: str = typer.Option("", "--why", help="Why, for the audit log."),
) -> None:
    """Approve proposed actions and apply them (safety checks first; a failing point rolls the batch back)."""
    from necoma.protect.lifecycle import Refused
    from necoma.protect.store import TransitionError

    p = _protector(ctx)
    console.print(_mode(p.settings))
    try:
        done = p.approve(action_ids, _who(by), why)
    except (Refused, TransitionError) as exc:
        fail(f"not approved:\n{exc}")
    for a in done:
        console.print(f"{a.id}: {a.state}" + (f", expires {a.expires_at:%Y-%m-%d %H:%M:%S} UTC" if a.expires_at else ""), highlight=False)
    if any(a.state == "failed" for a in done):
        console.print(p.store.audit(done[0].id)[-1].why, highlight=False, markup=False)
        raise typer.Exit(1)


@app.command("reject")
def reject(
    ctx: typer.Context,
    action_id: str = typer.Argument(..., help="Action id, or a unique prefix."),
    why: str = typer.Option(..., "--why", help="Why, for the audit log (required)."),
    by: Optional[str] = typer.Option(None, "--by", help="Who rejects (default: your login name)."),
) -> None:
    """Reject a proposed action."""
    from necoma.protect.store import TransitionError

    try:
        a = _protector(ctx).reject(action_id, _who(by), why)
    except TransitionError as exc:
        fail(str(exc))
    console.print(f"{a.id}: rejected", highlight=False)


@app.command("withdraw")
def withdraw(
    ctx: typer.Context,
    action_id: str = typer.Argument(..., help="Action id, or a unique prefix."),
    why: str = typer.Option(..., "--why", help="Why, for the audit log (required)."),
    by: Optional[str] = typer.Option(None, "--by", help="Who withdraws (default: your login name)."),
) -> None:
    """Withdraw an approved or applied action before its TTL ends (removes it from the point)."""
    from necoma.protect.model import DriverError
    from necoma.protect.store import TransitionError

    try:
        a = _protector(ctx).withdraw(action_id, _who(by), why)
    except (TransitionError, DriverError) as exc:
        fail(str(exc))
    console.print(f"{a.id}: withdrawn", highlight=False)


@app.command("preview")
def preview_cmd(
    ctx: typer.Context,
    action_id: str = typer.Argument(..., help="Action id, or a unique prefix."),
    as_json: bool = typer.Option(False, "--json", help="Print the preview as JSON."),
) -> None:
    """Recompute the blast-radius preview: what the rule would have matched in the lake's recent legitimate-looking traffic."""
    from necoma.protect.store import TransitionError

    p = _protector(ctx)
    try:
        view = p.refresh_preview(action_id)
    except TransitionError as exc:
        fail(str(exc))
    if as_json:
        print(json.dumps(view))
        return
    console.print(f"{summary(view)}", highlight=False, markup=False)
    if view.get("range"):
        console.print(f"over {view['range'][0]} – {view['range'][1]} ({view['basis']})", highlight=False)
    if view.get("excluded"):
        ex = view["excluded"]
        console.print(f"left out as the attack itself: {len(ex['addresses'])} subject addresses during "
                      f"{ex['window'][0]} – {ex['window'][1]}", highlight=False)


@app.command("propose")
def propose(
    ctx: typer.Context,
    incident: Optional[str] = typer.Option(None, "--incident", help="Only this incident id (from correlating the stored alerts)."),
    since: Optional[str] = typer.Option(None, "--since", help="Alerts whose window ends after this time (ISO, UTC). Default: the newest day of alerts."),
) -> None:
    """Correlate the alerts stored in the lake into incidents and propose their playbooks' actions (policies may apply some)."""
    from necoma.cli.analyze_cmd import parse_time

    settings = settings_from(ctx)
    incidents = incidents_from_lake(settings, parse_time(since, "--since") if since else None)
    if incident:
        incidents = [i for i in incidents if i.id.startswith(incident)]
        if not incidents:
            fail(f"no incident {incident!r} among the stored alerts")
    protect_stage(settings, incidents)


@app.command("expire")
def expire(ctx: typer.Context) -> None:
    """Withdraw every applied action whose TTL is over (run it from cron or a timer).

    When enforcing, the RPZ and nftables points also drop expired entries the store does not
    know (left by a lost store or another necoma)."""
    p = _protector(ctx)
    done = p.expire()
    console.print(f"{len(done)} actions expired" + (": " + ", ".join(a.id for a in done) if done else ""), highlight=False)
    purged, errors = p.purge()
    _purged(purged, errors)
    if errors:
        raise typer.Exit(1)


def _purged(purged: dict[str, list[str]], errors: list[str]) -> None:
    for point, ids in purged.items():
        console.print(f"{point}: dropped {len(ids)} expired entries: {', '.join(ids)}", highlight=False)
    for e in errors:
        console.print(f"[red]{e}[/]", highlight=False)


@app.command("reconcile")
def reconcile(ctx: typer.Context) -> None:
    """After a restart: make every point hold exactly the applied, unexpired actions.

    Expires overdue actions, drops expired RPZ/nftables entries (the store's or not), re-applies missing
    ones, withdraws necoma-owned rules that should not be there, and marks as failed (after withdrawing
    them) applies that a stop interrupted."""
    p = _protector(ctx)
    console.print(_mode(p.settings))
    rep = p.reconcile()
    console.print(f"expired {len(rep.expired)}, re-applied {len(rep.reapplied)}, withdrawn {len(rep.removed)}, "
                  f"interrupted applies marked failed {len(rep.interrupted)}", highlight=False)
    _purged(rep.purged, [])
    for point, ids in rep.orphans.items():
        console.print(f"{point}: {len(ids)} installed rules unknown to this store (left alone): {', '.join(ids)}", highlight=False)
    for e in rep.errors:
        console.print(f"[red]{e}[/]", highlight=False)
    if rep.errors:
        raise typer.Exit(1)


@app.command("playbooks")
def playbooks(ctx: typer.Context) -> None:
    """Print the playbooks and policies in effect (built-in defaults merged with necoma.toml)."""
    p = _protector(ctx)
    for name, pb in p.playbooks.items():
        trig = ", ".join(pb.detectors + [f"category {c}" for c in pb.categories])
        console.print(f"[bold]{name}[/] (on {trig}) — {pb.description}", highlight=False)
        for s in pb.steps:
            console.print(f"    {s.kind:<13} per {s.per:<9} {s.reason}", highlight=False, markup=False)
    console.print("[bold]policies[/] (first match decides):")
    for pol in p.policies:
        console.print(f"  {pol.name:<24} {pol.decision:<6} {pol.description}", highlight=False, markup=False)


def incidents_from_lake(settings, since=None) -> list:
    """Incidents from the alerts stored in the lake (by default those of the newest alert day)."""
    import datetime as dt

    from necoma.analyze.runner import load_alerts
    from necoma.knowledge.correlate import correlate

    alerts = load_alerts(settings.lake_path, since=since)
    if alerts and since is None:
        newest = max(a.window_end for a in alerts)
        alerts = [a for a in alerts if a.window_end > newest - dt.timedelta(days=1)]
    return correlate(alerts)


def protect_stage(settings, incidents=None, alerts=None) -> list:
    """`necoma run`'s protect stage: propose for the incidents (or the alerts, correlated here), apply what policy
    allows — in dry run unless protect.enforce — and print the proposals with their preview and decision."""
    from necoma.knowledge.correlate import correlate
    from necoma.protect.lifecycle import Protector
    from necoma.protect.playbooks import PlaybookError
    from necoma.protect.policies import PolicyError

    if incidents is None:
        incidents = correlate(alerts or [])
    try:
        p = Protector(settings)
    except (PlaybookError, PolicyError, ValueError) as exc:
        fail(str(exc))
    try:
        outcomes = p.propose(incidents)
    except ValueError as exc:  # an unroutable step: a configuration problem
        fail(str(exc))
    finally:
        p.close()
    console.print(_mode(settings))
    console.print(actions_table([(o.action, o.decision, o.preview) for o in outcomes],
                                f"protect: {len(outcomes)} proposals from {len(incidents)} incidents"))
    return outcomes


# Commands kept in their own modules, on this group (they import this module's helpers when run).
from necoma.cli import actions_add_cmd, actions_points_cmd  # noqa: E402

app.command("add")(actions_add_cmd.add)
app.command("points")(actions_points_cmd.points)
app.command("init-point")(actions_points_cmd.init_point)
app.add_typer(actions_points_cmd.speaker_app, name="speaker")
