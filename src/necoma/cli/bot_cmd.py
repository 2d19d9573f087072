"""`necoma bot ...`: run a timeline bot against a running `necoma serve` (or any necoma exchange)."""
from __future__ import annotations

import logging
import os
import re
from typing import Optional

import typer

from necoma.cli.common import console, fail, settings_from

app = typer.Typer(help="Timeline bots: each connects to an exchange with an API key and works the timeline.",
                  no_args_is_help=True)

URL_HELP = "Base URL of the exchange (default: [exchange] public_url)."
KEY_HELP = "Environment variable holding the bot's API key (an analyst key; keys never go on the command line)."


def _client(ctx: typer.Context, url: Optional[str], key_env: str):
    from necoma.exchange.bots.client import TimelineClient

    key = os.environ.get(key_env)
    if not key:
        fail(f"set {key_env} to the bot's API key (necoma admin key create --org ORG --role analyst --label BOT)")
    return TimelineClient(url or settings_from(ctx).exchange.public_url, key)


@app.command("enrich")
def enrich(
    ctx: typer.Context,
    url: Optional[str] = typer.Option(None, "--url", help=URL_HELP),
    key_env: str = typer.Option("NECOMA_API_KEY", "--key-env", help=KEY_HELP),
    no_lake: bool = typer.Option(False, "--no-lake", help="Answer with GeoIP/ASN only, without the lake's lists and history."),
) -> None:
    """Answer every post that mentions an IP address or domain: GeoIP/ASN ([enrich] geoip_* mmdb files),
    the lake's IP lists, and lake history (first/last seen, flows, DNS queries). Runs until Ctrl-C."""
    from necoma.enrich import Enricher
    from necoma.exchange.bots.enrichment import EnrichmentBot, LakeHistory

    settings = settings_from(ctx)
    logging.basicConfig(level=logging.INFO)
    bot = EnrichmentBot(_client(ctx, url, key_env), Enricher.from_settings(settings.enrich),
                        None if no_lake else LakeHistory(settings.lake_path))
    console.print(f"enrichment bot on {bot.client.base}/stream (Ctrl-C stops)")
    try:
        bot.run()
    except KeyboardInterrupt:
        pass
    except RuntimeError as exc:
        fail(str(exc))


@app.command("feed")
def feed(
    ctx: typer.Context,
    source: str = typer.Argument(..., help="RSS or Atom feed: a file path or an http(s) URL."),
    url: Optional[str] = typer.Option(None, "--url", help=URL_HELP),
    key_env: str = typer.Option("NECOMA_API_KEY", "--key-env", help=KEY_HELP),
    tag: str = typer.Option("feed", "--tag", help="Hashtag added to every post (besides #advisory)."),
    interval: float = typer.Option(900.0, "--interval", min=10, help="Seconds between polls of the feed."),
    once: bool = typer.Option(False, "--once", help="Poll once, print how many items were posted, and exit."),
) -> None:
    """Post each new item of an advisory feed once (public posts tagged #advisory #TAG)."""
    import httpx

    from necoma.exchange.bots.feed import FeedBot, FeedError

    if not re.fullmatch(r"[\w][\w-]{0,99}", tag):
        fail(f"--tag {tag!r}: letters, digits, '_' and '-' only")
    logging.basicConfig(level=logging.INFO)
    bot = FeedBot(_client(ctx, url, key_env), source, tag=tag)
    if once:
        try:
            console.print(f"{bot.poll()} new items posted from {source}")
        except (FeedError, httpx.HTTPError) as exc:
            fail(str(exc))
        return
    try:
        bot.run(interval)
    except KeyboardInterrupt:
        pass
