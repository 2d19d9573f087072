"""Fast acceptance of STIX 2.1 objects for TAXII ingest, with `stix2` as the judge of everything else.

Why not `stix2.parse` for every object: it builds a Python object per STIX
object (property cleaning, pytz datetimes) and runs an ANTLR parse of every
indicator pattern — about 3,600 objects/s on a 2-core machine, which bounded
ingest far below the 10,000 objects/s goal. Here the same rules are checked
straight on the decoded JSON.

`proves_valid(obj)` answers True only when `stix2.parse(obj, allow_custom=False,
version="2.1")` would accept `obj`; it is built from stix2's own property
declarations (required, fixed values, enums, integer bounds, which object types
each reference may point to — asked of stix2 itself at import), plus copies of
stix2's per-type constraints for the types listed in `_CONSTRAINTS`. It is
stricter than stix2 where stix2 coerces (a number where a string belongs, "1"
for true, upper-case or braced UUIDs, a string for a list...). False means
"not proven", never "invalid": the caller then asks stix2, which decides and
gives its reason. So nothing stix2 rejects gets in, and the common objects —
everything necoma and typical feeds produce — never reach stix2.

Indicator patterns are proven by `pattern_proven`: a regular expression for a
plain subset of the STIX 2.1 pattern grammar (comparisons of object paths with
=, !=, ISSUBSET, ISSUPERSET against string literals, joined by AND/OR/
FOLLOWEDBY); anything else (qualifiers, numbers, hashes, LIKE...) goes to
stix2-patterns. tests/test_exchange_stixcheck.py checks both directions on a
corpus of valid and invalid objects and on generated patterns.
"""
from __future__ import annotations

import re
from calendar import monthrange
from functools import lru_cache
from typing import Any, Callable

from stix2 import properties as P
from stix2.base import _STIXBase
from stix2.registry import STIX2_OBJ_MAPS

Check = Callable[[Any], bool]

_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"  # RFC 4122 variant, as stix2 2.1 requires
_REF = re.compile(rf"([a-z][a-z0-9-]*)--{_UUID}\Z")
_STAMP = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?Z\Z", re.ASCII)  # ASCII digits only

# The pattern subset. Lower-case `true`/`false` are keywords of the pattern
# lexer, so they may not serve as names; `hashes` paths get extra checks in
# stix2-patterns, so they are left to it.
_STR = r"'(?:[^'\\]|\\['\\])*'"
_NAME = r"(?!(?:true|false)\b)[a-z_][a-z0-9_]*"
_TYPE = r"(?!(?:true|false)\b)[a-z][a-z0-9]*(?:-[a-z0-9]+)*"
_CMP = rf"{_TYPE}:{_NAME}(?:\.{_NAME})*(?: ?!?= ?| IS(?:SUB|SUPER)SET ){_STR}"
_OBS = rf"\[{_CMP}(?: (?:AND|OR) {_CMP})*\]"
_PATTERN = re.compile(rf"{_OBS}(?: (?:AND|OR|FOLLOWEDBY) {_OBS})*\Z")


def stamp_us(value: Any) -> int | None:
    """Microseconds of a timestamp stix2 accepts (YYYY-MM-DDTHH:MM:SS[.ffffff]Z), or None."""
    return _stamp_text(value) if type(value) is str else None


@lru_cache(maxsize=8192)  # objects of one feed share few timestamps; each is checked up to four times
def _stamp_text(value: str) -> int | None:
    m = _STAMP.match(value)
    if m is None:
        return None
    y, mo, d, h, mi, s, frac = m.groups()
    y, mo, d, h, mi, s = int(y), int(mo), int(d), int(h), int(mi), int(s)
    if not (y >= 1 and 1 <= mo <= 12 and 1 <= d <= monthrange(y, mo)[1] and h < 24 and mi < 60 and s < 60):
        return None
    # days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil)
    y -= mo <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (mo + (-3 if mo > 2 else 9)) + 2) // 5 + d - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    return ((days * 24 + h) * 60 + mi) * 60_000_000 + s * 1_000_000 + (int((frac + "00000")[:6]) if frac else 0)


def pattern_proven(pattern: Any) -> bool:
    """True if `pattern` is in the plain subset, hence a valid STIX 2.1 pattern."""
    return type(pattern) is str and "hashes" not in pattern and _PATTERN.match(pattern) is not None


# --- property checks, compiled from stix2's declarations ---------------------------------------

_KNOWN_TYPES = sorted({t for kind in ("objects", "observables", "markings") for t in STIX2_OBJ_MAPS["2.1"][kind]})
_PROBE_UUID = "4e1b2c3d-5f60-4a7b-8c9d-0e1f2a3b4c5d"


def _reference_check(prop: P.ReferenceProperty) -> Check:
    allowed = set()
    for t in _KNOWN_TYPES:  # ask stix2 which registered types this reference accepts
        try:
            prop.clean(f"{t}--{_PROBE_UUID}", False)
            allowed.add(t)
        except Exception:
            pass

    def check(v: Any) -> bool:
        return type(v) is str and _ref_type(v) in allowed
    return check


@lru_cache(maxsize=8192)  # the same identities, markings and SCOs are referred to again and again
def _ref_type(ref: str) -> str | None:
    m = _REF.match(ref)
    return m.group(1) if m else None


def _property_check(prop: P.Property) -> Check | None:
    """A strict check implying stix2 accepts the value, or None where stix2 does more than we copy."""
    if hasattr(prop, "_fixed_value"):
        fixed = prop._fixed_value
        return lambda v: type(v) is str and v == fixed
    kind = type(prop)
    if kind is P.IDProperty:
        ref = re.compile(re.escape(prop.required_prefix) + _UUID + r"\Z")
        return lambda v: type(v) is str and ref.match(v) is not None
    if kind in (P.StringProperty, P.OpenVocabProperty, P.PatternProperty):  # open vocabularies are not enforced by stix2
        return lambda v: type(v) is str
    if kind is P.EnumProperty:
        allowed = frozenset(prop.allowed)
        return lambda v: type(v) is str and v in allowed
    if kind is P.IntegerProperty:
        lo, hi = prop.min, prop.max
        return lambda v: type(v) is int and (lo is None or v >= lo) and (hi is None or v <= hi)
    if kind is P.BooleanProperty:
        return lambda v: type(v) is bool
    if kind is P.TimestampProperty:
        return lambda v: stamp_us(v) is not None
    if kind is P.ReferenceProperty:
        return _reference_check(prop)
    if kind is P.ListProperty and isinstance(prop.contained, P.Property):
        item = _property_check(prop.contained)
        if item is None:
            return None
        return lambda v: type(v) is list and len(v) > 0 and all(item(x) for x in v)
    return None  # embedded objects, dictionaries, hashes, extensions, floats...: stix2 decides


# --- per-type constraints: copies of stix2's _check_object_constraints ---------------------------

def _not_before(first: str, last: str, strict: bool = False) -> Callable[[dict], bool]:
    def check(o: dict) -> bool:
        if first in o and last in o:
            a, b = stamp_us(o[first]), stamp_us(o[last])
            return b > a if strict else b >= a
        return True
    return check


def _indicator(o: dict) -> bool:
    if not _not_before("valid_from", "valid_until", strict=True)(o):
        return False
    if o.get("pattern_type") != "stix":
        return True  # stix2 checks only STIX patterns
    return (o.get("pattern_version") or "2.1") == "2.1" and pattern_proven(o.get("pattern"))


def _network_traffic(o: dict) -> bool:
    if "src_ref" not in o and "dst_ref" not in o:
        return False
    if "end" in o and o.get("is_active") is not False:
        return False
    return _not_before("start", "end")(o)


def _malware(o: dict) -> bool:
    return _not_before("first_seen", "last_seen")(o) and (not o["is_family"] or "name" in o)


_SEEN = _not_before("first_seen", "last_seen")
_CONSTRAINTS: dict[str, Callable[[dict], bool]] = {
    "campaign": _SEEN, "infrastructure": _SEEN, "intrusion-set": _SEEN, "threat-actor": _SEEN, "sighting": _SEEN,
    "malware": _malware,
    "indicator": _indicator,
    "observed-data": lambda o: "object_refs" in o and _not_before("first_observed", "last_observed")(o),
    # stix2's Relationship takes relationship_type positionally and drops an empty one, then finds it missing.
    "relationship": lambda o: o["relationship_type"] != "" and _not_before("start_time", "stop_time", strict=True)(o),
    "network-traffic": _network_traffic,
}


class _TypeSpec:
    __slots__ = ("checks", "required", "constraint")

    def __init__(self, checks: dict[str, Check], required: frozenset[str], constraint: Callable[[dict], bool] | None):
        self.checks, self.required, self.constraint = checks, required, constraint


def _overrides_constraints(cls: type) -> bool:
    owner = next(c for c in cls.__mro__ if "_check_object_constraints" in c.__dict__)
    return owner is not _STIXBase  # _STIXBase's own only checks granular markings, which we never prove


def _build_specs() -> dict[str, _TypeSpec]:
    specs = {}
    for kind in ("objects", "observables"):
        for type_name, cls in STIX2_OBJ_MAPS["2.1"][kind].items():
            if type_name == "bundle" or (_overrides_constraints(cls) and type_name not in _CONSTRAINTS):
                continue
            checks, required = {}, set()
            for name, prop in cls._properties.items():
                check = _property_check(prop)
                if check is None:
                    if prop.required:
                        break  # a required property we cannot prove: the whole type goes to stix2
                    continue  # optional: an object carrying it goes to stix2
                checks[name] = check
                if prop.required:
                    required.add(name)
            else:
                specs[type_name] = _TypeSpec(checks, frozenset(required | {"type", "id"}), _CONSTRAINTS.get(type_name))
    return specs


_SPECS = _build_specs()
FAST_TYPES = frozenset(_SPECS)  # the types this module can prove; others always go to stix2


def spec_violation(obj: dict) -> str | None:
    """Rules of the STIX 2.1 specification that stix2 lets through (stix2-validator does not): the reason, or None."""
    created, modified = stamp_us(obj.get("created")), stamp_us(obj.get("modified"))
    if created is not None and modified is not None and modified < created:
        return f"'modified' ({obj['modified']}) is earlier than 'created' ({obj['created']})"
    confidence = obj.get("confidence")
    if type(confidence) is int and not 0 <= confidence <= 100:
        return f"'confidence' must be 0-100, not {confidence}"
    return None


def proves_valid(obj: dict) -> bool:
    """True only if stix2 would accept `obj` as STIX 2.1 without custom content; False: ask stix2."""
    kind = obj.get("type")
    spec = _SPECS.get(kind) if type(kind) is str else None
    if spec is None or not spec.required.issubset(obj.keys()):
        return False
    checks = spec.checks
    for name, value in obj.items():
        check = checks.get(name)
        if check is None or not check(value):
            return False
    return spec.constraint is None or spec.constraint(obj)

