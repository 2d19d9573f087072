"""What the GoBGP and ExaBGP drivers share: the Driver contract on top of a BGP speaker.

A speaker only knows how to announce one route with a set of id tags, withdraw
one route, and list the routes it holds (NLRI key -> traffic action and tags).
This class makes that idempotent, all-or-nothing per call, and shared-safe: two
actions asking for the same NLRI with the same traffic action share one route
carrying both tags; the same NLRI with a different action is refused.
"""
from __future__ import annotations

import fcntl
import ipaddress
import subprocess
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Protocol

from necoma.protect.drivers.flowspec import (BGP_KINDS, Announcement, BgpOptions, announcements, id_tag, is_large,
                                             parse_community, tag_id)
from necoma.protect.model import Action, DriverError

Tag = tuple[int, int, int]


@dataclass
class RibEntry:
    then: str
    tags: frozenset[Tag]


class Speaker(Protocol):
    def announce(self, ann: Announcement, tags: frozenset[Tag]) -> None: ...
    def withdraw(self, ann: Announcement) -> None: ...
    def routes(self) -> dict[str, RibEntry]: ...


def run(cmd: list[str], what: str, timeout: float = 15) -> str:
    """Run a speaker command; its failure becomes a DriverError naming what was attempted."""
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise DriverError(f"{what}: {cmd[0]} is not installed") from None
    except subprocess.TimeoutExpired:
        raise DriverError(f"{what}: {cmd[0]} did not answer within {timeout}s") from None
    if out.returncode != 0:
        raise DriverError(f"{what}: {(out.stderr or out.stdout).strip() or f'exit {out.returncode}'}")
    return out.stdout


def bgp_options(options: dict[str, Any]) -> BgpOptions:
    """The point's options, checked: a bad value is refused when the driver is built, not at the first apply."""
    try:
        local_as = int(options["local_as"])
    except (KeyError, TypeError, ValueError):
        raise DriverError("BGP point needs option local_as (our AS number, also the tag's global administrator)") from None
    if not 1 <= local_as <= 0xFFFFFFFF:
        raise DriverError(f"local_as {local_as} is not an AS number (1..4294967295)")
    known: dict[str, Any] = {}
    for fam, default_len, top in ((4, 24, 32), (6, 48, 128)):
        key = f"blackhole_next_hop_v{fam}"
        if key in options:
            try:
                nh = ipaddress.ip_address(str(options[key]))
            except ValueError:
                nh = None
            if nh is None or nh.version != fam:
                raise DriverError(f"{key} {options[key]!r} is not an IPv{fam} address")
            known[key] = str(nh)
        key = f"max_rtbh_prefix_v{fam}"
        if key in options:
            if not isinstance(options[key], int) or not 0 <= options[key] <= top:
                raise DriverError(f"{key} {options[key]!r} must be a prefix length 0..{top} (default {default_len})")
            known[key] = options[key]
    comms = options.get("blackhole_communities", [])
    if isinstance(comms, str) or not isinstance(comms, (list, tuple)):
        raise DriverError("blackhole_communities must be a list, e.g. [\"64500:666\", \"6695:666:0\"]")
    parsed = tuple(parse_community(c) for c in comms)
    for c in parsed:
        if is_large(c) and int(c.split(":")[0]) == local_as:
            raise DriverError(f"blackhole community {c}: large communities LOCAL_AS:*:* mark which actions "
                              "necoma announced; use another global administrator")
    no_export = options.get("blackhole_no_export", True)
    if not isinstance(no_export, bool):
        raise DriverError(f"blackhole_no_export must be true or false, not {no_export!r}")
    return BgpOptions(local_as=local_as, blackhole_communities=parsed, blackhole_no_export=no_export,
                      extra=dict(options), **known)


class BgpDriver:
    """Driver contract over a `Speaker`."""

    kinds = frozenset(BGP_KINDS)

    def __init__(self, point: str, opts: BgpOptions, speaker: Speaker) -> None:
        self.name = point
        self.opts = opts
        self.speaker = speaker
        run_dir = opts.extra.get("run_dir")
        self.lock_path = Path(run_dir) / "driver.lock" if run_dir else None

    @contextmanager
    def _serialized(self) -> Iterator[None]:
        """One apply/withdraw at a time per point, across necoma processes (`necoma run` applying by
        policy while a person approves): each reads the RIB, then changes it from what it read."""
        if self.lock_path is None:
            yield
            return
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _ours(self) -> dict[str, RibEntry]:
        """The speaker's routes tagged with our AS (anything else is not necoma's to touch)."""
        rib = self.speaker.routes()
        return {k: RibEntry(e.then, frozenset(t for t in e.tags if t[0] == self.opts.local_as))
                for k, e in rib.items() if any(t[0] == self.opts.local_as for t in e.tags)}

    def apply(self, actions: list[Action]) -> None:
        with self._serialized():
            self._apply(actions)

    def withdraw(self, actions: list[Action]) -> None:
        with self._serialized():
            self._withdraw(actions)

    def _apply(self, actions: list[Action]) -> None:
        # translate everything first: a rule BGP cannot express refuses the call before anything is sent
        plan = [(a, id_tag(self.opts.local_as, a.id), announcements(a, self.opts)) for a in actions]
        rib = self._ours()
        done: list[tuple[Announcement, frozenset[Tag] | None]] = []
        try:
            for action, tag, anns in plan:
                for ann in anns:
                    entry = rib.get(ann.key())
                    if entry and tag in entry.tags:
                        continue  # already installed: idempotent
                    if entry and entry.then != ann.then():
                        holders = ", ".join(sorted(tag_id(t) for t in entry.tags))
                        raise DriverError(f"action {action.id}: {ann.key()} is already announced with "
                                          f"'{entry.then}' for {holders}; refusing '{ann.then()}'")
                    tags = (entry.tags if entry else frozenset()) | {tag}
                    self.speaker.announce(ann, tags)
                    done.append((ann, entry.tags if entry else None))
                    rib[ann.key()] = RibEntry(ann.then(), tags)
        except DriverError:
            for ann, before in reversed(done):  # undo this call only; errors here would hide the cause
                try:
                    self.speaker.announce(ann, before) if before else self.speaker.withdraw(ann)
                except DriverError:
                    pass
            raise

    def _withdraw(self, actions: list[Action]) -> None:
        rib = self._ours()
        for action in actions:
            tag = id_tag(self.opts.local_as, action.id)
            if action.kind not in BGP_KINDS:
                continue  # never announced here
            for ann in announcements(action, self.opts):
                entry = rib.get(ann.key())
                if not entry or tag not in entry.tags:
                    continue  # not ours or already gone: idempotent
                rest = entry.tags - {tag}
                if rest:  # another action still wants this route: keep it, drop our tag
                    self.speaker.announce(ann, rest)
                    rib[ann.key()] = RibEntry(entry.then, rest)
                else:
                    self.speaker.withdraw(ann)
                    del rib[ann.key()]

    def installed(self) -> set[str]:
        return {tag_id(t) for e in self._ours().values() for t in e.tags}
