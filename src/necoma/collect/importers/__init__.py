"""File importers by kind. Each: import_file(path, writer, rejects, **options) -> notes."""
from __future__ import annotations

from collections.abc import Callable
from importlib import import_module

# kind -> "module:function"; imported lazily so one importer's dependencies
# never slow down or break another's.
_REGISTRY = {
    "pcap": "necoma.collect.importers.pcap:import_file",
    "dnslog": "necoma.collect.importers.dnslog:import_file",
    "urls": "necoma.collect.importers.urls:import_file",
    "iplist": "necoma.collect.importers.iplist:import_file",
}


class _Lazy(dict):
    def __getitem__(self, kind: str) -> Callable:
        target = _REGISTRY[kind]
        module, func = target.split(":")
        return getattr(import_module(module), func)

    def __contains__(self, kind: object) -> bool:
        return kind in _REGISTRY

    def __iter__(self):
        return iter(_REGISTRY)

    def __len__(self) -> int:
        return len(_REGISTRY)


IMPORTERS = _Lazy()
