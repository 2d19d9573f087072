from __future__ import annotations

import datetime as dt

from necoma.analyze.detectors.zeus_dga import ZeusDga
from necoma.analyze.dga import gameover_zeus
from tests.test_analyze_support import DAY, at, dns, flow, run, write_lake

BOTS = ["10.3.0.11", "10.3.0.12", "2001:db8:3::13"]
CNC = "198.51.100.44"


def botnet(day=DAY, registered=17):
    names = gameover_zeus.domains(day.date())
    rows, flows = [], []
    for b, bot in enumerate(BOTS):
        for i in range(registered - 8 + b, registered + 1):
            t = day + dt.timedelta(hours=8 + b, seconds=i)
            ok = i == registered
            rows.append(dns(t, bot, names[i], response=False))
            rows.append(dns(t, bot, names[i], rcode=0 if ok else 3, answers=[CNC] if ok else []))
        flows.append(flow(day + dt.timedelta(hours=8 + b, minutes=1), bot, CNC, 40000, 443, proto=6, packets=8, bytes=4000, rate=1))
        flows.append(flow(day + dt.timedelta(hours=8 + b, minutes=1), CNC, bot, 443, 40000, proto=6, packets=9, bytes=9000, rate=1))
    return rows, flows


def normal_dns():
    rows = []
    for c in range(50):
        for name in ("www.example.com", "mail.example.org", "cdn.example.net", "exmaple.com"):
            rows.append(dns(at(c % 24, c), f"10.4.0.{c + 1}", name, rcode=3 if name == "exmaple.com" else 0,
                            answers=[] if name == "exmaple.com" else ["192.0.2.80"]))
    return rows


def test_botnet_bots_domains_cnc_and_flows(tmp_path):
    d, f = botnet()
    write_lake(tmp_path, dns=d + normal_dns(), flows=f)
    (a,) = run(ZeusDga, tmp_path)
    assert sorted(a.subjects_with("bot")) == sorted(BOTS)
    assert a.subjects_with("cnc") == [CNC]
    names = gameover_zeus.domains(DAY.date())
    assert set(a.subjects_with("domain")) == set(names[9:18])
    assert a.metrics["cnc_flows"] == 6 and a.metrics["cnc_bytes"] == 3 * 13000
    assert a.window_start == DAY and a.window_end == DAY + dt.timedelta(days=1)
    assert 0.8 < a.metrics["nxdomain_fraction"] < 1.0


def test_bot_clock_off_by_a_day_still_found(tmp_path):
    d, f = botnet(day=DAY - dt.timedelta(days=1))  # yesterday's list, queried today
    for r in d:
        r["time"] += dt.timedelta(days=1)
    write_lake(tmp_path, dns=d)
    (a,) = run(ZeusDga, tmp_path)
    assert len(a.subjects_with("bot")) == 3 and a.subjects_with("cnc") == [CNC]
    assert run(ZeusDga, tmp_path, neighbour_days=0) == []


def test_normal_dns_does_not_alert(tmp_path):
    write_lake(tmp_path, dns=normal_dns())
    assert run(ZeusDga, tmp_path) == []


def test_a_single_dga_lookup_is_not_a_bot(tmp_path):
    name = gameover_zeus.domains(DAY.date())[3]
    write_lake(tmp_path, dns=normal_dns() + [dns(at(5), "10.9.0.1", name, rcode=3)])  # a researcher checking one name
    assert run(ZeusDga, tmp_path) == []
