"""NetFlow v5, NetFlow v9 (RFC 3954) and IPFIX (RFC 7011) decoding into the `flows` table."""
from __future__ import annotations

from necoma.collect.netflow.decoder import NetflowDecoder

__all__ = ["NetflowDecoder"]
