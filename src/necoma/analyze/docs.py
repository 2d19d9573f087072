"""Generate a detector's documentation page from its declarations (docstring, params, SQL).

    python -m necoma.analyze.docs docs/detectors     # (re)write docs/detectors/NAME.md

The evaluation figures come from docs/detectors/eval.json, written by
`necoma eval --all --figures docs/detectors/eval.json`. A test
(tests/test_analyze_docs.py) checks that the pages in the repository match
what this generates, so the docs never drift from the code.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from necoma.analyze.detector import Detector
from necoma.analyze.traffic import TRAFFIC


def figures(cls: type[Detector], evaluation: dict | None) -> list[str]:
    """The detector's eval table: per scenario where it had something to find or named something."""
    rows = (evaluation or {}).get("detectors", {}).get(cls.name)
    if not rows:
        return ["No evaluation figures recorded yet."]
    out = [f"Entity-level figures over the testbed scenarios (`{evaluation['command']}`; "
           "method in [evaluation.md](../evaluation.md)):", "",
           "| scenario | runs | truth entities | found | false positives | precision | recall |", "|---|---|---|---|---|---|---|"]
    for scenario, f in rows.items():
        prec = f"{f['tp'] / (f['tp'] + f['fp']):.2f}" if f["tp"] + f["fp"] else "—"
        rec = f"{f['found'] / f['truth']:.2f}" if f["truth"] else "—"
        out.append(f"| {scenario} | {f['runs']} | {f['truth']} | {f['found']} | {f['fp']} | {prec} | {rec} |")
    return out + ["", "Scenarios not listed: nothing to find there and no alert."]


def page(cls: type[Detector], evaluation: dict | None = None) -> str:
    lines = [f"# {cls.name}", "", f"**{cls.title}.**", ""]
    lines += [cls.doc(), ""]
    lines += ["## Declaration", "", "| | |", "|---|---|",
              f"| raises | {cls.raises} |",
              f"| tables read | {', '.join(f'`{t}`' for t in cls.tables)} |",
              f"| schedule | {cls.schedule} (bins of {cls.schedule.minutes} min) |"]
    if cls.history:
        lines.append(f"| history read before the range | {cls.history} |")
    lines += [f"| module | `{cls.__module__}` |", ""]
    lines += ["## Parameters", "", f"Override in `necoma.toml` under `[detectors.{cls.name}]`.", "",
              "| name | default | meaning |", "|---|---|---|"]
    for name, default, doc in cls.describe_params():
        shown = repr(default).replace("|", "\\|")
        if len(shown) > 80:
            shown = shown[:77] + "..."
        lines.append(f"| `{name}` | `{shown}` | {doc} |")
    lines += ["", "## Queries", "",
              "Portable SQL (necoma's dialect, see [analyze.md](../analyze.md)); `:name` are parameters, "
              "`time_bin(t)` truncates to the schedule's bin.", ""]
    for attr in sorted(vars(cls)):
        value = getattr(cls, attr)
        if attr.isupper() and isinstance(value, str) and "SELECT" in value:
            sql = value.strip().replace(TRAFFIC.strip(), "traffic AS (...)  -- flows and packets, scaled: necoma.analyze.traffic")
            lines += [f"### `{attr}`", "", "```sql", sql, "```", ""]
    lines += ["## Evaluation", "",
              f"`necoma eval DIR --only {cls.name}` scores it against one labelled scenario, "
              f"`necoma eval --all --only {cls.name}` against every one.", ""]
    lines += figures(cls, evaluation) + [""]
    return "\n".join(lines)


def load_evaluation(directory: Path) -> dict | None:
    path = directory / "eval.json"
    return json.loads(path.read_text()) if path.is_file() else None


def write_pages(directory: Path) -> list[Path]:
    from necoma.analyze.registry import all_detectors

    directory.mkdir(parents=True, exist_ok=True)
    evaluation = load_evaluation(directory)
    out = []
    for name, cls in all_detectors().items():
        path = directory / f"{name}.md"
        path.write_text(page(cls, evaluation))
        out.append(path)
    return out


if __name__ == "__main__":
    for p in write_pages(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/detectors")):
        print(p)
