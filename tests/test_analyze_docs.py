"""docs/detectors/NAME.md are generated from the detectors (necoma.analyze.docs): they must match the code."""
from __future__ import annotations

from pathlib import Path

import pytest

from necoma.analyze.docs import load_evaluation, page
from necoma.analyze.registry import all_detectors

PAGES = Path(__file__).resolve().parent.parent / "docs" / "detectors"


@pytest.mark.parametrize("name", list(all_detectors()))
def test_detector_page_matches_the_code(name):
    cls = all_detectors()[name]
    path = PAGES / f"{name}.md"
    assert path.is_file(), f"{path} missing: run python -m necoma.analyze.docs docs/detectors"
    assert path.read_text() == page(cls, load_evaluation(PAGES)), (
        f"{path} is stale: run python -m necoma.analyze.docs docs/detectors")


def test_every_page_has_a_detector_and_method():
    names = set(all_detectors())
    assert {p.stem for p in PAGES.glob("*.md")} == names
    for name in names:
        text = (PAGES / f"{name}.md").read_text()
        assert "## Parameters" in text and "## Queries" in text and "## Evaluation" in text
