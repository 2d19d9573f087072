"""Abuse reports to the networks that own attacking addresses: RFC 5965 ARF emails carrying X-ARF v4 JSON.

`apply` sends, once: the sent-journal is keyed by (action id, recipient), and a
report on the same incident that already went to the same recipient is not
sent again (the action is recorded as covered by it). Addresses are grouped by
abuse contact, so a network gets one report per incident listing all its
addresses, never one per IP. At most `max_per_hour` reports go to one abuse
address per hour; the rest are refused with the reason and go out when the
action is applied again later. `installed` = actions with reports out and not
past their TTL; `withdraw` cannot unsend, it records the withdrawal.

Point options ([protect.points.NAME], driver = "abuse"):
    sender          From: address, and the X-ARF reporter contact (required)
    reporter_org    organization name in reports (default: the sender's domain)
    abuse_contacts  table prefix -> abuse email; the most specific prefix wins
    rdap_cache      directory of RDAP IP network JSON files (offline lookups)
    rdap_url        RDAP base URL, queried when config and cache have no answer
    max_per_hour    reports per abuse address per hour (default 10)
    evidence_rows   lake rows kept as evidence per action (default 200)
    data_dir        necoma's data dir: journal at DATA_DIR/protect/reports.sqlite, lake at DATA_DIR/lake
    journal, lake   override those two paths
    incident_lookup a callable incident id -> Incident (passed by the lifecycle, not from TOML)
    smtp_host, smtp_port, smtp_starttls, smtp_user, smtp_password, smtp_timeout, outbox: see reports.transport
Evidence: `params["evidence"]`, else the incident (see reports.evidence).
Addresses: `match.src_prefixes`, else the incident's amplifier/bot/cnc/scanner/attacker subjects.
"""
from __future__ import annotations

import ipaddress
import logging
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from necoma.protect.model import Action, DriverError
from necoma.protect.reports import arf, xarf
from necoma.protect.reports.contacts import ContactBook
from necoma.protect.reports.evidence import Evidence, EvidenceError, evidence_for, is_address
from necoma.protect.reports.journal import Journal
from necoma.protect.reports.transport import Mailer

log = logging.getLogger(__name__)
REPORTABLE = ("amplifier", "bot", "cnc", "scanner", "attacker")
# When an address has no role in the incident: the role its category implies.
_CATEGORY_ROLE = {"amplifier": "amplifier", "bots": "bot", "cnc": "cnc", "scanning": "scanner"}


def data_paths(options: dict[str, Any]) -> tuple[Path, Path | None]:
    """(journal, lake) from the options: explicit paths, else under data_dir."""
    data_dir = Path(options.get("data_dir", "necoma-data"))
    journal = Path(options.get("journal") or data_dir / "protect" / "reports.sqlite")
    lake = options.get("lake") or (data_dir / "lake" if (data_dir / "lake").is_dir() else None)
    return journal, Path(lake) if lake else None


def host(prefix: str) -> str:
    """'192.0.2.7/32' -> '192.0.2.7'; wider prefixes stay CIDR."""
    net = ipaddress.ip_network(prefix, strict=False)
    return str(net.network_address) if net.num_addresses == 1 else str(net)


class AbuseReportDriver:
    def __init__(self, point: str, options: dict[str, Any]) -> None:
        self.name = point
        self.kinds = frozenset({"report_abuse"})
        self.sender = options.get("sender")
        if not self.sender or "@" not in self.sender:
            raise ValueError(f"point {point!r}: set sender = \"abuse-reports@your.domain\" (From: of the reports)")
        domain = self.sender.rpartition("@")[2]
        self.reporter = xarf.Party(org=options.get("reporter_org", domain), contact=self.sender, domain=domain)
        self.contacts = ContactBook(options.get("abuse_contacts"), options.get("rdap_cache"), options.get("rdap_url"),
                                    float(options.get("rdap_timeout", 10)))
        self.max_per_hour = int(options.get("max_per_hour", 10))
        if self.max_per_hour < 1:
            raise ValueError(f"point {point!r}: max_per_hour must be at least 1")
        self.evidence_rows = int(options.get("evidence_rows", 200))
        self.mailer = Mailer(point, options)
        journal, self.lake = data_paths(options)
        self.journal = Journal(journal, point)
        self.lookup = options.get("incident_lookup")
        self.now = options.get("clock", lambda: datetime.now(timezone.utc))  # tests move time forward

    def apply(self, actions: list[Action]) -> None:
        failures = []
        for a in actions:
            if a.kind not in self.kinds:
                raise DriverError(f"point {self.name} sends abuse reports (report_abuse), not {a.kind} (action {a.id})")
            sent, reasons = self._report(a)
            if not sent and reasons:
                failures.append(f"action {a.id}: " + "; ".join(reasons))
        if failures:
            raise DriverError(f"point {self.name}: " + " | ".join(failures))

    def withdraw(self, actions: list[Action]) -> None:
        for a in actions:
            self.journal.withdraw(a.id, self.now())

    def installed(self) -> set[str]:
        return self.journal.live(self.now())

    def refusals(self, action_id: str) -> list[tuple[str, str]]:
        """(address or recipient, reason) of everything this point refused for the action."""
        return self.journal.refusals(action_id)

    def _report(self, a: Action) -> tuple[bool, list[str]]:
        """Send the action's reports; (anything sent or already out, reasons for what was refused)."""
        now, reasons = self.now(), []

        def refuse(subject: str, why: str) -> None:
            reasons.append(why)
            self.journal.record_refused(a.id, subject, why, now)
            log.warning("point %s, action %s: %s", self.name, a.id, why)

        try:
            ev = evidence_for(a, self.lookup, self.lake, self.evidence_rows)
        except EvidenceError as exc:
            refuse(a.incident_id or "-", str(exc))
            return False, reasons
        addresses = [host(p) for p in a.match.src_prefixes] or ev.values_with(*REPORTABLE)
        addresses = [x for x in addresses if is_address(x)]
        if not addresses:
            refuse("-", f"action {a.id} names no source addresses to report")
            return False, reasons
        groups: dict[str, list[str]] = defaultdict(list)
        networks: dict[str, str] = {}
        for addr in addresses:
            contact, why = self.contacts.lookup(addr)
            if contact is None:
                refuse(addr, why)
                continue
            groups[contact.email].append(addr)
            networks.setdefault(contact.email, contact.network)
        out = False
        for recipient, addrs in sorted(groups.items()):
            if self.journal.sent_for(a.id, recipient):
                out = True
                continue
            if self.journal.incident_reported(ev.incident_id, recipient, now):
                self.journal.record_sent(a.id, recipient, ev.incident_id, addrs, None, "duplicate: incident already reported",
                                         now, timedelta(seconds=a.ttl_seconds))
                out = True
                continue
            recent = self.journal.count_since(recipient, now - timedelta(hours=1))
            if recent >= self.max_per_hour:
                refuse(recipient, f"rate limit: {recent} reports to {recipient} in the last hour "
                                  f"(max_per_hour {self.max_per_hour}); not sent: {', '.join(addrs)}")
                continue
            out |= self._send(a, ev, recipient, addrs, networks[recipient], now, refuse)
        return out, reasons

    def _send(self, a: Action, ev: Evidence, recipient: str, addrs: list[str], network: str, now: datetime,
              refuse) -> bool:
        reports, kept = [], []
        for addr in addrs:
            role = next((r for r in ev.roles_of(addr) if r in REPORTABLE), None) \
                or a.params.get("role") or _CATEGORY_ROLE.get(ev.category)
            try:
                reports.append(xarf.build(ev, addr, role or "unknown", self.reporter,
                                          confidence=(ev.rating / 100) if ev.rating is not None else None))
                kept.append(addr)
            except xarf.XarfError as exc:
                refuse(addr, str(exc))
        if not kept:
            return False
        rows = ev.rows_about(set(kept), self.evidence_rows)
        msg = arf.build_message(ev, self.sender, recipient, kept, network, rows, reports)
        went = self.mailer.send(msg, f"{a.id}-{recipient.replace('@', '_at_')}")
        self.journal.record_sent(a.id, recipient, ev.incident_id, kept, msg["Message-ID"], went, now,
                                 timedelta(seconds=a.ttl_seconds))
        log.info("point %s: abuse report on %s to %s (%s) via %s", self.name, ev.incident_id, recipient,
                 ", ".join(kept), went)
        return True

