"""Entry point of the `necoma` command."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from necoma.cli import collect_cmd, config_cmd, import_cmd, query_cmd, run_cmd
from necoma.cli import admin_cmd, serve_cmd
from necoma.cli import bot_cmd
from necoma.cli import analyze_cmd
from necoma.cli import eval_cmd, testbed_cmd
from necoma.cli import actions_cmd

app = typer.Typer(
    name="necoma",
    help="necoma: multi-layer cyber-defense pipeline — collect, analyze, share, decide, protect.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
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


app.add_typer(config_cmd.app, name="config")
app.add_typer(import_cmd.app, name="import")
app.command("query")(query_cmd.query)
app.command("run")(run_cmd.run)
app.add_typer(admin_cmd.app, name="admin")
app.command("serve")(serve_cmd.serve)
app.add_typer(bot_cmd.app, name="bot")
app.command("collect")(collect_cmd.collect)
app.command("analyze")(analyze_cmd.analyze)
app.add_typer(analyze_cmd.alerts_app, name="alerts")
app.add_typer(testbed_cmd.app, name="testbed")
app.add_typer(actions_cmd.app, name="actions")
app.command("eval")(eval_cmd.eval_cmd)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
