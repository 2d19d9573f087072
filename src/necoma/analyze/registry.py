"""Every detector, found by looking at the modules of `necoma.analyze.detectors`.

Adding a detector is adding one module there that defines one `Detector`
subclass; nothing else registers it. `all_detectors()` is what `necoma
analyze`, `necoma eval` and the docs generator use.
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Iterable, Mapping
from typing import Any

from necoma.analyze.detector import Detector

# The order detectors run and are listed in (later ones may be slower); others follow by name.
ORDER = (
    "ntp_amplifier",
    "dns_amplifier",
    "reflection",
    "ssl_scan",
    "udp_fragmentation",
    "heavy_hitter",
    "zeus_dga",
    "dns_failure_graph",
)


def _discover() -> dict[str, type[Detector]]:
    import necoma.analyze.detectors as pkg

    found: dict[str, type[Detector]] = {}
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{pkg.__name__}.{info.name}")
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, Detector) and obj is not Detector and obj.__module__ == module.__name__ and not inspect.isabstract(obj):
                if obj.name in found:
                    raise RuntimeError(f"two detectors named {obj.name!r}")
                found[obj.name] = obj
    rank = {n: i for i, n in enumerate(ORDER)}
    return dict(sorted(found.items(), key=lambda kv: (rank.get(kv[0], len(ORDER)), kv[0])))


def all_detectors() -> dict[str, type[Detector]]:
    """name -> detector class, in run order."""
    return _discover()


def get(name: str) -> type[Detector]:
    found = all_detectors()
    if name not in found:
        raise KeyError(f"no detector named {name!r}; known: {', '.join(found) or 'none'}")
    return found[name]


def instantiate(
    names: Iterable[str] | None = None, overrides: Mapping[str, Mapping[str, Any]] | None = None
) -> list[Detector]:
    """Detectors (all, or those named) with their `[detectors.NAME]` parameter overrides applied."""
    found = all_detectors()
    overrides = overrides or {}
    unknown = [n for n in overrides if n not in found]
    if unknown:
        raise KeyError(f"[detectors.{unknown[0]}] names no detector; known: {', '.join(found)}")
    chosen = list(found) if names is None else list(names)
    for n in chosen:
        if n not in found:
            raise KeyError(f"no detector named {n!r}; known: {', '.join(found) or 'none'}")
    return [found[n](overrides.get(n)) for n in chosen]
