"""What the BGP points refuse, and why: actions FlowSpec/RTBH cannot express and bad point options.

No daemon needed: the refusal happens in the translation (flowspec.py) or when the
point's options are read (bgp_speaker.bgp_options), before anything is sent to a speaker.
What the speakers do put on the wire is checked against a real peer in test_protect_bgp.py.
"""
from __future__ import annotations

import pytest

from necoma.protect.drivers.bgp_speaker import bgp_options
from necoma.protect.drivers.flowspec import announcements, flow_rules
from necoma.protect.model import Action, DriverError, Match, PortRange

OPTS = bgp_options({"local_as": 64512})


def act(kind: str, params: dict | None = None, **match) -> Action:
    return Action(kind=kind, point="edge", match=Match(**match), params=params or {}).with_id()


@pytest.mark.parametrize("action, reason", [
    (act("drop", dst_prefixes=("192.0.2.1/32",), domains=("evil.example",)), "cannot match domain names"),
    (act("drop", protocol=17), "needs a destination or source prefix"),
    (act("drop", dst_prefixes=("192.0.2.1/32",), src_prefixes=("2001:db8::/32",)), "different IP versions"),
    (act("drop", dst_prefixes=("2001:db8::1/128",), fragment="dont-fragment"), "IPv6 has no don't-fragment"),
    (act("drop", dst_prefixes=("192.0.2.1/32",), protocol=17, tcp_flags="S"), "can never match"),
    (act("drop", dst_prefixes=("192.0.2.1/32",), tcp_flags="SX"), "use letters"),
    (act("rate_limit", dst_prefixes=("192.0.2.1/32",)), "needs params.rate_bps"),
    (act("rate_limit", {"rate_bps": "fast"}, dst_prefixes=("192.0.2.1/32",)), "needs params.rate_bps"),
    (act("rate_limit", {"rate_bps": 0}, dst_prefixes=("192.0.2.1/32",)), "use a drop action"),
    (act("rate_limit", {"rate_bps": 1e15}, dst_prefixes=("192.0.2.1/32",)), "must be between"),
    (act("blackhole", dst_prefixes=("192.0.2.1/32",), protocol=17, dst_ports=(PortRange.parse(53),)),
     "cannot honour protocol, dst_ports"),
    (act("blackhole", src_prefixes=("192.0.2.1/32",)), "needs destination prefixes"),
    (act("blackhole", dst_prefixes=("192.0.2.0/23",)), "wider than /24"),
    (act("blackhole", dst_prefixes=("2001:db8::/32",)), "wider than /48"),
    (act("block_domain", domains=("evil.example",)), "is not enforced by BGP"),
    (Action(kind="drop", point="edge", id="custom-id", match=Match(dst_prefixes=("192.0.2.1/32",))),
     "is not of the form act-"),
])
def test_inexpressible_actions_are_refused_with_the_reason(action, reason):
    with pytest.raises(DriverError, match=reason):
        announcements(action, OPTS)


def test_rate_is_whole_bytes_per_second():
    # 100 004 bit/s = 12 500.5 byte/s: ExaBGP only takes whole numbers, so both speakers send 12 500
    (rule,) = flow_rules(act("rate_limit", {"rate_bps": 100_004}, dst_prefixes=("192.0.2.1/32",)))
    assert rule.rate_bytes == 12500.0 and rule.then() == "rate-limit 12500"


def test_one_rule_per_prefix_pair_of_the_same_family():
    a = act("drop", dst_prefixes=("192.0.2.1/32", "2001:db8::1/128"), src_prefixes=("198.51.100.0/24",))
    rules = flow_rules(a)
    assert [(r.family, r.prefixes) for r in rules] == [(4, ((1, "192.0.2.1/32"), (2, "198.51.100.0/24")))]


def test_rtbh_narrower_limit_is_configurable():
    opts = bgp_options({"local_as": 64512, "max_rtbh_prefix_v4": 32})
    with pytest.raises(DriverError, match="wider than /32"):
        announcements(act("blackhole", dst_prefixes=("192.0.2.0/31",)), opts)
    (route,) = announcements(act("blackhole", dst_prefixes=("192.0.2.1/32",)), opts)
    assert route.prefix == "192.0.2.1/32" and "65535:666" in route.communities


def test_no_export_can_be_left_off_for_route_servers_that_want_it_so():
    opts = bgp_options({"local_as": 64512, "blackhole_no_export": False, "blackhole_communities": ["0:6695"]})
    (route,) = announcements(act("blackhole", dst_prefixes=("192.0.2.1/32",)), opts)
    assert route.communities == ("0:6695", "65535:666")


@pytest.mark.parametrize("options, reason", [
    ({}, "needs option local_as"),
    ({"local_as": "sixty"}, "needs option local_as"),
    ({"local_as": 0}, "is not an AS number"),
    ({"local_as": 64512, "blackhole_next_hop_v4": "2001:db8::1"}, "is not an IPv4 address"),
    ({"local_as": 64512, "blackhole_next_hop_v6": "nowhere"}, "is not an IPv6 address"),
    ({"local_as": 64512, "max_rtbh_prefix_v4": 33}, "must be a prefix length 0..32"),
    ({"local_as": 64512, "blackhole_communities": "65000:666"}, "must be a list"),
    ({"local_as": 64512, "blackhole_communities": ["65536:1"]}, "two 16-bit numbers"),
    ({"local_as": 64512, "blackhole_communities": ["1:2:3:4"]}, "write a:b"),
    ({"local_as": 64512, "blackhole_communities": ["64512:1:2"]}, "mark which actions necoma announced"),
    ({"local_as": 64512, "blackhole_no_export": "yes"}, "must be true or false"),
])
def test_bad_point_options_are_refused(options, reason):
    with pytest.raises(DriverError, match=reason):
        bgp_options(options)
