"""A driver that records what it would do: the default point when enforcement is off."""
from __future__ import annotations

from typing import Any

from necoma.protect.model import KINDS, Action


class DryRunDriver:
    def __init__(self, point: str, options: dict[str, Any] | None = None) -> None:
        self.name = point
        self.kinds = frozenset(KINDS)
        self._installed: dict[str, Action] = {}

    def apply(self, actions: list[Action]) -> None:
        for a in actions:
            self._installed[a.id] = a

    def withdraw(self, actions: list[Action]) -> None:
        for a in actions:
            self._installed.pop(a.id, None)

    def installed(self) -> set[str]:
        return set(self._installed)
