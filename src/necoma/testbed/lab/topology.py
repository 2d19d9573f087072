"""The lab's address plan: who lives where, as plain data.

```
  attacker ──┐                                ┌── victim (+ 10.77.32.0/20, its site)
             internet ── upstream ── router ──┤
  resolver ──┘  (no BCP 38)     (the victim's └── collector
  (8 open-resolver                border: mirror
   addresses)                     + NetFlow)
```

Two routers, because that is where sensors sit in real networks: `router` is
the border router of the defended network (the victim's), and its exporter and
mirror see what that network's operator would see — amplified answers and
floods arriving, never the attacker's spoofed queries, which travel between
the attacker and the resolvers across `internet` only. (With a single router
the spoofed queries, source = victim, would cross the sensor too and look as
if the victim had asked.)

Every address here exists only on veths inside namespaces the lab creates
(the root namespace never gets a lab address or link), so two labs on one host
can use the same plan without colliding: only the namespace names differ.
"""
from __future__ import annotations

from dataclasses import dataclass, field

#: Roles that get a namespace, in creation order.
ROLES: tuple[str, ...] = ("internet", "router", "attacker", "victim", "resolver", "collector")
#: Roles that forward packets.
ROUTERS: tuple[str, ...] = ("internet", "router")

#: UDP port the collector listens on for NetFlow v9 from the router's exporter.
NETFLOW_PORT = 2055
#: Second export destination for `necoma collect`, when that listener is installed.
NECOMA_COLLECT_PORT = 2056

#: DNS zone the open resolver answers from its own data (never recursing to the internet).
#: Not under `.test`: Unbound has a built-in static `test.` zone that would answer NXDOMAIN.
AMP_ZONE = "lab.necoma.example"
#: Name whose TXT set is big (several kB), so one small query brings a fragmented answer.
AMP_NAME = f"amp.{AMP_ZONE}"


@dataclass(frozen=True)
class Link:
    """One veth pair from a router (`parent`) to the namespace of `role`, on its own subnet."""

    role: str            # the namespace at the far end
    parent: str          # the router it hangs off
    subnet: str          # e.g. "10.77.1.0/24"
    parent_ip: str       # router side, also the far end's default gateway
    host_ip: str         # far end
    parent_if: str       # interface name inside the parent namespace
    host_if: str = "eth0"  # interface name inside the far end's namespace

    @property
    def prefix(self) -> int:
        return int(self.subnet.split("/")[1])


@dataclass(frozen=True)
class Plan:
    links: dict[str, Link] = field(default_factory=dict)
    #: Extra prefix routed to the victim and answered there (`ip route add local ... dev lo`):
    #: the victim's "site", what a scanner sweeps — 16 /24s, as a real sweep crosses many networks.
    victim_site: str = "10.77.32.0/20"
    #: More addresses of the resolver namespace, all served by its one Unbound: an
    #: amplification abuses many open resolvers at once, and detectors count them.
    extra_resolvers: tuple[str, ...] = ()

    def ip(self, role: str) -> str:
        return self.links[role].host_ip

    @property
    def resolvers(self) -> list[str]:
        """Every open-resolver address, the link's own first."""
        return [self.ip("resolver"), *self.extra_resolvers]

    @property
    def collector_netflow(self) -> str:
        return f"{self.ip('collector')}:{NETFLOW_PORT}"

    @property
    def exporter_ip(self) -> str:
        """Source address of the router's NetFlow export (its side of the collector link)."""
        return self.links["collector"].parent_ip

    def routes(self) -> dict[str, list[tuple[str, str]]]:
        """Static routes beyond the default ones: namespace role -> [(prefix, via)]."""
        up = self.links["router"]
        victim = self.links["victim"]
        # The internet reaches the defended network through its border router;
        # the collector's network is management only and not routed upstream.
        return {"internet": [(victim.subnet, up.host_ip), (self.victim_site, up.host_ip)],
                "router": [(self.victim_site, victim.host_ip)]}


def default_plan() -> Plan:
    def link(role: str, parent: str, third: int, host: int, parent_if: str | None = None,
             host_if: str = "eth0", prefix: int = 24) -> Link:
        return Link(role, parent, f"10.77.{third}.0/{prefix}", f"10.77.{third}.1", f"10.77.{third}.{host}",
                    parent_if or f"to-{role}", host_if)

    return Plan({
        "router": link("router", "internet", 0, 2, host_if="upstream", prefix=30),
        "attacker": link("attacker", "internet", 1, 66),
        "resolver": link("resolver", "internet", 3, 53),
        "victim": link("victim", "router", 2, 10),
        "collector": link("collector", "router", 9, 2),
    }, extra_resolvers=tuple(f"10.77.3.{i}" for i in range(54, 61)))
