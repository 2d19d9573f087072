"""Enforcement points: which point an action goes to, and the driver that enforces it there.

With `protect.enforce = false` (the default) every point is served by a
dry-run driver that records what it would install in
<data_dir>/protect-dryrun/POINT.json. It is persisted (unlike the in-memory
`drivers.dryrun.DryRunDriver` it extends) so that a later `necoma actions
expire` or `reconcile`, in another process, sees what an earlier approval
"installed" — the lifecycle behaves the same in dry run as for real.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from necoma.config import Settings
from necoma.protect.drivers import DRIVERS, Driver, load_driver
from necoma.protect.drivers.dryrun import DryRunDriver
from necoma.protect.model import Action

BUILTIN_POINT = "dryrun"


class RecordedDryRun(DryRunDriver):
    """A dry-run point whose installed set survives restarts (a JSON file, written atomically)."""

    def __init__(self, point: str, options: dict[str, Any] | None = None) -> None:
        super().__init__(point, options)
        self.path = Path((options or {})["state_file"])
        if self.path.is_file():
            for a in json.loads(self.path.read_text()):
                act = Action.model_validate(a)
                self._installed[act.id] = act

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps([a.model_dump(mode="json") for a in self._installed.values()], indent=1))
        os.replace(tmp, self.path)

    def apply(self, actions: list[Action]) -> None:
        super().apply(actions)
        self._save()

    def withdraw(self, actions: list[Action]) -> None:
        super().withdraw(actions)
        self._save()


def point_configs(settings: Settings) -> dict[str, dict[str, Any]]:
    """name -> options (with `driver`); the built-in dry-run point when none is configured."""
    points = settings.protect.points or {BUILTIN_POINT: {"driver": "dryrun"}}
    for name, opts in points.items():
        if opts.get("driver") not in DRIVERS:
            raise ValueError(f"protect.points.{name}: driver must be one of {', '.join(sorted(DRIVERS))}, "
                             f"not {opts.get('driver')!r}")
    return points


def router(settings: Settings):
    """A function step -> point name: the step's point, else [protect.routes] for its kind, else the only point."""
    points = point_configs(settings)

    def route(step) -> str:
        name = step.point or settings.protect.routes.get(step.kind)
        if name is None and len(points) == 1:
            name = next(iter(points))
        if name is None:
            raise ValueError(f"no enforcement point for {step.kind!r} actions: set [protect.routes] {step.kind} = \"POINT\"")
        if name not in points:
            raise ValueError(f"point {name!r} (for {step.kind!r}) is not configured in [protect.points]")
        return name

    return route


class Points:
    """Drivers by point name, built on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.configs = point_configs(settings)
        self._drivers: dict[str, Driver] = {}

    @property
    def dry_run(self) -> bool:
        return not self.settings.protect.enforce

    def driver(self, point: str) -> Driver:
        if point not in self._drivers:
            if point not in self.configs:
                raise ValueError(f"point {point!r} is not configured in [protect.points]")
            opts = {k: v for k, v in self.configs[point].items() if k != "driver"}
            kind = self.configs[point]["driver"]
            if self.dry_run or kind == "dryrun":
                state = self.settings.data_dir / "protect-dryrun" / f"{point}.json"
                self._drivers[point] = RecordedDryRun(point, {"state_file": state})
            else:
                if kind in ("abuse", "notify"):  # they find incidents and evidence in the lake
                    opts.setdefault("data_dir", str(self.settings.data_dir))
                self._drivers[point] = load_driver(kind, point, opts)
        return self._drivers[point]
