"""Scenarios: which attacks run over the background, and writing a scenario directory.

    generate("mixed", seed=1, out=Path("demo"))

Same name, seed, scale and day give byte-identical files: every random draw
comes from a stream seeded by (seed, part name), files are written in a
fixed order with fixed timestamps, and nothing reads the clock.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from necoma.testbed import background, background_dns, background_logs, names
from necoma.testbed.attacks import ATTACKS, injector
from necoma.testbed.model import Scenario
from necoma.testbed.network import (
    IPFIX_EXPORTER, NETFLOW_EXPORTER, RESOLVER_A, RESOLVER_A6, RESOLVER_B, SFLOW_AGENT, SYSLOG_RELAY, make_hosts,
)
from necoma.testbed.truth import ENTITY_FIELDS, iso, write_truth
from necoma.testbed.writers import netflow, pcap, sflow, text
from necoma.testbed.writers.flowexport import ExporterConfig

GENERATOR_VERSION = 1
DEFAULT_DAY = date(2025, 3, 10)  # fixed, so a seed alone fixes the bytes; override with --day
POPULAR_NAMES = 2000

SCENARIOS: dict[str, tuple[str, ...]] = {"background": ()}
SCENARIOS.update({a: (a,) for a in ATTACKS})
SCENARIOS["mixed"] = ATTACKS

NETFLOW_SAMPLING = 10
SFLOW_SAMPLING = 1024
EXPORTERS = (
    ExporterConfig("nf9-site-a", "netflow9", NETFLOW_EXPORTER, "A", NETFLOW_SAMPLING, 60.0, 1),
    ExporterConfig("ipfix-site-b", "ipfix", IPFIX_EXPORTER, "B", 1, 60.0, 2),
)


@dataclass
class Generated:
    out: Path
    truth: dict
    counts: dict[str, int]
    seconds: float


def build(name: str, seed: int, scale: float = 1.0, day: date = DEFAULT_DAY, history_hours: int = 6) -> Scenario:
    """The scenario model: background plus the scenario's attacks."""
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
    if scale <= 0:
        raise ValueError("scale must be positive")
    if not 0 <= history_hours <= 48:
        raise ValueError("history hours must be between 0 and 48")
    sc = Scenario(name=name, seed=seed, scale=scale, day=day, history_hours=history_hours)
    hosts = make_hosts(sc.rng("net"), scale)
    domains = names.popular_domains(sc.rng("names"), POPULAR_NAMES)
    background.client_conversations(sc, hosts, domains)
    background.web_server_users(sc, hosts)
    background.heavy_hitters(sc, hosts)
    background.ntp(sc, hosts)
    mail = background.smtp(sc, hosts)
    background_dns.background_dns(sc, hosts, domains)
    background_logs.background_syslog(sc, hosts, mail, domains)
    background_logs.background_feeds(sc, hosts)
    sc.benign["resolvers"] = [RESOLVER_A, RESOLVER_A6, RESOLVER_B]
    for attack in SCENARIOS[name]:
        sc.attacks.extend(injector(attack)(sc, hosts, domains))
    return sc


def generate(name: str, seed: int, out: Path, scale: float = 1.0, day: date = DEFAULT_DAY,
             history_hours: int = 6) -> Generated:
    began = time.perf_counter()
    sc = build(name, seed, scale, day, history_hours)
    out = Path(out)
    (out / "netflow").mkdir(parents=True, exist_ok=True)
    (out / "sflow").mkdir(parents=True, exist_ok=True)
    boot = sc.t0 - 5 * 86400.0  # exporters booted five days earlier: sysUptime stays far from its 2^32 ms wrap
    cols = sc.flows.columns()
    counts = {"flows_model": len(cols["start"])}
    counts["dns_pcap_packets"] = pcap.write_dns_pcap(out / "dns.pcap", sc.dns_pcap)
    counts["querylog_lines"] = text.write_querylog(out / "dns-query.log", sc.dns_log)
    files = {"dns.pcap": f"DNS at resolver A ({RESOLVER_A}, {RESOLVER_A6}), queries and responses",
             "dns-query.log": f"BIND query log of resolver B ({RESOLVER_B})"}
    exporters = {}
    for cfg in EXPORTERS:
        rel = f"netflow/{cfg.name}.bin"
        counts[f"{cfg.name}_records"] = netflow.write_flow_export(out / rel, cols, cfg, sc.rng("export", cfg.name), boot)
        files[rel] = f"{cfg.format} datagrams from {cfg.exporter} (site {cfg.site}), sampling 1:{cfg.sampling_rate}"
        exporters[cfg.exporter] = {"format": cfg.format, "site": cfg.site, "sampling_rate": cfg.sampling_rate,
                                   "file": rel}
    rel = "sflow/sflow-core.bin"
    counts["sflow_samples"] = sflow.write_sflow(out / rel, cols, agent=SFLOW_AGENT, rate=SFLOW_SAMPLING,
                                                rng=sc.rng("export", "sflow"), boot=boot, t0=sc.t0, t1=sc.t1)
    files[rel] = f"sFlow v5 datagrams from {SFLOW_AGENT} (core switch), sampling 1:{SFLOW_SAMPLING}"
    exporters[SFLOW_AGENT] = {"format": "sflow5", "sampling_rate": SFLOW_SAMPLING, "file": rel}
    exporters[SYSLOG_RELAY] = {"format": "syslog", "file": "syslog.log"}
    counts["syslog_lines"] = text.write_syslog(out / "syslog.log", sc.syslog)
    counts["phishing_urls"], counts["spam_urls"] = text.write_feeds(out, sc.feeds)
    counts["open_resolvers"] = text.write_resolvers(out / "open-resolvers.txt", sc.open_resolvers, day.isoformat())
    files.update({"syslog.log": f"syslog messages as sent on the wire (relay {SYSLOG_RELAY}), one per line",
                  "urls.csv": "phishing URL feed (PhishTank dump layout)", "spam.txt": "spam URL feed, one per line",
                  "open-resolvers.txt": "published open DNS resolvers, one address per line"})
    truth = {
        "format": 1, "generator_version": GENERATOR_VERSION, "scenario": name, "seed": seed, "scale": scale,
        "day": day.isoformat(), "start": iso(sc.t0), "end": iso(sc.t1), "history_until": iso(sc.day_start), "exporters": exporters, "files": files,
        "entity_fields": list(ENTITY_FIELDS), "benign": {k: sorted(v) for k, v in sc.benign.items()},
        "attacks": sorted(sc.attacks, key=lambda a: (a["start"], a["kind"])), "counts": counts,
    }
    write_truth(out / "truth.json", truth)
    return Generated(out, truth, counts, time.perf_counter() - began)
