# SPDX-License-Identifier: Apache-2.0
"""gce_machine_type's own cost: overhead per resize, API calls, and the downtime it reports.

A resize is dominated by Compute Engine's operations (stop, setMachineType,
start), which the module cannot make faster; what it owns is everything
around them. So the module runs against the local API emulator with known
operation durations, through its real entry point (``python -m`` with the
arguments on stdin, as Ansible runs it on the controller), and:

- overhead = wall time minus the emulated operations' time (goal < 1 s),
  also shown without Python's start-up (first to last API call);
- API calls per resize and per no-op check (goal for a no-op: <= 2);
- downtime as the module reports it, next to the emulated stop + set + start;
- the Spot change (provisioning_model: spot, setScheduling in the same stop)
  and its no-op check (goal: <= 1 API call).

Each figure is the median of a few resizes back and forth between two types.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.gce_emulator import start  # noqa: E402

MODULE = "ansible_collections.central_mcp.agents.plugins.modules.gce_machine_type"
PROJECT, ZONE, VM = "bench-project", "us-central1-a", "vm1"
DURATIONS = {"stop": 1.0, "setMachineType": 0.3, "start": 1.5}
RUNS = 3


def run_module(emu, machine_type: str | None, **extra) -> tuple[dict, float]:
    args = {
        "project": PROJECT,
        "zone": ZONE,
        "instance": VM,
        "machine_type": machine_type,
        "allow_stopping": True,
        "auth_kind": "accesstoken",
        "access_token": "bench-token",
        "api_endpoint": emu.api_endpoint,
        **extra,
    }
    if machine_type is None:
        del args["machine_type"]
    env = {**os.environ, "PYTHONPATH": str(REPO / "collections")}
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", MODULE],
        input=json.dumps({"ANSIBLE_MODULE_ARGS": args}),
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.monotonic() - started
    result = json.loads(proc.stdout)
    if result.get("failed"):
        raise SystemExit(f"gce_machine_type failed: {result['msg']}")
    return result, wall


def emulated_seconds(emu, before: set[str]) -> float:
    """Time of the operations the last run started (as the emulator scheduled them)."""
    return sum(op["_seconds"] for op in emu.state()["operations"] if op["name"] not in before)


def api_span(emu) -> float:
    """First request to last answer of the last run, as the emulator logged them."""
    log = emu.log()
    return log[-1]["t"] + log[-1]["seconds"] - log[0]["t"]


def main() -> None:
    resizes, noops = [], []
    with start(durations=DURATIONS) as emu:
        emu.add_instance(PROJECT, ZONE, VM, "e2-micro")
        for run in range(RUNS):
            target = "e2-standard-4" if run % 2 == 0 else "e2-micro"
            before = {op["name"] for op in emu.state()["operations"]}
            emu.clear_log()
            result, wall = run_module(emu, target)
            operations = emulated_seconds(emu, before)
            resizes.append(
                {
                    "wall": wall,
                    "operations": operations,
                    "overhead": wall - operations,
                    "in_module": api_span(emu) - operations,
                    "calls": result["api_calls"],
                    "downtime": result["downtime_s"],
                }
            )
            emu.clear_log()
            result, wall = run_module(emu, target)
            assert not result["changed"], result
            noops.append({"wall": wall, "calls": result["api_calls"]})
        emu.clear_log()
        spot, spot_wall = run_module(emu, None, provisioning_model="spot")
        assert spot["provisioning_model"] == "SPOT", spot
        spot_noop, _ = run_module(emu, None, provisioning_model="spot")
        assert not spot_noop["changed"], spot_noop

    def median(rows, key):
        return statistics.median(row[key] for row in rows)

    emulated = sum(DURATIONS.values())
    print(
        f"gce_machine_type against the Compute API emulator (stop {DURATIONS['stop']} s, "
        f"setMachineType {DURATIONS['setMachineType']} s, start {DURATIONS['start']} s), median of {RUNS}"
    )
    overhead = median(resizes, "overhead")
    print(
        f"  resize : wall {median(resizes, 'wall'):.2f} s, emulated operations {median(resizes, 'operations'):.2f} s, "
        f"module overhead {overhead:.2f} s (goal < 1 s: {'ok' if overhead < 1 else 'MISSED'})"
    )
    print(
        f"           of which between its first and last API call: {median(resizes, 'in_module'):.3f} s "
        "(the rest is Python start-up and imports)"
    )
    calls = max(row["calls"] for row in noops)
    verdict = "ok" if calls <= 2 else "MISSED"
    print(f"  API calls per resize: {median(resizes, 'calls'):.0f}")
    print(f"  no-op  : wall {median(noops, 'wall'):.2f} s, API calls {calls} (goal <= 2: {verdict})")
    print(
        f"  downtime reported by the module {median(resizes, 'downtime'):.2f} s, "
        f"emulated stop + setMachineType + start {emulated:.2f} s"
    )
    verdict = "ok" if spot_noop["api_calls"] <= 1 else "MISSED"
    print(
        f"  Spot   : {spot['previous_provisioning_model']} -> {spot['provisioning_model']} in {spot_wall:.2f} s, "
        f"{spot['api_calls']} API calls; no-op scheduling check {spot_noop['api_calls']} API call(s) "
        f"(goal <= 1: {verdict})"
    )


if __name__ == "__main__":
    main()
