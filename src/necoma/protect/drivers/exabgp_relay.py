"""The process ExaBGP runs for necoma: relays API commands from a Unix socket to ExaBGP.

ExaBGP talks to its helper processes over their stdin/stdout. This relay listens on
a Unix socket in the driver's run folder, so any necoma process (also one started
after a restart) can connect, write one command per line and read ExaBGP's answer
back: the lines up to and including `done` or `error` (ExaBGP acknowledges every
API command). Hand-written because ExaBGP's own `exabgp cli` finds its pipes by
scanning fixed folders and reports only through exit codes and stdout text.

Run by ExaBGP as `python -m necoma.protect.drivers.exabgp_relay SOCKET_PATH`.
"""
from __future__ import annotations

import os
import socket
import sys

ANSWER_END = ("done", "error", "shutdown")


def _answer(stdin) -> list[str]:
    """ExaBGP's lines for one command, up to its acknowledgement."""
    lines: list[str] = []
    for raw in stdin:
        line = raw.rstrip("\n")
        lines.append(line)
        if line.strip() in ANSWER_END:
            break
    else:  # ExaBGP closed our stdin: it is stopping
        lines.append("shutdown")
    return lines


def serve(path: str) -> None:
    if os.path.exists(path):
        os.unlink(path)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    os.chmod(path, 0o600)  # only the operator's user may steer the BGP speaker
    server.listen(4)
    while True:
        conn, _ = server.accept()
        with conn, conn.makefile("r", encoding="utf-8") as rd, conn.makefile("w", encoding="utf-8") as wr:
            for command in rd:  # one client, one command per line, served in order
                command = command.strip()
                if not command:
                    continue
                sys.stdout.write(command + "\n")
                sys.stdout.flush()
                lines = _answer(sys.stdin)
                wr.write("\n".join(lines) + "\n")
                wr.flush()
                if lines[-1] == "shutdown":
                    return


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m necoma.protect.drivers.exabgp_relay SOCKET_PATH")
    serve(sys.argv[1])
