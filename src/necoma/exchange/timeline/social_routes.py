"""Timeline HTTP API for follows, lists and stars (under /api/v1), and the timelines they select."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from necoma.exchange.admin import Principal
from necoma.exchange.taxii.app import authenticate
from necoma.exchange.timeline import posts, social
from necoma.exchange.timeline.routes import refused

router = APIRouter(prefix="/api/v1")


class FollowBody(BaseModel):
    target: str = Field(..., max_length=400)  # ORG or ORG/AUTHOR


class ListBody(BaseModel):
    name: str = Field(..., max_length=social.MAX_NAME)
    members: list[str] = Field(default_factory=list, max_length=1000)  # organization names


class MemberBody(BaseModel):
    org: str = Field(..., max_length=social.MAX_NAME)


def _do(request: Request, fn, *args, status: int = 200) -> JSONResponse:
    """Run `fn(session, *args)` in one transaction; a PostError becomes its HTTP error."""
    with request.app.state.service.sessions() as s:
        try:
            out = fn(s, *args)
        except posts.PostError as exc:
            s.rollback()
            raise refused(exc) from None
        s.commit()
        return JSONResponse(out if out is not None else {"ok": True}, status_code=status)


def _page(request: Request, p: Principal, where_of, before_id: int | None, limit: int) -> JSONResponse:
    def fn(s):
        found = posts.search(s, p, before_id=before_id, limit=limit, where=where_of(s))
        return {"posts": [posts.resource(s, x) for x in found]}
    return _do(request, fn)


@router.post("/follows", status_code=201)
def follow(request: Request, body: FollowBody, p: Principal = Depends(authenticate)) -> JSONResponse:
    """Follow an organization (`ORG`) or one of its authors (`ORG/AUTHOR`); their visible posts join /home."""
    return _do(request, lambda s: social.follow(s, p, body.target) or {"following": social.following(s, p)}, status=201)


@router.delete("/follows/{target:path}")
def unfollow(request: Request, target: str, p: Principal = Depends(authenticate)) -> JSONResponse:
    def fn(s):
        if not social.unfollow(s, p, target):
            raise social.NotFound(f"no follow {target!r}")
        return {"following": social.following(s, p)}
    return _do(request, fn)


@router.get("/follows")
def follows(request: Request, p: Principal = Depends(authenticate)) -> JSONResponse:
    return _do(request, lambda s: {"following": social.following(s, p)})


@router.get("/home")
def home(request: Request, p: Principal = Depends(authenticate), before_id: int | None = None,
         limit: int = Query(50, ge=1, le=500)) -> JSONResponse:
    """Your own posts and those of whom you follow, newest first (only posts you may see)."""
    return _page(request, p, lambda s: social.home(p), before_id, limit)


@router.get("/lists")
def get_lists(request: Request, p: Principal = Depends(authenticate)) -> JSONResponse:
    """Your organization's lists and their members."""
    return _do(request, lambda s: {"lists": social.lists(s, p)})


@router.post("/lists", status_code=201)
def create_list(request: Request, body: ListBody, p: Principal = Depends(authenticate)) -> JSONResponse:
    return _do(request, lambda s: social.create_list(s, p, body.name, body.members) and {"lists": social.lists(s, p)},
               status=201)


@router.post("/lists/{name}/members")
def add_member(request: Request, name: str, body: MemberBody, p: Principal = Depends(authenticate)) -> JSONResponse:
    return _do(request, lambda s: social.add_member(s, p, name, body.org) or {"lists": social.lists(s, p)})


@router.delete("/lists/{name}/members/{org}")
def remove_member(request: Request, name: str, org: str, p: Principal = Depends(authenticate)) -> JSONResponse:
    return _do(request, lambda s: social.remove_member(s, p, name, org) or {"lists": social.lists(s, p)})


@router.delete("/lists/{name}")
def delete_list(request: Request, name: str, p: Principal = Depends(authenticate)) -> JSONResponse:
    return _do(request, lambda s: social.delete_list(s, p, name) or {"lists": social.lists(s, p)})


@router.get("/lists/{name}/posts")
def list_posts(request: Request, name: str, p: Principal = Depends(authenticate), before_id: int | None = None,
               limit: int = Query(50, ge=1, le=500)) -> JSONResponse:
    """Visible posts written by the list's member organizations, newest first."""
    return _page(request, p, lambda s: social.list_timeline(s, p, name), before_id, limit)


@router.put("/posts/{post_id}/star")
def star(request: Request, post_id: int, p: Principal = Depends(authenticate)) -> JSONResponse:
    return _do(request, lambda s: social.star(s, p, post_id))


@router.delete("/posts/{post_id}/star")
def unstar(request: Request, post_id: int, p: Principal = Depends(authenticate)) -> JSONResponse:
    return _do(request, lambda s: social.unstar(s, p, post_id))


@router.get("/stars")
def stars(request: Request, p: Principal = Depends(authenticate), before_id: int | None = None,
          limit: int = Query(50, ge=1, le=500)) -> JSONResponse:
    """Posts you starred that you can still see, newest first."""
    return _page(request, p, lambda s: social.starred(p), before_id, limit)
