"""Request bodies larger than `max_request_bytes` get 413 before any endpoint parses them.

TAXII routes check size themselves (after authentication, as a TAXII error);
this guards the rest of the API (timeline posts with attachments, lists...),
whose bodies FastAPI would otherwise read whole into memory. Written as a raw
ASGI middleware because it must count a chunked body while it arrives.
"""
from __future__ import annotations

import json


class BodyLimit:
    def __init__(self, app, max_bytes: int, skip_prefix: str = "/taxii2/") -> None:
        self.app, self.max_bytes, self.skip_prefix = app, max_bytes, skip_prefix

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.skip_prefix) or scope["method"] in ("GET", "HEAD"):
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            return await self._refuse(send)
        chunks, size, more = [], 0, True
        while more:  # read (and count) the whole body before the app sees any of it
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            chunks.append(msg.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                return await self._refuse(send)
            more = msg.get("more_body", False)
        body, sent = b"".join(chunks), False

        async def replay():
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, send) -> None:
        payload = json.dumps({"title": "Request too large", "http_status": "413",
                              "description": f"bodies are limited to {self.max_bytes} bytes"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})
