"""NTP amplification: NTP servers reflecting large (monlist) responses at a victim.

Method. An NTP mode 7 `monlist` request (request code 42) of 8 bytes makes a
vulnerable server answer with up to 100 packets of 468 bytes, each listing 6
recent clients; an attacker spoofing the victim's address sends such requests
to many servers, which flood the victim. Ordinary NTP (mode 3/4) responses
are 76–90 bytes on the wire. So, per bin, for UDP traffic *from* port 123 we
compute each (server, destination) pair's mean packet size; pairs above
`min_response_bytes` are amplified responses. A destination receiving them
from at least `min_amplifiers` servers and `min_bytes` in total is a victim.

Evidence: the flows / sampled packets from UDP port 123 to the victim in the
bin. Subjects: the victim, and every amplifier (weight = bytes it sent,
with GeoIP country and AS when enrichment is configured).
"""
from __future__ import annotations

from pydantic import Field

from necoma.analyze.alert import Alert
from necoma.analyze.detector import Context, Detector, DetectorParams, Schedule
from necoma.analyze.traffic import TRAFFIC, best_source, confidence_of, evidence_traffic, log_ratio, saturate


class NtpAmplifier(Detector):
    name = "ntp_amplifier"
    title = "NTP servers reflecting large monlist responses at a victim"
    raises = "one alert per victim and hour: victim, amplifiers (with country/AS); bytes, packets, amplifiers"
    tables = ("flows", "packets")
    schedule = Schedule.hourly()

    class Params(DetectorParams):
        port: int = Field(123, description="UDP source port of the reflected service (NTP).")
        min_response_bytes: float = Field(200.0, description="Mean packet size (IP bytes) above which NTP replies are amplified (monlist 468 B; normal NTP 76–90 B).")
        min_amplifiers: int = Field(3, description="Distinct NTP servers sending amplified replies to one victim in a bin.")
        min_bytes: int = Field(1_000_000, description="Amplified bytes (scaled by sampling rate) a victim receives per bin.")
        full_amplifiers: int = Field(50, description="Amplifier count at which the amplifier part of the score saturates.")

    SQL = f"""
WITH {TRAFFIC.strip()}
SELECT time_bin(t) AS bin, via, dst_ip AS victim, src_ip AS amplifier,
       sum(byts) AS byts, sum(pkts) AS pkts
FROM traffic
WHERE protocol = 17 AND src_port = :port
GROUP BY time_bin(t), via, dst_ip, src_ip
HAVING sum(byts) >= :min_response_bytes * sum(pkts)
"""

    def detect(self, ctx: Context) -> list[Alert]:
        p = self.params
        pairs = ctx.query(self.SQL, port=p.port, min_response_bytes=p.min_response_bytes)
        victims: dict[tuple, dict] = {}
        for r in pairs:
            v = victims.setdefault((r["bin"], r["victim"], r["via"]), {"byts": 0, "pkts": 0, "amps": {}, "via": r["via"]})
            v["byts"] += r["byts"]
            v["pkts"] += r["pkts"]
            v["amps"][r["amplifier"]] = r["byts"]
        rows = [{"bin": b, "victim": vic, **v} for (b, vic, _), v in victims.items()]
        alerts = []
        for r in best_source(rows, ("bin", "victim")):
            n = len(r["amps"])
            if n < p.min_amplifiers or r["byts"] < p.min_bytes:
                continue
            score = 0.5 * saturate(n, p.full_amplifiers) + 0.5 * log_ratio(r["byts"], p.min_bytes / 10, 3)
            alerts.append(ctx.alert(
                window_start=r["bin"],
                subjects=[ctx.subject("victim", r["victim"], r["byts"], geo=True)]
                + [ctx.subject("amplifier", a, b, geo=True) for a, b in r["amps"].items()],
                score=score,
                confidence=confidence_of(score),
                summary=f"NTP amplification at {r['victim']}: {n} amplifiers, {r['byts']:,} bytes",
                metrics={"bytes": r["byts"], "packets": r["pkts"], "amplifiers": n,
                         "mean_packet_bytes": r["byts"] / max(r["pkts"], 1)},
                evidence=ctx.evidence(
                    evidence_traffic("protocol = 17 AND src_port = :port AND dst_ip = :victim AND via = :via"),
                    port=p.port, victim=r["victim"], via=r["via"], start=r["bin"], end=ctx.bin_end(r["bin"])),
            ))
        return alerts
