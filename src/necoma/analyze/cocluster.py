"""Co-clustering a bipartite graph (hosts × names) by hierarchical rank-2 NMF, for dns_failure_graph.

Pure functions over an edge dict {(row, column): weight}; no I/O, no engine.
"""
from __future__ import annotations

import numpy as np

from necoma.analyze.nmf import nmf


def prune(edges: dict[tuple[str, str], int], min_host_names: int, min_name_hosts: int) -> dict[tuple[str, str], int]:
    """Drop low-degree hosts and names until every remaining node has the minimum degree."""
    if not edges:
        return {}
    graph = _Graph(edges)
    keep = np.ones(len(graph.rows), dtype=bool)
    while True:  # degrees of the remaining edges, vectorized; a pass drops every node under its minimum at once
        hdeg = np.bincount(graph.rows[keep], minlength=len(graph.hosts))
        ndeg = np.bincount(graph.cols[keep], minlength=len(graph.names))
        still = keep & (hdeg[graph.rows] >= min_host_names) & (ndeg[graph.cols] >= min_name_hosts)
        if still.sum() == keep.sum():
            break
        keep = still
    return {e: v for e, v, k in zip(graph.keys, graph.weights, keep) if k}


class _Graph:
    """The edge dict as integer arrays: hosts and names sorted, so sorted index lists are sorted name lists."""

    def __init__(self, edges: dict[tuple[str, str], int]):
        self.keys = list(edges)
        self.weights = list(edges.values())
        self.hosts = sorted({h for h, _ in self.keys})
        self.names = sorted({n for _, n in self.keys})
        host_ix = {h: i for i, h in enumerate(self.hosts)}
        name_ix = {n: i for i, n in enumerate(self.names)}
        self.rows = np.fromiter((host_ix[h] for h, _ in self.keys), dtype=np.int64, count=len(self.keys))
        self.cols = np.fromiter((name_ix[n] for _, n in self.keys), dtype=np.int64, count=len(self.keys))

    def matrix(self):
        from scipy.sparse import csr_matrix

        data = np.ones(len(self.rows))
        return csr_matrix((data, (self.rows, self.cols)), shape=(len(self.hosts), len(self.names)))


def cocluster(edges, min_density: float, max_clusters: int) -> list[tuple[list[str], list[str]]]:
    """Co-clusters (hosts, names): each connected part of the graph, bisected by rank-2 NMF until dense."""
    from scipy.sparse import bmat
    from scipy.sparse.csgraph import connected_components

    if not edges:
        return []
    graph = _Graph(edges)
    M = graph.matrix()
    n_hosts = len(graph.hosts)
    _, label = connected_components(bmat([[None, M], [M.T, None]], format="csr"), directed=False)
    # parts in the order of their smallest host (every part has one), each as sorted host and name indices
    host_label, name_label = label[:n_hosts], label[n_hosts:]
    order = {lab: i for i, lab in enumerate(dict.fromkeys(host_label.tolist()))}
    parts = [(np.flatnonzero(host_label == lab), np.flatnonzero(name_label == lab)) for lab in order]
    out: list[tuple[np.ndarray, np.ndarray]] = []
    while parts and len(out) + len(parts) <= 10 * max_clusters:
        hosts, names = parts.pop()
        A = M[hosts][:, names].toarray()
        if A.mean() >= min_density or min(A.shape) < 2:
            out.append((hosts, names))
            continue
        host_of, name_of = nmf_bisect(A)
        split = [(hosts[host_of == k], names[name_of == k]) for k in (0, 1)]
        if any(not len(h) or not len(n) for h, n in split):
            out.append((hosts, names))  # NMF found no second block: keep the part whole
            continue
        parts.extend(split)
    return sorted(([graph.hosts[i] for i in h], [graph.names[j] for j in n]) for h, n in out + parts)


def nmf_bisect(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rank-2 NMF A ≈ W·H (deterministic NNDSVD start, scikit-learn's arithmetic without its import, see
    `necoma.analyze.nmf`); rows and columns join their stronger component."""
    W, H, _ = nmf(A, 2, max_iter=1000)
    return W.argmax(axis=1), H.argmax(axis=0)
