"""Registered domains (eTLD+1) by the public suffix list, offline.

Reads the list from a file (Debian's /usr/share/publicsuffix/public_suffix_list.dat
by default); falls back to the snapshot bundled with tldextract; never fetches.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import tldextract


class PublicSuffix:
    def __init__(self, list_file: Path | None = None) -> None:
        urls = (Path(list_file).resolve().as_uri(),) if list_file and Path(list_file).is_file() else ()
        self._extract = tldextract.TLDExtract(suffix_list_urls=urls, cache_dir=None, fallback_to_snapshot=True)
        self.registered_domain = lru_cache(maxsize=65536)(self._registered)

    def _registered(self, name: str) -> str:
        """example.co.uk for a.b.example.co.uk; the name itself when it has no known suffix."""
        r = self._extract(name.lower().rstrip("."))
        if r.domain and r.suffix:
            return f"{r.domain}.{r.suffix}"
        return name.lower().rstrip(".")

    def suffix(self, name: str) -> str:
        return self._extract(name.lower().rstrip(".")).suffix
