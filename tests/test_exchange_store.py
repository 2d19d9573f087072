"""The exchange store: organizations, hashed API keys, roles, sharing groups — on SQLite and PostgreSQL."""
from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import inspect, select

from necoma.exchange import admin, keys
from necoma.exchange.db import open_engine, session_factory
from necoma.exchange.models import ApiKey, Collection
from necoma.exchange.timestamps import format_us, parse_us
from necoma.exchange import tlp
from necoma.exchange.testing import database_url


@pytest.fixture(params=["sqlite", "postgresql"])
def sessions(request, tmp_path):
    engine = open_engine(database_url(request.param, tmp_path))
    yield session_factory(engine)
    engine.dispose()


def test_keys_are_stored_hashed_and_verified(sessions):
    with sessions.begin() as s:
        admin.add_org(s, "acme")
        row, token = admin.create_key(s, "acme", "analyst", user="alice", label="laptop")
        key_id = row.key_id
    assert token.startswith(f"necoma_{key_id}_") and len(token) > 50
    with sessions() as s:
        stored = s.scalar(select(ApiKey).where(ApiKey.key_id == key_id))
        assert stored.secret_sha256 == hashlib.sha256(token.encode()).hexdigest()
        assert token not in repr([getattr(stored, c.key) for c in inspect(ApiKey).columns])
        assert stored.user.name == "alice" and stored.label == "laptop"
        p = admin.authenticate(s, token)
        assert (p.org_name, p.role, p.key_id) == ("acme", "analyst", key_id)
        assert p.at_least("reader") and p.at_least("analyst") and not p.at_least("admin")
        assert admin.authenticate(s, token[:-2] + "zz") is None
        assert admin.authenticate(s, "necoma_ffffffffffff_" + token.split("_", 2)[2]) is None
        assert admin.authenticate(s, "garbage") is None
    with sessions.begin() as s:
        admin.revoke_key(s, key_id)
    with sessions() as s:
        assert admin.authenticate(s, token) is None


def test_organizations_groups_and_collections(sessions):
    with sessions.begin() as s:
        a = admin.add_org(s, "acme")
        admin.add_org(s, "globex")
        assert a.identity_id == admin.identity_id("acme")  # stable across instances
        with pytest.raises(admin.AdminError, match="exists"):
            admin.add_org(s, "acme")
        with pytest.raises(admin.AdminError, match="role"):
            admin.create_key(s, "acme", "root")
        with pytest.raises(admin.AdminError, match="no organization"):
            admin.create_key(s, "initech", "reader")
        group, col = admin.add_group(s, "isac", "finance ISAC")
        admin.add_member(s, "isac", "acme")
        admin.add_member(s, "isac", "acme")  # idempotent
        admin.add_member(s, "isac", "globex")
        public = admin.ensure_public_collection(s)
        assert admin.ensure_public_collection(s).id == public.id
    with sessions.begin() as s:
        assert admin.group_members(s, "isac") == ["acme", "globex"]
        _, token = admin.create_key(s, "acme", "reader")
        assert admin.authenticate(s, token).group_ids == {group.id}
        admin.remove_member(s, "isac", "globex")
        assert admin.group_members(s, "isac") == ["acme"]
        with pytest.raises(admin.AdminError):
            admin.remove_member(s, "isac", "globex")
        assert {c.title for c in s.scalars(select(Collection))} == {"isac", "public"}
        assert admin.group_collection(s, "isac").id == col.id


def test_token_format_and_compare():
    key_id, token = keys.new_token()
    assert keys.key_id_of(token) == key_id
    assert keys.matches(token, keys.digest(token)) and not keys.matches(token + "x", keys.digest(token))
    for bad in ("", "necoma_", "necoma_abc_x", "other_0123456789ab_x", "necoma_0123456789ab_"):
        assert keys.key_id_of(bad) is None


def test_timestamps_roundtrip():
    assert format_us(parse_us("2016-04-06T20:03:48.123Z")) == "2016-04-06T20:03:48.123000Z"
    assert parse_us("2016-04-06T20:03:48Z") < parse_us("2016-04-06T20:03:48.1Z")
    assert parse_us("2016-04-06T20:03:48.1234567Z") == parse_us("2016-04-06T20:03:48.123456Z")
    for bad in ("2016-04-06", "2016-04-06T20:03:48+01:00", "2016-04-06T20:03:48.x1Z", "yesterday"):
        with pytest.raises(ValueError):
            parse_us(bad)


def test_tlp_levels():
    ind = {"type": "indicator", "object_marking_refs": [tlp.TLP2_IDS["green"], tlp.TLP2_IDS["red"]]}
    assert tlp.level_of(ind) == "red"  # the most restrictive wins
    assert tlp.level_of({"type": "indicator"}) == "amber"  # unmarked: never public
    assert tlp.level_of({"type": "x", "object_marking_refs": ["marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9"]}) == "clear"
    granular = {"type": "x", "object_marking_refs": [tlp.TLP2_IDS["clear"]],
                "granular_markings": [{"marking_ref": tlp.TLP2_IDS["amber+strict"], "selectors": ["name"]}]}
    assert tlp.level_of(granular) == "amber+strict"
    assert tlp.level_of(tlp.marking_definition("red")) == "clear"  # the definitions themselves are public
