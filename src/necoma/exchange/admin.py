"""Administration of the exchange store: organizations, users, API keys, sharing groups.

Used by `necoma admin` and by tests; every function takes an open Session and
leaves committing to the caller, so several steps can be one transaction.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from necoma.exchange import keys
from necoma.exchange.db import now_us
from necoma.knowledge.markings import NAMESPACE as _NS
from necoma.knowledge.markings import identity_id
from necoma.exchange.models import (
    ROLES,
    ApiKey,
    Collection,
    GroupMember,
    Organization,
    SharingGroup,
    User,
)

PUBLIC_TITLE = "public"


class AdminError(Exception):
    """A request that cannot be done as asked (unknown name, duplicate, bad role)."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's organization, role and the sharing groups it belongs to."""

    key_id: str
    org_id: int
    org_name: str
    role: str
    group_ids: frozenset[int]
    name: str = ""  # who, for display: the key's user, else its label, else its id

    def at_least(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


def ensure_public_collection(s: Session, instance: str = "necoma") -> Collection:
    col = s.scalar(select(Collection).where(Collection.is_public.is_(True)))
    if col is None:
        col = Collection(
            id=str(uuid.uuid5(_NS, f"public:{instance}")),
            title=PUBLIC_TITLE,
            description="Public information (TLP:CLEAR only), readable by every organization.",
            is_public=True,
        )
        s.add(col)
        s.flush()
    return col


def add_org(s: Session, name: str) -> Organization:
    name = name.strip()
    if not name:
        raise AdminError("organization name is empty")
    if s.scalar(select(Organization).where(Organization.name == name)):
        raise AdminError(f"organization {name!r} exists")
    org = Organization(name=name, identity_id=identity_id(name), created_us=now_us())
    s.add(org)
    s.flush()
    return org


def get_org(s: Session, name: str) -> Organization:
    org = s.scalar(select(Organization).where(Organization.name == name))
    if org is None:
        raise AdminError(f"no organization {name!r}")
    return org


def list_orgs(s: Session) -> list[Organization]:
    return list(s.scalars(select(Organization).order_by(Organization.name)))


def create_key(s: Session, org_name: str, role: str, user: str | None = None, label: str = "") -> tuple[ApiKey, str]:
    """A new key for `org_name` with `role`; returns the row and the token (its only appearance)."""
    if role not in ROLES:
        raise AdminError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    org = get_org(s, org_name)
    user_row = None
    if user:
        user_row = s.scalar(select(User).where(User.org_id == org.id, User.name == user))
        if user_row is None:
            user_row = User(org_id=org.id, name=user, created_us=now_us())
            s.add(user_row)
            s.flush()
    key_id, token = keys.new_token()
    row = ApiKey(
        key_id=key_id, secret_sha256=keys.digest(token), org_id=org.id,
        user_id=user_row.id if user_row else None, role=role, label=label, created_us=now_us(),
    )
    s.add(row)
    s.flush()
    return row, token


def revoke_key(s: Session, key_id: str) -> None:
    row = s.scalar(select(ApiKey).where(ApiKey.key_id == key_id))
    if row is None:
        raise AdminError(f"no key {key_id!r}")
    row.revoked = True


def list_keys(s: Session, org_name: str | None = None) -> list[ApiKey]:
    q = select(ApiKey).join(Organization).order_by(Organization.name, ApiKey.created_us)
    if org_name:
        q = q.where(Organization.name == org_name)
    return list(s.scalars(q))


def authenticate(s: Session, token: str) -> Principal | None:
    """The principal for a presented token, or None (unknown, revoked or wrong secret)."""
    key_id = keys.key_id_of(token)
    if key_id is None:
        return None
    row = s.scalar(select(ApiKey).where(ApiKey.key_id == key_id))
    # Compare even when the row is missing, so the time taken says nothing about key ids.
    ok = keys.matches(token, row.secret_sha256 if row else "0" * 64)
    if row is None or not ok or row.revoked:
        return None
    groups = frozenset(s.scalars(select(GroupMember.group_id).where(GroupMember.org_id == row.org_id)))
    name = row.user.name if row.user else (row.label or key_id)
    return Principal(key_id=key_id, org_id=row.org_id, org_name=row.org.name, role=row.role, group_ids=groups,
                     name=name)


def principal_for(s: Session, org_name: str, role: str = "analyst", name: str = "") -> Principal:
    """A principal acting for `org_name` without a key (pipeline bots inside this instance)."""
    org = get_org(s, org_name)
    groups = frozenset(s.scalars(select(GroupMember.group_id).where(GroupMember.org_id == org.id)))
    return Principal(key_id=f"local:{name or role}", org_id=org.id, org_name=org.name, role=role,
                     group_ids=groups, name=name or role)


def add_group(s: Session, name: str, description: str = "") -> tuple[SharingGroup, Collection]:
    """A sharing group and its TAXII collection."""
    if s.scalar(select(SharingGroup).where(SharingGroup.name == name)):
        raise AdminError(f"sharing group {name!r} exists")
    group = SharingGroup(name=name, description=description, created_us=now_us())
    s.add(group)
    s.flush()
    col = Collection(
        id=str(uuid.uuid4()), title=name, description=description or f"Sharing group {name}", group_id=group.id
    )
    s.add(col)
    s.flush()
    return group, col


def get_group(s: Session, name: str) -> SharingGroup:
    group = s.scalar(select(SharingGroup).where(SharingGroup.name == name))
    if group is None:
        raise AdminError(f"no sharing group {name!r}")
    return group


def group_collection(s: Session, name: str) -> Collection:
    group = get_group(s, name)
    return s.scalars(select(Collection).where(Collection.group_id == group.id)).one()


def add_member(s: Session, group_name: str, org_name: str) -> None:
    group, org = get_group(s, group_name), get_org(s, org_name)
    if s.get(GroupMember, (group.id, org.id)) is None:
        s.add(GroupMember(group_id=group.id, org_id=org.id))
        s.flush()


def remove_member(s: Session, group_name: str, org_name: str) -> None:
    group, org = get_group(s, group_name), get_org(s, org_name)
    member = s.get(GroupMember, (group.id, org.id))
    if member is None:
        raise AdminError(f"{org_name!r} is not a member of {group_name!r}")
    s.delete(member)
    s.flush()


def group_members(s: Session, group_name: str) -> list[str]:
    group = get_group(s, group_name)
    q = select(Organization.name).join(GroupMember, GroupMember.org_id == Organization.id)
    return list(s.scalars(q.where(GroupMember.group_id == group.id).order_by(Organization.name)))


def list_groups(s: Session) -> list[SharingGroup]:
    return list(s.scalars(select(SharingGroup).order_by(SharingGroup.name)))
