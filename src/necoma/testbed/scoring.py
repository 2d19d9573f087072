"""Entity-level scoring of one detector's alerts against a scenario's truth (pure functions).

For each detector, `SPECS` says which attack kinds it is expected to find,
which truth fields hold the entities it should name, and which subject roles
are scored. Its alerts' subjects (value, role) with those roles are the
predicted entities (other subjects are context: the qnames of an
amplification alert, the spoofable sources of a flood); the truth entities are the union of those fields
over the expected attacks. Then:

- true positive: a predicted entity equal to a truth entity (a CIDR subject
  counts once and finds every truth address inside it);
- false positive: a predicted entity that is no truth entity, unless it
  belongs to a *tolerated* attack (one the detector may legitimately also
  see, e.g. the victim of a UDP flood is a heavy hitter too): those are
  neither rewarded nor punished;
- miss: a truth entity no subject names.

precision = TP / (TP + FP), recall = found truth entities / truth entities,
F1 their harmonic mean. Alerts whose window ends before `history_until`
(the attack-free warm-up hours that give detectors a baseline) are counted
apart as `warmup_alerts` and not scored: they are cold-start artifacts.
Time to detect, per expected attack: the end of the
window of the first alert naming one of its entities, minus the attack's
start (an alert can only be raised once its window has been seen).
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from necoma.testbed.truth import ENTITY_FIELDS, parse_time


@dataclass(frozen=True)
class Spec:
    kinds: tuple[str, ...]  # attack kinds the detector should find
    fields: tuple[str, ...]  # truth fields holding the entities it should name
    roles: tuple[str, ...]  # subject roles that are scored; other subjects are context, ignored
    tolerated: tuple[str, ...] = ()  # attack kinds whose entities are neither TP nor FP


SPECS: dict[str, Spec] = {
    "zeus_dga": Spec(("zeus_dga",), ("bots", "domains", "cnc"), ("bot", "domain", "cnc")),
    # flood sources are often spoofed or are reflectors, so only the victim is scored
    "udp_fragmentation": Spec(("udp_fragmentation", "dns_amplification"), ("victims",), ("victim",)),
    "ntp_amplifier": Spec(("ntp_amplification",), ("amplifiers", "victims"), ("amplifier", "victim")),
    "dns_amplifier": Spec(("dns_amplification",), ("victims", "amplifiers"), ("victim", "amplifier")),
    # NTP and DNS have their own detectors; naming their victims here is not wrong either
    "reflection": Spec(("reflection",), ("victims", "amplifiers"), ("victim", "amplifier"),
                       tolerated=("ntp_amplification", "dns_amplification")),
    "heavy_hitter": Spec(("heavy_hitter",), ("hosts",), ("host", "source", "destination", "attacker", "victim"),
                         tolerated=("udp_fragmentation", "ntp_amplification", "dns_amplification", "reflection")),
    "ssl_scan": Spec(("ssl_scan",), ("scanners",), ("scanner",)),
    "dns_failure_graph": Spec(("dns_failure",), ("bots", "domains"), ("bot", "host", "domain"),
                              tolerated=("zeus_dga", "dga_other")),
}
EXPECTED_DETECTORS = tuple(SPECS)


@dataclass
class Score:
    name: str
    status: str = "scored"  # scored | not implemented | error
    alerts: int = 0
    warmup_alerts: int = 0
    tp: int = 0
    fp: int = 0
    truth: int = 0
    found: int = 0
    false_positives: list[dict] = field(default_factory=list)  # {"value", "role"}
    misses: list[dict] = field(default_factory=list)  # {"value", "field", "attack"}
    time_to_detect: dict[str, float | None] = field(default_factory=dict)  # attack id -> seconds
    per_field: dict[str, dict[str, int]] = field(default_factory=dict)  # field -> {"truth", "found"}
    error: str = ""
    seconds: float = 0.0
    spec: dict = field(default_factory=dict)

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.found / self.truth if self.truth else None

    @property
    def f1(self) -> float | None:
        p, r = self.precision, self.recall
        if p is None or r is None:
            return None
        return 2 * p * r / (p + r) if p + r else 0.0

    def as_dict(self) -> dict:
        d = {k: getattr(self, k) for k in ("name", "status", "alerts", "warmup_alerts", "tp", "fp", "truth", "found", "false_positives",
                                           "misses", "time_to_detect", "per_field", "error", "seconds", "spec")}
        d.update(precision=self.precision, recall=self.recall, f1=self.f1)
        return d


def normalize(value: str) -> str:
    """Canonical text of an entity: addresses compressed, names lower case without the trailing dot."""
    v = str(value).strip()
    try:
        return str(ipaddress.ip_address(v))
    except ValueError:
        pass
    if "/" in v and "://" not in v:
        try:
            return str(ipaddress.ip_network(v, strict=False))
        except ValueError:
            pass
    return v if "://" in v else v.lower().rstrip(".")


def _network(value: str):
    if "/" in value and "://" not in value:
        try:
            return ipaddress.ip_network(value, strict=False)
        except ValueError:
            return None
    return None


def subjects_of(alert) -> list[tuple[str, str]]:
    """(value, role) of an Alert, or of anything alert-like (objects, tuples or dicts as subjects)."""
    subs = alert.get("subjects", []) if isinstance(alert, dict) else getattr(alert, "subjects", [])
    out = []
    for s in subs or []:
        if isinstance(s, dict):
            out.append((str(s["value"]), str(s.get("role", ""))))
        elif isinstance(s, (tuple, list)):
            out.append((str(s[0]), str(s[1]) if len(s) > 1 else ""))
        else:
            out.append((str(s.value), str(getattr(s, "role", ""))))
    return out


def alert_time(alert) -> datetime | None:
    get = alert.get if isinstance(alert, dict) else lambda k, d=None: getattr(alert, k, d)
    for key in ("window_end", "time", "window_start", "created"):
        t = get(key, None)
        if isinstance(t, str):
            t = parse_time(t)
        if isinstance(t, datetime):
            return t
    return None


def _truth_index(attacks: Iterable[dict], fields: Iterable[str]) -> dict[str, list[tuple[str, str]]]:
    """entity -> [(field, attack id)]."""
    idx: dict[str, list[tuple[str, str]]] = {}
    for a in attacks:
        for f in fields:
            for v in a.get(f, []):
                idx.setdefault(normalize(v), []).append((f, a["id"]))
    return idx


def _matches(value: str, index: dict[str, list]) -> list[str]:
    """Truth entities named by a predicted value (itself, or every address inside a CIDR)."""
    if value in index:
        return [value]
    net = _network(value)
    if net is None:
        return []
    out = []
    for e in index:
        try:
            if ipaddress.ip_address(e) in net:
                out.append(e)
        except ValueError:
            continue
    return out


def score(name: str, alerts: list, truth: dict, spec: Spec, roles: Iterable[str] | None = None) -> Score:
    sc = Score(name=name, alerts=len(alerts), spec={"kinds": list(spec.kinds), "fields": list(spec.fields),
                                                     "roles": list(roles or spec.roles),
                                                     "tolerated": list(spec.tolerated)})
    expected = [a for a in truth["attacks"] if a["kind"] in spec.kinds]
    tolerated = [a for a in truth["attacks"] if a["kind"] in spec.tolerated]
    index = _truth_index(expected, spec.fields)
    tolerated_index = _truth_index(tolerated, ENTITY_FIELDS)
    role_set = set(roles or spec.roles) or None
    found: set[str] = set()
    fps: dict[tuple[str, str], None] = {}
    tps: set[str] = set()
    first_seen: dict[str, datetime] = {}
    warmup = parse_time(truth["history_until"]) if truth.get("history_until") else None
    for alert in alerts:
        when = alert_time(alert)
        if warmup is not None and when is not None and when <= warmup:
            sc.warmup_alerts += 1
            continue
        for value, role in subjects_of(alert):
            if role_set is not None and role not in role_set:
                continue
            v = normalize(value)
            hits = _matches(v, index)
            if hits:
                tps.add(v)
                found.update(hits)
                for h in hits:
                    for _, attack_id in index[h]:
                        if when is not None and (attack_id not in first_seen or when < first_seen[attack_id]):
                            first_seen[attack_id] = when
            elif not _matches(v, tolerated_index):
                fps.setdefault((v, role), None)
    sc.tp, sc.fp = len(tps), len(fps)
    sc.truth, sc.found = len(index), len(found)
    sc.false_positives = [{"value": v, "role": r} for v, r in sorted(fps)]
    sc.misses = [{"value": e, "field": index[e][0][0], "attack": index[e][0][1]} for e in sorted(index) if e not in found]
    for f in spec.fields:
        ents = {e for e, where in index.items() if any(w[0] == f for w in where)}
        sc.per_field[f] = {"truth": len(ents), "found": len(ents & found)}
    for a in expected:
        t = first_seen.get(a["id"])
        sc.time_to_detect[a["id"]] = (t - parse_time(a["start"])).total_seconds() if t else None
    return sc
