"""`necoma admin`: organizations, API keys and sharing groups of the exchange store."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import typer
from rich.table import Table
from sqlalchemy.orm import Session

from necoma.cli.common import console, fail, settings_from
from necoma.exchange import admin, peers
from necoma.exchange.db import open_engine, session_factory
from necoma.exchange.timestamps import format_us

app = typer.Typer(help="Administer the exchange: organizations, API keys, sharing groups.", no_args_is_help=True)
org_app = typer.Typer(help="Organizations.", no_args_is_help=True)
key_app = typer.Typer(help="API keys (stored hashed; a new key is shown once).", no_args_is_help=True)
group_app = typer.Typer(help="Sharing groups (each has its own TAXII collection).", no_args_is_help=True)
app.add_typer(org_app, name="org")
app.add_typer(key_app, name="key")
app.add_typer(group_app, name="group")
misp_app = typer.Typer(help="MISP feeds.", no_args_is_help=True)
app.add_typer(misp_app, name="misp")
peer_app = typer.Typer(help="Peers: other TAXII 2.1 servers to pull from and push to.", no_args_is_help=True)
app.add_typer(peer_app, name="peer")


@contextmanager
def _session(ctx: typer.Context) -> Iterator[Session]:
    settings = settings_from(ctx)
    engine = open_engine(settings.exchange_db_url)
    try:
        with session_factory(engine).begin() as s:
            admin.ensure_public_collection(s, settings.exchange.org_name)
            yield s
    except admin.AdminError as exc:
        fail(str(exc))
    finally:
        engine.dispose()


@org_app.command("add")
def org_add(ctx: typer.Context, name: str = typer.Argument(..., help="Organization name.")) -> None:
    """Add an organization."""
    with _session(ctx) as s:
        org = admin.add_org(s, name)
        console.print(f"organization {org.name} added (STIX identity {org.identity_id})")


@org_app.command("list")
def org_list(ctx: typer.Context) -> None:
    """List organizations."""
    with _session(ctx) as s:
        for org in admin.list_orgs(s):
            console.print(f"{org.name}\t{org.identity_id}")


@key_app.command("create")
def key_create(
    ctx: typer.Context,
    org: str = typer.Option(..., "--org", help="Organization the key acts for."),
    role: str = typer.Option("reader", "--role", help="reader, analyst or admin."),
    user: Optional[str] = typer.Option(None, "--user", help="User the key belongs to (created if new)."),
    label: str = typer.Option("", "--label", help="Free text to recognize the key later."),
) -> None:
    """Create an API key and print it — the only time it is shown."""
    with _session(ctx) as s:
        row, token = admin.create_key(s, org, role, user=user, label=label)
        key_id = row.key_id
    # The token alone on stdout (scripts capture it); the reminder on stderr.
    typer.echo(token)
    typer.echo(f"key id {key_id}, role {role}, organization {org}: store it now, it cannot be shown again", err=True)


@key_app.command("list")
def key_list(ctx: typer.Context, org: Optional[str] = typer.Option(None, "--org")) -> None:
    """List keys (ids only; the secrets are not stored)."""
    with _session(ctx) as s:
        table = Table("key id", "organization", "role", "user", "label", "created", "revoked")
        for k in admin.list_keys(s, org):
            table.add_row(k.key_id, k.org.name, k.role, k.user.name if k.user else "", k.label,
                          format_us(k.created_us), "yes" if k.revoked else "")
        console.print(table)


@key_app.command("revoke")
def key_revoke(ctx: typer.Context, key_id: str = typer.Argument(..., help="The key id (see `key list`).")) -> None:
    """Revoke a key: it stops working at once."""
    with _session(ctx) as s:
        admin.revoke_key(s, key_id)
        console.print(f"key {key_id} revoked")


@group_app.command("add")
def group_add(
    ctx: typer.Context,
    name: str = typer.Argument(...),
    description: str = typer.Option("", "--description"),
) -> None:
    """Add a sharing group and its TAXII collection."""
    with _session(ctx) as s:
        _, col = admin.add_group(s, name, description)
        console.print(f"sharing group {name} added (TAXII collection {col.id})")


@group_app.command("member")
def group_member(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Sharing group."),
    org: str = typer.Option(..., "--org", help="Organization to add (or remove)."),
    remove: bool = typer.Option(False, "--remove", help="Remove the organization instead."),
) -> None:
    """Add an organization to a sharing group (or remove it with --remove)."""
    with _session(ctx) as s:
        (admin.remove_member if remove else admin.add_member)(s, name, org)
        console.print(f"{org} {'removed from' if remove else 'added to'} {name}")


@group_app.command("list")
def group_list(ctx: typer.Context) -> None:
    """List sharing groups with their collection and members."""
    with _session(ctx) as s:
        for g in admin.list_groups(s):
            col = admin.group_collection(s, g.name)
            console.print(f"{g.name}\tcollection {col.id}\tmembers: {', '.join(admin.group_members(s, g.name))}")


@peer_app.command("add")
def peer_add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="A name for the peer."),
    url: str = typer.Option(..., "--url", help="The remote collection URL (…/collections/<id>/)."),
    group: str = typer.Option(..., "--group", help="Local sharing group whose collection is synchronized."),
    org: str = typer.Option(..., "--org", help="Local organization: owner of pulled objects, source of pushed ones."),
    direction: str = typer.Option("both", "--direction", help="pull, push or both."),
    username: str = typer.Option("necoma", "--username", help="User name for the remote (any for necoma)."),
    key_env: str = typer.Option("NECOMA_PEER_KEY", "--key-env", help="Environment variable holding the remote key."),
    max_tlp: str = typer.Option("green", "--max-tlp", help="Most restrictive TLP pushed: clear, green or amber."),
    interval: int = typer.Option(300, "--interval", help="Seconds between syncs while `necoma serve` runs."),
) -> None:
    """Add a peer (its key is read from an environment variable, never from the command line)."""
    import os

    key = os.environ.get(key_env)
    if not key:
        fail(f"set {key_env} to the remote API key or password")
    with _session(ctx) as s:
        col = admin.group_collection(s, group)
        peers.add_peer(s, name, url, key, col.id, org, direction, username, max_tlp, interval)
        console.print(f"peer {name} added ({direction} {url})")


@peer_app.command("list")
def peer_list(ctx: typer.Context) -> None:
    """List peers with their sync state."""
    from sqlalchemy import select

    from necoma.exchange.models import Peer

    with _session(ctx) as s:
        for p in s.scalars(select(Peer).order_by(Peer.name)):
            d = peers.describe(p)
            console.print(f"{d['name']}\t{d['direction']}\t{d['url']}\tlast error: {d['last_error'] or '-'}")


@peer_app.command("sync")
def peer_sync(ctx: typer.Context, name: str = typer.Argument(..., help="Peer to synchronize now.")) -> None:
    """Pull from and/or push to a peer now."""
    settings = settings_from(ctx)
    engine = open_engine(settings.exchange_db_url)
    try:
        res = peers.sync(session_factory(engine), name)
    except admin.AdminError as exc:
        fail(str(exc))
    finally:
        engine.dispose()
    console.print(f"{name}: pulled {res.pulled}, pushed {res.pushed}, rejected {res.rejected}")
    if res.errors:
        fail("; ".join(res.errors), code=1)


@misp_app.command("import")
def misp_import(
    ctx: typer.Context,
    directory: Path = typer.Argument(..., exists=True, file_okay=False, help="MISP feed directory (manifest.json)."),
    org: str = typer.Option(..., "--org", help="Local organization that owns the imported indicators."),
    group: Optional[str] = typer.Option(None, "--group", help="Sharing group; default the public collection (TLP:CLEAR only)."),
) -> None:
    """Import a MISP feed's network indicators (ip, domain, url with to_ids) as STIX."""
    from necoma.exchange import misp

    settings = settings_from(ctx)
    engine = open_engine(settings.exchange_db_url)
    try:
        counts = misp.import_feed(session_factory(engine), directory, org, group)
    except (admin.AdminError, ValueError, OSError) as exc:
        fail(str(exc))
    finally:
        engine.dispose()
    console.print(", ".join(f"{k.replace('_', ' ')} {v}" for k, v in counts.items()))
