"""A small client of the timeline API for bots: post, search, and follow the regex stream with reconnects."""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx

log = logging.getLogger(__name__)


class TimelineClient:
    def __init__(self, base_url: str, key: str, timeout: float = 30.0) -> None:
        self.base = base_url.rstrip("/") + "/api/v1"
        self._http = httpx.Client(timeout=timeout, headers={"Authorization": f"Bearer {key}"})

    def close(self) -> None:
        self._http.close()

    def post(self, text: str, **fields: Any) -> dict:
        r = self._http.post(self.base + "/posts", json={"text": text, **{k: v for k, v in fields.items() if v is not None}})
        r.raise_for_status()
        return r.json()

    def search(self, **params: Any) -> list[dict]:
        r = self._http.get(self.base + "/posts", params=params)
        r.raise_for_status()
        return r.json()["posts"]

    def stream(self, pattern: str, since_id: int | None = None, heartbeat: float = 15.0,
               stop: Callable[[], bool] = lambda: False, retry_s: float = 2.0) -> Iterator[dict]:
        """Stream items (post + capture groups), resuming after the last post seen when the connection drops.

        Heartbeats are consumed here: they only serve to notice `stop` and dead connections.
        """
        last = since_id
        while not stop():
            params: dict[str, Any] = {"pattern": pattern, "heartbeat": heartbeat}
            if last is not None:
                params["since_id"] = last
            try:
                with self._http.stream("GET", self.base + "/stream", params=params,
                                       timeout=httpx.Timeout(10.0, read=heartbeat * 3 + 5)) as r:
                    if r.status_code in (400, 401, 403):
                        raise RuntimeError(f"stream refused ({r.status_code}): {r.read().decode(errors='replace')}")
                    r.raise_for_status()
                    for line in r.iter_lines():
                        if stop():
                            return
                        if not line:
                            continue
                        item = json.loads(line)
                        if "post" in item:
                            last = item["post"]["id"]
                            yield item
            except (httpx.TransportError, httpx.HTTPStatusError) as exc:
                log.warning("stream interrupted (%s); reconnecting in %.0f s", exc, retry_s)
                time.sleep(retry_s)
