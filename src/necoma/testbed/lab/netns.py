"""Namespaces, veth pairs, addresses, routes and sysctls, through iproute2.

Veth pairs are created directly inside the lab's namespaces (`ip -n PARENT link
add ... peer ... netns HOST`), so no lab interface ever appears in the root
namespace, even for a moment, and interface names only need to be unique
within the lab.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from necoma.testbed.lab.procs import run
from necoma.testbed.lab.topology import Link


def available() -> str | None:
    """None if this host can build the lab, else the reason it cannot."""
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    if shutil.which("ip") is None:
        return "iproute2 (`ip`) is not installed"
    probe = run(["ip", "netns", "list"], check=False)
    if probe.returncode != 0:
        return f"`ip netns` unavailable: {probe.stderr.strip()}"
    return None


def exists(ns: str) -> bool:
    return Path("/run/netns", ns).exists()


def add(ns: str) -> None:
    run(["ip", "netns", "add", ns])
    run(["ip", "-n", ns, "link", "set", "lo", "up"])


def delete(ns: str) -> None:
    if exists(ns):
        run(["ip", "netns", "delete", ns])


def sysctl(ns: str, key: str, value: str | int) -> None:
    run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", f"{key}={value}"])


def read_sysctl(ns: str, key: str) -> str:
    return run(["ip", "netns", "exec", ns, "sysctl", "-n", key], check=False).stdout.strip()


def link_names(ns: str) -> set[str]:
    out = run(["ip", "-n", ns, "-o", "link", "show"], check=False).stdout
    # "2: to-victim@if2: <...>": the name is field 2 without the peer suffix.
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ":" in line}


def connect(parent_ns: str, host_ns: str, link: Link) -> None:
    """Create the veth pair for `link`, address both ends, bring them up, route the far end via the parent."""
    run(["ip", "-n", parent_ns, "link", "add", link.parent_if, "type", "veth",
         "peer", "name", link.host_if, "netns", host_ns])
    run(["ip", "-n", parent_ns, "addr", "add", f"{link.parent_ip}/{link.prefix}", "dev", link.parent_if])
    run(["ip", "-n", host_ns, "addr", "add", f"{link.host_ip}/{link.prefix}", "dev", link.host_if])
    run(["ip", "-n", parent_ns, "link", "set", link.parent_if, "up"])
    run(["ip", "-n", host_ns, "link", "set", link.host_if, "up"])
    run(["ip", "-n", host_ns, "route", "add", "default", "via", link.parent_ip])


def delete_link(ns: str, ifname: str) -> None:
    """Delete one veth (its peer goes with it) if it is still there."""
    if exists(ns) and ifname in link_names(ns):
        run(["ip", "-n", ns, "link", "delete", ifname], check=False)


def ifindex(ns: str, ifname: str) -> int:
    out = run(["ip", "-n", ns, "-o", "link", "show", "dev", ifname]).stdout
    return int(out.split(":", 1)[0])


def missing(names: list[str]) -> list[str]:
    """Executables from `names` that are not installed."""
    return [n for n in names if shutil.which(n) is None]
