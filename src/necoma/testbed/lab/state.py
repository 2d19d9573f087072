"""The lab's state file: everything `up` made, so `down` removes exactly that.

`<data_dir>/lab/state.json` is rewritten atomically after every step of `up`,
so even an `up` that failed half-way leaves a record `down` can clean from.
"""
from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from necoma.testbed.lab.procs import Proc

STATE_VERSION = 1


@dataclass
class LabState:
    lab_id: str
    workdir: str                                                # <data_dir>/lab, absolute
    created: float
    namespaces: dict[str, str] = field(default_factory=dict)    # role -> namespace name
    links: list[tuple[str, str]] = field(default_factory=list)  # (namespace, interface) veths made
    addresses: dict[str, str] = field(default_factory=dict)     # role -> address
    procs: dict[str, Proc] = field(default_factory=dict)        # name -> process
    sensors_dir: str | None = None                              # where the running sensors write
    complete: bool = False                                      # `up` finished every step

    def to_json(self) -> dict:
        return {
            "version": STATE_VERSION, "lab_id": self.lab_id, "workdir": self.workdir, "created": self.created,
            "namespaces": self.namespaces, "links": [list(x) for x in self.links], "addresses": self.addresses,
            "procs": {k: p.to_json() for k, p in self.procs.items()}, "sensors_dir": self.sensors_dir,
            "complete": self.complete,
        }

    @classmethod
    def from_json(cls, data: dict) -> "LabState":
        return cls(
            lab_id=data["lab_id"], workdir=data["workdir"], created=data["created"],
            namespaces=data.get("namespaces", {}), links=[tuple(x) for x in data.get("links", [])],
            addresses=data.get("addresses", {}),
            procs={k: Proc.from_json(v) for k, v in data.get("procs", {}).items()},
            sensors_dir=data.get("sensors_dir"), complete=data.get("complete", False),
        )


def state_path(workdir: Path) -> Path:
    return workdir / "state.json"


def load(workdir: Path) -> LabState | None:
    path = state_path(workdir)
    if not path.exists():
        return None
    return LabState.from_json(json.loads(path.read_text()))


def save(state: LabState) -> None:
    path = state_path(Path(state.workdir))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(state.to_json(), indent=2))
    os.replace(tmp, path)


def remove(workdir: Path) -> None:
    state_path(workdir).unlink(missing_ok=True)


@contextmanager
def locked(workdir: Path) -> Iterator[None]:
    """Hold the lab's lock: one `up`, `down` or `run` at a time per data dir.

    Without it, two `up`s started together would both see no lab and build
    two, and the state file would record only one of them.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    with open(workdir / "lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
