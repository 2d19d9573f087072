"""GoBGP as necoma's BGP speaker, driven through the `gobgp` CLI against gobgpd's API port.

The CLI rather than gRPC: the Python stubs are not packaged for GoBGP 3 and
would have to be generated from its .proto files and kept in step with the
daemon; the CLI ships with gobgpd and `-j` gives the RIB as JSON with the NLRI
at the RFC encoding (type, operator byte, value), which `decode_rib` reads back.

Options ([protect.points.NAME] with driver = "gobgp"):
  local_as          our AS (required)
  api_port          gobgpd's gRPC API port (default 50051), api_host (default 127.0.0.1)
  manage            true: necoma starts gobgpd itself with a generated config (run_dir,
                    router_id, listen_port, peers = [{address, as, port, local_address}])
  run_dir           with manage: config, pid file, log; always: the lock serializing necoma processes
  gobgp, gobgpd     paths of the binaries (default: found on PATH)
RTBH options (next hops, communities, limits): bgp_speaker.bgp_options; all in docs/protect-bgp.md.
"""
from __future__ import annotations

import ipaddress
import shutil
import time
from pathlib import Path
from typing import Any

from necoma.protect.drivers.bgp_daemon import ManagedDaemon
from necoma.protect.drivers.bgp_speaker import BgpDriver, RibEntry, Tag, bgp_options, run
from necoma.protect.drivers.flowspec import (AND, BITMASK_MASK, BITMASK_TYPES, COMPONENT_NAMES, DST, EQ,
                                             FRAGMENT_BITS, GT, LT, MATCH, NOT, NUMERIC_MASK, SRC,
                                             TCP_FLAG_BITS, Announcement, FlowRule, RtbhRoute, Term,
                                             community_order, is_large)
from necoma.protect.model import DriverError

FAMILIES = ("ipv4-flowspec", "ipv6-flowspec", "ipv4", "ipv6")
_NUM_OP = {EQ: "==", GT: ">", GT | EQ: ">=", LT: "<", LT | EQ: "<=", LT | GT: "!="}


def _bitmask_value(ctype: int, value: int) -> str:
    """TCP flags as letters ('SA'); fragment bits by name (necoma sends one bit per term)."""
    if ctype == 12:
        return "+".join(n for n, bit in FRAGMENT_BITS.items() if value & bit)
    return "".join(n for n, bit in TCP_FLAG_BITS.items() if value & bit)


def _terms_args(ctype: int, terms: tuple[Term, ...]) -> list[str]:
    """OR'ed groups as separate CLI words; AND'ed terms joined by '&' in one word."""
    words: list[str] = []
    for t in terms:
        if ctype in BITMASK_TYPES:
            text = ("!" if t.op & NOT else "") + ("=" if t.op & MATCH else "") + _bitmask_value(ctype, t.value)
        else:
            text = _NUM_OP[t.op & (LT | GT | EQ)] + str(t.value)
        if t.op & AND and words:
            words[-1] += "&" + text
        else:
            words.append(text)
    return words


def _large(tags: frozenset[Tag], configured: tuple[str, ...] = ()) -> list[str]:
    words = [*configured, *(f"{a}:{b}:{c}" for a, b, c in sorted(tags))]
    return ["large-community", ",".join(words)] if words else []


def cli_words(ann: Announcement, tags: frozenset[Tag] = frozenset()) -> tuple[str, list[str]]:
    """(address family, words after `add`/`del`) for one announcement."""
    if isinstance(ann, RtbhRoute):
        standard = [c for c in ann.communities if not is_large(c)]
        large = tuple(c for c in ann.communities if is_large(c))
        return f"ipv{ann.family}", [ann.prefix, "nexthop", ann.next_hop, "community",
                                    ",".join(standard), *_large(tags, large)]
    words = ["match"]
    for ctype, prefix in ann.prefixes:
        words += [COMPONENT_NAMES[ctype], prefix]
    for ctype, terms in ann.terms:
        words += [COMPONENT_NAMES[ctype], *_terms_args(ctype, terms)]
    then = ["discard"] if ann.rate_bytes == 0 else ["rate-limit", repr(ann.rate_bytes)]
    return f"ipv{ann.family}-flowspec", [*words, "then", *then, *_large(tags)]


def _community(n: int) -> str:
    return f"{n >> 16}:{n & 0xFFFF}"


def decode_path(family: str, path: dict, local_as: int) -> tuple[Announcement, frozenset[Tag]]:
    """One path of `gobgp -j global rib -a FAMILY` back into what necoma would have announced.
    Large communities LOCAL_AS:*:* are action tags; other large communities are configured ones."""
    attrs = {a["type"]: a for a in path.get("attrs", [])}
    large = [(v["ASN"], v["LocalData1"], v["LocalData2"]) for v in attrs.get(32, {}).get("value", [])]
    tags = frozenset(t for t in large if t[0] == local_as)
    if family in ("ipv4", "ipv6"):
        net = ipaddress.ip_network(path["nlri"]["prefix"])
        nh = attrs[3]["nexthop"] if 3 in attrs else attrs.get(14, {}).get("nexthop", "")
        comms = [_community(c) for c in attrs.get(8, {}).get("communities", [])]
        comms += [f"{a}:{b}:{c}" for a, b, c in large if a != local_as]
        return RtbhRoute(net.version, str(net), nh, tuple(sorted(comms, key=community_order))), tags
    prefixes, terms = [], []
    for comp in path["nlri"]["value"]:
        ctype = comp["type"]
        if ctype in (DST, SRC):
            prefixes.append((ctype, comp["value"]["prefix"]))
        else:
            mask = BITMASK_MASK if ctype in BITMASK_TYPES else NUMERIC_MASK
            terms.append((ctype, tuple(Term(t["op"] & mask, t["value"]) for t in comp["value"])))
    rates = [c.get("rate", 0.0) for c in attrs.get(16, {}).get("value", []) if c.get("subtype") == 6]
    rate = float(rates[0]) if rates else -1.0  # -1: no traffic-rate action at all
    return FlowRule(4 if family.startswith("ipv4") else 6, tuple(prefixes), tuple(terms), rate), tags


def decode_rib(rib_json: dict, family: str, local_as: int) -> list[tuple[Announcement, frozenset[Tag]]]:
    """Every path of a `gobgp -j global rib -a FAMILY` answer, decoded (used by the tests on the peer too)."""
    return [decode_path(family, p, local_as) for paths in (rib_json or {}).values() for p in paths]


class GoBgpSpeaker:
    def __init__(self, gobgp: str, api_host: str, api_port: int, local_as: int) -> None:
        self.base = [gobgp, "-u", api_host, "-p", str(api_port)]
        self.local_as = local_as
        self.api = f"gobgpd API at {api_host}:{api_port}"

    def announce(self, ann: Announcement, tags: frozenset[Tag]) -> None:
        fam, words = cli_words(ann, tags)
        run([*self.base, "global", "rib", "-a", fam, "add", *words], f"{self.api}: announce {ann.key()}")

    def withdraw(self, ann: Announcement) -> None:
        fam, words = cli_words(ann)
        run([*self.base, "global", "rib", "-a", fam, "del", *words], f"{self.api}: withdraw {ann.key()}")

    def rib(self, family: str) -> dict:
        import json

        out = run([*self.base, "-j", "global", "rib", "-a", family], f"{self.api}: read the {family} RIB")
        try:
            return json.loads(out) if out.strip() else {}
        except ValueError:
            raise DriverError(f"{self.api}: read the {family} RIB: not JSON: {out[:200]!r}") from None

    def routes(self) -> dict[str, RibEntry]:
        return {ann.key(): RibEntry(ann.then(), tags)
                for fam in FAMILIES for ann, tags in decode_rib(self.rib(fam), fam, self.local_as)}


def gobgpd_config(options: dict[str, Any], local_as: int) -> str:
    """gobgpd TOML: our AS, and one neighbor per peer with the FlowSpec and unicast families."""
    lines = ["[global.config]", f"  as = {local_as}", f'  router-id = "{options["router_id"]}"',
             f"  port = {int(options.get('listen_port', -1))}"]  # -1: do not listen, only connect out
    if "local_address" in options:
        lines.append(f'  local-address-list = ["{options["local_address"]}"]')
    for peer in options.get("peers", []):
        lines += ["[[neighbors]]", "[neighbors.config]", f'  neighbor-address = "{peer["address"]}"',
                  f"  peer-as = {int(peer['as'])}", "[neighbors.transport.config]",
                  f"  remote-port = {int(peer.get('port', 179))}"]
        if "local_address" in peer or "local_address" in options:
            lines.append(f'  local-address = "{peer.get("local_address", options.get("local_address"))}"')
        lines += ["[neighbors.timers.config]", "  connect-retry = 2"]  # gobgp's default 120 s delays recovery
        for fam in ("ipv4-flowspec", "ipv6-flowspec", "ipv4-unicast", "ipv6-unicast"):
            lines += ["[[neighbors.afi-safis]]", "[neighbors.afi-safis.config]", f'  afi-safi-name = "{fam}"']
    return "\n".join(lines) + "\n"


class GoBgpDriver(BgpDriver):
    def __init__(self, point: str, options: dict[str, Any]) -> None:
        opts = bgp_options(options)
        gobgp = options.get("gobgp") or shutil.which("gobgp")
        if not gobgp:
            raise DriverError(f"point {point}: the gobgp CLI is not installed (Debian package gobgpd)")
        host, port = str(options.get("api_host", "127.0.0.1")), int(options.get("api_port", 50051))
        super().__init__(point, opts, GoBgpSpeaker(gobgp, host, port, opts.local_as))
        self.daemon: ManagedDaemon | None = None
        if options.get("manage"):
            for key in ("run_dir", "router_id"):
                if key not in options:
                    raise DriverError(f"point {point}: manage = true needs option {key}")
            gobgpd = options.get("gobgpd") or shutil.which("gobgpd")
            if not gobgpd:
                raise DriverError(f"point {point}: gobgpd is not installed (Debian package gobgpd)")
            run_dir = Path(options["run_dir"])
            self.daemon = ManagedDaemon("gobgpd", run_dir)
            if not self.daemon.pid():  # else still running from before a necoma restart: its RIB is what is installed
                conf = run_dir / "gobgpd.toml"
                run_dir.mkdir(parents=True, exist_ok=True)
                conf.write_text(gobgpd_config(options, opts.local_as))
                # --pprof-disable: gobgpd's default profiler port 6060 would clash with any other gobgpd
                self.daemon.start([gobgpd, "-f", str(conf), "--api-hosts", f"{host}:{port}", "-l", "info",
                                   "--pprof-disable"])
            self._wait_api(float(options.get("start_timeout", 15)))

    def _wait_api(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.speaker.rib("ipv4")
                return
            except DriverError as e:
                gone = self.daemon is not None and not self.daemon.pid()
                if gone or time.monotonic() > deadline:
                    why = "gobgpd exited" if gone else f"gobgpd API not answering after {timeout}s ({e})"
                    tail = self.daemon.log_tail() if self.daemon else ""
                    raise DriverError(f"point {self.name}: {why}; log tail: {tail}") from None
                time.sleep(0.2)

    def stop(self) -> None:
        """Stop a gobgpd necoma started (its routes are withdrawn by the session going down)."""
        if self.daemon:
            self.daemon.stop()
