"""nftables enforcement point: victim-side drop, rate-limit and host isolation.

Each call becomes one nft script fed to `nft -f -`, which the kernel commits as a single
transaction: all of it or nothing. We drive the `nft` command rather than the libnftables
Python binding (python3-nftables) because the binding is a Debian system package the
project's venv cannot import, and because `ip netns exec NS nft` puts the change in a
named network namespace without switching the namespace of the Python process.
State is read back with `nft -j -a list table`, never kept in memory.

Options ([protect.points.NAME] in necoma.toml):
  table     name of the necoma-owned `inet` table (default "necoma")
  netns     run inside this named network namespace (`ip netns exec`), default: none
  priority  hook priority of the chains (default -450: before conntrack defragmentation)
  nft       path of the nft binary (default "nft")
  timeout   seconds allowed for one nft call (default 30)
"""
from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass, field
from typing import Any

from necoma.protect.drivers import nft_rules
from necoma.protect.model import Action, DriverError

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")


@dataclass
class _Owned:
    """What the table holds for one action id."""

    sets: dict[str, int] = field(default_factory=dict)  # set name -> live (unexpired) element count
    rules: list[tuple[str, int]] = field(default_factory=list)  # (chain, handle)

    @property
    def live(self) -> bool:
        return any(self.sets.values())


class NftablesDriver:
    """Driver for one nftables enforcement point (see module docstring for options)."""

    def __init__(self, point: str, options: dict[str, Any] | None = None) -> None:
        opts = dict(options or {})
        self.name = point
        self.kinds = nft_rules.KINDS
        self.table = str(opts.pop("table", "necoma"))
        self.netns = opts.pop("netns", None)
        self.priority = int(opts.pop("priority", -450))
        self.nft = str(opts.pop("nft", "nft"))
        self.timeout = float(opts.pop("timeout", 30))
        opts.pop("driver", None)
        if opts:
            raise ValueError(f"nftables point {point!r}: unknown options {sorted(opts)}")
        if not _NAME.match(self.table):
            raise ValueError(f"nftables point {point!r}: table name {self.table!r} is not a valid nft identifier")
        if self.netns is not None and (not str(self.netns) or "/" in str(self.netns)):
            raise ValueError(f"nftables point {point!r}: netns {self.netns!r} is not a namespace name")

    # -- the Driver protocol ------------------------------------------------

    def apply(self, actions: list[Action]) -> None:
        unique = {a.id: a for a in actions}
        plans = [nft_rules.plan(a, self.table) for a in unique.values()]  # refuse before touching anything
        owned = self._read()
        # Remnants of timed-out actions go in the same transaction, so a re-applied one starts clean.
        script = self._base() + self._sweep_lines(owned)
        for p in plans:
            if owned.get(p.action_id, _Owned()).live:
                continue  # idempotent: already in force
            script += p.sets + p.rules
        self._run(script)

    def withdraw(self, actions: list[Action]) -> None:
        owned = self._read()
        script = [line for a in actions if a.id in owned for line in self._remove_lines(owned[a.id])]
        if script:
            self._run(script)

    def installed(self) -> set[str]:
        return {aid for aid, o in self._read().items() if o.live}

    # -- maintenance the lifecycle may call ------------------------------------

    def sweep(self) -> set[str]:
        """Delete rules and sets whose elements all timed out in the kernel; return their action ids."""
        owned = self._read()
        dead = self._dead(owned)
        if dead:
            self._run(self._sweep_lines(owned))
        return dead

    def purge_expired(self) -> set[str]:
        """The lifecycle's name for `sweep` (what every point with self-expiring entries offers)."""
        return self.sweep()

    def present(self) -> bool:
        """Whether necoma's table exists at the point (created by the first apply or `init_table`)."""
        r = self._exec(["list", "table", "inet", self.table])
        if r.returncode == 0:
            return True
        if "No such file or directory" in r.stderr and "network namespace" not in r.stderr:
            return False
        raise DriverError(f"nftables point {self.name}: cannot read table {self.table}: {r.stderr.strip()}")

    def init_table(self) -> None:
        """Create the table and its two empty base chains (idempotent), e.g. to check the point before use."""
        self._run(self._base())

    # -- internals -----------------------------------------------------------

    def _base(self) -> list[str]:
        t, prio = self.table, self.priority
        return [
            f"add table inet {t}",
            f"add chain inet {t} pre {{ type filter hook prerouting priority {prio}; policy accept; }}",
            f"add chain inet {t} out {{ type filter hook output priority {prio}; policy accept; }}",
        ]

    @staticmethod
    def _dead(owned: dict[str, _Owned]) -> set[str]:
        return {aid for aid, o in owned.items() if not o.live}

    def _sweep_lines(self, owned: dict[str, _Owned]) -> list[str]:
        return [line for aid in sorted(self._dead(owned)) for line in self._remove_lines(owned[aid])]

    def _remove_lines(self, o: _Owned) -> list[str]:
        # Rules first: a set cannot be deleted while a rule still refers to it.
        return ([f"delete rule inet {self.table} {chain} handle {h}" for chain, h in o.rules]
                + [f"delete set inet {self.table} {name}" for name in o.sets])

    def _cmd(self, *args: str) -> list[str]:
        prefix = ["ip", "netns", "exec", str(self.netns)] if self.netns else []
        return [*prefix, self.nft, *args]

    def _exec(self, args: list[str], stdin: str | None = None) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(self._cmd(*args), input=stdin, capture_output=True, text=True,
                                  timeout=self.timeout)
        except FileNotFoundError as e:
            raise DriverError(f"nftables point {self.name}: cannot run {e.filename!r} (install nftables)") from None
        except subprocess.TimeoutExpired:
            raise DriverError(f"nftables point {self.name}: nft did not answer within {self.timeout:g} s") from None

    def _run(self, lines: list[str]) -> None:
        script = "\n".join(lines) + "\n"
        r = self._exec(["-f", "-"], stdin=script)
        if r.returncode != 0:
            raise DriverError(f"nftables point {self.name}: transaction refused, nothing changed: "
                              f"{r.stderr.strip() or r.stdout.strip()}")

    def _read(self) -> dict[str, _Owned]:
        """Parse `nft -j -a list table inet TABLE`: which action ids own which sets and rules."""
        r = self._exec(["-j", "-a", "list", "table", "inet", self.table])
        if r.returncode != 0:
            if "No such file or directory" in r.stderr and "network namespace" not in r.stderr:
                return {}  # the table does not exist yet: nothing installed
            raise DriverError(f"nftables point {self.name}: cannot read table {self.table}: {r.stderr.strip()}")
        try:
            items = json.loads(r.stdout)["nftables"]
        except (ValueError, KeyError) as e:
            raise DriverError(f"nftables point {self.name}: unreadable nft JSON: {e}") from None
        owned: dict[str, _Owned] = {}
        for item in items:
            if "set" in item and item["set"].get("comment"):
                s = item["set"]
                owned.setdefault(s["comment"], _Owned()).sets[s["name"]] = len(s.get("elem", []))
            elif "rule" in item and item["rule"].get("comment"):
                rule = item["rule"]
                owned.setdefault(rule["comment"], _Owned()).rules.append((rule["chain"], rule["handle"]))
        return owned
