"""DNS RPZ enforcement point: block_domain actions become policies in a zone that a resolver loads.

Every change rewrites the whole zone (it is small, and one file is one transaction):
render -> temp file beside the live one -> `named-checkzone` -> rename over the live file
-> reload the resolver. If the check fails the live file is never touched; if the reload
fails the previous file is put back. The zone file is the only state: `installed()`
parses it. Entries past their expiry leave at the next write; the lifecycle calls
`purge_expired()` periodically so that happens even when nothing else changes.

Options ([protect.points.NAME] in necoma.toml):
  path            the zone file the resolver loads (required)
  zone            the RPZ zone name (default "rpz.necoma")
  server          "unbound" (unbound-control auth_zone_reload), "bind" (rndc reload) or "none"
  unbound_conf    unbound.conf for `unbound-control -c` (its remote-control section)
  unbound_control path of unbound-control (default "unbound-control")
  rndc, rndc_conf, rndc_server, rndc_port   rndc binary and its -c / -s / -p
  walled_garden   addresses a "redirect" policy answers with, when the action names none
  record_ttl      TTL of the policy records (default 60 s)
  checkzone       path of named-checkzone (default "named-checkzone")
  timeout         seconds allowed for each external command (default 30)
"""
from __future__ import annotations

import fcntl
import os
import subprocess
import tempfile
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import dns.name

from necoma.protect.drivers import rpz_zone
from necoma.protect.drivers.rpz_zone import Entry
from necoma.protect.model import Action, DriverError

SERVERS = ("unbound", "bind", "none")


class RpzDriver:
    """Driver for one RPZ zone (see module docstring for options)."""

    def __init__(self, point: str, options: dict[str, Any] | None = None) -> None:
        opts = dict(options or {})
        opts.pop("driver", None)
        self.name = point
        self.kinds = frozenset({"block_domain"})
        if "path" not in opts:
            raise ValueError(f"rpz point {point!r}: option 'path' (the zone file) is required")
        self.path = Path(opts.pop("path"))
        zone = str(opts.pop("zone", "rpz.necoma"))
        try:
            self.origin = dns.name.from_text(zone)
        except Exception as e:  # dnspython raises several kinds for a bad zone name
            raise ValueError(f"rpz point {point!r}: zone {zone!r} is not a DNS name: {e}") from None
        self.zone = self.origin.to_text(omit_final_dot=True)
        if self.origin == dns.name.root or not all(rpz_zone.is_ldh(lab) for lab in self.origin.labels[:-1]):
            raise ValueError(f"rpz point {point!r}: zone {zone!r} must be a host-style name like rpz.necoma")
        self.server = str(opts.pop("server", "unbound"))
        if self.server not in SERVERS:
            raise ValueError(f"rpz point {point!r}: server must be one of {SERVERS}, not {self.server!r}")
        self.unbound_conf = opts.pop("unbound_conf", None)
        self.unbound_control = str(opts.pop("unbound_control", "unbound-control"))
        self.rndc = str(opts.pop("rndc", "rndc"))
        self.rndc_conf = opts.pop("rndc_conf", None)
        self.rndc_server = opts.pop("rndc_server", None)
        self.rndc_port = opts.pop("rndc_port", None)
        garden = opts.pop("walled_garden", [])
        self.walled_garden = [garden] if isinstance(garden, str) else list(garden)
        for addr in self.walled_garden:
            if not rpz_zone.is_address(str(addr)):
                raise ValueError(f"rpz point {point!r}: walled_garden {addr!r} is not an IP address")
        self.record_ttl = int(opts.pop("record_ttl", 60))
        if not 0 <= self.record_ttl < 2**31:
            raise ValueError(f"rpz point {point!r}: record_ttl must be 0 .. 2147483647 seconds")
        self.checkzone = str(opts.pop("checkzone", "named-checkzone"))
        self.timeout = float(opts.pop("timeout", 30))
        if self.timeout <= 0:
            raise ValueError(f"rpz point {point!r}: timeout must be positive")
        if opts:
            raise ValueError(f"rpz point {point!r}: unknown options {sorted(opts)}")

    # -- the Driver protocol ------------------------------------------------

    def apply(self, actions: list[Action]) -> None:
        now = datetime.now(timezone.utc)
        new = {a.id: rpz_zone.entry_for(a, self.origin, self.record_ttl, self.walled_garden, now)
               for a in actions}  # refuse before touching anything
        with self._locked():
            serial, entries = self._read()
            kept = [e for e in entries if not e.expired(now)]
            have = {e.action_id for e in kept}
            added = [e for aid, e in new.items() if aid not in have]  # idempotent: present ones stay as they are
            if added or len(kept) != len(entries):
                self._write(serial, kept + added)

    def withdraw(self, actions: list[Action]) -> None:
        gone = {a.id for a in actions}
        now = datetime.now(timezone.utc)
        with self._locked():
            serial, entries = self._read()
            kept = [e for e in entries if e.action_id not in gone and not e.expired(now)]
            if len(kept) != len(entries):
                self._write(serial, kept)

    def installed(self) -> set[str]:
        """Ids of the blocks the zone holds (an expired one counts until `purge_expired` removes it)."""
        return {e.action_id for e in self._read()[1]}

    # -- maintenance -----------------------------------------------------------

    def purge_expired(self, now: datetime | None = None) -> set[str]:
        """Drop the entries past their expiry, rewrite and reload; return their action ids."""
        now = now or datetime.now(timezone.utc)
        with self._locked():
            serial, entries = self._read()
            expired = {e.action_id for e in entries if e.expired(now)}
            if expired:
                self._write(serial, [e for e in entries if not e.expired(now)])
        return expired

    def init_zone(self) -> None:
        """Write an empty, valid zone if none exists (the resolver needs the file before it starts)."""
        with self._locked():
            if not self.path.exists():
                self._install(rpz_zone.render(self.origin, self._next_serial(0), [], self.name), reload=False)

    # -- internals -----------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialize writers (the lifecycle, the CLI) on a lock file beside the zone."""
        if not self.path.parent.is_dir():
            raise DriverError(f"rpz point {self.name}: directory {self.path.parent} does not exist")
        with open(self.path.with_name(self.path.name + ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _read(self) -> tuple[int, list[Entry]]:
        try:
            return rpz_zone.parse(self.path.read_text())
        except FileNotFoundError:
            return 0, []
        except (OSError, ValueError) as e:
            raise DriverError(f"rpz point {self.name}: cannot read zone {self.path}: {e}") from None

    @staticmethod
    def _next_serial(old: int) -> int:
        # Monotonic even if the file was lost: never below the clock (RFC 1982 32-bit space).
        return max(old + 1, int(time.time())) % 2**32

    def _write(self, serial: int, entries: list[Entry]) -> None:
        rpz_zone.conflicts(entries)
        self._install(rpz_zone.render(self.origin, self._next_serial(serial), entries, self.name), reload=True)

    def _install(self, text: str, reload: bool) -> None:
        """Check, swap in atomically, reload; on a failed reload put the previous zone back."""
        previous = self.path.read_bytes() if self.path.exists() else None
        self._replace(text.encode(), check=True)
        if not reload:
            return
        try:
            self._reload()
        except DriverError:
            if previous is None:
                self.path.unlink(missing_ok=True)
            else:
                self._replace(previous, check=False)
            raise

    def _replace(self, data: bytes, check: bool) -> None:
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)  # the resolver often runs as its own user
            if check:
                self._check(tmp)
            os.replace(tmp, self.path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def _check(self, file: str) -> None:
        r = self._exec([self.checkzone, "-q", self.zone, file], "named-checkzone")
        if r.returncode != 0:
            detail = (r.stdout + r.stderr).strip()
            if not detail:  # -q is silent: ask again for the reason
                detail = self._exec([self.checkzone, self.zone, file], "named-checkzone").stdout.strip()
            raise DriverError(f"rpz point {self.name}: generated zone rejected by named-checkzone, "
                              f"live zone left untouched: {detail or 'exit ' + str(r.returncode)}")

    def _reload(self) -> None:
        if self.server == "none":
            return
        if self.server == "unbound":
            cmd = [self.unbound_control, *(["-c", str(self.unbound_conf)] if self.unbound_conf else []),
                   "auth_zone_reload", self.zone]
        else:
            cmd = [self.rndc, *(["-c", str(self.rndc_conf)] if self.rndc_conf else []),
                   *(["-s", str(self.rndc_server)] if self.rndc_server else []),
                   *(["-p", str(self.rndc_port)] if self.rndc_port else []), "reload", self.zone]
        r = self._exec(cmd, cmd[0])
        out = (r.stdout + r.stderr).strip()
        # unbound-control prints "error ..." for an unknown zone; trust neither exit code alone.
        if r.returncode != 0 or out.lower().startswith("error"):
            raise DriverError(f"rpz point {self.name}: {self.server} did not reload zone {self.zone}, "
                              f"previous zone restored: {out or 'exit ' + str(r.returncode)}")

    def _exec(self, cmd: list[str], what: str) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=self.timeout)
        except FileNotFoundError:
            raise DriverError(f"rpz point {self.name}: cannot run {what!r} (not installed?)") from None
        except subprocess.TimeoutExpired:
            raise DriverError(f"rpz point {self.name}: {what} did not finish within {self.timeout:g} s") from None
