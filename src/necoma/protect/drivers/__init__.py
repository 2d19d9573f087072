"""Enforcement drivers. Each module implements `Driver` for one kind of policy point.

A driver is built from its point's settings (`[protect.points.NAME]` in necoma.toml,
the `driver` key picks the module) and must be:
- idempotent: applying an installed action again changes nothing;
- all-or-nothing per call where the point allows it (nft -f, one RPZ zone reload);
  otherwise it raises DriverError after undoing what it did in that call;
- able to say what it has installed (`installed`), so necoma reconciles after a restart.
"""
from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from necoma.protect.model import Action


@runtime_checkable
class Driver(Protocol):
    name: str  # the point's name
    kinds: frozenset[str]  # action kinds this driver enforces

    def apply(self, actions: list[Action]) -> None:
        """Install the actions (idempotent). Raise DriverError on failure, leaving none of them half-applied."""

    def withdraw(self, actions: list[Action]) -> None:
        """Remove the actions (idempotent: removing an absent one is fine)."""

    def installed(self) -> set[str]:
        """Ids of the actions currently installed at the point."""


DRIVERS: dict[str, str] = {
    # driver name in config -> "module:factory"; factories take (point_name: str, options: dict) -> Driver
    "dryrun": "necoma.protect.drivers.dryrun:DryRunDriver",
    "nftables": "necoma.protect.drivers.nftables:NftablesDriver",
    "gobgp": "necoma.protect.drivers.bgp:GoBgpDriver",
    "exabgp": "necoma.protect.drivers.bgp:ExaBgpDriver",
    "rpz": "necoma.protect.drivers.rpz:RpzDriver",
    "abuse": "necoma.protect.drivers.abuse:AbuseReportDriver",
    "notify": "necoma.protect.drivers.notify:NotifyDriver",
}


def load_driver(driver: str, point: str, options: dict[str, Any]) -> Driver:
    """Build the driver named `driver` for enforcement point `point`."""
    import importlib

    if driver not in DRIVERS:
        raise ValueError(f"unknown driver {driver!r} for point {point!r}; known: {', '.join(sorted(DRIVERS))}")
    module, _, factory = DRIVERS[driver].partition(":")
    return getattr(importlib.import_module(module), factory)(point, options)
