"""A throwaway Apache Spark standalone cluster on 127.0.0.1, run from the pyspark installation.

One master and one worker (1 core, 1 GiB for executors), each started with
`spark-class` in its own process group so that stopping it by its PID also
ends the executors the worker started. Used by tests/test_analyze_cluster.py;
docs/analyze.md gives the same commands for a hand-made cluster.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path


# Test JVMs live for seconds: the C1 compiler alone and the serial GC start work sooner on two shared
# cores (measured: a two-detector run on the cluster 23-27 s -> 13-17 s). Set for the daemons, the
# executors they start, and the drivers the tests run.
QUICK_JVM = {"JAVA_TOOL_OPTIONS": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"}


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def java_missing() -> str | None:
    """Why no cluster can start here, or None."""
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "Java is not installed (scripts/install-system-deps.sh installs openjdk-17-jre-headless)"
    return None


class StandaloneCluster:
    def __init__(self, workdir: Path, *, worker_memory: str = "1g") -> None:
        self.workdir = workdir
        self.worker_memory = worker_memory
        self.port, self.ui_port, self.worker_ui_port = free_port(), free_port(), free_port()
        self.url = f"spark://127.0.0.1:{self.port}"
        self.procs: list[subprocess.Popen] = []

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            SPARK_HOME=str(spark_home()),
            SPARK_LOCAL_IP="127.0.0.1",  # every daemon, executor and driver stays on loopback
            SPARK_DAEMON_MEMORY="256m",  # master and worker need little; executors get the worker's memory
            # the REST submission server would take the fixed port 6066 and clash with another cluster
            SPARK_MASTER_OPTS="-Dspark.master.rest.enabled=false",
            SPARK_WORKER_DIR=str(self.workdir / "work"),
            **QUICK_JVM,
        )
        return env

    def _spawn(self, name: str, *args: str) -> subprocess.Popen:
        log = open(self.workdir / f"{name}.log", "wb")
        proc = subprocess.Popen(
            [str(spark_home() / "bin" / "spark-class"), *args], env=self.env(), stdout=log,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        self.procs.append(proc)
        return proc

    def _wait_for(self, name: str, text: str, timeout: float) -> None:
        log = self.workdir / f"{name}.log"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in log.read_text(errors="replace"):
                return
            if any(p.poll() is not None for p in self.procs):
                break
            time.sleep(0.2)
        raise RuntimeError(f"Spark {name} did not report {text!r}:\n{log.read_text(errors='replace')[-3000:]}")

    def start(self) -> "StandaloneCluster":
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self._spawn("master", "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                        "--port", str(self.port), "--webui-port", str(self.ui_port))
            self._wait_for("master", "I have been elected leader", 60)
            self._spawn("worker", "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
                        "--webui-port", str(self.worker_ui_port), "--cores", "1", "--memory", self.worker_memory,
                        "--work-dir", str(self.workdir / "work"), self.url)
            self._wait_for("worker", "Successfully registered with master", 60)
        except BaseException:
            self.stop()
            raise
        return self

    def state(self) -> dict:
        """The master's own view (its web UI's JSON): workers, running and completed applications."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.ui_port}/json/", timeout=5) as r:
            return json.load(r)

    def stop(self) -> None:
        """SIGTERM each process group by its leader's PID, SIGKILL what is left after 10 s."""
        for proc in reversed(self.procs):  # the worker first: it ends its executors
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # stragglers in the group (an executor that ignored TERM)
            except ProcessLookupError:
                pass
            proc.wait()

    def leftovers(self) -> list[int]:
        """Process groups of the cluster that still have a live member (should be none after stop)."""
        alive = []
        for proc in self.procs:
            try:
                os.killpg(proc.pid, 0)
                alive.append(proc.pid)
            except ProcessLookupError:
                pass
        return alive
