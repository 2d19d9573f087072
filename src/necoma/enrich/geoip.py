"""GeoIP country and AS number of an address, from MaxMind mmdb files (GeoLite2/GeoIP2 City and ASN)."""
from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path

import maxminddb


class GeoIP:
    """Country (ISO code), city, ASN and AS organization of addresses; either file may be absent."""

    def __init__(self, city: Path | None = None, asn: Path | None = None) -> None:
        self._city = maxminddb.open_database(str(city)) if city else None
        self._asn = maxminddb.open_database(str(asn)) if asn else None
        self.lookup = lru_cache(maxsize=65536)(self._lookup)

    def _lookup(self, ip: str) -> dict:
        out: dict = {"country": None, "city": None, "asn": None, "as_org": None}
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            return out
        if self._city is not None:
            rec = self._city.get(ip) or {}
            country = rec.get("country") or rec.get("registered_country") or {}
            out["country"] = country.get("iso_code")
            out["city"] = ((rec.get("city") or {}).get("names") or {}).get("en")
        if self._asn is not None:
            rec = self._asn.get(ip) or {}
            out["asn"] = rec.get("autonomous_system_number")
            out["as_org"] = rec.get("autonomous_system_organization")
        return out

    def close(self) -> None:
        for db in (self._city, self._asn):
            if db is not None:
                db.close()
