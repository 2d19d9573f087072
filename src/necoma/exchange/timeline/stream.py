"""Streams of posts for bots: a regular expression in, each matching post (with capture groups) out.

The database is the source of truth: a stream asks it for visible posts newer
than the last one it saw, so posts made by another process still arrive (at
the latest after `poll` seconds) and visibility is checked by the same SQL as
everywhere. Posts made through this process wake the streams at once.

Patterns are untrusted: at most 500 characters, compiled with the `regex`
module and run with a time limit per post, so a catastrophic pattern costs
its own stream a skipped post, not the server its CPU.
"""
from __future__ import annotations

import asyncio
import json
import time
from typing import Any, AsyncIterator, Callable

import regex

MAX_PATTERN = 500
MATCH_TIMEOUT_S = 0.05


class Notifier:
    """Wakes every stream of this process when a post is made (callable from worker threads)."""

    def __init__(self) -> None:
        self._events: set[asyncio.Event] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def subscribe(self) -> asyncio.Event:
        self._loop = asyncio.get_running_loop()
        ev = asyncio.Event()
        self._events.add(ev)
        return ev

    def unsubscribe(self, ev: asyncio.Event) -> None:
        self._events.discard(ev)

    def notify(self) -> None:
        if self._loop is not None:
            for ev in list(self._events):
                self._loop.call_soon_threadsafe(ev.set)


def compile_pattern(pattern: str) -> regex.Pattern:
    if not pattern or len(pattern) > MAX_PATTERN:
        raise ValueError(f"pattern must be 1 to {MAX_PATTERN} characters")
    try:
        return regex.compile(pattern)
    except regex.error as exc:
        raise ValueError(f"bad pattern: {exc}") from None


def match(rx: regex.Pattern, post: dict[str, Any]) -> dict[str, Any] | None:
    """The stream item for `post`, or None when the pattern does not match (or takes too long)."""
    try:
        m = rx.search(post["text"], timeout=MATCH_TIMEOUT_S)
    except TimeoutError:
        return None
    if m is None:
        return None
    return {"post": post, "match": m.group(0), "groups": list(m.groups()), "named": m.groupdict()}


async def items(fetch: Callable[[int], Any], start_id: int, rx: regex.Pattern, notifier: Notifier,
                is_disconnected: Callable[[], Any], heartbeat: float = 15.0, poll: float = 2.0) -> AsyncIterator[dict]:
    """Matching posts after `start_id`, and {"heartbeat": ...} every `heartbeat` seconds of silence.

    `fetch(after_id)` returns visible post resources with larger ids, oldest first.
    """
    ev = notifier.subscribe()
    last_id, last_out = start_id, time.monotonic()
    try:
        while not await is_disconnected():
            ev.clear()
            for post in await fetch(last_id):
                last_id = post["id"]
                item = match(rx, post)
                if item is not None:
                    last_out = time.monotonic()
                    yield item
            if time.monotonic() - last_out >= heartbeat:
                last_out = time.monotonic()
                yield {"heartbeat": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            try:
                await asyncio.wait_for(ev.wait(), timeout=min(poll, heartbeat))
            except asyncio.TimeoutError:
                pass
    finally:
        notifier.unsubscribe(ev)


def ndjson(item: dict) -> bytes:
    return (json.dumps(item) + "\n").encode()


def sse(item: dict) -> bytes:
    if "heartbeat" in item:
        return f": heartbeat {item['heartbeat']}\n\n".encode()
    return f"event: post\nid: {item['post']['id']}\ndata: {json.dumps(item)}\n\n".encode()
