"""Reading a collection the TAXII 2.1 way: filters, versions, keyset pagination.

Every listing is one SQL query that already excludes what the caller may not
see (access.visible), so `limit`, `more` and `next` count visible objects
only. Pages are ordered by (date_added, seq) and `next` is the position of the
last row returned, so a page costs an index range scan however deep it is.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

from sqlalchemy import Select, and_, delete, func, or_, select
from sqlalchemy.orm import Session, aliased

from necoma.exchange import access
from necoma.exchange.admin import Principal
from necoma.exchange.models import Collection, Recipient, StixObject
from necoma.exchange.timestamps import parse_us


class FilterError(ValueError):
    """A query parameter TAXII does not allow or necoma cannot read (HTTP 400)."""


@dataclass
class Filters:
    added_after_us: int | None = None
    ids: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    versions: list[str] = field(default_factory=lambda: ["last"])
    spec_versions: list[str] = field(default_factory=list)
    limit: int = 100
    after: tuple[int, int] | None = None  # decoded `next`


def _split(params: Mapping[str, Sequence[str]], name: str) -> list[str]:
    values: list[str] = []
    for v in params.get(name, []):
        values += [x.strip() for x in v.split(",") if x.strip()]
    return values


def parse_filters(params: Mapping[str, Sequence[str]], max_limit: int, default_versions: str = "last") -> Filters:
    """Filters from query parameters (each name may repeat; values may be comma-separated)."""
    f = Filters(versions=[default_versions])
    try:
        if params.get("added_after"):
            f.added_after_us = parse_us(params["added_after"][0])
        f.versions = _split(params, "match[version]") or f.versions
        for v in f.versions:
            if v not in ("first", "last", "all"):
                parse_us(v)
        if params.get("limit"):
            f.limit = int(params["limit"][0])
            if f.limit < 1:
                raise ValueError("limit must be positive")
        if params.get("next"):
            d, _, seq = params["next"][0].partition("-")
            f.after = (int(d), int(seq))
    except ValueError as exc:
        raise FilterError(str(exc)) from None
    f.limit = min(f.limit, max_limit)
    f.ids, f.types = _split(params, "match[id]"), _split(params, "match[type]")
    f.spec_versions = _split(params, "match[spec_version]")
    return f


def _version_clause(p: Principal, versions: list[str]):
    if "all" in versions:
        return None
    other = aliased(StixObject)
    same = and_(other.collection_id == StixObject.collection_id, other.stix_id == StixObject.stix_id,
                access.visible(p, other))
    terms = []
    if "last" in versions:
        terms.append(StixObject.version_us == select(func.max(other.version_us)).where(same).scalar_subquery())
    if "first" in versions:
        terms.append(StixObject.version_us == select(func.min(other.version_us)).where(same).scalar_subquery())
    stamps = [parse_us(v) for v in versions if v not in ("first", "last")]
    if stamps:
        terms.append(StixObject.version_us.in_(stamps))
    return or_(*terms)


def _select(p: Principal, col: Collection, f: Filters) -> Select:
    q = select(StixObject).where(StixObject.collection_id == col.id, access.visible(p))
    if f.ids:
        q = q.where(StixObject.stix_id.in_(f.ids))
    if f.types:
        q = q.where(StixObject.stix_type.in_(f.types))
    if f.spec_versions:
        q = q.where(StixObject.spec_version.in_(f.spec_versions))
    if f.added_after_us is not None:
        q = q.where(StixObject.date_added_us > f.added_after_us)
    clause = _version_clause(p, f.versions)
    if clause is not None:
        q = q.where(clause)
    if f.after is not None:
        d, seq = f.after
        q = q.where(or_(StixObject.date_added_us > d, and_(StixObject.date_added_us == d, StixObject.seq > seq)))
    return q.order_by(StixObject.date_added_us, StixObject.seq)


@dataclass
class Page:
    rows: list[StixObject]
    more: bool
    next: str | None

    @property
    def first_added_us(self) -> int | None:
        return self.rows[0].date_added_us if self.rows else None

    @property
    def last_added_us(self) -> int | None:
        return self.rows[-1].date_added_us if self.rows else None


def page(s: Session, p: Principal, col: Collection, f: Filters) -> Page:
    rows = list(s.scalars(_select(p, col, f).limit(f.limit + 1)))
    more = len(rows) > f.limit
    rows = rows[: f.limit]
    nxt = f"{rows[-1].date_added_us}-{rows[-1].seq}" if more and rows else None
    return Page(rows, more, nxt)


def any_visible(s: Session, p: Principal, col: Collection, stix_id: str) -> bool:
    q = select(StixObject.seq).where(
        StixObject.collection_id == col.id, StixObject.stix_id == stix_id, access.visible(p)
    ).limit(1)
    return s.scalar(q) is not None


def owns(s: Session, col: Collection, stix_id: str, org_id: int) -> bool:
    q = select(StixObject.seq).where(StixObject.collection_id == col.id, StixObject.stix_id == stix_id,
                                     StixObject.owner_org_id == org_id)
    return s.scalar(q.limit(1)) is not None


def delete_versions(s: Session, p: Principal, col: Collection, stix_id: str, f: Filters) -> int:
    """Delete the caller's versions of `stix_id` that match `f` (default all).

    Only the caller organization's rows go: for an SCO other organizations keep their copies.
    """
    f.ids, f.after, f.added_after_us = [stix_id], None, None
    seqs = [r.seq for r in s.scalars(_select(p, col, f).where(StixObject.owner_org_id == p.org_id))]
    if seqs:
        s.execute(delete(StixObject).where(StixObject.seq.in_(seqs)))
    if not s.scalar(select(StixObject.seq).where(StixObject.collection_id == col.id,
                                                 StixObject.stix_id == stix_id).limit(1)):
        s.execute(delete(Recipient).where(Recipient.collection_id == col.id, Recipient.stix_id == stix_id))
    return len(seqs)
