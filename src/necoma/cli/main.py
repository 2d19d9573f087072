"""Entry point of the `necoma` command.

Each command's module is imported only when that command runs (or `--help`
lists it): the command modules pull in sqlalchemy and stix2 (the exchange),
the collectors and DuckDB, about a second of imports that `necoma analyze`
or `necoma query` would otherwise pay on every start.
"""
from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any, Optional

import typer
from typer.core import TyperGroup

# name -> "module:attribute" under necoma.cli, a Typer group or a command function; `--help` lists them in this order
COMMANDS = {
    "query": "query_cmd:query",
    "run": "run_cmd:run",
    "serve": "serve_cmd:serve",
    "collect": "collect_cmd:collect",
    "analyze": "analyze_cmd:analyze",
    "eval": "eval_cmd:eval_cmd",
    "config": "config_cmd:app",
    "import": "import_cmd:app",
    "admin": "admin_cmd:app",
    "bot": "bot_cmd:app",
    "alerts": "analyze_cmd:alerts_app",
    "testbed": "testbed_cmd:app",
    "actions": "actions_cmd:app",
}


def load_command(name: str, markup: Any) -> Any:
    """The click command of `COMMANDS[name]`, built by Typer as if it had been registered on the app."""
    module, attr = COMMANDS[name].split(":")
    target = getattr(importlib.import_module(f"necoma.cli.{module}"), attr)
    host = typer.Typer(rich_markup_mode=markup, add_completion=False)
    host.callback()(lambda: None)  # a callback makes Typer build a group even around a single command
    if isinstance(target, typer.Typer):
        host.add_typer(target, name=name)
    else:
        host.command(name)(target)
    return typer.main.get_group(host).commands[name]


class _LazyCommands(MutableMapping):
    """The app's commands by name; each loaded on first access."""

    def __init__(self, loaded: MutableMapping, markup: Any) -> None:
        self.loaded, self.markup = dict(loaded), markup

    def __getitem__(self, name: str) -> Any:
        if name not in self.loaded:
            if name not in COMMANDS:
                raise KeyError(name)
            self.loaded[name] = load_command(name, self.markup)
        return self.loaded[name]

    def __setitem__(self, name: str, cmd: Any) -> None:
        self.loaded[name] = cmd

    def __delitem__(self, name: str) -> None:
        del self.loaded[name]

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys([*COMMANDS, *self.loaded]))

    def __len__(self) -> int:
        return len(set(COMMANDS) | set(self.loaded))


class LazyGroup(TyperGroup):
    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = _LazyCommands(self.commands, self.rich_markup_mode)


app = typer.Typer(
    name="necoma",
    help="necoma: multi-layer cyber-defense pipeline — collect, analyze, share, decide, protect.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    cls=LazyGroup,
)


@app.callback()
def _global(
    ctx: typer.Context,
    config: Optional[Path] = typer.Option(
        None, "--config", "-c", envvar="NECOMA_CONFIG",
        help="Settings file (TOML). Default: ./necoma.toml if present, else built-in defaults.",
    ),
) -> None:
    ctx.obj = {"config": config}


def main() -> None:
    app()


if __name__ == "__main__":
    main()
