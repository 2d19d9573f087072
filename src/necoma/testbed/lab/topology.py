"""The lab's address plan: who lives where, as plain data.

```
 attacker ── router ── victim  (+ 10.77.32.0/20, the victim's site, answered by the victim ns)
               │   \
           resolver  collector
           (8 open-resolver addresses, one Unbound)
```

Every address here exists only on veths inside namespaces the lab creates
(the root namespace never gets a lab address or link), so two labs on one host
can use the same plan without colliding: only the namespace names differ.
The plan is private space that is not routed anywhere else.
"""
from __future__ import annotations

from dataclasses import dataclass, field

#: Roles that get a namespace, in creation order (the router first: every link hangs off it).
ROLES: tuple[str, ...] = ("router", "attacker", "victim", "resolver", "collector")

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
    """One veth pair between the router and a host namespace, on its own /24."""

    role: str            # the host namespace at the far end
    subnet: str          # e.g. "10.77.1.0/24"
    router_ip: str       # router side, also the host's default gateway
    host_ip: str         # host side
    router_if: str       # interface name inside the router namespace
    host_if: str = "eth0"  # interface name inside the host namespace

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


def default_plan() -> Plan:
    def link(role: str, third: int, host: int) -> Link:
        return Link(role, f"10.77.{third}.0/24", f"10.77.{third}.1", f"10.77.{third}.{host}", f"to-{role}")

    return Plan({
        "attacker": link("attacker", 1, 66),
        "victim": link("victim", 2, 10),
        "resolver": link("resolver", 3, 53),
        "collector": link("collector", 9, 2),
    }, extra_resolvers=tuple(f"10.77.3.{i}" for i in range(54, 61)))
