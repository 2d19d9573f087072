"""Address prefixes in Python (portable SQL cannot mask IPv6 text addresses)."""
from __future__ import annotations

import ipaddress
from functools import lru_cache


@lru_cache(maxsize=1 << 16)
def prefix_of(address: str, v4: int = 24, v6: int = 48) -> str:
    """The /v4 (IPv4) or /v6 (IPv6) network containing `address`, as CIDR text; the input if not an address."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    bits = v4 if ip.version == 4 else v6
    return str(ipaddress.ip_network(f"{ip}/{bits}", strict=False))
