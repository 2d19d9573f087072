"""`necoma actions add`: an operator files a countermeasure by hand (registered on the `actions` group)."""
from __future__ import annotations

from typing import Optional

import typer

from necoma.cli.common import console, fail

FRAGMENTS = "is-fragment, first-fragment, last-fragment, not-a-fragment, dont-fragment"


def add(
    ctx: typer.Context,
    kind: str = typer.Argument(..., help="What to do: drop, rate_limit, blackhole, isolate, block_domain, report_abuse, notify or advise."),
    reason: str = typer.Option(..., "--reason", help="One line a person reads before approving (required), e.g. \"our NOC saw the flood on the uplink\"."),
    point: Optional[str] = typer.Option(None, "--point", help="Enforcement point (\\[protect.points.NAME]). Default: \\[protect.routes] for the kind, or the only point."),
    dst: list[str] = typer.Option([], "--dst", help="Destination prefix (IPv4/IPv6 CIDR or address); repeat or comma-separate for several."),
    src: list[str] = typer.Option([], "--src", help="Source prefix; repeat or comma-separate for several."),
    proto: Optional[str] = typer.Option(None, "--proto", help="IP protocol: udp, tcp, icmp, icmpv6, gre, ... or a number 0-255."),
    dst_port: list[str] = typer.Option([], "--dst-port", help="Destination port or inclusive range (443, 1000-2000); repeat for several."),
    src_port: list[str] = typer.Option([], "--src-port", help="Source port or inclusive range (123 for NTP reflection); repeat for several."),
    length: Optional[str] = typer.Option(None, "--length", help="IP packet length, one value or an inclusive range: 201-65535 matches packets longer than 200 bytes."),
    fragment: Optional[str] = typer.Option(None, "--fragment", help=f"Fragment flag to match: {FRAGMENTS}."),
    tcp_flags: Optional[str] = typer.Option(None, "--tcp-flags", help="TCP flags set/mask as FlowSpec and nfdump write them: S/SA = SYN set, ACK clear (needs --proto tcp)."),
    domain: list[str] = typer.Option([], "--domain", help="Domain name for block_domain (its subdomains too), report_abuse or notify; repeat for several."),
    rate_bps: Optional[str] = typer.Option(None, "--rate", help="rate_limit only: the allowed rate in bits per second (1000000, 500k, 10M)."),
    rpz_action: Optional[str] = typer.Option(None, "--rpz-action", help="block_domain only: nxdomain (default), nodata, drop, passthru or redirect."),
    allow: list[str] = typer.Option([], "--allow", help="isolate only: prefixes the isolated host may still reach (e.g. the patch server)."),
    param: list[str] = typer.Option([], "--param", help="Other kind-specific parameter KEY=VALUE, the value as JSON when it parses (recipients=[\"noc@example.org\"], advice=\"...\")."),
    ttl: str = typer.Option("1h", "--ttl", help="How long the action holds before it expires: seconds or 90m, 4h, 1d (capped at protect.max_ttl_seconds)."),
    incident: Optional[str] = typer.Option(None, "--incident", help="Incident id (or unique prefix) among the stored alerts this answers: its rating and confidence go to the policies, and its own attack traffic is left out of the preview."),
    by: Optional[str] = typer.Option(None, "--by", help="Who files it, recorded as the author in the audit log (default: your login name)."),
    approve: bool = typer.Option(False, "--approve", help="Approve and apply it at once under your name (the safety checks still run), instead of leaving it proposed for a second person."),
    why: str = typer.Option("", "--why", help="With --approve: why, for the audit log (default: the reason)."),
) -> None:
    """File an action by hand, with the same safety checks, preview and policies as a playbook's proposal.

    It is audited with you as its author, and waits for approval unless a policy applies it
    (or --approve approves it under your name).

    Example: necoma actions add drop --dst 192.0.2.10 --proto udp --src-port 123 --length 201-65535 --ttl 2h --reason "NTP reflection toward our customer"
    """
    from necoma.cli.actions_cmd import _mode, _protector, _who, actions_table, incidents_from_lake
    from necoma.protect import manual
    from necoma.protect.lifecycle import Refused
    from necoma.protect.points import router
    from necoma.protect.store import TransitionError

    p = _protector(ctx)
    who = _who(by)
    try:
        target = router(p.settings)(_Step(kind, point)) if kind in manual.KINDS else point or ""
        action = manual.build(kind, target, dst=dst, src=src, proto=proto, dst_ports=dst_port, src_ports=src_port,
                              packet_length=length, fragment=fragment, tcp_flags=tcp_flags, domains=domain,
                              rate_bps=rate_bps, rpz_action=rpz_action, allow=allow, params=param, ttl=ttl,
                              reason=reason)
    except ValueError as exc:
        fail(f"not filed: {exc}")
    inc = None
    if incident:
        found = [i for i in incidents_from_lake(p.settings) if i.id.startswith(incident)]
        if len(found) != 1:
            fail(f"not filed: --incident {incident!r} names {len(found)} of the incidents from the newest day of "
                 "stored alerts (see necoma actions list --json, or give more of the id)")
        inc = found[0]
    try:
        out = p.file_by_hand(action, who, inc)
    except (Refused, ValueError) as exc:
        fail(f"not filed: {exc}")
    console.print(_mode(p.settings))
    if out.decision.startswith("known"):
        console.print(f"{out.action.id}: the same action is already {out.action.state}; nothing filed", highlight=False)
        return
    shown, decision = out.action, out.decision
    if approve and out.action.state == "proposed":
        try:
            (shown,) = p.approve([out.action.id], who, why or reason)
        except (Refused, TransitionError) as exc:
            fail(f"filed as {out.action.id}, but not approved:\n{exc}")
        decision = p.store.audit(shown.id)[-1].why
    console.print(actions_table([(shown, decision, out.preview)], f"filed by hand by {who}"))
    if out.preview and not out.preview.get("excluded") and out.preview.get("applies"):
        console.print("preview: no --incident, so every matching flow or query counts, the attack's own too",
                      highlight=False)
    if shown.state == "failed":
        raise typer.Exit(1)


class _Step:
    """What `router` asks of a playbook step: the kind and an explicit point, if any."""

    def __init__(self, kind: str, point: str | None) -> None:
        self.kind, self.point = kind, point
