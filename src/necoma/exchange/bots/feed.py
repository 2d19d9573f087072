"""The feed bot: reads an RSS or Atom feed of advisories (a file or a URL) and posts each new item once.

`feedparser` does the parsing (every RSS/Atom dialect, broken feeds
included). An item is known by its id (guid), else its link; the id is written
into the post, and before posting the bot searches the timeline for it — the
timeline is the state, so restarts and several bot instances never post an
item twice.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import feedparser
import httpx

from necoma.exchange.bots.client import TimelineClient

log = logging.getLogger(__name__)
MAX_SUMMARY = 1000
MAX_FEED_BYTES = 20 * 1024 * 1024


class FeedError(Exception):
    pass


def read_feed(source: str) -> feedparser.FeedParserDict:
    """Parse a feed from a file path or an http(s) URL; a feed that is not RSS/Atom at all is an error."""
    if source.startswith(("http://", "https://")):
        try:
            r = httpx.get(source, timeout=30, follow_redirects=True)
            r.raise_for_status()
        except httpx.HTTPError as exc:
            raise FeedError(f"cannot fetch {source}: {exc}") from None
        data = r.content[:MAX_FEED_BYTES]
    else:
        path = Path(source)
        if not path.is_file():
            raise FeedError(f"no feed file {source}")
        data = path.read_bytes()[:MAX_FEED_BYTES]
    feed = feedparser.parse(data)
    if feed.bozo and not feed.entries:
        raise FeedError(f"{source} is not an RSS/Atom feed: {feed.get('bozo_exception')}")
    return feed


def item_id(entry) -> str | None:
    return entry.get("id") or entry.get("link")


def post_text(entry, tag: str) -> str:
    title = " ".join((entry.get("title") or "(untitled)").split())
    summary = " ".join((entry.get("summary") or "").split())
    if len(summary) > MAX_SUMMARY:
        summary = summary[:MAX_SUMMARY] + "…"
    link = entry.get("link") or ""
    return f"**{title}**\n\n{summary}\n\n{link}\n\n#advisory #{tag}\n\nfeed-item: {item_id(entry)}".replace("\n\n\n\n", "\n\n")


@dataclass
class FeedBot:
    client: TimelineClient
    source: str
    tag: str = "feed"
    posted: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)

    def already_posted(self, ident: str) -> bool:
        return any(f"feed-item: {ident}" in p["text"] for p in self.client.search(q=f"feed-item: {ident}", limit=5))

    def poll(self) -> int:
        """Post the feed's new items, oldest first; returns how many were posted."""
        feed = read_feed(self.source)
        new = 0
        for entry in reversed(feed.entries):  # feeds list newest first
            ident = item_id(entry)
            if not ident:
                self.skipped += 1
                continue
            if self.already_posted(ident):
                continue
            self.client.post(post_text(entry, self.tag))
            new += 1
        self.posted += new
        return new

    def run(self, interval: float, stop: Callable[[], bool] = lambda: False) -> None:
        while not stop():
            try:
                log.info("feed %s: %d new items posted", self.source, self.poll())
            except (FeedError, httpx.HTTPError) as exc:
                self.errors.append(str(exc))
                log.warning("feed %s: %s", self.source, exc)
            deadline = time.monotonic() + interval
            while time.monotonic() < deadline and not stop():
                time.sleep(min(1.0, interval))
