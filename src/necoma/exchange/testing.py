"""Real servers for tests and benchmarks: uvicorn on a free loopback port, a throwaway PostgreSQL.

PostgreSQL refuses to run as root, and CI runs as root: the cluster then
belongs to the `postgres` system user (Debian's package creates it) or, failing
that, `nobody`, and its commands run through `runuser`. The cluster lives in
a fresh directory under /tmp (pytest's tmp dirs are private to root), trusts
local connections, listens on 127.0.0.1 only and is deleted on stop.
"""
from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import uvicorn


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerThread:
    """A uvicorn server for `app` in a background thread, on 127.0.0.1 and a free port."""

    def __init__(self, app, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "ServerThread":
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def pg_bindir() -> Path | None:
    """Where initdb/pg_ctl live: PATH first, then Debian's versioned directories (newest)."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(candidates[-1]).parent if candidates else None


def pg_unavailable_reason() -> str | None:
    if pg_bindir() is None:
        return "PostgreSQL binaries (initdb, pg_ctl) not found; scripts/install-system-deps.sh installs them"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser: cannot start PostgreSQL as an unprivileged user"
    return None


class PostgresCluster:
    """initdb + pg_ctl start on 127.0.0.1:<free port>; `new_database()` gives each test a clean database."""

    def __init__(self) -> None:
        reason = pg_unavailable_reason()
        if reason:
            raise RuntimeError(reason)
        self.bindir = pg_bindir()
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="necoma-pg-"))
        self.data = self.root / "data"
        self.user = None
        if os.geteuid() == 0:
            self.user = "postgres" if _user_exists("postgres") else "nobody"
            pw = pwd.getpwnam(self.user)
            os.chown(self.root, pw.pw_uid, pw.pw_gid)

    def _run(self, *args: str) -> None:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=self.root, timeout=120)
        if proc.returncode != 0:
            log = (self.root / "log").read_text() if (self.root / "log").exists() else ""
            raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr or proc.stdout}\n{log}")

    def start(self) -> "PostgresCluster":
        self._run("initdb", "-D", str(self.data), "-U", "necoma", "--auth=trust", "-E", "UTF8", "--no-sync")
        opts = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.root / "log"), "-w", "start")
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://necoma@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=necoma dbname=postgres", autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


_cluster: PostgresCluster | None = None


def shared_cluster() -> PostgresCluster:
    """One cluster per test process, started on first use and stopped at exit."""
    global _cluster
    if _cluster is None:
        import atexit

        _cluster = PostgresCluster().start()
        atexit.register(_cluster.stop)
    return _cluster


def database_url(kind: str, tmp_path: Path) -> str:
    """A fresh, empty store of `kind` (sqlite or postgresql) for one test.

    Without PostgreSQL the test is skipped with the reason — except under
    CI=true, where a missing database is a setup bug and fails.
    """
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'exchange.sqlite'}"
    import pytest

    reason = pg_unavailable_reason()
    if reason:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI must test PostgreSQL: {reason}")
        pytest.skip(reason)
    return shared_cluster().new_database()


class MedallionServer:
    """OASIS's reference TAXII 2.1 server (medallion, memory backend) on 127.0.0.1, one empty collection.

    Basic auth user `necoma`, password `password`; `collection_url` is the collection's URL.
    """

    USER, PASSWORD = "necoma", "password"

    def __init__(self, max_page_size: int = 100) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="necoma-medallion-"))
        self.url = f"http://127.0.0.1:{self.port}"
        self.collection_id = str(uuid.uuid4())
        self.collection_url = f"{self.url}/api1/collections/{self.collection_id}/"
        data = {
            "/discovery": {"title": "medallion", "description": "reference server", "contact": "",
                           "default": f"{self.url}/api1/", "api_roots": [f"{self.url}/api1/"]},
            "api1": {
                "information": {"title": "api1", "description": "", "versions": ["application/taxii+json;version=2.1"],
                                "max_content_length": 100 * 1024 * 1024},
                "status": [],
                "collections": [{"id": self.collection_id, "title": "exchange", "description": "",
                                 "can_read": True, "can_write": True,
                                 "media_types": ["application/stix+json;version=2.1"], "objects": [], "manifest": []}],
            },
        }
        (self.dir / "data.json").write_text(json.dumps(data))
        config = {"backend": {"module": "medallion.backends.memory_backend", "module_class": "MemoryBackend",
                              "filename": str(self.dir / "data.json")},
                  "users": {self.USER: self.PASSWORD}, "taxii": {"max_page_size": max_page_size}}
        (self.dir / "config.json").write_text(json.dumps(config))
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "MedallionServer":
        import sys

        exe = Path(sys.executable).parent / "medallion"
        self.proc = subprocess.Popen([str(exe), "--host", "127.0.0.1", "--port", str(self.port),
                                      str(self.dir / "config.json")],
                                     stdout=subprocess.DEVNULL, stderr=open(self.dir / "log", "w"))
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("medallion did not start: " + (self.dir / "log").read_text()[-2000:])
                time.sleep(0.1)

    def __exit__(self, *exc) -> None:
        if self.proc:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)
