"""Real local servers for the report/notice tests: an aiosmtpd SMTP server and an HTTP receiver, on 127.0.0.1."""
from __future__ import annotations

import email
import email.policy
import http.server
import threading
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from necoma.exchange.testing import free_port


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], EmailMessage]] = []

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd handler hook
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), msg))
        return "250 OK"


class SmtpServer:
    """aiosmtpd on a free loopback port; `.messages` holds (mail from, rcpt tos, parsed message)."""

    def __init__(self) -> None:
        self.port = free_port()
        self._inbox = _Inbox()
        self._ctl = Controller(self._inbox, hostname="127.0.0.1", port=self.port)

    @property
    def messages(self):
        return self._inbox.messages

    def __enter__(self) -> "SmtpServer":
        self._ctl.start()
        return self

    def __exit__(self, *exc) -> None:
        self._ctl.stop()


class HttpServer:
    """A threaded HTTP server on loopback: records POSTs, answers GETs from `routes` (path -> (status, body))."""

    def __init__(self, routes: dict[str, tuple[int, bytes]] | None = None, status: int = 204) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.routes = routes or {}
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.requests.append((self.path, dict(self.headers), body))
                self.send_response(status)
                self.end_headers()

            def do_GET(self):
                outer.requests.append((self.path, dict(self.headers), b""))
                code, body = outer.routes.get(self.path, (404, b'{"errorCode": 404}'))
                self.send_response(code)
                self.send_header("Content-Type", "application/rdap+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self._srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._srv.server_address[1]}"
        self._thread = threading.Thread(target=self._srv.serve_forever, daemon=True)

    def __enter__(self) -> "HttpServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._srv.shutdown()
        self._srv.server_close()
        self._thread.join(5)
