"""GameOver ZeuS botnet: hosts resolving the day's DGA domains, their C&C, and the traffic to it.

Method. newGOZ bots fall back to a domain generation algorithm: each day
they try names from a list of 1000 (`necoma.analyze.dga.gameover_zeus`,
the same implementation the testbed uses) until one resolves. Nobody else
queries these names, so for each day we generate the lists of that day and
its `neighbour_days` either side (bot clocks drift) and look them up in the
`dns` table:

- hosts querying at least `min_domains_per_bot` distinct DGA names are bots;
- addresses in the A/AAAA answers to those names are the C&C servers;
- flows between bots and C&C servers are the related traffic (counted).

One alert per day names the whole botnet: bots, the DGA domains they
queried, and the C&C addresses. Evidence: the DNS records of those names.
"""
from __future__ import annotations

import datetime as dt

from pydantic import Field

from necoma.analyze.alert import Alert
from necoma.analyze.detector import Context, Detector, DetectorParams, Schedule
from necoma.analyze.dga import gameover_zeus
from necoma.analyze.traffic import TRAFFIC, confidence_of, saturate


class ZeusDga(Detector):
    name = "zeus_dga"
    title = "GameOver ZeuS bots: hosts resolving the day's DGA domains, their C&C and its traffic"
    raises = "one alert per day: bots, domains, cnc; bots, domains, NXDOMAIN share, C&C flows, bytes"
    tables = ("dns", "flows", "packets")
    schedule = Schedule.daily()

    class Params(DetectorParams):
        neighbour_days: int = Field(1, description="Days before and after each day whose DGA lists also count (bot clock drift).")
        domains_per_day: int = Field(1000, description="DGA names generated per day (newGOZ tries 1000).")
        min_domains_per_bot: int = Field(2, description="Distinct DGA names a host must query to count as a bot.")
        min_bots: int = Field(1, description="Bots needed for an alert.")

    DNS = """
SELECT client_ip, qname, is_response, rcode, answers
FROM dns
WHERE time >= :start AND time < :end AND qname IN :names
"""

    FLOWS = f"""
WITH {TRAFFIC.strip()}
SELECT via, count(*) AS records, sum(byts) AS byts, sum(pkts) AS pkts
FROM traffic
WHERE (src_ip IN :bots AND dst_ip IN :cnc) OR (src_ip IN :cnc AND dst_ip IN :bots)
GROUP BY via
"""

    def detect(self, ctx: Context) -> list[Alert]:
        alerts, day = [], ctx.start
        while day < ctx.end:
            end = day + dt.timedelta(days=1)
            alert = self._day(ctx, day, end)
            if alert:
                alerts.append(alert)
            day = end
        return alerts

    def _day(self, ctx: Context, start: dt.datetime, end: dt.datetime) -> Alert | None:
        p = self.params
        names = sorted(gameover_zeus.domains_around(start.date(), p.neighbour_days, p.neighbour_days, p.domains_per_day))
        rows = ctx.query(self.DNS, start=start, end=end, names=names)
        per_host: dict[str, set[str]] = {}
        cnc: set[str] = set()
        responses = nxdomain = 0
        for r in rows:
            per_host.setdefault(r["client_ip"], set()).add(r["qname"])
            if r["is_response"]:
                responses += 1
                nxdomain += r["rcode"] == 3
                if r["rcode"] == 0:
                    cnc |= {a["data"] for a in r["answers"] or [] if a["type"] in (1, 28) and a["data"]}
        bots = {h: q for h, q in per_host.items() if len(q) >= p.min_domains_per_bot}
        if len(bots) < p.min_bots:
            return None
        domains = set().union(*bots.values())
        flows = ctx.query(self.FLOWS, start=start, end=end, bots=sorted(bots), cnc=sorted(cnc)) if cnc else []
        best = max(flows, key=lambda f: (f["byts"], f["via"] == "flows"), default={"records": 0, "byts": 0, "pkts": 0})
        score = 0.5 + 0.25 * saturate(len(domains), 50) + 0.25 * (1.0 if cnc else 0.0)
        return ctx.alert(
            window_start=start, window_end=end,
            subjects=[ctx.subject("bot", h, len(q), geo=True) for h, q in bots.items()]
            + [ctx.subject("domain", d) for d in domains]
            + [ctx.subject("cnc", c, geo=True) for c in cnc],
            score=score, confidence=confidence_of(score),
            summary=f"GameOver ZeuS: {len(bots)} bots queried {len(domains)} DGA domains; C&C {', '.join(sorted(cnc)) or 'not resolved'}",
            metrics={"bots": len(bots), "domains": len(domains), "cnc": len(cnc),
                     "nxdomain_fraction": nxdomain / responses if responses else 0.0,
                     "cnc_flows": best["records"], "cnc_bytes": best["byts"], "cnc_packets": best["pkts"]},
            evidence=ctx.evidence("SELECT * FROM dns WHERE time >= :start AND time < :end AND qname IN :names ORDER BY time",
                                  start=start, end=end, names=sorted(domains)),
        )
