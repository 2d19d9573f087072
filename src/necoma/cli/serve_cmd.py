"""`necoma serve`: the exchange service (TAXII 2.1) over HTTP."""
from __future__ import annotations

import threading

import typer

from necoma.cli.common import console, settings_from
from necoma.exchange.db import session_factory


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
    stop = threading.Event()
    syncer = threading.Thread(target=_sync_peers, args=(session_factory(app.state.engine), stop), daemon=True)
    syncer.start()
    try:
        uvicorn.run(app, host=host, port=port, log_level="info", proxy_headers=True)
    finally:
        stop.set()


def _sync_peers(sessions, stop: threading.Event, tick: float = 10.0) -> None:
    """Synchronize each peer whose interval has passed; errors are kept on the peer (`necoma admin peer list`)."""
    from necoma.exchange import peers

    while not stop.wait(tick):
        for name in peers.due(sessions):
            res = peers.sync(sessions, name)
            if res.pulled or res.pushed or res.errors:
                console.print(f"peer {name}: pulled {res.pulled}, pushed {res.pushed}, errors {len(res.errors)}")
