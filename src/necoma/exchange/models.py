"""The exchange store's tables (SQLAlchemy 2 ORM), portable between SQLite and PostgreSQL.

Timestamps that TAXII filters or sorts on (`date_added`, object versions) are
kept as integer microseconds since the epoch: exact, comparable on every
engine, and cheap to index. STIX timestamps finer than a microsecond are
truncated (the JSON body keeps the original text).
"""
from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL wants BIGINT for a large table.
BigId = BigInteger().with_variant(Integer(), "sqlite")

ROLES = ("reader", "analyst", "admin")  # ordered: each role can do what the ones before it can


class Base(DeclarativeBase):
    pass


class Organization(Base):
    __tablename__ = "organizations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    # The STIX identity that represents this organization (identity--uuid5 of the name).
    identity_id: Mapped[str] = mapped_column(String(100), unique=True)
    created_us: Mapped[int] = mapped_column(BigInteger)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("org_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    created_us: Mapped[int] = mapped_column(BigInteger)
    org: Mapped[Organization] = relationship()


class ApiKey(Base):
    """An API key: only its SHA-256 is stored; `key_id` (public, part of the token) finds the row."""

    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_id: Mapped[str] = mapped_column(String(32), unique=True)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=True)
    role: Mapped[str] = mapped_column(String(16))
    label: Mapped[str] = mapped_column(String(200), default="")
    created_us: Mapped[int] = mapped_column(BigInteger)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    org: Mapped[Organization] = relationship()
    user: Mapped[User | None] = relationship()


class SharingGroup(Base):
    __tablename__ = "sharing_groups"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_us: Mapped[int] = mapped_column(BigInteger)


class GroupMember(Base):
    __tablename__ = "group_members"
    group_id: Mapped[int] = mapped_column(ForeignKey("sharing_groups.id", ondelete="CASCADE"), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True)


class Collection(Base):
    """A TAXII collection: the public one (group_id NULL, TLP:CLEAR only) or one per sharing group."""

    __tablename__ = "collections"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # a UUID, as TAXII wants
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    group_id: Mapped[int | None] = mapped_column(
        ForeignKey("sharing_groups.id", ondelete="CASCADE"), unique=True, nullable=True
    )
    is_public: Mapped[bool] = mapped_column(Boolean, default=False)


class StixObject(Base):
    """One version of one STIX object in one collection."""

    __tablename__ = "stix_objects"
    __table_args__ = (
        UniqueConstraint("collection_id", "stix_id", "version_us", name="uq_object_version"),
        # Pages in date_added order, with added_after, are range scans on this index.
        Index("ix_objects_added", "collection_id", "date_added_us", "seq"),
        Index("ix_objects_type_added", "collection_id", "stix_type", "date_added_us"),
    )
    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    collection_id: Mapped[str] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    stix_id: Mapped[str] = mapped_column(String(100))
    stix_type: Mapped[str] = mapped_column(String(64))
    spec_version: Mapped[str] = mapped_column(String(8))
    version_us: Mapped[int] = mapped_column(BigInteger)  # `modified`, else `created`, else date_added
    date_added_us: Mapped[int] = mapped_column(BigInteger)
    tlp: Mapped[str] = mapped_column(String(16))  # clear, green, amber, amber+strict, red
    owner_org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    body: Mapped[str] = mapped_column(Text)  # the object's JSON as received (validated)


class Recipient(Base):
    """An organization named as recipient of a TLP:RED object (all its versions in that collection)."""

    __tablename__ = "recipients"
    collection_id: Mapped[str] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), primary_key=True)
    stix_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True)


class Status(Base):
    """The TAXII status resource of one POSTed envelope."""

    __tablename__ = "statuses"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    collection_id: Mapped[str] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    request_us: Mapped[int] = mapped_column(BigInteger)
    total: Mapped[int] = mapped_column(Integer)
    success_count: Mapped[int] = mapped_column(Integer)
    failure_count: Mapped[int] = mapped_column(Integer)
    details: Mapped[str] = mapped_column(Text)  # JSON: {"successes": [...], "failures": [...]}


class Peer(Base):
    """Another TAXII 2.1 server whose collection this instance pulls from and/or pushes to."""

    __tablename__ = "peers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    url: Mapped[str] = mapped_column(Text)  # the remote collection's URL (ends in /collections/<id>/)
    username: Mapped[str] = mapped_column(String(200), default="necoma")
    password: Mapped[str] = mapped_column(Text)  # the remote's API key or password (needed in clear to use it)
    collection_id: Mapped[str] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    direction: Mapped[str] = mapped_column(String(8))  # pull, push or both
    max_tlp: Mapped[str] = mapped_column(String(16), default="green")  # most restrictive level pushed
    interval_s: Mapped[int] = mapped_column(Integer, default=300)
    pull_cursor: Mapped[str | None] = mapped_column(String(40), nullable=True)  # remote date_added of the last pulled page
    push_added_us: Mapped[int] = mapped_column(BigInteger, default=0)  # local (date_added, seq) of the last pushed row
    push_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    last_sync_us: Mapped[int] = mapped_column(BigInteger, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")


class Post(Base):
    """A timeline post (NECOMAtter's "mew"): markdown text with the sharing scope of a STIX object.

    `group_id` NULL with TLP:CLEAR is public; NULL with AMBER+STRICT is for the
    author's organization; with a group, the TLP rules of that group's
    collection apply. TLP:RED posts reach the author's organization and the
    organizations mentioned (@org) — the named recipients.
    """

    __tablename__ = "posts"
    __table_args__ = (Index("ix_posts_group", "group_id", "id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    author: Mapped[str] = mapped_column(String(200))  # user name, or the key's label / id for bots
    text: Mapped[str] = mapped_column(Text)
    html: Mapped[str] = mapped_column(Text)  # rendered markdown (raw HTML in the text is escaped)
    reply_to: Mapped[int | None] = mapped_column(ForeignKey("posts.id", ondelete="SET NULL"), nullable=True, index=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("sharing_groups.id", ondelete="CASCADE"), nullable=True)
    tlp: Mapped[str] = mapped_column(String(16))
    created_us: Mapped[int] = mapped_column(BigInteger)
    attachment: Mapped[str | None] = mapped_column(Text, nullable=True)  # e.g. a STIX bundle (JSON)


class PostTag(Base):
    __tablename__ = "post_tags"
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(100), primary_key=True, index=True)


class PostMention(Base):
    """@name in a post: an organization (then a named recipient of TLP:RED) or a user."""

    __tablename__ = "post_mentions"
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), primary_key=True, index=True)
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), nullable=True)


class PostRecipient(Base):
    """An organization a list-addressed post was sent to: the list's members when it was posted.

    Kept per post (not looked up through the list) so that changing a list
    later never widens the audience of what was already said.
    """

    __tablename__ = "post_recipients"
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True, index=True)


class Follow(Base):
    """An account follows an organization (target_author "") or one author of it. Accounts are (org, name)."""

    __tablename__ = "follows"
    follower_org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True)
    follower: Mapped[str] = mapped_column(String(200), primary_key=True)
    target_org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True)
    target_author: Mapped[str] = mapped_column(String(200), primary_key=True, default="")


class TimelineList(Base):
    """A named list of organizations, owned by one organization: a timeline to read and an audience to post to."""

    __tablename__ = "timeline_lists"
    __table_args__ = (UniqueConstraint("owner_org_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))


class TimelineListMember(Base):
    __tablename__ = "timeline_list_members"
    list_id: Mapped[int] = mapped_column(ForeignKey("timeline_lists.id", ondelete="CASCADE"), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True)


class Star(Base):
    """An account starred a post (a bookmark that others see as a count)."""

    __tablename__ = "stars"
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
