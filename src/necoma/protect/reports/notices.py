"""Notice and advice texts: what happened, in plain words, and what to do about it.

One template per incident category (the owner of an infected host reads a
different text than the operator of an abused NTP server), and advice texts
per topic for `advise` actions. Topics come from `params["advice_topic"]`, else
from the detector (ntp_amplifier -> ntp_monlist, dns_amplifier -> open_resolver);
`params["advice"]` adds free text written by the person who approved the action.
"""
from __future__ import annotations

from string import Template

from necoma.protect.reports.evidence import Evidence

_WHEN = "between $start and $end UTC"

NOTICES = {
    "bots": Template(
        "Your machine $hosts seems to be infected by $malware.\n"
        f"{_WHEN} it looked up $n_domains domain name(s) that this malware generates to find its "
        "command server, among them:\n$domains\n\n"
        "What to do:\n"
        "1. Disconnect the machine from the network (or keep it on the isolated network it is on now).\n"
        "2. Clean it: run an up-to-date antivirus scan from a rescue medium, or better, reinstall the system.\n"
        "3. From a clean machine, change the passwords used on it, first those of online banking and email: "
        "this malware steals them.\n"
        "4. Tell us when it is done, so that we can lift the isolation.\n"),
    "amplifier": Template(
        f"Your server(s) $hosts took part in a denial-of-service attack {_WHEN}: they answered "
        "requests with forged source addresses and sent the (much larger) answers to the victim $victims.\n\n"
        "What to do: see the configuration advice below, or block the service from the internet if you do not need it.\n"),
    "scanning": Template(f"The address(es) $hosts scanned other hosts {_WHEN}.\n\nWhat to do: check these hosts for "
                         "compromise and for unwanted scanning software.\n"),
}
GENERIC = Template(f"$title ($category) was observed {_WHEN} involving $hosts.\n")

ADVICE = {
    "ntp_monlist": (
        "Disable the NTP 'monlist' query (mode 7), which answers a 234-byte request with up to 100 "
        "packets: with ntpd, put 'disable monitor' and 'restrict default kod nomodify notrap nopeer noquery' "
        "(and the same with -6) in ntp.conf, or upgrade to ntpd 4.2.7p26 or later; chrony and ntpsec do not "
        "have monlist."),
    "open_resolver": (
        "Your DNS server answers recursive queries from anyone on the internet (an open resolver), which "
        "attackers use to amplify their traffic. Allow recursion only for your own clients: BIND "
        "'allow-recursion { 127.0.0.1; YOUR-NETWORKS; };', Unbound 'access-control: YOUR-NETWORK allow' "
        "(the default refuses the rest); an authoritative-only server should set 'recursion no;'. "
        "Consider response rate limiting (BIND 'rate-limit { responses-per-second 10; };')."),
}
_DETECTOR_TOPIC = {"ntp_amplifier": "ntp_monlist", "dns_amplifier": "open_resolver"}


def subject_line(ev: Evidence, kind: str) -> str:
    what = "Configuration advice" if kind == "advise" else "Security notice"
    return f"{what}: {ev.title} (incident {ev.incident_id})"


def advice_text(ev: Evidence, params: dict) -> str:
    topic = params.get("advice_topic") or next((_DETECTOR_TOPIC[d] for d in ev.detectors if d in _DETECTOR_TOPIC), None)
    parts = [ADVICE[topic]] if topic in ADVICE else []
    if params.get("advice"):
        parts.append(str(params["advice"]))
    return "\n\n".join(parts)


def notice_text(ev: Evidence, kind: str, params: dict, hosts: list[str]) -> str:
    """The body of a notice (kind notify) or an advice (kind advise) about `hosts` in the incident."""
    domains = ev.values_with("domain")
    fields = {
        "hosts": ", ".join(hosts) or "(none named)", "malware": ev.malware or "malware",
        "start": f"{ev.window_start:%Y-%m-%d %H:%M}", "end": f"{ev.window_end:%Y-%m-%d %H:%M}",
        "n_domains": len(domains), "domains": "\n".join(f"  {d}" for d in domains[:20]) or "  (none recorded)",
        "victims": ", ".join(ev.values_with("victim")) or "(not named)", "title": ev.title, "category": ev.category,
    }
    body = NOTICES.get(ev.category, GENERIC).safe_substitute(fields)
    advice = advice_text(ev, params)
    if kind == "advise" and not advice:
        raise ValueError(f"advise action on incident {ev.incident_id} has no advice: set params.advice or params.advice_topic "
                         f"({', '.join(sorted(ADVICE))})")
    if advice:
        body += "\nConfiguration advice:\n" + advice + "\n"
    return body + f"\nReference: incident {ev.incident_id}. This message was sent by an automated system (necoma).\n"
