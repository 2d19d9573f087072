"""Creating and reading posts under the same sharing rules as STIX objects.

Who sees a post:
  public (no group, TLP:CLEAR)       every organization
  own organization (no group, AMBER+STRICT)   the author's organization
  a group, CLEAR/GREEN/AMBER         the group's member organizations
  a group, AMBER+STRICT              the author's organization
  TLP:RED (with or without group)    the author's organization and the organizations @mentioned
  a list, GREEN/AMBER/RED            the author's organization and the list's members when posted
A reply can never reach further than the post it answers: it takes the
parent's group or list recipients, at least the parent's TLP, and for
TLP:RED the parent's recipients.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import regex
from markdown_it import MarkdownIt
from sqlalchemy import ColumnElement, and_, exists, false, func, or_, select
from sqlalchemy.orm import Session

from necoma.exchange.access import SHARED_LEVELS
from necoma.exchange.admin import AdminError, Principal
from necoma.exchange.db import now_us
from necoma.exchange.models import (Organization, Post, PostMention, PostRecipient, PostTag, SharingGroup, Star,
                                    TimelineList, TimelineListMember)
from necoma.exchange.timestamps import format_us
from necoma.knowledge.markings import LEVELS

MAX_TEXT = 10_000
HASHTAG = regex.compile(r"(?<![\w&])#([\w][\w-]{0,99})")
MENTION = regex.compile(r"(?<![\w.])@([\w][\w.-]{0,199})")
_MD = MarkdownIt("commonmark", {"html": False, "linkify": False})  # no raw HTML: posts are untrusted


class PostError(AdminError):
    """A post that cannot be made as asked (HTTP 400/403)."""


@dataclass(frozen=True)
class Scope:
    group: str | None  # sharing group name, or None
    tlp: str
    list: str | None = None  # a list of the author's organization: its members are the recipients


LIST_LEVELS = ("green", "amber", "red")  # a list post is for named organizations: never public, never org-only


def visible(p: Principal) -> ColumnElement[bool]:
    named = exists(select(PostMention.post_id).where(PostMention.post_id == Post.id, PostMention.org_id == p.org_id))
    listed = exists(select(PostRecipient.post_id).where(PostRecipient.post_id == Post.id,
                                                        PostRecipient.org_id == p.org_id))
    in_group = Post.group_id.in_(sorted(p.group_ids)) if p.group_ids else false()
    return or_(
        Post.org_id == p.org_id,
        and_(Post.group_id.is_(None), Post.tlp == "clear"),
        and_(in_group, Post.tlp.in_(SHARED_LEVELS)),
        and_(Post.tlp == "red", named),
        and_(Post.tlp.in_(LIST_LEVELS), Post.group_id.is_(None), listed),
    )


def _list_members(s: Session, p: Principal, name: str) -> set[int]:
    lst = s.scalar(select(TimelineList).where(TimelineList.owner_org_id == p.org_id, TimelineList.name == name))
    if lst is None:
        raise PostError(f"your organization has no list {name!r}")
    return set(s.scalars(select(TimelineListMember.org_id).where(TimelineListMember.list_id == lst.id)))


def _check_scope(s: Session, p: Principal, scope: Scope, recipients: set[int] | None) -> int | None:
    if scope.tlp not in LEVELS:
        raise PostError(f"tlp must be one of {', '.join(LEVELS)}")
    if recipients is not None:
        if scope.group is not None:
            raise PostError("a post goes to a group or to a list, not both")
        if scope.tlp not in LIST_LEVELS + ("amber+strict",):
            raise PostError(f"a list post is for its members: tlp {', '.join(LIST_LEVELS)} (amber+strict: your organization only)")
        return None
    if scope.group is None:
        if scope.tlp not in ("clear", "amber+strict", "red"):
            raise PostError("without a group a post is public (clear), for the organization (amber+strict) or red")
        return None
    group = s.scalar(select(SharingGroup).where(SharingGroup.name == scope.group))
    if group is None or group.id not in p.group_ids:
        raise PostError(f"not a member of group {scope.group!r}")
    return group.id


def create(s: Session, p: Principal, author: str, text: str, scope: Scope, reply_to: int | None = None,
           attachment: Any = None) -> Post:
    if not p.at_least("analyst"):
        raise PostError("readers cannot post")
    if not text.strip() or len(text) > MAX_TEXT:
        raise PostError(f"text must be 1 to {MAX_TEXT} characters")
    parent = None
    recipients = _list_members(s, p, scope.list) if scope.list else None
    if reply_to is not None:
        parent = s.scalar(select(Post).where(Post.id == reply_to, visible(p)))
        if parent is None:
            raise PostError(f"no post {reply_to}")
        if not (parent.group_id is None and parent.tlp == "clear"):
            # Never widen the audience of a thread.
            tlp = LEVELS[max(LEVELS.index(parent.tlp), LEVELS.index(scope.tlp))]
            parent_rcpt = set(s.scalars(select(PostRecipient.org_id).where(PostRecipient.post_id == parent.id)))
            recipients = (parent_rcpt | {parent.org_id}) if parent_rcpt else None
            scope = Scope(None, tlp) if parent.group_id is None else Scope(_group_name(s, parent.group_id), tlp)
    group_id = _check_scope(s, p, scope, recipients)
    post = Post(org_id=p.org_id, author=author, text=text, html=_MD.render(text), reply_to=reply_to,
                group_id=group_id, tlp=scope.tlp, created_us=now_us(),
                attachment=json.dumps(attachment) if attachment is not None else None)
    s.add(post)
    s.flush()
    if recipients is not None and post.tlp in LIST_LEVELS:
        for org_id in sorted(recipients - {p.org_id}):
            s.add(PostRecipient(post_id=post.id, org_id=org_id))
    for tag in sorted({t.lower() for t in HASHTAG.findall(text)}):
        s.add(PostTag(post_id=post.id, tag=tag))
    names = {m.rstrip(".") for m in MENTION.findall(text)}
    if parent is not None and parent.tlp == "red" and post.tlp == "red":
        names |= {m.name for m in s.scalars(select(PostMention).where(PostMention.post_id == parent.id))}
        names.add(s.get(Organization, parent.org_id).name)
    for name in sorted(names):
        org_id = s.scalar(select(Organization.id).where(Organization.name == name))
        s.add(PostMention(post_id=post.id, name=name, org_id=org_id))
    s.flush()
    return post


def _group_name(s: Session, group_id: int) -> str:
    return s.get(SharingGroup, group_id).name


def search(s: Session, p: Principal, tag: str | None = None, mention: str | None = None, q: str | None = None,
           after_id: int | None = None, before_id: int | None = None, limit: int = 50, thread: int | None = None,
           where: ColumnElement[bool] | None = None) -> list[Post]:
    """Visible posts, newest first (oldest first with `after_id`, as a stream wants); `where` narrows further."""
    stmt = select(Post).where(visible(p))
    if where is not None:
        stmt = stmt.where(where)
    if tag:
        stmt = stmt.where(exists(select(PostTag.post_id).where(PostTag.post_id == Post.id, PostTag.tag == tag.lower().lstrip("#"))))
    if mention:
        stmt = stmt.where(exists(select(PostMention.post_id).where(PostMention.post_id == Post.id,
                                                                   PostMention.name == mention.lstrip("@"))))
    if q:
        stmt = stmt.where(Post.text.contains(q, autoescape=True))
    if thread is not None:
        stmt = stmt.where(or_(Post.id == thread, Post.reply_to == thread))
    if before_id is not None:
        stmt = stmt.where(Post.id < before_id)
    if after_id is not None:
        return list(s.scalars(stmt.where(Post.id > after_id).order_by(Post.id).limit(limit)))
    return list(s.scalars(stmt.order_by(Post.id.desc()).limit(limit)))


def resource(s: Session, post: Post) -> dict[str, Any]:
    tags = list(s.scalars(select(PostTag.tag).where(PostTag.post_id == post.id).order_by(PostTag.tag)))
    mentions = list(s.scalars(select(PostMention.name).where(PostMention.post_id == post.id).order_by(PostMention.name)))
    recipients = list(s.scalars(select(Organization.name).join(PostRecipient, PostRecipient.org_id == Organization.id)
                                .where(PostRecipient.post_id == post.id).order_by(Organization.name)))
    stars = s.scalar(select(func.count()).select_from(Star).where(Star.post_id == post.id))
    return {
        "id": post.id, "organization": s.get(Organization, post.org_id).name, "author": post.author,
        "text": post.text, "html": post.html, "reply_to": post.reply_to,
        "group": _group_name(s, post.group_id) if post.group_id else None, "tlp": post.tlp,
        "created": format_us(post.created_us), "tags": tags, "mentions": mentions, "recipients": recipients,
        "stars": stars,
        "attachment": json.loads(post.attachment) if post.attachment else None,
    }
