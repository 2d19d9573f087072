"""Split a syslog-over-TCP byte stream into messages (RFC 6587), without I/O.

Two framings exist in the wild: octet counting (`LEN SP MSG`, RFC 5425 /
RFC 6587 §3.4.1) and non-transparent framing with a newline trailer (§3.4.2).
The framing is detected once per connection from its first non-blank byte —
a digit means octet counting, anything else (normally `<`) newline framing —
because a sender does not switch framing mid-connection, and detecting per
message would misread a newline-framed message that starts with a digit.

Memory per connection is bounded by `max_message`: a longer message is
counted as "message too long" and skipped (octet counting: exactly its
announced length; newline framing: up to the next newline), so the stream
stays in sync. An unreadable octet count cannot be resynchronised: the
framer then marks itself `broken` and the caller closes the connection.
"""
from __future__ import annotations

_DIGITS = frozenset(b"0123456789")
_MAX_COUNT_DIGITS = 10


class SyslogFramer:
    def __init__(self, max_message: int = 64 * 1024) -> None:
        self.max_message = max_message
        self.mode: str | None = None  # "octet" | "newline", set by the first non-blank byte
        self.broken = False  # unrecoverable framing error: close the connection
        self._buf = bytearray()
        self._skip = 0  # octet counting: bytes of an oversized message still to discard
        self._discard_line = False  # newline framing: inside an oversized line

    def feed(self, data: bytes) -> tuple[list[bytes], list[str]]:
        """Add received bytes; return the complete messages and the rejection reasons found."""
        if self.broken:
            return [], []
        self._buf += data
        if self.mode is None:
            stripped = self._buf.lstrip()
            if not stripped:
                self._buf.clear()
                return [], []
            self.mode = "octet" if stripped[0] in _DIGITS else "newline"
        return self._octets() if self.mode == "octet" else self._lines()

    def close(self) -> tuple[list[bytes], list[str]]:
        """End of stream: a last newline-framed message may lack its newline; a cut octet frame is lost."""
        buf, self._buf = bytes(self._buf), bytearray()
        if self.broken or not buf.strip():
            return [], []
        if self.mode == "newline":
            return ([], []) if self._discard_line else ([buf.rstrip(b"\r")], [])
        return [], ["truncated message"]

    def _octets(self) -> tuple[list[bytes], list[str]]:
        msgs: list[bytes] = []
        rejects: list[str] = []
        buf = self._buf
        pos = 0
        n = len(buf)
        while pos < n:
            if self._skip:
                step = min(self._skip, n - pos)
                self._skip -= step
                pos += step
                continue
            while pos < n and buf[pos] in b"\r\n ":  # some senders add a newline after each frame
                pos += 1
            sp = buf.find(b" ", pos, pos + _MAX_COUNT_DIGITS + 1)
            if sp < 0:
                if n - pos > _MAX_COUNT_DIGITS or any(c not in _DIGITS for c in buf[pos:n]):
                    return self._break(msgs, rejects)
                break  # the count is still arriving
            count = buf[pos:sp]
            if not count or any(c not in _DIGITS for c in count) or count[0] == 0x30:
                return self._break(msgs, rejects)
            length = int(count)
            if length > self.max_message:
                rejects.append("message too long")
                self._skip = length
                pos = sp + 1
                continue
            if sp + 1 + length > n:
                break  # the message is still arriving
            msgs.append(bytes(buf[sp + 1:sp + 1 + length]))
            pos = sp + 1 + length
        del buf[:pos]
        return msgs, rejects

    def _break(self, msgs: list[bytes], rejects: list[str]) -> tuple[list[bytes], list[str]]:
        self.broken = True
        self._buf.clear()
        rejects.append("bad octet count")
        return msgs, rejects

    def _lines(self) -> tuple[list[bytes], list[str]]:
        msgs: list[bytes] = []
        rejects: list[str] = []
        buf = self._buf
        pos = 0
        while True:
            nl = buf.find(b"\n", pos)
            if nl < 0:
                break
            if self._discard_line:
                self._discard_line = False
            elif nl - pos > self.max_message:
                rejects.append("message too long")
            else:
                line = bytes(buf[pos:nl]).rstrip(b"\r")
                if line.strip():
                    msgs.append(line)  # blank lines are keep-alives, not messages
            pos = nl + 1
        del buf[:pos]
        if len(buf) > self.max_message:
            # Oversized and still no newline: drop what we have, and the rest up to the newline.
            if not self._discard_line:
                rejects.append("message too long")
            self._discard_line = True
            buf.clear()
        return msgs, rejects
