# SPDX-License-Identifier: Apache-2.0
"""A Spot VM preempted and back: the real coordinator, its Spot watcher and the Compute API emulator.

The VM is the emulator's; what runs on it is played here with the calls its
pieces make: the runtime's heartbeat (with the kernel's boot ID) and, at the
preemption's notice, agent-leaving's report (``/runtime/leaving``). The
watcher reads the VM through the emulator with the token the coordinator
VM's metadata server gives, finds the preemption among the zone's
operations and starts the VM again. Molecule's multi_host scenario does the
same with two VM containers and the real units.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.fleet import REPO, Coordinator, wait_for

PROJECT, ZONE = "fleet-project", "us-central1-a"
VM1_BOOT, VM2_BOOT, VM2_NEXT_BOOT = (
    "1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9",
    "2a3b4c5d-6e7f-4a8b-9c0d-1e2f3a4b5c6d",
    "3b4c5d6e-7f80-4b9c-8d1e-2f3a4b5c6d7e",
)


class Emulator:
    """The Compute API emulator as its own process, in the project's venv (it has Google's discovery document)."""

    def __init__(self) -> None:
        python = REPO / ".venv" / "bin" / "python"
        argv = [str(python), "-m", "tests.gce_emulator", "--port", "0", "--start-s", "0.5", "--stop-s", "0.5"]
        self.proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()  # gce emulator: http://127.0.0.1:PORT/compute/v1 (admin: ...)
        self.url = line.split()[2].removesuffix("/compute/v1")

    def admin(self, verb: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.url}/_emulator/{path}", data=data, method=verb)
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 (the local emulator)
            return json.load(answer)

    def instance(self, name: str) -> dict[str, Any]:
        return next(i for i in self.admin("GET", "state")["instances"] if i["name"] == name)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    if not (REPO / ".venv" / "bin" / "python").exists():
        pytest.fail("the Compute API emulator runs in the project's venv: bash tests/testbed/setup.sh")
    emu = Emulator()
    try:
        yield emu
    finally:
        emu.close()


def runtime(coordinator: Coordinator, name: str, route: str, body: dict[str, Any]) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"{coordinator.url}/runtime/{route}", data=json.dumps(body).encode(), method="POST"
    )
    request.add_header("Authorization", f"Bearer {coordinator.tokens[name]}")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as answer:
        data = answer.read()
        return answer.status, json.loads(data) if data else None


def test_a_preempted_spot_vm_loses_no_task_and_is_started_again(tmp_path: Path, emulator: Emulator) -> None:
    for name, model in (("vm1", "STANDARD"), ("vm2", "SPOT")):
        body = {"project": PROJECT, "zone": ZONE, "name": name, "machineType": "e2-standard-2",
                "provisioningModel": model}  # fmt: skip
        emulator.admin("POST", "instances", body)
    coordinator = Coordinator(tmp_path / "coordinator", {"A": "backend", "E": "backend"}, liveness_s=0.2)
    spec = json.loads((coordinator.root / "agents.json").read_text())
    spec["agents"][1]["host"] = "vm2"
    spec["agents"][0]["host"] = "vm1"
    spec["hosts"] = [
        {"name": "vm1", "coordinator": True, "machine_type": "e2-standard-2", "provisioning_model": "standard"},
        {"name": "vm2", "machine_type": "e2-standard-2", "provisioning_model": "spot", "monthly_cost": 17.47,
         "gce": {"project": PROJECT, "zone": ZONE, "instance": "vm2"}},
    ]  # fmt: skip
    (coordinator.root / "agents.json").write_text(json.dumps(spec))
    coordinator.env.update(
        CENTRAL_MCP_COMPUTE_URL=f"{emulator.url}/compute/v1",
        CENTRAL_MCP_METADATA_URL=f"{emulator.url}/_emulator/metadata/{PROJECT}/{ZONE}/vm1",
        CENTRAL_MCP_SPOT_S="0.5",
    )
    coordinator.start()
    try:
        task = coordinator.create_task("a long job on the Spot VM", role="backend")
        assert runtime(coordinator, "E", "heartbeat", {"activity": "idle", "boot_id": VM2_BOOT})[0] == 200
        status, claimed = runtime(coordinator, "E", "next", {"wait_s": 0})
        assert status == 200 and claimed["task"]["id"] == task["id"]
        runtime(coordinator, "E", "heartbeat", {"activity": "working", "task_id": task["id"], "boot_id": VM2_BOOT})

        # Compute Engine takes vm2 back: the notice (its guest shuts down, agent-leaving reports), then STOP.
        emulator.admin("POST", "preempt", {"project": PROJECT, "zone": ZONE, "name": "vm2", "noticeS": 1})
        noticed = time.monotonic()
        reason = "VM vm2 was preempted by Compute Engine (Spot)"
        status, left = runtime(coordinator, "E", "leaving", {"reason": reason, "boot_id": VM2_BOOT})
        assert status == 200 and left["handed_back"] == [task["id"]]
        back_on_board = wait_for(lambda: coordinator.task(task["id"])["state"] == "AVAILABLE", 10, "hand-back")
        assert back_on_board and time.monotonic() - noticed < 10
        assert coordinator.task(task["id"])["attempts"] == 0  # not the task's fault

        # A is on the standard VM 1: it takes the task while vm2 is gone.
        runtime(coordinator, "A", "heartbeat", {"activity": "idle", "boot_id": VM1_BOOT})
        assert runtime(coordinator, "A", "next", {"wait_s": 5})[1]["task"]["id"] == task["id"]

        # The watcher sees vm2 TERMINATED by a preemption and starts it again.
        wait_for(lambda: emulator.instance("vm2")["status"] == "RUNNING", 20, "vm2 started again by the watcher")
        starts = [op for op in emulator.admin("GET", "state")["operations"] if op["operationType"] == "start"]
        assert len(starts) == 1
        story = wait_for(lambda: _story(coordinator, "running"), 10, "the watcher's story")
        assert story["down_s"] is not None and 0 < story["down_s"] < 20 and story["starts"] == 0
        notes = " | ".join(n["text"] for n in coordinator.api("GET", "/api/notes")["notes"])
        assert "Spot VM vm2 was preempted" in notes and "Spot VM vm2 is running again after" in notes

        # vm2's agent comes back with the VM's next boot and takes new work.
        state = runtime(coordinator, "E", "heartbeat", {"activity": "idle", "boot_id": VM2_NEXT_BOOT})[1]["state"]
        assert state == "idle"
        second = coordinator.create_task("the next job", role="backend")
        assert runtime(coordinator, "E", "next", {"wait_s": 5})[1]["task"]["id"] == second["id"]
    finally:
        coordinator.close()


def test_a_zone_without_capacity_is_tried_again_later(tmp_path: Path, emulator: Emulator) -> None:
    """The first start fails (ZONE_RESOURCE_POOL_EXHAUSTED, as a Spot start does when the zone has no capacity):
    the watcher waits twice its interval and starts it again."""
    body = {"project": PROJECT, "zone": ZONE, "name": "vm2", "provisioningModel": "SPOT"}
    emulator.admin("POST", "instances", body)
    emulator.admin("POST", "faults", {"kind": "operation_error", "method": "instances.start"})
    coordinator = _watching(tmp_path, emulator, "0.5")
    try:
        emulator.admin("POST", "preempt", {"project": PROJECT, "zone": ZONE, "name": "vm2", "noticeS": 0})
        wait_for(lambda: emulator.instance("vm2")["status"] == "RUNNING", 30, "vm2 started on the second try")
        starts = [op for op in emulator.admin("GET", "state")["operations"] if op["operationType"] == "start"]
        assert len(starts) == 2 and "ZONE_RESOURCE_POOL_EXHAUSTED" in json.dumps(starts[0].get("error"))
        gap = _seconds(starts[1]["insertTime"]) - _seconds(starts[0]["insertTime"])
        assert gap >= 1.0  # spot_s x 2 after the first attempt
    finally:
        coordinator.close()


def _watching(tmp_path: Path, emulator: Emulator, spot_s: str) -> Coordinator:
    coordinator = Coordinator(tmp_path / "coordinator", {"E": "backend"})
    spec = json.loads((coordinator.root / "agents.json").read_text())
    spec["hosts"] = [{"name": "vm2", "provisioning_model": "spot",
                      "gce": {"project": PROJECT, "zone": ZONE, "instance": "vm2"}}]  # fmt: skip
    (coordinator.root / "agents.json").write_text(json.dumps(spec))
    coordinator.env.update(
        CENTRAL_MCP_COMPUTE_URL=f"{emulator.url}/compute/v1",
        CENTRAL_MCP_METADATA_URL=f"{emulator.url}/_emulator/metadata/{PROJECT}/{ZONE}/vm2",
        CENTRAL_MCP_SPOT_S=spot_s,
    )
    return coordinator.start()


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def test_a_spot_vm_a_person_stopped_is_left_stopped(tmp_path: Path, emulator: Emulator) -> None:
    body = {"project": PROJECT, "zone": ZONE, "name": "vm2", "provisioningModel": "SPOT", "status": "TERMINATED"}
    emulator.admin("POST", "instances", body)
    coordinator = _watching(tmp_path, emulator, "0.3")
    try:
        story = wait_for(lambda: _spot(coordinator).get("vm2"), 10, "the watcher's first look")
        time.sleep(1)
        assert _spot(coordinator)["vm2"]["state"] == "stopped" and story["status"] == "TERMINATED"
        assert emulator.instance("vm2")["status"] == "TERMINATED"
        assert not [op for op in emulator.admin("GET", "state")["operations"] if op["operationType"] == "start"]
    finally:
        coordinator.close()


def _story(coordinator: Coordinator, state: str) -> dict[str, Any] | None:
    story = _spot(coordinator).get("vm2")
    return story if story and story["state"] == state else None


def _spot(coordinator: Coordinator) -> dict[str, Any]:
    with urllib.request.urlopen(coordinator.url + "/health", timeout=5) as answer:  # noqa: S310 (local)
        return json.load(answer)["spot"]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
