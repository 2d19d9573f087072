"""Shared by the testbed tests: one small `mixed` scenario and one lake holding it, built once per session."""
from __future__ import annotations

import tempfile
from functools import lru_cache
from pathlib import Path

from necoma.config import Settings

SCALE = 0.3
SEED = 7


@lru_cache(maxsize=None)
def scenario(name: str = "mixed", seed: int = SEED, scale: float = SCALE) -> Path:
    from necoma.testbed.scenario import generate

    out = Path(tempfile.mkdtemp(prefix=f"necoma-tb-{name}-"))
    generate(name, seed, out, scale=scale)
    return out


@lru_cache(maxsize=None)
def imported(name: str = "mixed") -> Settings:
    """Settings of a lake into which `scenario(name)` was imported."""
    from necoma.testbed.importer import import_scenario

    settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="necoma-tb-lake-")))
    import_scenario(scenario(name), settings)
    return settings
