"""Co-clustering a bipartite graph (hosts × names) by hierarchical rank-2 NMF, for dns_failure_graph.

Pure functions over an edge dict {(row, column): weight}; no I/O, no engine.
"""
from __future__ import annotations

import warnings

import numpy as np


def prune(edges: dict[tuple[str, str], int], min_host_names: int, min_name_hosts: int) -> dict[tuple[str, str], int]:
    """Drop low-degree hosts and names until every remaining node has the minimum degree."""
    while True:
        hdeg: dict[str, int] = {}
        ndeg: dict[str, int] = {}
        for h, n in edges:
            hdeg[h] = hdeg.get(h, 0) + 1
            ndeg[n] = ndeg.get(n, 0) + 1
        kept = {(h, n): v for (h, n), v in edges.items() if hdeg[h] >= min_host_names and ndeg[n] >= min_name_hosts}
        if len(kept) == len(edges):
            return kept
        edges = kept


def cocluster(edges, min_density: float, max_clusters: int) -> list[tuple[list[str], list[str]]]:
    """Co-clusters (hosts, names): each connected part of the graph, bisected by rank-2 NMF until dense."""
    adj: dict[str, set[str]] = {}
    for h, n in edges:
        adj.setdefault("h:" + h, set()).add("n:" + n)
        adj.setdefault("n:" + n, set()).add("h:" + h)
    parts, seen = [], set()
    for start in sorted(adj):
        if start in seen:
            continue
        stack, comp = [start], []
        seen.add(start)
        while stack:
            node = stack.pop()
            comp.append(node)
            for nb in adj[node] - seen:
                seen.add(nb)
                stack.append(nb)
        parts.append((sorted(x[2:] for x in comp if x[0] == "h"), sorted(x[2:] for x in comp if x[0] == "n")))
    out: list[tuple[list[str], list[str]]] = []
    while parts and len(out) + len(parts) <= 10 * max_clusters:
        hosts, names = parts.pop()
        A = np.array([[1.0 if (h, n) in edges else 0.0 for n in names] for h in hosts])
        if A.mean() >= min_density or min(A.shape) < 2:
            out.append((hosts, names))
            continue
        host_of, name_of = nmf_bisect(A)
        split = [([h for h, c in zip(hosts, host_of) if c == k], [n for n, c in zip(names, name_of) if c == k]) for k in (0, 1)]
        if any(not h or not n for h, n in split):
            out.append((hosts, names))  # NMF found no second block: keep the part whole
            continue
        parts.extend(split)
    return sorted(out + parts)


def nmf_bisect(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rank-2 NMF A ≈ W·H (deterministic NNDSVD start); rows and columns join their stronger component."""
    from sklearn.decomposition import NMF
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = NMF(n_components=2, init="nndsvd", max_iter=1000, random_state=0)
        W = model.fit_transform(A)
        H = model.components_
    return W.argmax(axis=1), H.argmax(axis=0)
