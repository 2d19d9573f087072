"""`necoma config`: show the effective settings."""
from __future__ import annotations

import json

import typer
from rich.table import Table

from necoma.cli.common import console, settings_from
from necoma.config import config_path, describe

app = typer.Typer(help="Show necoma's settings.", no_args_is_help=True)


@app.command("show")
def show(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print the settings as JSON instead of a table."),
) -> None:
    """Print every setting with its effective value and meaning."""
    settings = settings_from(ctx)
    if as_json:
        console.print_json(json.dumps(settings.model_dump(mode="json")))
        return
    source = config_path((ctx.find_root().obj or {}).get("config"))
    table = Table(title=f"necoma settings (from {source or 'built-in defaults'})")
    table.add_column("setting")
    table.add_column("value")
    table.add_column("meaning")
    for key, value, doc in describe(settings):
        table.add_row(key, "" if value is None else str(value), doc)
    console.print(table)
