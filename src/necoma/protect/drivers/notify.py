"""Notices to users and operators (webhook, email), configuration advice, and public announcements.

One point, one channel ([protect.points.NAME], driver = "notify"):
    channel = "webhook"   POST JSON to `url`; with `secret`, an HMAC-SHA256 of the exact body in
                          the header X-Necoma-Signature-256: sha256=HEX (verify before trusting it)
    channel = "email"     a text notice from `sender` to `params["recipients"]` (else `recipients`),
                          over the SMTP/outbox options of reports.transport
    channel = "announce"  the incident, redacted, as TLP:CLEAR in the exchange's public feed
                          (`database_url`, else sqlite under data_dir; `org_name`; `public_roles`)
Kinds: notify (all channels) and advise (webhook, email: the advice text of reports.notices).
Sending is once per (action, target), kept in the same sent-journal as abuse reports
(`data_dir`/`journal`); `installed` = sent and within the TTL; `withdraw` records only.
Evidence and incidents are found as for abuse reports (`params["evidence"]`, `incident_lookup`, `lake`).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
from datetime import datetime, timedelta, timezone
from email.mime.text import MIMEText
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

import httpx

from necoma.protect.drivers.abuse import data_paths, host
from necoma.protect.model import Action, DriverError
from necoma.protect.reports import notices
from necoma.protect.reports.announce import PUBLIC_ROLES, announce
from necoma.protect.reports.evidence import Evidence, EvidenceError, evidence_for, lake_lookup
from necoma.protect.reports.journal import Journal
from necoma.protect.reports.transport import Mailer

log = logging.getLogger(__name__)
CHANNELS = ("webhook", "email", "announce")
SIGNATURE_HEADER = "X-Necoma-Signature-256"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class NotifyDriver:
    def __init__(self, point: str, options: dict[str, Any]) -> None:
        self.name = point
        self.channel = options.get("channel")
        if self.channel not in CHANNELS:
            raise ValueError(f"point {point!r}: channel must be one of {', '.join(CHANNELS)}, not {self.channel!r}")
        self.kinds = frozenset({"notify"} if self.channel == "announce" else {"notify", "advise"})
        self.options = options
        journal, self.lake = data_paths(options)
        self.journal = Journal(journal, point)
        self.lookup = options.get("incident_lookup")
        self.now = options.get("clock", lambda: datetime.now(timezone.utc))
        if self.channel == "webhook":
            if not str(options.get("url", "")).startswith(("http://", "https://")):
                raise ValueError(f"point {point!r}: a webhook needs url = \"https://...\"")
        elif self.channel == "email":
            if "@" not in str(options.get("sender", "")):
                raise ValueError(f"point {point!r}: set sender = \"soc@your.domain\" (From: of the notices)")
            self.mailer = Mailer(point, options)
        else:
            data_dir = Path(options.get("data_dir", "necoma-data"))
            self.database_url = options.get("database_url") or f"sqlite:///{(data_dir / 'exchange.sqlite').resolve()}"
            self.org_name = options.get("org_name", "necoma")
            self.public_roles = tuple(options.get("public_roles", PUBLIC_ROLES))

    def apply(self, actions: list[Action]) -> None:
        failures = []
        for a in actions:
            if a.kind not in self.kinds:
                raise DriverError(f"point {self.name} ({self.channel}) sends {', '.join(sorted(self.kinds))}, "
                                  f"not {a.kind} (action {a.id})")
            try:
                self._deliver(a)
            except (EvidenceError, ValueError) as exc:
                self.journal.record_refused(a.id, self.channel, str(exc), self.now())
                failures.append(f"action {a.id}: {exc}")
        if failures:
            raise DriverError(f"point {self.name}: " + " | ".join(failures))

    def withdraw(self, actions: list[Action]) -> None:
        for a in actions:
            self.journal.withdraw(a.id, self.now())

    def installed(self) -> set[str]:
        return self.journal.live(self.now())

    def _deliver(self, a: Action) -> None:
        if self.channel == "announce":
            return self._announce(a)
        ev = evidence_for(a, self.lookup, self.lake, int(self.options.get("evidence_rows", 50)))
        hosts = [host(p) for p in (*a.match.src_prefixes, *a.match.dst_prefixes)] or \
            ev.values_with("bot", "amplifier", "host", "scanner", "attacker")
        text = notices.notice_text(ev, a.kind, a.params, hosts)
        if self.channel == "webhook":
            self._once(a, self.options["url"], ev, lambda: self._post(a, ev, hosts, text))
            return
        recipients = a.params.get("recipients") or self.options.get("recipients") or []
        if isinstance(recipients, str):
            recipients = [recipients]
        bad = [r for r in recipients if "@" not in str(r)]
        if not recipients or bad:
            raise ValueError(f"no valid email recipients for {a.kind} (params.recipients or the point's recipients)"
                             + (f": {bad}" if bad else ""))
        for r in recipients:
            self._once(a, r, ev, lambda r=r: self._mail(a, ev, r, text))

    def _once(self, a: Action, target: str, ev: Evidence, send) -> None:
        if self.journal.sent_for(a.id, target):
            return
        went, message_id = send()
        self.journal.record_sent(a.id, target, ev.incident_id, [], message_id, went, self.now(),
                                 timedelta(seconds=a.ttl_seconds))
        log.info("point %s: %s on %s to %s", self.name, a.kind, ev.incident_id, target)

    def _post(self, a: Action, ev: Evidence, hosts: list[str], text: str) -> tuple[str, None]:
        payload = {
            "event": a.kind, "action_id": a.id, "point": self.name, "reason": a.reason, "hosts": hosts,
            "subject": notices.subject_line(ev, a.kind), "text": text,
            "incident": ev.model_dump(mode="json", exclude={"rows"}) | {"evidence_rows": len(ev.rows)},
        }
        body = json.dumps(payload, sort_keys=True).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "necoma/0.1"}
        if self.options.get("secret"):
            headers[SIGNATURE_HEADER] = sign(str(self.options["secret"]), body)
        url = self.options["url"]
        try:
            r = httpx.post(url, content=body, headers=headers, timeout=float(self.options.get("timeout", 10)))
        except httpx.HTTPError as exc:
            raise DriverError(f"point {self.name}: webhook {url} failed: {exc}") from None
        if not r.is_success:
            raise DriverError(f"point {self.name}: webhook {url} answered {r.status_code}")
        return url, None

    def _mail(self, a: Action, ev: Evidence, recipient: str, text: str) -> tuple[str, str]:
        msg = MIMEText(text, "plain", "utf-8")
        msg["From"] = self.options["sender"]
        msg["To"] = recipient
        msg["Subject"] = notices.subject_line(ev, a.kind)
        msg["Date"] = formatdate(usegmt=True)
        msg["Message-ID"] = make_msgid(domain=self.options["sender"].rpartition("@")[2])
        msg["X-Necoma-Incident"] = ev.incident_id
        msg["Auto-Submitted"] = "auto-generated"
        return self.mailer.send(msg, f"{a.id}-{recipient.replace('@', '_at_')}"), msg["Message-ID"]

    def _announce(self, a: Action) -> None:
        if not a.incident_id:
            raise ValueError("an announcement needs the action's incident_id (the incident itself is published)")
        lookup = self.lookup or (lake_lookup(self.lake) if self.lake else None)
        if lookup is None:
            raise ValueError(f"no incident_lookup or lake configured to find incident {a.incident_id}")
        incident = lookup(a.incident_id)
        if incident is None:
            raise ValueError(f"incident {a.incident_id} of action {a.id} was not found")
        if self.journal.sent_for(a.id, "public-feed"):
            return
        published = announce(self.database_url, self.org_name, incident, self.public_roles)
        self.journal.record_sent(a.id, "public-feed", incident.id, [], published.status_id,
                                 f"exchange post {published.post_id}", self.now(), timedelta(seconds=a.ttl_seconds))
