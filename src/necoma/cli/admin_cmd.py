"""`necoma admin`: organizations, API keys and sharing groups of the exchange store."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Optional

import typer
from rich.table import Table
from sqlalchemy.orm import Session

from necoma.cli.common import console, fail, settings_from
from necoma.exchange import admin
from necoma.exchange.db import open_engine, session_factory
from necoma.exchange.timestamps import format_us

app = typer.Typer(help="Administer the exchange: organizations, API keys, sharing groups.", no_args_is_help=True)
org_app = typer.Typer(help="Organizations.", no_args_is_help=True)
key_app = typer.Typer(help="API keys (stored hashed; a new key is shown once).", no_args_is_help=True)
group_app = typer.Typer(help="Sharing groups (each has its own TAXII collection).", no_args_is_help=True)
app.add_typer(org_app, name="org")
app.add_typer(key_app, name="key")
app.add_typer(group_app, name="group")


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
