"""Information Element ids (RFC 3954 field types = IANA IPFIX IEs) -> `flows` columns.

NetFlow v9 field types 1..127 and IPFIX IEs share one numbering, so one table
serves both. Enterprise-specific IPFIX fields (E bit set) are never looked up
here: their ids belong to the vendor, not to IANA.
"""
from __future__ import annotations

# Numeric columns: column -> IEs in order of preference (the first present wins).
# Reduced-size encoding (RFC 7011 §6.2) lets counters arrive in 1..8 bytes.
UINT_COLUMNS: dict[str, tuple[int, ...]] = {
    "bytes": (1, 85),  # octetDeltaCount, octetTotalCount
    "packets": (2, 86),  # packetDeltaCount, packetTotalCount
    "protocol": (4,),
    "tos": (5,),  # ipClassOfService
    "tcp_flags": (6,),  # tcpControlBits (IPFIX may send 2 bytes; the low 8 bits are the flags)
    "src_port": (7,),
    "dst_port": (11,),
    "input_if": (10,),
    "output_if": (14,),
    "src_as": (16,),
    "dst_as": (17,),
}

# Where a flow has no destination port, ICMP type*256+code goes there (nfdump's convention).
ICMP_IES: tuple[int, ...] = (32, 139)  # icmpTypeCodeIPv4, icmpTypeCodeIPv6
FRAGMENT_OFFSET_IE = 88  # fragmentOffset
FRAGMENT_FLAGS_IE = 197  # fragmentFlags: 0x20 = More Fragments (bit 2, MSB-first)
MORE_FRAGMENTS_BIT = 0x20
SAMPLER_ID_IES: tuple[int, ...] = (48, 302)  # samplerId / flowSamplerID, selectorId

# Addresses: column -> (IPv4 IE, IPv6 IE).
ADDRESS_COLUMNS: dict[str, tuple[int, int]] = {"src_ip": (8, 27), "dst_ip": (12, 28)}

# Times, in preference order. kind: rel = ms of sysUpTime (u32, wraps), s = epoch
# seconds, ms = epoch milliseconds, ntp = NTP 64-bit (µs and ns IEs), delta = µs
# before the export time.
START_TIME_IES: tuple[tuple[int, str], ...] = ((152, "ms"), (150, "s"), (154, "ntp"), (156, "ntp"), (22, "rel"), (158, "delta"))
END_TIME_IES: tuple[tuple[int, str], ...] = ((153, "ms"), (151, "s"), (155, "ntp"), (157, "ntp"), (21, "rel"), (159, "delta"))
TIME_LENGTHS = {"ms": 8, "s": 4, "ntp": 8, "rel": 4, "delta": 4}

# Options records (RFC 3954 §6.1, RFC 7011 §3.4.2.2).
SYSTEM_INIT_MS_IE = 160  # systemInitTimeMilliseconds: the base of IE 21/22 in IPFIX
SAMPLING_INTERVAL_IE = 34  # samplingInterval: 1 of N packets
SAMPLER_RANDOM_INTERVAL_IE = 50  # samplerRandomInterval
SAMPLING_PACKET_INTERVAL_IE = 305  # samplingPacketInterval: packets selected ...
SAMPLING_PACKET_SPACE_IE = 306  # ... then samplingPacketSpace packets skipped
INTERFACE_NAME_IE = 82
INGRESS_IF_IE = 10
# NetFlow v9 options scope field types (RFC 3954 §6.1), a namespace of their own.
V9_SCOPE_INTERFACE = 2

NTP_EPOCH_OFFSET = 2_208_988_800  # seconds from 1900-01-01 to 1970-01-01
