"""The network-namespace lab: real tools, real packets, inside namespaces it creates.

    attacker ── router ── victim
                 │  │
          resolver  collector

`up` builds it (namespaces, veths, an open Unbound resolver, the router's
pmacct exporter and tcpdump mirror, nfcapd), `down` removes exactly what it
made, `status` checks it; `run(settings, "dns-amplification")` attacks through
it and leaves pcaps, NetFlow and `truth.json` in a run directory. See docs/lab.md.
"""
from necoma.testbed.lab.lab import Check, down, status, up, workdir_of
from necoma.testbed.lab.procs import LabError
from necoma.testbed.lab.scenario import SCENARIOS, RunOptions, RunResult, run
from necoma.testbed.lab.topology import AMP_NAME, Plan, default_plan

__all__ = ["AMP_NAME", "Check", "LabError", "Plan", "RunOptions", "RunResult", "SCENARIOS", "default_plan", "down",
           "run", "status", "up", "workdir_of"]
