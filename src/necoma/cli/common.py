"""What every command shares: loading settings from the global --config option, and error exits."""
from __future__ import annotations

import typer
from rich.console import Console

from necoma.config import ConfigError, Settings, load_settings

console = Console()
err_console = Console(stderr=True)


def settings_from(ctx: typer.Context) -> Settings:
    root = ctx.find_root()
    cached = (root.obj or {}).get("settings")
    if cached is not None:
        return cached
    try:
        settings = load_settings((root.obj or {}).get("config"))
    except ConfigError as exc:
        fail(str(exc))
    root.obj = {**(root.obj or {}), "settings": settings}
    return settings


def fail(message: str, code: int = 2) -> None:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)
