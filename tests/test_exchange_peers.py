"""Peer sync: necoma pushes to and pulls from medallion (OASIS reference server) and another necoma instance."""
from __future__ import annotations

import json

import httpx
import pytest
import stix2

from necoma.exchange import admin, peers
from necoma.exchange.db import session_factory
from necoma.exchange.models import Organization, StixObject
from necoma.exchange.taxii import create_app
from necoma.exchange.testing import MedallionServer, ServerThread, database_url
from necoma.knowledge.markings import TLP2_IDS

TAXII = "application/taxii+json;version=2.1"


def ind(n: int, level: str = "green") -> dict:
    return json.loads(stix2.v21.Indicator(
        pattern=f"[ipv4-addr:value = '10.3.0.{n}']", pattern_type="stix", valid_from="2024-01-01T00:00:00Z",
        name=f"test {n}", object_marking_refs=[TLP2_IDS[level]]).serialize())


class Instance:
    """One necoma exchange with organizations, a group G and keys; objects posted over TAXII."""

    def __init__(self, url: str, orgs: list[str], members: list[str]) -> None:
        self.app = create_app(url)
        self.sessions = session_factory(self.app.state.engine)
        self.keys = {}
        with self.sessions.begin() as s:
            for o in orgs:
                admin.add_org(s, o)
                self.keys[o] = admin.create_key(s, o, "analyst")[1]
            self.col = admin.add_group(s, "G")[1].id
            for m in members:
                admin.add_member(s, "G", m)
        self.server = ServerThread(self.app).__enter__()
        self.col_url = f"{self.server.url}/taxii2/root/collections/{self.col}/"

    def post(self, org: str, objects: list[dict]) -> None:
        r = httpx.post(self.col_url + "objects/", content=json.dumps({"objects": objects}), auth=("u", self.keys[org]),
                       headers={"Content-Type": TAXII})
        assert r.status_code == 202, r.text

    def ids(self, org: str) -> set[str]:
        params = {"match[version]": "all", "limit": "1000"}
        r = httpx.get(self.col_url + "objects/", params=params, auth=("u", self.keys[org]))
        return {o["id"] for o in r.json().get("objects", [])}

    def owners(self) -> dict[str, str]:
        with self.sessions() as s:
            q = s.query(StixObject.stix_id, Organization.name).join(Organization, Organization.id == StixObject.owner_org_id)
            return dict(q.all())

    def close(self) -> None:
        self.server.__exit__()
        self.app.state.engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def kind(request):
    return request.param


def test_push_to_medallion_and_pull_back(kind, tmp_path):
    a = Instance(database_url(kind, tmp_path / "a"), ["cert-a", "cert-x", "medallion"], ["cert-a", "cert-x"])
    b = Instance(database_url("sqlite", tmp_path / "b"), ["cert-b", "medallion"], ["cert-b"])
    try:
        with MedallionServer() as med:
            greens = [ind(i) for i in range(3)]
            a.post("cert-a", greens + [ind(10, "amber"), ind(11, "amber+strict"), ind(12, "red")])
            a.post("cert-x", [ind(20)])  # another organization's: never forwarded by cert-a's peer
            with a.sessions.begin() as s:
                peers.add_peer(s, "med", med.collection_url, med.PASSWORD, a.col, "cert-a", direction="push",
                               username=med.USER)
            res = peers.sync(a.sessions, "med")
            assert (res.pushed, res.errors) == (3, [])
            remote = httpx.get(med.collection_url + "objects/", auth=(med.USER, med.PASSWORD),
                               headers={"Accept": TAXII}).json()["objects"]
            assert {o["id"] for o in remote} == {o["id"] for o in greens}
            more = [ind(30), ind(31)]
            a.post("cert-a", more)
            assert peers.sync(a.sessions, "med").pushed == 2  # only what is new
            assert peers.sync(a.sessions, "med").pushed == 0

            # A bad object on the remote is counted and skipped, the rest is stored.
            bad = dict(ind(40), pattern="[ipv4-addr:value = ")
            r = httpx.post(med.collection_url + "objects/", content=json.dumps({"objects": [bad, ind(41)]}),
                           auth=(med.USER, med.PASSWORD), headers={"Content-Type": TAXII, "Accept": TAXII})
            assert r.status_code == 202
            with b.sessions.begin() as s:
                peers.add_peer(s, "med", med.collection_url, med.PASSWORD, b.col, "medallion", direction="pull",
                               username=med.USER)
            res = peers.pull(b.sessions, "med", httpx.Client(), page=2)  # several pages, following `next`
            assert (res.pulled, res.rejected, res.errors) == (6, 1, [])
            expected = {o["id"] for o in greens + more} | {r.json()["successes"][1]["id"]}
            assert b.ids("cert-b") == expected
            assert set(b.owners().values()) == {"medallion"}
            assert peers.sync(b.sessions, "med").pulled == 0  # the cursor holds
            r = httpx.post(med.collection_url + "objects/", content=json.dumps({"objects": [ind(50)]}),
                           auth=(med.USER, med.PASSWORD), headers={"Content-Type": TAXII, "Accept": TAXII})
            assert peers.sync(b.sessions, "med").pulled == 1
    finally:
        a.close()
        b.close()


def test_two_necoma_instances(kind, tmp_path):
    a = Instance(database_url(kind, tmp_path / "a"), ["cert-a", "cert-x", "cert-b"], ["cert-a", "cert-x", "cert-b"])
    b = Instance(database_url("sqlite", tmp_path / "b"), ["cert-b", "cert-a"], ["cert-b"])
    try:
        mine = [ind(1), ind(2, "amber"), ind(3, "amber+strict")]
        clear_x, red_x = ind(4, "clear"), ind(5, "red")
        a.post("cert-a", mine)
        a.post("cert-x", [clear_x, red_x])
        # B pulls from A with the key A gave to cert-b: exactly what cert-b may read at A.
        with b.sessions.begin() as s:
            peers.add_peer(s, "a", a.col_url, a.keys["cert-b"], b.col, "cert-a", direction="pull")
        assert peers.sync(b.sessions, "a").pulled == 3
        assert b.ids("cert-b") == a.ids("cert-b") == {mine[0]["id"], mine[1]["id"], clear_x["id"]}
        # B pushes its own objects to A (up to its max TLP, here AMBER; never AMBER+STRICT or RED).
        theirs = [ind(6), ind(7, "amber"), ind(8, "amber+strict"), ind(9, "red")]
        b.post("cert-b", theirs)
        with b.sessions.begin() as s:
            peers.add_peer(s, "a-push", a.col_url, a.keys["cert-b"], b.col, "cert-b", direction="push", max_tlp="amber")
        res = peers.sync(b.sessions, "a-push")
        assert (res.pushed, res.errors) == (2, [])
        owners = a.owners()
        assert owners[theirs[0]["id"]] == owners[theirs[1]["id"]] == "cert-b"
        assert theirs[2]["id"] not in owners and theirs[3]["id"] not in owners
        assert a.ids("cert-a") == {o["id"] for o in mine} | {clear_x["id"], theirs[0]["id"], theirs[1]["id"]}
        # Errors are recorded on the peer, not raised.
        with b.sessions.begin() as s:
            peers.add_peer(s, "wrong-key", a.col_url, "necoma_000000000000_x", b.col, "cert-b", direction="pull")
        res = peers.sync(b.sessions, "wrong-key")
        assert res.errors and "401" in res.errors[0]
        with pytest.raises(admin.AdminError):
            with b.sessions.begin() as s:
                peers.add_peer(s, "bad", a.col_url, "k", b.col, "cert-b", max_tlp="red")
    finally:
        a.close()
        b.close()
