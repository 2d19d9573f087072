"""UDP reflection/amplification through any abusable service: SNMP, SSDP, memcached, CLDAP, chargen, ...

Method. The same pattern as NTP and DNS amplification, for every UDP
service NECOMA's dashboard watched: spoofed requests make many servers
send responses much larger than the requests to one victim. Per bin and
service port, for traffic *from* that port, each (reflector, destination)
pair whose mean packet size reaches the service's `services` threshold and
that the destination did not solicit (it sent that reflector fewer than
`max_query_ratio` × the response packets towards the service port) is a
reflected stream. A destination receiving reflected streams from at least
`min_reflectors` reflectors and `min_bytes` in total, for one service, is a
victim. NTP (123) and DNS (53) have their own detectors.

Evidence: traffic from the service port to the victim in the bin.
"""
from __future__ import annotations

from pydantic import Field

from necoma.analyze.alert import Alert
from necoma.analyze.detector import Context, Detector, DetectorParams, Schedule
from necoma.analyze.traffic import TRAFFIC, best_source, confidence_of, evidence_traffic, log_ratio, saturate

# service -> (UDP port, mean response packet size in IP bytes that marks amplification)
SERVICES = {
    "chargen": (19, 200.0),
    "qotd": (17, 200.0),
    "portmap": (111, 300.0),
    "netbios": (137, 250.0),
    "snmp": (161, 400.0),
    "cldap": (389, 1000.0),
    "ripv1": (520, 400.0),
    "ssdp": (1900, 250.0),
    "arms": (3283, 800.0),
    "ws-discovery": (3702, 500.0),
    "mdns": (5353, 300.0),
    "coap": (5683, 300.0),
    "ubiquiti": (10001, 150.0),
    "memcached": (11211, 1000.0),
}


class Reflection(Detector):
    name = "reflection"
    title = "UDP reflection attacks through SNMP, SSDP, memcached, CLDAP, chargen and other services"
    raises = "one alert per victim, service and hour: victim, amplifiers (reflectors); bytes, packets, reflectors, port"
    tables = ("flows", "packets")
    schedule = Schedule.hourly()

    class Params(DetectorParams):
        services: dict[str, tuple[int, float]] = Field(default_factory=lambda: dict(SERVICES), description="Service name -> (UDP source port, mean response IP bytes above which replies are amplified).")
        max_query_ratio: float = Field(0.2, description="A pair is unsolicited if the destination sent fewer than this × the response packets to the service.")
        min_reflectors: int = Field(3, description="Distinct reflectors sending amplified, unsolicited responses to one victim in a bin.")
        min_bytes: int = Field(1_000_000, description="Reflected bytes (scaled by sampling rate) a victim receives per bin and service.")
        full_reflectors: int = Field(50, description="Reflector count at which the reflector part of the score saturates.")

    SQL = f"""
WITH {TRAFFIC.strip()},
responses AS (
    SELECT time_bin(t) AS bin, via, src_port AS port, dst_ip AS victim, src_ip AS reflector,
           sum(byts) AS byts, sum(pkts) AS pkts
    FROM traffic WHERE protocol = 17 AND src_port IN :ports
    GROUP BY time_bin(t), via, src_port, dst_ip, src_ip
    HAVING sum(byts) >= :min_size * sum(pkts)
),
requests AS (
    SELECT time_bin(t) AS bin, via, dst_port AS port, src_ip AS victim, dst_ip AS reflector, sum(pkts) AS pkts
    FROM traffic WHERE protocol = 17 AND dst_port IN :ports
    GROUP BY time_bin(t), via, dst_port, src_ip, dst_ip
)
SELECT r.bin, r.via, r.port, r.victim, r.reflector, r.byts, r.pkts
FROM responses r
LEFT JOIN requests q ON q.bin = r.bin AND q.via = r.via AND q.port = r.port
                    AND q.victim = r.victim AND q.reflector = r.reflector
WHERE coalesce(q.pkts, 0) < :max_query_ratio * r.pkts
"""

    def detect(self, ctx: Context) -> list[Alert]:
        p = self.params
        by_port = {port: (svc, size) for svc, (port, size) in p.services.items()}
        rows = ctx.query(self.SQL, ports=sorted(by_port), min_size=min(s for _, s in by_port.values()),
                         max_query_ratio=p.max_query_ratio)
        victims: dict[tuple, dict] = {}
        for r in rows:
            if r["byts"] < by_port[r["port"]][1] * r["pkts"]:
                continue  # below this service's own size threshold
            v = victims.setdefault((r["bin"], r["port"], r["victim"], r["via"]), {"byts": 0, "pkts": 0, "refl": {}})
            v["byts"] += r["byts"]
            v["pkts"] += r["pkts"]
            v["refl"][r["reflector"]] = r["byts"]
        cands = [{"bin": b, "port": port, "victim": vic, "via": via, **v} for (b, port, vic, via), v in victims.items()]
        alerts = []
        for r in best_source(cands, ("bin", "port", "victim")):
            n, service = len(r["refl"]), by_port[r["port"]][0]
            if n < p.min_reflectors or r["byts"] < p.min_bytes:
                continue
            score = 0.5 * saturate(n, p.full_reflectors) + 0.5 * log_ratio(r["byts"], p.min_bytes / 10, 3)
            alerts.append(ctx.alert(
                window_start=r["bin"],
                subjects=[ctx.subject("victim", r["victim"], r["byts"], geo=True)]
                + [ctx.subject("amplifier", a, b, geo=True) for a, b in r["refl"].items()],
                score=score,
                confidence=confidence_of(score),
                summary=f"{service} reflection (UDP {r['port']}) at {r['victim']}: {n} reflectors, {r['byts']:,} bytes",
                metrics={"bytes": r["byts"], "packets": r["pkts"], "reflectors": n, "port": r["port"],
                         "mean_packet_bytes": r["byts"] / max(r["pkts"], 1)},
                evidence=ctx.evidence(
                    evidence_traffic("protocol = 17 AND src_port = :port AND dst_ip = :victim AND via = :via"),
                    port=r["port"], victim=r["victim"], via=r["via"], start=r["bin"], end=ctx.bin_end(r["bin"])),
            ))
        return alerts
