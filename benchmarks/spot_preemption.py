# SPDX-License-Identifier: Apache-2.0
"""A Spot VM preempted: how fast its tasks go back, and how fast the coordinator's watcher starts it again.

Real processes: the coordinator (its Spot watcher at its default interval),
the Compute API emulator (Compute Engine's ~30 s preemption notice, a 1.5 s
start) and the VM's own ``agent-leaving`` (what its shutdown runs), with a
token per agent; the four agents' runtimes are played by their calls
(heartbeat, next). Prints:

- preemption notice -> every task of the VM AVAILABLE again (s), and tasks lost;
- preemption -> the VM RUNNING again in the emulator (s), with the notice and
  the watcher's interval it includes.

How long a booted VM takes until its agents are back is measured with real
VM containers by Molecule's multi_host scenario (its verify prints it).
Run with the coordinator's venv: ``coordinator/.venv/bin/python benchmarks/spot_preemption.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.e2e.fleet import Coordinator, wait_for  # noqa: E402
from tests.e2e.test_spot import Emulator, runtime  # noqa: E402

PROJECT, ZONE = "bench-project", "us-central1-a"
AGENTS = ("E", "F", "G", "H")
NOTICE_S = 30.0  # Compute Engine's preemption notice
BOOT = "4c5d6e7f-8091-4a2b-9c3d-4e5f6a7b8c9d"


def main() -> None:
    emulator = Emulator()
    root = Path(tempfile.mkdtemp(prefix="spot-bench-"))
    coordinator = Coordinator(root / "coordinator", dict.fromkeys(AGENTS, "backend"), liveness_s=0.5)
    try:
        emulator.admin("POST", "instances", {"project": PROJECT, "zone": ZONE, "name": "vm1"})
        emulator.admin("POST", "instances", {"project": PROJECT, "zone": ZONE, "name": "vm2",
                                             "provisioningModel": "SPOT"})  # fmt: skip
        emulator.admin("POST", "config", {"durations": {"start": 1.5}})
        spec = json.loads((coordinator.root / "agents.json").read_text())
        for agent in spec["agents"]:
            agent["host"] = "vm2"
        spec["hosts"] = [{"name": "vm1", "coordinator": True},
                         {"name": "vm2", "provisioning_model": "spot",
                          "gce": {"project": PROJECT, "zone": ZONE, "instance": "vm2"}}]  # fmt: skip
        (coordinator.root / "agents.json").write_text(json.dumps(spec))
        coordinator.env.update(
            CENTRAL_MCP_COMPUTE_URL=f"{emulator.url}/compute/v1",
            CENTRAL_MCP_METADATA_URL=f"{emulator.url}/_emulator/metadata/{PROJECT}/{ZONE}/vm1",
        )
        coordinator.start()
        env_dir = root / "agents"
        env_dir.mkdir()
        tasks = []
        for name in AGENTS:
            (env_dir / f"{name}.env").write_text(
                f"CENTRAL_MCP_URL={coordinator.url}/mcp\nCENTRAL_MCP_AGENT_TOKEN={coordinator.tokens[name]}\n"
            )
            task = coordinator.create_task(f"work of {name}", role="backend")
            runtime(coordinator, name, "heartbeat", {"activity": "idle", "boot_id": BOOT})
            tasks.append(runtime(coordinator, name, "next", {"wait_s": 0})[1]["task"]["id"])
            assert tasks[-1] == task["id"]

        notice = {"project": PROJECT, "zone": ZONE, "name": "vm2", "noticeS": NOTICE_S}
        emulator.admin("POST", "preempt", notice)
        started = time.monotonic()
        metadata = f"{emulator.url}/_emulator/metadata/{PROJECT}/{ZONE}/vm2"
        leaving = subprocess.run(
            [sys.executable, str(REPO / "roles/launcher/files/agent-leaving"), "--config-dir", str(env_dir),
             "--metadata-url", metadata, "--now"], capture_output=True, text=True, check=True, timeout=60,
        )  # fmt: skip
        wait_for(lambda: all(coordinator.task(t)["state"] == "AVAILABLE" for t in tasks), 60, "tasks back")
        handed_back_s = time.monotonic() - started
        attempts = [coordinator.task(t)["attempts"] for t in tasks]
        wait_for(lambda: _status(emulator) == "RUNNING", 120, "vm2 running again", interval=0.2)
        running_s = time.monotonic() - started
        lost = [t for t in tasks if coordinator.task(t)["state"] not in ("AVAILABLE", "CLAIMED", "COMPLETE")]
        health = json.load(urllib.request.urlopen(coordinator.url + "/health", timeout=5))  # noqa: S310
        story = health["spot"].get("vm2", {})
        print(f"Spot preemption of a VM of {len(AGENTS)} agents, each holding a task (coordinator, Compute API "
              f"emulator and agent-leaving as processes; notice {NOTICE_S:g} s, watcher every 15 s)")  # fmt: skip
        print(f"  agent-leaving: {leaving.stdout.splitlines()[0]}")
        print(f"  preemption notice -> every task AVAILABLE: {handed_back_s:.2f} s (goal < 10 s); failed attempts "
              f"counted: {sum(attempts)}; tasks lost: {len(lost)} (goal 0)")  # fmt: skip
        print(f"  preemption -> VM running again: {running_s:.1f} s (the {NOTICE_S:g} s notice, then the watcher's "
              f"next look and the start); watcher's story: {story.get('state')}")  # fmt: skip
    finally:
        coordinator.close()
        emulator.close()


def _status(emulator: Emulator) -> str:
    return emulator.instance("vm2")["status"]


if __name__ == "__main__":
    main()
