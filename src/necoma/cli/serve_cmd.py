"""`necoma serve`: the exchange service (TAXII 2.1) over HTTP."""
from __future__ import annotations

import typer

from necoma.cli.common import console, settings_from


def serve(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8080, "--port", help="TCP port."),
) -> None:
    """Serve the exchange API: TAXII 2.1 at /taxii2/ (API keys from `necoma admin key create`)."""
    import uvicorn

    from necoma.exchange.taxii import create_app

    settings = settings_from(ctx)
    app = create_app(settings.exchange_db_url, settings.exchange)
    console.print(f"necoma exchange on http://{host}:{port}/taxii2/ (store {settings.exchange_db_url})")
    uvicorn.run(app, host=host, port=port, log_level="info", proxy_headers=True)
