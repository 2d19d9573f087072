"""ExaBGP as necoma's BGP speaker: necoma runs `exabgp` with a generated config and steers it
through its process API (commands relayed from a Unix socket by exabgp_relay.py).

Read-back: ExaBGP's `show adj-rib out extensive` lists every route it announces, but as
display text (`protocol =udp source-port =ntp ...`) with names that are not worth
re-parsing. So the driver keeps a journal (run_dir/journal.json: NLRI key -> traffic
action and tags) of what it sent, and `routes()` trusts a journal entry only for the
tags ExaBGP itself still shows in its adj-rib-out: an ExaBGP that died or restarted
shows none, and the actions read as not installed.

Options ([protect.points.NAME] with driver = "exabgp"):
  local_as, router_id, run_dir   required
  local_address                  our address toward the peers
  peers                          [{address, as, port (default 179), local_address}]
  exabgp                         command to run ExaBGP (default: `python -m exabgp` of this venv)
"""
from __future__ import annotations

import getpass
import json
import os
import re
import shlex
import socket
import sys
import time
from pathlib import Path
from typing import Any

from necoma.protect.drivers.bgp_daemon import ManagedDaemon
from necoma.protect.drivers.bgp_speaker import BgpDriver, RibEntry, Tag, bgp_options
from necoma.protect.drivers.flowspec import (AND, BITMASK_TYPES, COMPONENT_NAMES, EQ, FRAGMENT_BITS, GT, LT,
                                             MATCH, NOT, PROTO, TCP_FLAG_BITS, Announcement,
                                             RtbhRoute, Term, is_large)
from necoma.protect.model import DriverError

_NUM_OP = {EQ: "=", GT: ">", GT | EQ: ">=", LT: "<", LT | EQ: "<=", LT | GT: "!="}
_TCP_NAMES = {"F": "fin", "S": "syn", "R": "rst", "P": "push", "A": "ack", "U": "urg", "E": "ece", "C": "cwr"}
_TAGS = re.compile(r"large-community (?:\[ ([^\]]*) \]|(\S+))")


def _bitmask(ctype: int, value: int) -> str:
    if ctype == 12:
        return "+".join(n for n, bit in FRAGMENT_BITS.items() if value & bit)
    return "+".join(_TCP_NAMES[n] for n, bit in TCP_FLAG_BITS.items() if value & bit)


def _terms(ctype: int, terms: tuple[Term, ...]) -> str:
    words: list[str] = []
    for t in terms:
        if ctype in BITMASK_TYPES:
            text = ("!" if t.op & NOT else "") + ("=" if t.op & MATCH else "") + _bitmask(ctype, t.value)
        else:
            text = _NUM_OP[t.op & (LT | GT | EQ)] + str(t.value)
        if t.op & AND and words:
            words[-1] += "&" + text
        else:
            words.append(text)
    return "[ " + " ".join(words) + " ]"


def _large(tags: frozenset[Tag], configured: tuple[str, ...] = ()) -> str:
    words = [*configured, *(f"{a}:{b}:{c}" for a, b, c in sorted(tags))]
    return "large-community [ " + " ".join(words) + " ]" if words else ""


def api_command(verb: str, ann: Announcement, tags: frozenset[Tag] = frozenset()) -> str:
    """One ExaBGP API line: `announce|withdraw flow route {...}` or `... route PREFIX ...`."""
    if isinstance(ann, RtbhRoute):
        comms = " ".join(c for c in ann.communities if not is_large(c))
        large = _large(tags, tuple(c for c in ann.communities if is_large(c)))
        return f"{verb} route {ann.prefix} next-hop {ann.next_hop} community [ {comms} ] {large}".strip()
    match = [f"{COMPONENT_NAMES[c]} {p};" for c, p in ann.prefixes]
    for ctype, terms in ann.terms:
        name = "next-header" if ctype == PROTO and ann.family == 6 else COMPONENT_NAMES[ctype]
        match.append(f"{name} {_terms(ctype, terms)};")
    rate = int(ann.rate_bytes) if ann.rate_bytes == int(ann.rate_bytes) else ann.rate_bytes
    then = ["discard;" if ann.rate_bytes == 0 else f"rate-limit {rate};"]
    if tags:
        then.append(_large(tags) + ";")
    return f"{verb} flow route {{ match {{ {' '.join(match)} }} then {{ {' '.join(then)} }} }}"


def exabgp_config(options: dict[str, Any], local_as: int, relay_socket: Path) -> str:
    relay = f"{shlex.quote(sys.executable)} -m necoma.protect.drivers.exabgp_relay {shlex.quote(str(relay_socket))}"
    out = ["process necoma {", f"  run {relay};", "  encoder json;", "}"]
    for peer in options.get("peers", []):
        local = peer.get("local_address", options.get("local_address"))
        out += [f"neighbor {peer['address']} {{", f"  router-id {options['router_id']};",
                *([f"  local-address {local};"] if local else []),
                f"  local-as {local_as};", f"  peer-as {int(peer['as'])};",
                f"  connect {int(peer.get('port', 179))};",  # ExaBGP 5: `connect`, not `peer-port`
                "  family { ipv4 flow; ipv6 flow; ipv4 unicast; ipv6 unicast; }",
                "  api { processes [ necoma ]; }", "}"]
    return "\n".join(out) + "\n"


class ExaBgpSpeaker:
    def __init__(self, run_dir: Path, timeout: float = 10) -> None:
        self.socket_path = run_dir / "api.sock"
        self.journal_path = run_dir / "journal.json"
        self.timeout = timeout

    def command(self, line: str) -> list[str]:
        """Send one API command; ExaBGP's answer lines without the final done. DriverError on error."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(self.timeout)
                s.connect(str(self.socket_path))
                s.sendall(line.encode() + b"\n")
                buf = b""
                while not re.search(rb"(^|\n)(done|error|shutdown)\n$", buf):
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    buf += chunk
        except OSError as e:
            raise DriverError(f"ExaBGP API at {self.socket_path}: {e}") from None
        lines = buf.decode(errors="replace").splitlines()
        if not lines or lines[-1] != "done":
            raise DriverError(f"ExaBGP refused `{line[:300]}`: {' | '.join(lines) or 'no answer'}")
        return lines[:-1]

    def _journal(self) -> dict[str, dict]:
        try:
            return json.loads(self.journal_path.read_text())
        except (OSError, ValueError):
            return {}

    def _write_journal(self, journal: dict[str, dict]) -> None:
        tmp = self.journal_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(journal, sort_keys=True))
        os.replace(tmp, self.journal_path)  # atomic: a crash leaves the old or the new journal

    def announce(self, ann: Announcement, tags: frozenset[Tag]) -> None:
        self.command(api_command("announce", ann, tags))
        journal = self._journal()
        journal[ann.key()] = {"then": ann.then(), "tags": sorted(tags)}
        self._write_journal(journal)

    def withdraw(self, ann: Announcement) -> None:
        self.command(api_command("withdraw", ann))
        journal = self._journal()
        journal.pop(ann.key(), None)
        self._write_journal(journal)

    def shown_tags(self) -> set[Tag]:
        """Large communities on the routes ExaBGP holds in its adj-rib-out, as it says itself."""
        seen: set[Tag] = set()
        for line in self.command("show adj-rib out extensive"):
            for m in _TAGS.finditer(line):
                for word in (m.group(1) or m.group(2)).split():
                    a, b, c = (int(x) for x in word.split(":"))
                    seen.add((a, b, c))
        return seen

    def routes(self) -> dict[str, RibEntry]:
        seen = self.shown_tags()
        out = {}
        for key, e in self._journal().items():
            tags = frozenset(tuple(t) for t in e["tags"]) & seen
            if tags:
                out[key] = RibEntry(e["then"], tags)
        return out


class ExaBgpDriver(BgpDriver):
    def __init__(self, point: str, options: dict[str, Any]) -> None:
        opts = bgp_options(options)
        for key in ("run_dir", "router_id"):
            if key not in options:
                raise DriverError(f"point {point}: the exabgp driver needs option {key}")
        run_dir = Path(options["run_dir"])
        speaker = ExaBgpSpeaker(run_dir)
        super().__init__(point, opts, speaker)
        command = shlex.split(options["exabgp"]) if options.get("exabgp") else [sys.executable, "-m", "exabgp"]
        self.daemon = ManagedDaemon("exabgp", run_dir)
        if not self.daemon.pid():  # else still running from before a necoma restart, with its routes
            run_dir.mkdir(parents=True, exist_ok=True)
            speaker.journal_path.unlink(missing_ok=True)  # a new ExaBGP announces nothing yet
            conf = run_dir / "exabgp.conf"
            conf.write_text(exabgp_config(options, opts.local_as, speaker.socket_path))
            env = dict(os.environ, **{
                "exabgp.daemon.daemonize": "false",
                "exabgp.daemon.user": getpass.getuser(),  # as root ExaBGP drops to nobody, who cannot run our venv
                "exabgp.api.cli": "false",  # its named-pipe CLI is not used: necoma has the relay
                "exabgp.log.destination": "stdout"})
            self.daemon.start([*command, "server", str(conf)], env)
            self._wait_api(float(options.get("start_timeout", 20)))

    def _wait_api(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.speaker.command("show adj-rib out extensive")
                return
            except DriverError as e:
                gone = not self.daemon.pid()
                if gone or time.monotonic() > deadline:
                    why = "ExaBGP exited" if gone else f"ExaBGP API not answering after {timeout}s ({e})"
                    raise DriverError(f"point {self.name}: {why}; log tail: {self.daemon.log_tail()}") from None
                time.sleep(0.3)

    def stop(self) -> None:
        """Stop the ExaBGP necoma started (the peers see the session drop and flush its routes)."""
        self.daemon.stop()
