"""Attack injectors: one module per attack, each `inject(sc, hosts, domains) -> [truth records]`.

Each injector draws from its own random stream (named after the attack), so
the same seed gives the same attack whether it runs alone or in `mixed`, and
uses `sc.take` for its hosts, so no host plays two roles in one scenario.
Times are fixed hours of the scenario day, chosen so that in `mixed` the
attacks overlap only where real days would (the DGA botnet runs all day).
"""
from __future__ import annotations

from collections.abc import Callable
from importlib import import_module

# attack name -> module under necoma.testbed.attacks
ATTACKS = (
    "zeus_dga", "dga_other", "ntp_amplification", "dns_amplification", "udp_fragmentation", "ssl_scan",
    "heavy_hitter", "phishing", "dns_failure", "reflection",
)


def injector(name: str) -> Callable:
    return import_module(f"necoma.testbed.attacks.{name}").inject
