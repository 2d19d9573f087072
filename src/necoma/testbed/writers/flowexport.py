"""What a router's flow cache does to traffic before export: active-timeout splits, packet sampling, export times."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from necoma.testbed.network import inside_site


@dataclass(frozen=True)
class ExporterConfig:
    name: str  # file stem
    format: str  # netflow9 | ipfix
    exporter: str  # address
    site: str  # the inside site whose border this router is
    sampling_rate: int  # 1 in N packets, random sampling
    active_timeout: float  # long flows are exported in pieces this long
    domain: int  # NetFlow v9 source id / IPFIX observation domain


def select_site(cols: dict[str, np.ndarray], site: str) -> np.ndarray:
    """Flows crossing this site's border: one endpoint inside the site, the other outside."""
    cache: dict[str, str | None] = {}

    def where(a: str) -> str | None:
        if a not in cache:
            cache[a] = inside_site(a)
        return cache[a]

    s = np.array([where(a) for a in cols["src"]], dtype=object)
    d = np.array([where(a) for a in cols["dst"]], dtype=object)
    return ((s == site) & (d != site)) | ((d == site) & (s != site))


def export_records(cols: dict[str, np.ndarray], cfg: ExporterConfig, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The records this exporter sends, with an `export` time each, sorted by it."""
    sel = select_site(cols, cfg.site)
    c = {k: v[sel] for k, v in cols.items()}
    dur = np.maximum(c["end"] - c["start"], 0.0)
    pieces = np.maximum(1, np.ceil(dur / cfg.active_timeout)).astype(np.int64)
    idx = np.repeat(np.arange(len(dur)), pieces)
    k = np.arange(len(idx)) - np.repeat(np.cumsum(pieces) - pieces, pieces)  # piece number within its flow
    out = {name: v[idx] for name, v in c.items()}
    n_p = pieces[idx]
    start = out["start"] + k * cfg.active_timeout
    end = np.minimum(start + cfg.active_timeout, out["end"])
    # Spread packets and bytes evenly over the pieces; the last piece takes the remainder.
    pk, by = out["packets"], out["bytes"]
    last = k == n_p - 1
    out["packets"] = np.where(last, pk - (pk // n_p) * (n_p - 1), pk // n_p)
    out["bytes"] = np.where(last, by - (by // n_p) * (n_p - 1), by // n_p)
    out["start"], out["end"] = start, end
    if cfg.sampling_rate > 1:
        kept = rng.binomial(np.maximum(out["packets"], 0), 1.0 / cfg.sampling_rate)
        avg = out["bytes"] / np.maximum(out["packets"], 1)
        out["bytes"] = np.round(kept * avg).astype(np.int64)
        out["packets"] = kept
    keep = out["packets"] > 0
    out = {name: v[keep] for name, v in out.items()}
    # Active-timeout pieces leave at the piece end, finished flows after the inactive timeout (15 s).
    out["export"] = out["end"] + np.where(out["end"] < c["end"][idx][keep], 0.5, rng.uniform(1.0, 15.0, keep.sum()))
    order = np.argsort(out["export"], kind="stable")
    return {name: v[order] for name, v in out.items()}


def group_datagrams(export: np.ndarray, per_datagram: int) -> list[tuple[int, int]]:
    """(begin, end) index ranges: records leaving in the same second share a datagram, up to `per_datagram`."""
    groups, i, n = [], 0, len(export)
    while i < n:
        j = i + 1
        limit = int(export[i])
        while j < n and j - i < per_datagram and int(export[j]) == limit:
            j += 1
        groups.append((i, j))
        i = j
    return groups
