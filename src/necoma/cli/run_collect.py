"""`necoma run`'s collection stage: the collectors named in necoma.toml, started first, stopped last.

Started before the batch stages so that nothing an exporter sends while they
run is lost; after them `necoma run` keeps collecting until SIGTERM or Ctrl-C,
which flush everything received.

SIGTERM is the service manager's "stop": wherever it lands (a batch stage, the
API server, the final wait) it ends the run cleanly — the collectors stop and
flush, the exit status is 0. While the API serves, uvicorn owns SIGTERM: it
shuts down gracefully, restores our handler and raises the signal again, which
then ends the run the same way.
"""
from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

import typer

from necoma.cli.common import err_console, fail
from necoma.collect.background import BackgroundCollector, configured, run_until_signalled
from necoma.collect.endpoints import ListenError


class StopRequested(BaseException):
    """SIGTERM arrived while the stages ran. A BaseException, like KeyboardInterrupt,
    so that no stage's `except Exception` swallows it."""


def _stop_on_sigterm(signum: int, frame: object) -> None:
    raise StopRequested


def start_collectors(ctx: typer.Context, settings) -> BackgroundCollector | None:
    """Start `necoma collect` when [collect] names listeners; None otherwise."""
    if not configured(settings.collect):
        return None
    try:
        collectors = BackgroundCollector.start((ctx.find_root().obj or {}).get("config"))
    except ListenError as exc:
        fail(str(exc))
    err_console.print(f"necoma run: collectors started ({collectors.listening})", highlight=False)
    return collectors


@contextmanager
def collecting(ctx: typer.Context, settings, wait_after: bool) -> Iterator[None]:
    """Run the block (the other stages) with the configured collectors receiving beside it.

    After the block: with `wait_after`, keep collecting until SIGTERM or Ctrl-C;
    without (a stage already waited for the signal: the API server), stop now.
    A SIGTERM inside the block stops the run cleanly; any error in it stops the
    collectors too (with their flush) before it propagates."""
    collectors = start_collectors(ctx, settings)
    if collectors is None:
        yield
        return
    previous = signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        yield
    except StopRequested:
        wait_after = False
        err_console.print("necoma run: SIGTERM — stopping the collectors (everything received is flushed)",
                          highlight=False)
    except BaseException:
        signal.signal(signal.SIGTERM, previous)
        collectors.stop()  # a failed stage (or Ctrl-C) still flushes what was received
        raise
    finally:
        # From here a second SIGTERM ends us at once; the child still finishes its flush on its own.
        signal.signal(signal.SIGTERM, previous)
    keep_collecting(collectors, until_signal=wait_after)


def keep_collecting(collectors: BackgroundCollector, until_signal: bool) -> None:
    """Collect until SIGTERM or Ctrl-C (with `until_signal`), then wait for the final flush."""
    if until_signal:
        err_console.print("necoma run: collecting until SIGTERM or Ctrl-C (everything received is flushed)",
                          highlight=False)
        code = run_until_signalled(collectors)
    else:
        code = collectors.stop()
    if code not in (0, -signal.SIGINT, 128 + signal.SIGINT):
        fail(f"the collectors exited with status {code}: {collectors.last_line}", 1)
