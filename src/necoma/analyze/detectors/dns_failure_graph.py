"""DNS failure graph (Jiang et al., ICNP 2010): groups of hosts failing on the same names.

Method. Malware fails DNS lookups in groups: spam bots look up MX records of
a shared list of mostly dead recipient domains, trojans keep resolving their
dead C&C names, scanners sweep names. Ordinary failures (typos, search
suffix retries, browser probes) are scattered. We build the bipartite graph
of hosts × names whose lookups failed (`rcodes`: NXDOMAIN, SERVFAIL,
REFUSED) over the day, prune nodes of low degree (names failed by fewer
than `min_name_hosts` hosts, hosts failing fewer than `min_host_names`
names, repeatedly), and co-cluster the biadjacency matrix by non-negative
matrix factorization: each connected part of the graph that is not yet
dense is split in two by a rank-2 NMF (scikit-learn, deterministic NNDSVD
start; each host and name joins the factor where its weight is largest),
recursively, until the parts are dense (hierarchical NMF co-clustering). A co-cluster is reported when it is big (`min_hosts`,
`min_names`), dense (`min_density` of all host-name pairs failed) and spread
over `min_registered_domains` registered domains (public suffix list), which
excludes one mis-set search suffix. Its shape names it: few hosts × many
names (spam, DGA-like), many hosts × few names (dead C&C), or a block.

Evidence: rows (fqdn, host, cluster, cluster_size, degree, failures,
confidence) — the graph's edges inside the co-cluster, degree being the
name's number of failing hosts in it.
"""
from __future__ import annotations

import warnings

import numpy as np
from pydantic import Field

from necoma.analyze.alert import Alert
from necoma.analyze.detector import Context, Detector, DetectorParams, Schedule
from necoma.analyze.traffic import confidence_of, saturate


class DnsFailureGraph(Detector):
    name = "dns_failure_graph"
    title = "Groups of hosts failing DNS lookups on the same names (co-clusters of the failure graph)"
    raises = "one alert per co-cluster and day: hosts as bots, names as domains; hosts, names, density, shape"
    tables = ("dns",)
    schedule = Schedule.daily()

    class Params(DetectorParams):
        rcodes: list[int] = Field([2, 3, 5], description="Response codes that count as failures (SERVFAIL 2, NXDOMAIN 3, REFUSED 5).")
        min_name_hosts: int = Field(2, description="Prune names failed by fewer hosts than this.")
        min_host_names: int = Field(2, description="Prune hosts failing fewer names than this.")
        max_clusters: int = Field(50, description="Bound on the co-clusters sought per day (NMF bisections stop there).")
        min_hosts: int = Field(2, description="Smallest number of hosts in a reported co-cluster.")
        min_names: int = Field(3, description="Smallest number of names in a reported co-cluster.")
        min_density: float = Field(0.3, description="Smallest share of the co-cluster's host-name pairs that failed.")
        min_registered_domains: int = Field(3, description="Smallest number of distinct registered domains (eTLD+1) among its names.")

    SQL = """
SELECT client_ip AS host, qname, count(*) AS failures
FROM dns
WHERE time >= :start AND time < :end AND is_response AND rcode IN :rcodes AND qname IS NOT NULL
GROUP BY client_ip, qname
"""

    EVIDENCE = """
SELECT qname AS fqdn, client_ip AS host, :cluster AS cluster, :size AS cluster_size,
       count(*) OVER (PARTITION BY qname) AS degree, failures, :confidence AS confidence
FROM (SELECT client_ip, qname, count(*) AS failures FROM dns
      WHERE time >= :start AND time < :end AND is_response AND rcode IN :rcodes
        AND client_ip IN :hosts AND qname IN :names
      GROUP BY client_ip, qname) AS edges
ORDER BY degree DESC, fqdn, host
"""

    def detect(self, ctx: Context) -> list[Alert]:
        p = self.params
        edges = {(r["host"], r["qname"]): r["failures"] for r in ctx.query(self.SQL, rcodes=p.rcodes)}
        edges = prune(edges, p.min_host_names, p.min_name_hosts)
        if not edges:
            return []
        clusters = []
        for ch, cn in cocluster(edges, p.min_density, p.max_clusters):
            links = [(h, n) for h in ch for n in cn if (h, n) in edges]
            density = len(links) / (len(ch) * len(cn))
            registered = {self._registered(ctx, n) for n in cn}
            if len(ch) >= p.min_hosts and len(cn) >= p.min_names and density >= p.min_density and len(registered) >= p.min_registered_domains:
                clusters.append((ch, cn, links, density, len(registered)))
        clusters.sort(key=lambda c: (-len(c[2]), c[0][0]))
        alerts = []
        for k, (ch, cn, links, density, n_registered) in enumerate(clusters):
            cluster_id = f"{ctx.start:%Y%m%d}-{k}"
            shape = ("few hosts, many names" if len(cn) >= 3 * len(ch) else
                     "many hosts, few names" if len(ch) >= 3 * len(cn) else "dense block")
            score = 0.4 * density + 0.3 * saturate(len(ch), 10) + 0.3 * saturate(len(cn), 30)
            conf = confidence_of(score)
            host_deg = {h: sum(1 for x, _ in links if x == h) for h in ch}
            name_deg = {n: sum(1 for _, y in links if y == n) for n in cn}
            alerts.append(ctx.alert(
                window_start=ctx.start, window_end=ctx.end,
                subjects=[ctx.subject("bot", h, host_deg[h]) for h in ch] + [ctx.subject("domain", n, name_deg[n]) for n in cn],
                score=score, confidence=conf,
                summary=f"DNS failure co-cluster {cluster_id} ({shape}): {len(ch)} hosts × {len(cn)} names, density {density:.2f}",
                metrics={"hosts": len(ch), "names": len(cn), "edges": len(links), "density": density,
                         "registered_domains": n_registered, "cluster": k},
                evidence=ctx.evidence(self.EVIDENCE, cluster=cluster_id, size=len(ch) + len(cn), confidence=conf,
                                      rcodes=p.rcodes, hosts=ch, names=cn),
            ))
        return alerts

    @staticmethod
    def _registered(ctx: Context, name: str) -> str:
        if ctx.enricher is not None:
            reg = ctx.enricher.registered_domain(name)
            if reg != name or name.count(".") <= 1:
                return reg
        return ".".join(name.rsplit(".", 2)[-2:])  # unknown suffix (search domains, .lan): its last two labels


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
