"""The one contract every live-collection decoder follows.

A decoder is fed whole datagrams (or, for stream transports, whole framed
messages) and accumulates decoded rows column-wise; the listener drains them
into the lake writer every flush interval. `feed` never raises: anything it
cannot decode is counted in `stats` by reason and exporter, and the records
around it are unaffected.
"""
from __future__ import annotations

from typing import Protocol

import pyarrow as pa

from necoma.collect.stats import CollectorStats


class Decoder(Protocol):
    protocol: str  # "netflow" (v5, v9 and IPFIX), "sflow", "syslog"
    stats: CollectorStats

    def feed(self, data: bytes, exporter: str, received: float) -> None:
        """Decode one datagram from `exporter` (address text) received at `received` (epoch s)."""

    def drain(self, now: float) -> dict[str, pa.Table]:
        """Rows decoded since the last drain, per lake table (schemas from necoma.schemas)."""
