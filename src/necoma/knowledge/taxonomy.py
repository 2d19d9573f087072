"""Incident categories: a small taxonomy, each mapped to an n6 category.

n6 (CERT Polska's event model, which NECOMA used) names what an event is
about; necoma keeps the same vocabulary so an n6 consumer reads necoma's
incidents unchanged. `rank` orders categories when one incident has alerts of
several: the more specific and actionable one names the incident (a bot
that is also a heavy hitter is a bot incident).

Each detector declares its layer (what kind of data it looked at — the
"multi-layer" of the pipeline: corroboration across layers counts in the
rating) and the category its alerts belong to. Unknown detectors fall back
on the roles of their subjects.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
class Category:
    name: str
    n6: str  # the n6 category
    rank: int  # lower names the incident first
    description: str


CATEGORIES: dict[str, Category] = {c.name: c for c in (
    Category("cnc", "cnc", 0, "Command-and-control servers of a botnet."),
    Category("bots", "bots", 1, "Infected hosts taking part in a botnet."),
    Category("phish", "phish", 2, "Phishing sites and URLs."),
    Category("malurl", "malurl", 3, "URLs serving malware."),
    Category("amplifier", "amplifier", 4, "Hosts reflecting and amplifying traffic (open resolvers, NTP monlist, ...)."),
    Category("dos-victim", "dos-victim", 5, "Targets of a denial-of-service attack."),
    Category("dos-attacker", "dos-attacker", 6, "Sources of a denial-of-service attack."),
    Category("scanning", "scanning", 7, "Hosts probing many addresses or ports."),
    Category("spam", "spam", 8, "Sources of unsolicited mail."),
    Category("flow-anomaly", "flow-anomaly", 9, "Traffic far from its usual volume or shape, cause unknown."),
    Category("other", "other", 10, "Anything else."),
)}

LAYERS = ("dns", "flow", "packet", "host", "web", "other")  # what kind of data a detector reads


@dataclass(frozen=True)
class DetectorInfo:
    layer: str
    category: str


DETECTORS: dict[str, DetectorInfo] = {
    "zeus_dga": DetectorInfo("dns", "bots"),
    "dns_failure_graph": DetectorInfo("dns", "bots"),
    "dns_amplifier": DetectorInfo("flow", "amplifier"),
    "ntp_amplifier": DetectorInfo("flow", "amplifier"),
    "reflection": DetectorInfo("flow", "amplifier"),
    "udp_fragmentation": DetectorInfo("packet", "dos-victim"),
    "heavy_hitter": DetectorInfo("flow", "flow-anomaly"),
    "ssl_scan": DetectorInfo("flow", "scanning"),
    "phishing_feed": DetectorInfo("web", "phish"),
    "spam_feed": DetectorInfo("web", "spam"),
    "syslog_bruteforce": DetectorInfo("host", "scanning"),
}

# Role of a subject → category, for detectors the table above does not know.
_ROLE_CATEGORY = {
    "cnc": "cnc", "bot": "bots", "url": "malurl", "amplifier": "amplifier", "victim": "dos-victim",
    "attacker": "dos-attacker", "scanner": "scanning",
}


def detector_info(detector: str, roles: Iterable[str] = ()) -> DetectorInfo:
    if detector in DETECTORS:
        return DETECTORS[detector]
    cats = [_ROLE_CATEGORY[r] for r in roles if r in _ROLE_CATEGORY]
    return DetectorInfo("other", pick(cats) if cats else "other")


def pick(categories: Iterable[str]) -> str:
    """The category that names an incident made of alerts of these categories."""
    return min(categories, key=lambda c: CATEGORIES[c].rank, default="other")


def n6_category(category: str) -> str:
    return CATEGORIES[category].n6
