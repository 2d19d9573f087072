"""`necoma collect` as a second NetFlow collector in the lab, so lab flows land in the lake.

nfcapd always runs (the reference, and files a person can read with nfdump);
when this build has necoma's NetFlow listener, the exporter also sends to
`necoma collect` in the collector namespace. The listener runs as its own
process (started with `ip netns exec`), so it gets the caller's settings as a
generated TOML file: the only way to hand in-memory settings (tests) to a
process in another namespace.
"""
from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

from necoma.config import Settings


def available() -> str | None:
    """None if `necoma collect` can receive NetFlow in this build, else why not."""
    try:
        importlib.import_module("necoma.collect.listener")
        decoder = importlib.import_module("necoma.collect.netflow")
    except ImportError as exc:
        return f"necoma collect cannot receive NetFlow in this build ({exc})"
    if not hasattr(decoder, "NetflowDecoder"):
        return "necoma collect cannot receive NetFlow in this build (no NetflowDecoder yet)"
    return None


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    # JSON string escapes are valid TOML basic-string escapes.
    return json.dumps(str(value))


def to_toml(data: dict, prefix: str = "") -> str:
    """A minimal TOML writer for a settings dump: scalars, lists, nested tables; None omitted."""
    scalars = [f"{k} = {_toml_value(v)}" for k, v in data.items() if v is not None and not isinstance(v, dict)]
    out = []
    if scalars:
        out.append((f"[{prefix}]\n" if prefix else "") + "\n".join(scalars) + "\n")
    for k, v in data.items():
        if isinstance(v, dict):
            key = f"{prefix}.{json.dumps(k) if not k.isidentifier() else k}" if prefix else k
            out.append(to_toml(v, key))
    return "\n".join(x for x in out if x)


def write_settings(settings: Settings, path: Path) -> Path:
    """Write `settings` (paths made absolute) as a necoma.toml the collector process can load."""
    dumped = settings.model_dump(mode="json", exclude_none=True)
    dumped["data_dir"] = str(settings.data_dir.resolve())
    dumped.setdefault("lake", {})["path"] = str(settings.lake_path.resolve())
    path.write_text(to_toml(dumped))
    return path


def argv(config: Path, listen: str, stats_file: Path) -> list[str]:
    return [sys.executable, "-m", "necoma.cli.main", "--config", str(config), "collect",
            "--netflow", listen, "--stats-file", str(stats_file), "--flush-seconds", "2"]
