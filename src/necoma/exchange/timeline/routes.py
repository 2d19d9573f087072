"""Timeline HTTP API under /api/v1: posts, search, threads, and the regex stream (NDJSON or SSE)."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool

from necoma.exchange.admin import Principal
from necoma.exchange.models import Post
from necoma.exchange.taxii.app import Service, TaxiiError, authenticate
from necoma.exchange.timeline import posts, stream

router = APIRouter(prefix="/api/v1")


class NewPost(BaseModel):
    text: str = Field(..., max_length=posts.MAX_TEXT)
    group: str | None = None  # a sharing group name; none: public or own organization
    list: str | None = None  # one of your organization's lists: its member organizations are the recipients
    tlp: str | None = None  # default: clear without a group or list, amber with one
    reply_to: int | None = None
    attachment: Any = None  # e.g. a STIX bundle


def refused(exc: posts.PostError) -> TaxiiError:
    """The HTTP error for a refused timeline request: 404 for what the caller cannot see, 403 for roles."""
    text = str(exc)
    if text.startswith("no ") or "has no list" in text:
        return TaxiiError(404, "Not found", text)
    if "readers" in text or text.startswith("not a member"):
        return TaxiiError(403, "Forbidden", text)
    return TaxiiError(400, "Request refused", text)


def _svc(request: Request) -> Service:
    return request.app.state.service


@router.post("/posts", status_code=201)
def create_post(request: Request, body: NewPost, p: Principal = Depends(authenticate)) -> JSONResponse:
    svc = _svc(request)
    scope = posts.Scope(body.group, body.tlp or ("amber" if body.group or body.list else "clear"), body.list)
    with svc.sessions() as s:
        try:
            post = posts.create(s, p, p.name, body.text, scope, body.reply_to, body.attachment)
        except posts.PostError as exc:
            s.rollback()
            raise refused(exc) from None
        s.commit()
        out = posts.resource(s, post)
    svc.notifier.notify()
    return JSONResponse(out, status_code=201)


@router.get("/posts")
def list_posts(request: Request, p: Principal = Depends(authenticate), tag: str | None = None,
               mention: str | None = None, q: str | None = None, before_id: int | None = None,
               limit: int = Query(50, ge=1, le=500)) -> JSONResponse:
    with _svc(request).sessions() as s:
        found = posts.search(s, p, tag=tag, mention=mention, q=q, before_id=before_id, limit=limit)
        return JSONResponse({"posts": [posts.resource(s, x) for x in found]})


@router.get("/posts/{post_id}")
def thread(request: Request, post_id: int, p: Principal = Depends(authenticate)) -> JSONResponse:
    """A post and the visible replies to it (oldest first)."""
    with _svc(request).sessions() as s:
        found = posts.search(s, p, thread=post_id, after_id=0, limit=1000)
        if not found or found[0].id != post_id:
            raise TaxiiError(404, "Post not found", str(post_id))
        return JSONResponse({"post": posts.resource(s, found[0]), "replies": [posts.resource(s, x) for x in found[1:]]})


@router.get("/stream")
async def stream_posts(request: Request, pattern: str, p: Principal = Depends(authenticate),
                       since_id: int | None = None, heartbeat: float = Query(15.0, ge=0.2, le=300),
                       format: str | None = None) -> StreamingResponse:
    """Each new visible post whose text matches `pattern`, with its capture groups; heartbeats in between.

    NDJSON by default; Server-Sent Events with `format=sse` or `Accept: text/event-stream`.
    """
    try:
        rx = stream.compile_pattern(pattern)
    except ValueError as exc:
        raise TaxiiError(400, "Bad pattern", str(exc)) from None
    svc = _svc(request)
    if since_id is None:
        def _max() -> int:
            with svc.sessions() as s:
                return s.scalar(select(func.max(Post.id))) or 0
        since_id = await run_in_threadpool(_max)

    def _fetch(after_id: int) -> list[dict]:
        with svc.sessions() as s:
            return [posts.resource(s, x) for x in posts.search(s, p, after_id=after_id, limit=200)]

    use_sse = format == "sse" or "text/event-stream" in request.headers.get("accept", "")
    encode = stream.sse if use_sse else stream.ndjson

    async def body():
        async for item in stream.items(lambda a: run_in_threadpool(_fetch, a), since_id, rx, svc.notifier,
                                       request.is_disconnected, heartbeat=heartbeat):
            yield encode(item)

    return StreamingResponse(body(), media_type="text/event-stream" if use_sse else "application/x-ndjson",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
