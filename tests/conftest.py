"""Shared fixtures: settings on a temporary data dir, and the shared real-data folder."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from necoma.config import Settings

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("NECOMA_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Default settings with the data dir in a fresh temporary folder."""
    return Settings(data_dir=tmp_path / "necoma-data")


@pytest.fixture
def shared_data() -> Path:
    """../shared/data beside the clone (real public samples); skip where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared real-data folder not found at {SHARED_DATA} (set NECOMA_SHARED_DATA)")
    return SHARED_DATA


def require_tool(*names: str) -> None:
    """Skip unless these executables exist (the project's setup installs them)."""
    missing = [n for n in names if shutil.which(n) is None]
    if missing and os.environ.get("CI"):
        pytest.fail(f"CI is missing tools the setup should install: {missing}")
    if missing:
        pytest.skip(f"tools not installed: {missing} (run make setup)")
