"""Follows, lists and stars: how people choose what to read on the timeline.

An account is (organization, name): the key's user, else its label, else its
key id — the same name posts carry as author. None of this changes who may
see a post: home, list and starred timelines are the visible posts
(`posts.visible`) narrowed further, so a follow or a list never reveals
anything. Lists are owned by an organization (its analysts manage them, all
its keys read them) and also serve as the audience of a post (see posts.py).
"""
from __future__ import annotations

from sqlalchemy import ColumnElement, and_, delete, exists, or_, select
from sqlalchemy.orm import Session

from necoma.exchange.admin import Principal
from necoma.exchange.models import Follow, Organization, Post, Star, TimelineList, TimelineListMember
from necoma.exchange.timeline.posts import PostError, visible

MAX_NAME = 200


class NotFound(PostError):
    """The post, list or organization does not exist for the caller (HTTP 404)."""


def _org_id(s: Session, name: str) -> int:
    org_id = s.scalar(select(Organization.id).where(Organization.name == name))
    if org_id is None:
        raise NotFound(f"no organization {name!r}")
    return org_id


def parse_target(target: str) -> tuple[str, str]:
    """"ORG" (every author of it) or "ORG/AUTHOR" -> (org, author or "")."""
    org, _, author = target.strip().partition("/")
    if not org or len(target) > 2 * MAX_NAME:
        raise PostError("follow ORG or ORG/AUTHOR")
    return org, author


def follow(s: Session, p: Principal, target: str) -> None:
    org, author = parse_target(target)
    key = (p.org_id, p.name, _org_id(s, org), author)
    if s.get(Follow, key) is None:
        s.add(Follow(follower_org_id=key[0], follower=key[1], target_org_id=key[2], target_author=key[3]))
        s.flush()


def unfollow(s: Session, p: Principal, target: str) -> bool:
    org, author = parse_target(target)
    row = s.get(Follow, (p.org_id, p.name, _org_id(s, org), author))
    if row is not None:
        s.delete(row)
    return row is not None


def following(s: Session, p: Principal) -> list[str]:
    rows = s.execute(select(Organization.name, Follow.target_author).join(Organization, Organization.id == Follow.target_org_id)
                     .where(Follow.follower_org_id == p.org_id, Follow.follower == p.name))
    return sorted(f"{org}/{author}" if author else org for org, author in rows)


def home(p: Principal) -> ColumnElement[bool]:
    """Posts of the caller and of what the caller follows."""
    followed = exists(select(Follow.target_org_id).where(
        Follow.follower_org_id == p.org_id, Follow.follower == p.name, Follow.target_org_id == Post.org_id,
        or_(Follow.target_author == "", Follow.target_author == Post.author)))
    return or_(and_(Post.org_id == p.org_id, Post.author == p.name), followed)


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise PostError(f"a list name has 1 to {MAX_NAME} characters")
    return name


def get_list(s: Session, p: Principal, name: str) -> TimelineList:
    lst = s.scalar(select(TimelineList).where(TimelineList.owner_org_id == p.org_id, TimelineList.name == name))
    if lst is None:
        raise NotFound(f"your organization has no list {name!r}")
    return lst


def _must_manage(p: Principal) -> None:
    if not p.at_least("analyst"):
        raise PostError("readers cannot change lists")


def create_list(s: Session, p: Principal, name: str, members: list[str]) -> TimelineList:
    _must_manage(p)
    name = _check_name(name)
    if s.scalar(select(TimelineList).where(TimelineList.owner_org_id == p.org_id, TimelineList.name == name)):
        raise PostError(f"list {name!r} exists")
    lst = TimelineList(owner_org_id=p.org_id, name=name)
    s.add(lst)
    s.flush()
    for org in members:
        add_member(s, p, name, org)
    return lst


def add_member(s: Session, p: Principal, name: str, org: str) -> None:
    _must_manage(p)
    lst, org_id = get_list(s, p, name), _org_id(s, org)
    if s.get(TimelineListMember, (lst.id, org_id)) is None:
        s.add(TimelineListMember(list_id=lst.id, org_id=org_id))
        s.flush()


def remove_member(s: Session, p: Principal, name: str, org: str) -> None:
    _must_manage(p)
    lst, org_id = get_list(s, p, name), _org_id(s, org)
    s.execute(delete(TimelineListMember).where(TimelineListMember.list_id == lst.id, TimelineListMember.org_id == org_id))


def delete_list(s: Session, p: Principal, name: str) -> None:
    _must_manage(p)
    s.delete(get_list(s, p, name))


def lists(s: Session, p: Principal) -> list[dict]:
    out = []
    for lst in s.scalars(select(TimelineList).where(TimelineList.owner_org_id == p.org_id).order_by(TimelineList.name)):
        members = s.scalars(select(Organization.name).join(TimelineListMember, TimelineListMember.org_id == Organization.id)
                            .where(TimelineListMember.list_id == lst.id).order_by(Organization.name))
        out.append({"name": lst.name, "members": list(members)})
    return out


def list_timeline(s: Session, p: Principal, name: str) -> ColumnElement[bool]:
    """Posts written by the list's member organizations."""
    lst = get_list(s, p, name)
    return Post.org_id.in_(select(TimelineListMember.org_id).where(TimelineListMember.list_id == lst.id))


def _visible_post(s: Session, p: Principal, post_id: int) -> Post:
    post = s.scalar(select(Post).where(Post.id == post_id, visible(p)))
    if post is None:
        raise NotFound(f"no post {post_id}")
    return post


def star(s: Session, p: Principal, post_id: int) -> None:
    """Star a post the caller can see (404 otherwise, so starring reveals nothing)."""
    _visible_post(s, p, post_id)
    if s.get(Star, (post_id, p.org_id, p.name)) is None:
        s.add(Star(post_id=post_id, org_id=p.org_id, name=p.name))
        s.flush()


def unstar(s: Session, p: Principal, post_id: int) -> None:
    _visible_post(s, p, post_id)
    s.execute(delete(Star).where(Star.post_id == post_id, Star.org_id == p.org_id, Star.name == p.name))


def starred(p: Principal) -> ColumnElement[bool]:
    return exists(select(Star.post_id).where(Star.post_id == Post.id, Star.org_id == p.org_id, Star.name == p.name))
