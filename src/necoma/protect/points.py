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


def driver_kinds(driver: str, options: dict[str, Any]) -> frozenset[str]:
    """What a driver of this name enforces, with these options."""
    from necoma.protect.drivers.flowspec import BGP_KINDS
    from necoma.protect.drivers.nft_rules import KINDS as NFT_KINDS
    from necoma.protect.model import KINDS

    return {
        "dryrun": frozenset(KINDS), "nftables": NFT_KINDS, "gobgp": frozenset(BGP_KINDS),
        "exabgp": frozenset(BGP_KINDS), "rpz": frozenset({"block_domain"}), "abuse": frozenset({"report_abuse"}),
        "notify": frozenset({"notify"} if options.get("channel") == "announce" else {"notify", "advise"}),
    }[driver]


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
    """Drivers by point name, built on first use.

    Each applied action remembers whether it went to the dry-run driver (`Action.dry_run`), so that
    switching protect.enforce on never makes reconcile install for real what was only approved in dry
    run, and switching it off never strands real rules: `for_action` finds the driver that holds it.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.configs = point_configs(settings)
        self._drivers: dict[str, Driver] = {}
        self._recorded: dict[str, Driver] = {}

    @property
    def dry_run(self) -> bool:
        return not self.settings.protect.enforce

    def _check(self, point: str) -> None:
        if point not in self.configs:
            raise ValueError(f"point {point!r} is not configured in [protect.points]")

    def recorded(self, point: str) -> Driver:
        """The point's persistent dry-run driver."""
        self._check(point)
        if point not in self._recorded:
            state = self.settings.data_dir / "protect-dryrun" / f"{point}.json"
            self._recorded[point] = RecordedDryRun(point, {"state_file": state})
        return self._recorded[point]

    def kinds(self, point: str) -> frozenset[str]:
        """The action kinds the point's configured driver enforces (known without building the driver,
        which for a managed BGP point would start its speaker)."""
        self._check(point)
        opts = self.configs[point]
        return driver_kinds(opts["driver"], opts)

    def forget(self, point: str) -> None:
        """Drop the built driver, so the next use builds it afresh (after its speaker was restarted)."""
        self._drivers.pop(point, None)

    def real(self, point: str) -> Driver:
        """The point's configured driver (what enforcement uses)."""
        self._check(point)
        kind = self.configs[point]["driver"]
        if kind == "dryrun":
            return self.recorded(point)
        if point not in self._drivers:
            opts = {k: v for k, v in self.configs[point].items() if k != "driver"}
            if kind in ("abuse", "notify"):  # they find incidents and evidence in the lake
                opts.setdefault("data_dir", str(self.settings.data_dir))
            self._drivers[point] = load_driver(kind, point, opts)
        return self._drivers[point]

    def driver(self, point: str) -> Driver:
        """The driver new applies go to: the real one when enforcing, else the recorded dry run."""
        return self.recorded(point) if self.dry_run else self.real(point)

    def dry(self, point: str) -> bool:
        """Whether an apply at this point now goes to the dry-run driver."""
        self._check(point)
        return self.dry_run or self.configs[point]["driver"] == "dryrun"

    def for_action(self, action: Action) -> Driver:
        """The driver holding an applied action, whatever the mode is now: withdraw and expiry go there
        (removing a rule is always safe, so a real rule is removed for real even in dry-run mode)."""
        return self.recorded(action.point) if action.dry_run else self.real(action.point)
