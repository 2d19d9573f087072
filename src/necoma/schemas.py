"""Arrow schemas of every lake table: the one place that declares them.

Users write SQL against these tables, so table and column names are part of
necoma's public interface. Addresses are stored as text (IPv4 dotted quad or
compressed IPv6) so that `src_ip = '10.0.0.1'` works on every engine.
Times are UTC microsecond timestamps.
"""
from __future__ import annotations

import pyarrow as pa

TS = pa.timestamp("us", tz="UTC")

FLOWS = pa.schema(
    [
        ("start_time", TS),
        ("end_time", TS),
        ("exporter", pa.string()),  # address of the exporter, or the file it came from
        ("observation_domain", pa.uint32()),  # NetFlow v9 source id / IPFIX domain / sFlow sub-agent
        ("src_ip", pa.string()),
        ("dst_ip", pa.string()),
        ("src_port", pa.uint16()),
        ("dst_port", pa.uint16()),
        ("protocol", pa.uint8()),
        ("tcp_flags", pa.uint8()),  # OR of all flags seen
        ("tos", pa.uint8()),
        ("packets", pa.uint64()),  # as exported: multiply by sampling_rate to scale
        ("bytes", pa.uint64()),
        ("sampling_rate", pa.uint32()),  # 1 = unsampled
        ("input_if", pa.uint32()),
        ("output_if", pa.uint32()),
        ("src_as", pa.uint32()),
        ("dst_as", pa.uint32()),
        ("fragments", pa.uint64()),  # packets of the flow that were IP fragments, where known
        ("source", pa.string()),  # netflow5 | netflow9 | ipfix | sflow | pcap
    ]
)

PACKETS = pa.schema(
    [
        ("time", TS),
        ("exporter", pa.string()),
        ("sampling_rate", pa.uint32()),
        ("src_ip", pa.string()),
        ("dst_ip", pa.string()),
        ("src_port", pa.uint16()),
        ("dst_port", pa.uint16()),
        ("protocol", pa.uint8()),
        ("ip_version", pa.uint8()),
        ("ip_length", pa.uint16()),  # IP total length (IPv6: payload length + 40)
        ("ttl", pa.uint8()),
        ("ip_id", pa.uint32()),  # IPv4 id, or the IPv6 fragment header id
        ("fragment_offset", pa.uint16()),  # in bytes
        ("more_fragments", pa.bool_()),
        ("tcp_flags", pa.uint8()),
        ("vlan", pa.uint16()),
        ("dns_id", pa.uint16()),
        ("dns_qname", pa.string()),
        ("dns_qtype", pa.uint16()),
        ("dns_rcode", pa.uint8()),
        ("dns_is_response", pa.bool_()),
        ("ntp_mode", pa.uint8()),
        ("ntp_request_code", pa.uint8()),  # mode 7 request code (42 = MON_GETLIST_1)
        ("source", pa.string()),  # pcap | sflow
    ]
)

DNS_ANSWER = pa.struct(
    [("name", pa.string()), ("type", pa.uint16()), ("ttl", pa.uint32()), ("data", pa.string())]
)

DNS = pa.schema(
    [
        ("time", TS),
        ("client_ip", pa.string()),
        ("server_ip", pa.string()),
        ("client_port", pa.uint16()),
        ("transport", pa.string()),  # udp | tcp
        ("transaction_id", pa.uint16()),
        ("qname", pa.string()),  # lower case, no trailing dot
        ("qtype", pa.uint16()),
        ("qclass", pa.uint16()),
        ("is_response", pa.bool_()),
        ("rcode", pa.uint8()),  # NOERROR=0 NXDOMAIN=3 SERVFAIL=2 REFUSED=5; null for queries
        ("answer_count", pa.uint16()),
        ("answers", pa.list_(DNS_ANSWER)),
        ("response_size", pa.uint32()),  # DNS message size of responses
        ("edns_buffer_size", pa.uint16()),
        ("source", pa.string()),  # pcap | bind | unbound | sflow
    ]
)

SYSLOG = pa.schema(
    [
        ("time", TS),  # timestamp in the message, or reception time when absent
        ("received", TS),
        ("exporter", pa.string()),  # sender address
        ("facility", pa.uint8()),
        ("severity", pa.uint8()),
        ("host", pa.string()),
        ("app", pa.string()),
        ("procid", pa.string()),
        ("msgid", pa.string()),
        ("structured_data", pa.string()),  # RFC 5424 SD as JSON text
        ("message", pa.string()),
        ("format", pa.string()),  # rfc3164 | rfc5424
    ]
)

URLS = pa.schema(
    [
        ("url", pa.string()),
        ("host", pa.string()),
        ("kind", pa.string()),  # phishing | spam | malware | ...
        ("feed", pa.string()),
        ("target", pa.string()),  # brand or victim named by the feed, when given
        ("first_seen", TS),
        ("last_seen", TS),
    ]
)

IPLISTS = pa.schema(
    [
        ("network", pa.string()),  # CIDR text; a single address is /32 or /128
        ("list_name", pa.string()),  # open-resolvers | allow | deny | ...
        ("first_seen", TS),
        ("last_seen", TS),
    ]
)

INTERFACES = pa.schema(
    [
        ("time", TS),
        ("exporter", pa.string()),
        ("if_index", pa.uint32()),
        ("if_type", pa.uint32()),
        ("if_speed", pa.uint64()),
        ("if_direction", pa.uint32()),
        ("if_status", pa.uint32()),
        ("in_octets", pa.uint64()),
        ("in_ucast_pkts", pa.uint32()),
        ("in_mcast_pkts", pa.uint32()),
        ("in_bcast_pkts", pa.uint32()),
        ("in_discards", pa.uint32()),
        ("in_errors", pa.uint32()),
        ("out_octets", pa.uint64()),
        ("out_ucast_pkts", pa.uint32()),
        ("out_mcast_pkts", pa.uint32()),
        ("out_bcast_pkts", pa.uint32()),
        ("out_discards", pa.uint32()),
        ("out_errors", pa.uint32()),
    ]
)

ALERT_SUBJECT = pa.struct(
    [
        ("role", pa.string()),  # victim | amplifier | bot | scanner | cnc | domain | url | attacker | host | source | destination
        ("value", pa.string()),  # address, CIDR prefix, domain name or URL
        ("weight", pa.float64()),  # the subject's share of the finding (bytes, degree, ...), detector-defined
        ("country", pa.string()),  # GeoIP country code, when enrichment is configured
        ("asn", pa.uint32()),
        ("as_org", pa.string()),
    ]
)

ALERTS = pa.schema(
    [
        ("id", pa.string()),  # deterministic from the content (necoma.analyze.alert)
        ("detector", pa.string()),
        ("window_start", TS),
        ("window_end", TS),
        ("created", TS),
        ("score", pa.float64()),  # 0..1
        ("confidence", pa.string()),  # low | medium | high
        ("summary", pa.string()),
        ("subjects", pa.list_(ALERT_SUBJECT)),
        ("metrics", pa.map_(pa.string(), pa.float64())),  # bytes, packets, peers... scaled by sampling rate
        ("evidence", pa.string()),  # SQL over the lake that returns the rows behind the alert
    ]
)

# table name -> (schema, time column used for partitioning, hourly partitions?)
TABLES: dict[str, tuple[pa.Schema, str, bool]] = {
    "flows": (FLOWS, "start_time", True),
    "packets": (PACKETS, "time", True),
    "dns": (DNS, "time", True),
    "syslog": (SYSLOG, "time", False),
    "urls": (URLS, "first_seen", False),
    "iplists": (IPLISTS, "first_seen", False),
    "interfaces": (INTERFACES, "time", False),
    "alerts": (ALERTS, "window_start", False),
}


def schema_of(table: str) -> pa.Schema:
    try:
        return TABLES[table][0]
    except KeyError:
        raise ValueError(f"unknown lake table {table!r}; known: {', '.join(TABLES)}") from None
