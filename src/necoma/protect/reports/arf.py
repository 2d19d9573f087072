"""RFC 5965 (ARF) abuse report emails, built with the standard `email` package.

    multipart/report; report-type=feedback-report
      1. text/plain                 what happened, for a person, with the evidence rows as a table
      2. message/feedback-report    Feedback-Type, User-Agent, Version: 1, Source-IP, Arrival-Date,
                                    Incidents, Reported-Domain / Reported-URI (RFC 5965 §3.1-3.3)
      3. text/csv                   the evidence rows from the lake (attachment)
      4. application/json           one X-ARF v4 report per address (attachments)

RFC 5965 §2 (c) wants the reported *email message* as the third part. Network
abuse has no such message, so the evidence CSV takes its place; receivers
that parse ARF read parts 1 and 2 as usual.
"""
from __future__ import annotations

import json
from email.message import Message
from email.mime.application import MIMEApplication
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formatdate, make_msgid
from typing import Any

from necoma.protect.reports.evidence import Evidence
from necoma.protect.reports.xarf import rows_csv

USER_AGENT = "necoma/0.1"
# RFC 5965 §7.3 registry: abuse, fraud, other, virus. Vulnerable services are not abuse by their owner.
_FEEDBACK_TYPE = {"vulnerability": "other"}


def _text_table(rows: list[dict[str, Any]], limit: int = 20) -> str:
    if not rows:
        return "(no rows from the lake)"
    cols = [c for c in ("start_time", "time", "t", "src_ip", "src_port", "dst_ip", "dst_port", "protocol",
                        "packets", "bytes", "client_ip", "qname", "qtype", "rcode") if any(c in r for r in rows)] or list(rows[0])[:8]
    lines = ["  ".join(cols)]
    lines += ["  ".join(str(r.get(c, "")) for c in cols) for r in rows[:limit]]
    if len(rows) > limit:
        lines.append(f"... {len(rows) - limit} more rows in the attached CSV")
    return "\n".join(lines)


def summary_text(ev: Evidence, addresses: list[str], network: str, rows: list[dict[str, Any]]) -> str:
    metrics = ", ".join(f"{k} {v:g}" for k, v in sorted(ev.metrics.items())) or "none recorded"
    domains = ev.values_with("domain", "url")
    lines = [
        "This is an abuse report about addresses in your network, sent by an automated system (necoma).",
        "",
        f"Incident:   {ev.incident_id} - {ev.title}",
        f"Category:   {ev.category}" + (f" (malware: {ev.malware})" if ev.malware else ""),
        f"Time (UTC): {ev.window_start:%Y-%m-%d %H:%M:%S} to {ev.window_end:%Y-%m-%d %H:%M:%S}",
        f"Network:    {network}",
        "Addresses:  " + ", ".join(f"{a} ({'/'.join(ev.roles_of(a)) or 'reported'})" for a in addresses),
        f"Metrics:    {metrics}",
    ]
    if domains:
        lines.append("Names:      " + ", ".join(domains[:20]))
    lines += ["", f"Evidence ({len(rows)} rows; all of them in evidence.csv):", _text_table(rows), "",
              "Machine-readable copies: the message/feedback-report part (RFC 5965) and one X-ARF v4 JSON",
              "report per address (xarf-*.json). Please investigate and stop the activity."]
    return "\n".join(lines) + "\n"


def feedback_fields(ev: Evidence, addresses: list[str], rows: list[dict[str, Any]]) -> str:
    fields = [
        ("Feedback-Type", _FEEDBACK_TYPE.get(ev.category, "abuse")),
        ("User-Agent", USER_AGENT),
        ("Version", "1"),
        ("Source-IP", addresses[0].split("/")[0]),  # single-valued (§3.2); all addresses are in part 1 and the X-ARF files
        ("Arrival-Date", format_datetime(ev.window_start)),
        ("Incidents", str(max(1, len(rows)))),
    ]
    fields += [("Reported-Domain", d) for d in ev.values_with("domain")]
    fields += [("Reported-URI", u) for u in ev.values_with("url")]
    return "".join(f"{k}: {v}\r\n" for k, v in fields)


def build_message(ev: Evidence, sender: str, recipient: str, addresses: list[str], network: str,
                  rows: list[dict[str, Any]], xarf_reports: list[dict[str, Any]]) -> Message:
    msg = MIMEMultipart("report")
    msg.set_param("report-type", "feedback-report")
    msg["From"] = sender
    msg["To"] = recipient
    msg["Subject"] = f"Abuse report: {ev.category} from {network} ({len(addresses)} address(es), incident {ev.incident_id})"
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    msg["X-Necoma-Incident"] = ev.incident_id
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to this
    msg.attach(MIMEText(summary_text(ev, addresses, network, rows), "plain", "utf-8"))
    report = MIMEBase("message", "feedback-report")
    report.set_payload(feedback_fields(ev, addresses, rows))
    msg.attach(report)
    csv_part = MIMEText(rows_csv(rows) or "no rows\n", "csv", "utf-8")
    csv_part.add_header("Content-Disposition", "attachment", filename="evidence.csv")
    msg.attach(csv_part)
    for r in xarf_reports:
        part = MIMEApplication(json.dumps(r, indent=1).encode(), "json")
        part.add_header("Content-Disposition", "attachment", filename=f"xarf-{r['source_identifier'].replace(':', '-').replace('/', '_')}.json")
        msg.attach(part)
    return msg
