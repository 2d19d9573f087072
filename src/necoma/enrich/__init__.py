"""Enrichment used by detectors and alerts: GeoIP country/ASN, public suffix, IP lists from the lake.

`Enricher.from_settings(settings.enrich)` gives what is configured; with no
GeoIP file set, `ip()` returns nothing and alerts carry no country/ASN.
"""
from __future__ import annotations

from pathlib import Path

from necoma.enrich.geoip import GeoIP
from necoma.enrich.suffix import PublicSuffix


class Enricher:
    def __init__(self, geoip: GeoIP | None = None, suffixes: PublicSuffix | None = None) -> None:
        self.geoip = geoip
        self._suffixes = suffixes

    @classmethod
    def from_settings(cls, enrich) -> "Enricher":
        geo = GeoIP(enrich.geoip_city, enrich.geoip_asn) if (enrich.geoip_city or enrich.geoip_asn) else None
        return cls(geo, None if enrich.public_suffix_list is None else _LazySuffix(enrich.public_suffix_list))

    def ip(self, address: str) -> dict:
        """Subject fields (country, asn, as_org) for an address, only those known."""
        if self.geoip is None:
            return {}
        rec = self.geoip.lookup(address)
        return {k: rec[k] for k in ("country", "asn", "as_org") if rec.get(k) is not None}

    @property
    def suffixes(self) -> PublicSuffix:
        if self._suffixes is None:
            self._suffixes = PublicSuffix(None)
        return self._suffixes

    def registered_domain(self, name: str) -> str:
        return self.suffixes.registered_domain(name)


class _LazySuffix(PublicSuffix):
    """Loads the list on first use (detectors that never look at names never pay for it)."""

    def __init__(self, list_file: Path) -> None:
        self._file = list_file
        self._loaded: PublicSuffix | None = None

    def _get(self) -> PublicSuffix:
        if self._loaded is None:
            self._loaded = PublicSuffix(self._file)
        return self._loaded

    def registered_domain(self, name: str) -> str:  # type: ignore[override]
        return self._get().registered_domain(name)

    def suffix(self, name: str) -> str:
        return self._get().suffix(name)


__all__ = ["Enricher", "GeoIP", "PublicSuffix"]
