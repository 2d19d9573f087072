"""BGP enforcement points: FlowSpec (RFC 8955/8956) and RTBH (RFC 7999) through GoBGP or ExaBGP.

The names the driver registry points at; the work is in flowspec.py (translation),
bgp_speaker.py (the Driver contract over a speaker), bgp_gobgp.py and bgp_exabgp.py.
"""
from necoma.protect.drivers.bgp_exabgp import ExaBgpDriver
from necoma.protect.drivers.bgp_gobgp import GoBgpDriver

__all__ = ["ExaBgpDriver", "GoBgpDriver"]
