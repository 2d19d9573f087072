"""Getting a message out: SMTP (optionally STARTTLS and login), or .eml files in an outbox directory.

Point options (shared by the abuse and notify drivers):
    smtp_host, smtp_port (25), smtp_starttls (false), smtp_user, smtp_password,
    smtp_timeout (30 s), outbox (a directory: write NAME.eml there instead of sending).
"""
from __future__ import annotations

import email.policy
import os
import smtplib
import ssl
import tempfile
from email.message import Message
from pathlib import Path
from typing import Any

from necoma.protect.model import DriverError


class Mailer:
    def __init__(self, point: str, options: dict[str, Any]) -> None:
        self.point = point
        self.outbox = Path(options["outbox"]) if options.get("outbox") else None
        self.host = options.get("smtp_host")
        self.port = int(options.get("smtp_port", 25))
        self.starttls = bool(options.get("smtp_starttls", False))
        self.user = options.get("smtp_user")
        self.password = options.get("smtp_password", "")
        self.timeout = float(options.get("smtp_timeout", 30))
        if self.outbox is None and not self.host:
            raise ValueError(f"point {point!r}: set smtp_host (SMTP server) or outbox (directory for .eml files)")

    def describe(self) -> str:
        return f"outbox {self.outbox}" if self.outbox else f"smtp://{self.host}:{self.port}"

    def send(self, msg: Message, name: str) -> str:
        """Send (or write) `msg`; returns where it went. Raises DriverError when the server refuses."""
        if self.outbox is not None:
            self.outbox.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.outbox, suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                f.write(msg.as_bytes(policy=email.policy.SMTP))  # CRLF, as it would travel
            target = self.outbox / f"{name}.eml"
            os.replace(tmp, target)  # atomic: a reader never sees half a message
            return str(target)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.user:
                    smtp.login(self.user, self.password)
                refused = smtp.send_message(msg)
        except (OSError, smtplib.SMTPException) as exc:
            raise DriverError(f"point {self.point}: SMTP {self.host}:{self.port} did not take the message to "
                              f"{msg['To']}: {exc}") from None
        if refused:
            raise DriverError(f"point {self.point}: SMTP {self.host}:{self.port} refused {sorted(refused)}")
        return f"smtp://{self.host}:{self.port}"
