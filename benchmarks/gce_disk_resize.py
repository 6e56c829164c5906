# SPDX-License-Identifier: Apache-2.0
"""gce_disk_size's own cost, and what the disk filters pick and print for 4, 8 and 16 agents.

A disk grow is one Compute Engine operation the module cannot make faster;
what it owns is everything around it. So the module runs against the local
API emulator with a known operation time, through its real entry point
(``python -m`` with the arguments on stdin, as Ansible runs it on the
controller), and this prints:

- API calls for a no-op check (by instance, and by disk name) and for a grow
  (goal for a no-op by disk name: 1 read);
- overhead = wall time minus the emulated operation's time (goal < 1 s),
  also shown without Python's start-up (first to last API call);
- the boot disk size ``disk_size_for_agents`` picks for 4, 8 and 16 agents,
  and the cost lines the role prints for them (grown from the seed's 10 GB,
  and the VM's monthly total with the machine type the sizing filter picks).

Each timing is the median of a few grows.
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
sys.path.insert(0, str(REPO / "collections"))
from ansible_collections.central_mcp.agents.plugins.filter import disk_sizing, sizing  # noqa: E402
from ansible_collections.central_mcp.agents.plugins.module_utils import prices  # noqa: E402

from tests.gce_emulator import start  # noqa: E402

MODULE = "ansible_collections.central_mcp.agents.plugins.modules.gce_disk_size"
PROJECT, ZONE, VM = "bench-project", "us-central1-a", "vm1"
RESIZE_S = 0.5
RUNS = 3
SEED_DISK_GB = 10  # the seed's VM: a 10 GB boot disk, grown by hand with gcloud


def run_module(emu, size_gb: int, **target) -> tuple[dict, float]:
    args = {
        "project": PROJECT,
        "zone": ZONE,
        "size_gb": size_gb,
        "auth_kind": "accesstoken",
        "access_token": "bench-token",
        "api_endpoint": emu.api_endpoint,
        **(target or {"instance": VM}),
    }
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
        raise SystemExit(f"gce_disk_size failed: {result['msg']}")
    return result, wall


def emulated_seconds(emu, before: set[str]) -> float:
    return sum(op["_seconds"] for op in emu.state()["operations"] if op["name"] not in before)


def api_span(emu) -> float:
    log = emu.log()
    return log[-1]["t"] + log[-1]["seconds"] - log[0]["t"]


def measure() -> tuple[list[dict], dict]:
    grows, noops = [], {}
    with start(durations={"resize": RESIZE_S}) as emu:
        emu.add_instance(PROJECT, ZONE, VM, "e2-standard-4", disk_size_gb=SEED_DISK_GB)
        size = SEED_DISK_GB
        for _ in range(RUNS):
            size += 10
            before = {op["name"] for op in emu.state()["operations"]}
            emu.clear_log()
            result, wall = run_module(emu, size)
            operations = emulated_seconds(emu, before)
            grows.append(
                {
                    "wall": wall,
                    "operations": operations,
                    "overhead": wall - operations,
                    "in_module": api_span(emu) - operations,
                    "calls": result["api_calls"],
                }
            )
        for label, target in (("instance", {"instance": VM}), ("disk", {"disk": VM})):
            emu.clear_log()
            result, wall = run_module(emu, size, **target)
            assert not result["changed"], result
            noops[label] = {"wall": wall, "calls": result["api_calls"]}
    return grows, noops


def main() -> None:
    grows, noops = measure()

    def median(key):
        return statistics.median(row[key] for row in grows)

    overhead = median("overhead")
    print(f"gce_disk_size against the Compute API emulator (disks.resize {RESIZE_S} s), median of {RUNS} grows")
    print(
        f"  grow   : wall {median('wall'):.2f} s, emulated operation {median('operations'):.2f} s, "
        f"module overhead {overhead:.2f} s (goal < 1 s: {'ok' if overhead < 1 else 'MISSED'})"
    )
    print(
        f"           of which between its first and last API call: {median('in_module'):.3f} s "
        "(the rest is Python start-up and imports)"
    )
    print(f"  API calls per grow (by instance): {median('calls'):.0f}")
    for label, row in noops.items():
        goal = f" (goal 1: {'ok' if row['calls'] == 1 else 'MISSED'})" if label == "disk" else ""
        print(f"  no-op by {label:<8}: wall {row['wall']:.2f} s, API calls {row['calls']}{goal}")
    print()
    print(
        f"disk_size_for_agents: {disk_sizing.DISK_BASE_GB} GB base + {disk_sizing.DISK_PER_AGENT_GB} GB per agent "
        f"(the seed measured ~0.1 GB per agent); prices per GB-month {prices.DEFAULT_TABLE['disks']}"
    )
    for agents in (4, 8, 16):
        size = disk_sizing.disk_size_for_agents(agents)
        machine = sizing.machine_type_for_agents(agents)
        print(f"  {agents:>2} agents: {size} GB")
        print(f"      {disk_sizing.disk_size_change(SEED_DISK_GB, size)}")
        print(f"      {disk_sizing.vm_monthly_cost(machine, size)}")
        others = ", ".join(
            f"{kind} ${disk_sizing.disk_monthly_cost(size, kind):.2f}" for kind in ("pd-standard", "pd-ssd")
        )
        print(f"      the same disk as {others} a month")


if __name__ == "__main__":
    main()
