"""Enforcement points as an operator sees them: what each holds against what the store says, and
getting a point ready before its first use (`necoma actions points`, `necoma actions init-point`).

Looking never changes a point and never starts a BGP speaker (a managed speaker that is
down is reported as down). Preparing does per driver what the real thing needs first:
the RPZ zone file Unbound refuses to start without, necoma's nftables table, the BGP
speaker necoma runs.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from necoma.protect import speakers
from necoma.protect.model import DriverError


@dataclass
class PointView:
    name: str
    driver: str
    kinds: frozenset[str]
    dry: bool  # new applies go to the recorded dry run (protect.enforce off, or driver dryrun)
    ready: str  # the real point's condition, in words
    healthy: bool = True  # False: the point cannot work as it is (no zone file, cannot be asked)
    installed: set[str] | None = None  # what the point serving this mode holds (None: could not ask)
    applied: set[str] = field(default_factory=set)  # what the store says it should hold (applied, this mode)
    error: str | None = None

    @property
    def missing(self) -> set[str]:
        return self.applied - (self.installed or set()) if self.installed is not None else set()

    @property
    def extra(self) -> set[str]:
        return (self.installed or set()) - self.applied


def readiness(protector, name: str) -> tuple[str, bool]:
    """The real point's condition in one line (without changing it), and whether it can work as it is."""
    opts = protector.points.configs[name]
    kind = opts["driver"]
    try:
        if kind == "rpz":
            drv = protector.points.real(name)
            if not drv.path.exists():
                return "zone file missing: run init-point (the resolver will not start without it)", False
            return "zone file present", True
        if kind == "nftables":
            drv = protector.points.real(name)
            return ("table present" if drv.present()
                    else "no table yet (init-point or the first apply creates it)"), True
        if kind in speakers.BGP_DRIVERS:
            d = speakers.daemon(protector.points, name)
            if d is None:
                return f"operator's gobgpd at {opts.get('api_host', '127.0.0.1')}:{opts.get('api_port', 50051)}", True
            pid = d.pid()
            return (f"{d.name} running, pid {pid}", True) if pid else \
                (f"{d.name} not running (init-point or speaker start)", False)
        if kind == "dryrun":
            return "records only: nothing is installed anywhere", True
        return f"{kind}: sends as it applies; holds what it sent until the TTL", True
    except (DriverError, ValueError, OSError) as exc:
        return f"cannot check: {exc}", False


def describe(protector) -> list[PointView]:
    points, out = protector.points, []
    for name, opts in points.configs.items():
        dry = points.dry(name)
        view = PointView(name, opts["driver"], points.kinds(name), dry, *readiness(protector, name))
        view.applied = {r.action.id for r in protector.store.find(("applied",), point=name) if r.action.dry_run == dry}
        out.append(view)
        if not dry and opts["driver"] in speakers.BGP_DRIVERS:
            d = speakers.daemon(points, name)
            if d is not None and d.pid() is None:  # asking would start it
                view.error = "speaker not running: nothing is announced"
                continue
        try:
            view.installed = points.driver(name).installed()
        except (DriverError, ValueError, OSError) as exc:
            view.error = f"cannot list what it holds: {exc}"
    return out


def init_point(protector, name: str) -> str:
    """Get a point ready for its first use; one line saying what was done (or found done already)."""
    points = protector.points
    if name not in points.configs:
        raise ValueError(f"point {name!r} is not configured in [protect.points]; configured: "
                         f"{', '.join(points.configs) or 'none'}")
    kind = points.configs[name]["driver"]
    if kind == "rpz":
        drv = points.real(name)
        if drv.path.exists():
            return f"{name}: zone file {drv.path} exists already ({len(drv.installed())} blocks), left as it is"
        drv.init_zone()
        return f"{name}: wrote an empty zone {drv.zone} to {drv.path} (checked by named-checkzone); start or reload the resolver now"
    if kind == "nftables":
        drv = points.real(name)
        existed = drv.present()
        drv.init_table()
        where = f" in netns {drv.netns}" if drv.netns else ""
        return f"{name}: table inet {drv.table}{where} " + ("present already" if existed else "created, with empty chains pre and out")
    if kind in speakers.BGP_DRIVERS:
        if speakers.daemon(points, name) is None:
            drv = points.real(name)  # only checks the operator's gobgpd answers
            return f"{name}: the operator's gobgpd answers at {drv.speaker.api.split(' at ')[-1]}; nothing to start"
        pid, started = speakers.start(protector, name)
        return f"{name}: speaker " + (f"started, pid {pid}" if started else f"running already, pid {pid}")
    return f"{name}: a {kind} point needs no preparation"
