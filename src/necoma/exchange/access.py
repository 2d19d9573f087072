"""Who may read and write what: the one place the sharing rules live.

Collections: the public collection is readable by every organization and holds
TLP:CLEAR only; a sharing group's collection exists only for its member
organizations (others get 404, so they learn nothing about it).

Objects inside a readable collection, by TLP 2.0 level:
  clear, green, amber   every member organization of the collection
  amber+strict          the owning organization only
  red                   the owning organization and the organizations named as recipients

Roles: reader reads; analyst also adds objects; admin also deletes its own
organization's objects. The same rules exist twice — as an SQL predicate for
listing (so pagination counts only what the caller may see) and as a Python
check for single objects — and the authorization-matrix test holds both to them.
"""
from __future__ import annotations

from sqlalchemy import ColumnElement, and_, exists, or_, select
from sqlalchemy.orm import Session

from necoma.exchange.admin import Principal
from necoma.exchange.models import Collection, Recipient, StixObject

SHARED_LEVELS = ("clear", "green", "amber")


def can_read_collection(p: Principal, col: Collection) -> bool:
    return col.is_public or (col.group_id is not None and col.group_id in p.group_ids)


def can_write_collection(p: Principal, col: Collection) -> bool:
    return can_read_collection(p, col) and p.at_least("analyst")


def visible(p: Principal, obj=StixObject) -> ColumnElement[bool]:
    """SQL: the object row (or an alias of the table) is visible to `p`, within a readable collection."""
    named = exists(
        select(Recipient.org_id).where(
            Recipient.collection_id == obj.collection_id,
            Recipient.stix_id == obj.stix_id,
            Recipient.org_id == p.org_id,
        )
    )
    return or_(
        obj.tlp.in_(SHARED_LEVELS),
        and_(obj.tlp == "amber+strict", obj.owner_org_id == p.org_id),
        and_(obj.tlp == "red", or_(obj.owner_org_id == p.org_id, named)),
    )


def can_see(s: Session, p: Principal, row: StixObject) -> bool:
    """Python twin of `visible` for one row."""
    if row.tlp in SHARED_LEVELS or row.owner_org_id == p.org_id:
        return True
    if row.tlp == "red":
        return s.get(Recipient, (row.collection_id, row.stix_id, p.org_id)) is not None
    return False


def level_allowed_in(col: Collection, tlp: str) -> bool:
    """Only TLP:CLEAR may enter the public collection."""
    return tlp == "clear" or not col.is_public
