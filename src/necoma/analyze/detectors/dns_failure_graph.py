"""DNS failure graph (Jiang et al., ICNP 2010): groups of hosts failing on the same names.

Method. Malware fails DNS lookups in groups: spam bots look up MX records of
a shared list of mostly dead recipient domains, trojans keep resolving their
dead C&C names, scanners sweep names. Ordinary failures (typos, search
suffix retries, browser probes) are scattered. We build the bipartite graph
of hosts × names whose lookups failed (`rcodes`: NXDOMAIN, SERVFAIL,
REFUSED) over the day, leaving out the transient failures (`transient_rcodes`:
SERVFAIL, REFUSED) of names that some host resolved (NOERROR) the same day —
the name exists and the failure was the resolver's or the name servers'
trouble, which strikes popular names for many unrelated hosts; NXDOMAIN always
counts. Then prune nodes of low degree (names failed by fewer
than `min_name_hosts` hosts, hosts failing fewer than `min_host_names`
names, repeatedly), and co-cluster the biadjacency matrix by non-negative
matrix factorization: each connected part of the graph that is not yet
dense is split in two by a rank-2 NMF (scikit-learn's arithmetic, deterministic NNDSVD
start; each host and name joins the factor where its weight is largest),
recursively, until the parts are dense (hierarchical NMF co-clustering). A co-cluster is reported when it is big (`min_hosts`,
`min_names`), dense (`min_density` of all host-name pairs failed) and spread
over `min_registered_domains` registered domains (public suffix list), which
excludes one mis-set search suffix. Its shape names it: few hosts × many
names (spam, DGA-like), many hosts × few names (dead C&C), or a block.

Completion. Degree pruning also drops a spam recipient domain that only one
bot happened to fail. After co-clustering, a pruned name rejoins a reported
co-cluster when only its hosts failed it, only with the co-cluster's
dominant query type (≥ 90 % of its edges), and that type is the
co-cluster's signature: hosts outside every co-cluster fail it at most
`signature_share` as often. End hosts failing MX lookups is such a
signature (spam); failing A lookups is not (everyone does), so a trojan
group gets nothing back. Density and shape are those of the core before
completion.

Evidence: rows (fqdn, host, cluster, cluster_size, degree, failures,
confidence) — the graph's edges inside the co-cluster, degree being the
name's number of failing hosts in it.
"""
from __future__ import annotations

from collections import Counter

from pydantic import Field

from necoma.analyze.alert import Alert
from necoma.analyze.cocluster import cocluster, prune
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
        transient_rcodes: list[int] = Field([2, 5], description="Failure codes not counted on a name that some host resolved (NOERROR) the same day: the resolver's trouble, not a missing name.")
        min_name_hosts: int = Field(2, description="Prune names failed by fewer hosts than this.")
        min_host_names: int = Field(2, description="Prune hosts failing fewer names than this.")
        max_clusters: int = Field(50, description="Bound on the co-clusters sought per day (NMF bisections stop there).")
        min_hosts: int = Field(2, description="Smallest number of hosts in a reported co-cluster.")
        min_names: int = Field(3, description="Smallest number of names in a reported co-cluster.")
        min_density: float = Field(0.3, description="Smallest share of the co-cluster's host-name pairs that failed.")
        signature_share: float = Field(0.1, description="Pruned names rejoin a co-cluster when failed only by its hosts with its dominant query type, and hosts outside every co-cluster fail that type at most this share as often (MX from end hosts: spam).")
        min_registered_domains: int = Field(3, description="Smallest number of distinct registered domains (eTLD+1) among its names.")

    SQL = """
SELECT client_ip AS host, qname, qtype, count(*) AS failures
FROM dns AS d
WHERE time >= :start AND time < :end AND is_response AND rcode IN :rcodes AND qname IS NOT NULL
  AND (rcode NOT IN :transient OR NOT EXISTS (
      SELECT 1 FROM dns AS ok WHERE ok.time >= :start AND ok.time < :end AND ok.is_response AND ok.rcode = 0
        AND ok.qname = d.qname))
GROUP BY client_ip, qname, qtype
"""

    EVIDENCE = """
SELECT qname AS fqdn, client_ip AS host, :cluster AS cluster, :size AS cluster_size,
       count(*) OVER (PARTITION BY qname) AS degree, failures, :confidence AS confidence
FROM (SELECT client_ip, qname, count(*) AS failures FROM dns AS d
      WHERE time >= :start AND time < :end AND is_response AND rcode IN :rcodes
        AND client_ip IN :hosts AND qname IN :names
        AND (rcode NOT IN :transient OR NOT EXISTS (
            SELECT 1 FROM dns AS ok WHERE ok.time >= :start AND ok.time < :end AND ok.is_response AND ok.rcode = 0
              AND ok.qname = d.qname))
      GROUP BY client_ip, qname) AS edges
ORDER BY degree DESC, fqdn, host
"""

    def detect(self, ctx: Context) -> list[Alert]:
        p = self.params
        all_edges: dict[tuple[str, str], int] = {}
        qtypes: dict[tuple[str, str], dict[int, int]] = {}  # (host, name) -> query type -> failures
        for r in ctx.query(self.SQL, rcodes=p.rcodes, transient=p.transient_rcodes or [-1]):
            key = (r["host"], r["qname"])
            all_edges[key] = all_edges.get(key, 0) + r["failures"]
            qtypes.setdefault(key, {})[r["qtype"]] = r["failures"]
        edges = prune(all_edges, p.min_host_names, p.min_name_hosts)
        if not edges:
            return []
        names_of: dict[str, set[str]] = {}  # the pruned graph: host -> names
        for h, n in edges:
            names_of.setdefault(h, set()).add(n)
        clusters = []
        for ch, cn in cocluster(edges, p.min_density, p.max_clusters):
            inside = set(cn)  # cn is sorted: each host's links in the order of cn
            links = [(h, n) for h in ch for n in sorted(names_of[h] & inside)]
            density = len(links) / (len(ch) * len(cn))
            registered = {self._registered(ctx, n) for n in cn}
            if len(ch) >= p.min_hosts and len(cn) >= p.min_names and density >= p.min_density and len(registered) >= p.min_registered_domains:
                clusters.append((ch, cn, links, density, len(registered)))
        index = FailureIndex(all_edges, qtypes) if clusters else None
        clustered = {h for c2 in clusters for h in c2[0]}
        clusters = [complete(c, all_edges, edges, qtypes, clustered, p.signature_share, index) for c in clusters]
        clusters.sort(key=lambda c: (-len(c[2]), c[0][0]))
        alerts = []
        for k, (ch, cn, links, density, n_registered) in enumerate(clusters):
            cluster_id = f"{ctx.start:%Y%m%d}-{k}"
            shape = ("few hosts, many names" if len(cn) >= 3 * len(ch) else
                     "many hosts, few names" if len(ch) >= 3 * len(cn) else "dense block")
            score = 0.4 * density + 0.3 * saturate(len(ch), 10) + 0.3 * saturate(len(cn), 30)
            conf = confidence_of(score)
            host_deg = Counter(h for h, _ in links)
            name_deg = Counter(n for _, n in links)
            alerts.append(ctx.alert(
                window_start=ctx.start, window_end=ctx.end,
                subjects=[ctx.subject("bot", h, host_deg[h]) for h in ch] + [ctx.subject("domain", n, name_deg[n]) for n in cn],
                score=score, confidence=conf,
                summary=f"DNS failure co-cluster {cluster_id} ({shape}): {len(ch)} hosts × {len(cn)} names, density {density:.2f}",
                metrics={"hosts": len(ch), "names": len(cn), "edges": len(links), "density": density,
                         "registered_domains": n_registered, "cluster": k},
                evidence=ctx.evidence(self.EVIDENCE, cluster=cluster_id, size=len(ch) + len(cn), confidence=conf,
                                      rcodes=p.rcodes, transient=p.transient_rcodes or [-1], hosts=ch, names=cn),
            ))
        return alerts

    @staticmethod
    def _registered(ctx: Context, name: str) -> str:
        if ctx.enricher is not None:
            reg = ctx.enricher.registered_domain(name)
            if reg != name or name.count(".") <= 1:
                return reg
        return ".".join(name.rsplit(".", 2)[-2:])  # unknown suffix (search domains, .lan): its last two labels


def main_type(types: dict[int, int]) -> int:
    """The query type failed most on an edge (ties: the lower code, so engine order never matters)."""
    return min(types.items(), key=lambda kv: (-kv[1], kv[0]))[0]


class FailureIndex:
    """Every failed (host, name) edge indexed once per day, so completing each co-cluster is not a pass over all."""

    def __init__(self, all_edges, qtypes):
        # plain dicts and one pass: a day has 10^5 failed edges at 100 M flows, a Counter per host cost seconds
        self.main = {e: next(iter(t)) if len(t) == 1 else main_type(t) for e, t in ((e, qtypes[e]) for e in all_edges)}
        self.failers: dict[str, set[str]] = {}  # name -> hosts that failed it
        self.names_of: dict[str, set[str]] = {}  # host -> names it failed
        self.host_types: dict[str, dict[int, int]] = {}  # host -> main query type -> edges
        self.type_total: Counter = Counter(self.main.values())
        failers, names_of, host_types = self.failers, self.names_of, self.host_types
        for (h, n), t in self.main.items():
            if n in failers:
                failers[n].add(h)
            else:
                failers[n] = {h}
            if h in names_of:
                names_of[h].add(n)
                types = host_types[h]
                types[t] = types.get(t, 0) + 1
            else:
                names_of[h] = {n}
                host_types[h] = {t: 1}


def complete(cluster, all_edges, kept, qtypes, clustered_hosts, signature_share, index: FailureIndex | None = None):
    """Give back to a co-cluster the pruned names that fit its signature (see the module docstring)."""
    ch, cn, links, density, n_registered = cluster
    index = index or FailureIndex(all_edges, qtypes)
    members = set(ch)
    counts = Counter(index.main[edge] for edge in links)
    dominant = min(counts, key=lambda t: (-counts[t], t))
    if counts[dominant] < 0.9 * len(links):
        return cluster
    inside = sum(index.host_types.get(h, {}).get(dominant, 0) for h in members)
    outside = index.type_total[dominant] - sum(index.host_types.get(h, {}).get(dominant, 0) for h in clustered_hosts)
    if outside > signature_share * inside:
        return cluster
    failers, known = index.failers, set(cn)
    candidates = {n for h in members for n in index.names_of.get(h, ())}  # a name only members failed
    extra = sorted(n for n in candidates if n not in known and failers[n] <= members
                   and all(set(qtypes[(h, n)]) == {dominant} for h in failers[n]) and not any((h, n) in kept for h in failers[n]))
    links = links + [(h, n) for n in extra for h in sorted(failers[n])]
    return ch, cn + extra, links, density, n_registered
