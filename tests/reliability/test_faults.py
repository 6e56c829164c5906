# SPDX-License-Identifier: Apache-2.0
"""Faults on the converged VM: each is injected, then the fleet must be whole again.

After every fault the same check runs (`recovered`): the agents run in tmux,
/health is good, every task the coordinator acknowledged with 201 at any time
in this file is still there, and SQLite's `PRAGMA integrity_check` says ok.
The data directory lives on a 48 MB tmpfs of this machine bind-mounted into
the VM (see conftest's `_boot`), so "disk full" is real ENOSPC and survives a
container restart like a disk would.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from conftest import (
    AGENTS,
    REPO,
    VM,
    agent_pids,
    fleet_is_up,
    health,
    integrity,
    note,
    podman,
    record,
    sh,
    task_ids,
    wait_fleet,
    wait_until,
)

sys.path.insert(0, str(REPO))
from tests.gce_emulator import start as start_emulator  # noqa: E402

COMMITTED: set[int] = set()  # every task id answered 201, over the whole file
FAULTS: dict[str, bool] = {}


def api(*args: str, timeout: float = 120) -> dict:
    return json.loads(sh("python3 /usr/local/sbin/rel_vm_api.py " + " ".join(args), timeout=timeout))


@pytest.fixture(scope="module", autouse=True)
def helper(rel_vm):
    COMMITTED.update(api("post", "5")["acked"])
    yield
    survived = sum(FAULTS.values())
    record("faults", f"{len(FAULTS)} injected / {survived} survived")
    note("Faults: " + ", ".join(f"{k} {'ok' if v else 'FAILED'}" for k, v in FAULTS.items()))


def recovered(fault: str, timeout: float = 120) -> None:
    """The fleet is back, nothing committed is lost, the database is sound; records the fault's outcome."""
    FAULTS[fault] = False
    wait_until(lambda: health() == 200, timeout, "coordinator /health 200")
    wait_fleet(timeout)
    missing = COMMITTED - task_ids()
    record("tasks_lost", len(missing))
    assert not missing, f"acknowledged tasks lost: {sorted(missing)[:20]}"
    assert integrity() == "ok"
    FAULTS[fault] = True


def main_pid(unit: str) -> int:
    return int(sh(f"systemctl show -p MainPID --value {unit}").strip())


def test_kill_9_coordinator_during_a_burst_of_writes():
    writer = subprocess.Popen(
        ["podman", "exec", VM, "python3", "/usr/local/sbin/rel_vm_api.py", "burst", "12"],
        stdout=subprocess.PIPE,
        text=True,
    )
    time.sleep(3)
    pid = main_pid("central-mcp.service")
    sh(f"kill -9 {pid}")
    out, _ = writer.communicate(timeout=60)
    burst = json.loads(out)
    COMMITTED.update(burst["acked"])
    assert burst["acked"], burst
    wait_until(lambda: main_pid("central-mcp.service") not in (0, pid), 30, "a new coordinator process")
    recovered("kill -9 coordinator during writes")
    note(f"kill -9 during writes: {len(burst['acked'])} tasks acknowledged, refused while down: {burst['errors']}")


def test_kill_9_tmux_server_brings_every_agent_back():
    before = wait_fleet()
    server = sh("cat /run/central-mcp-agents/tmux.pid").strip()
    sh(f"kill -9 {server}")
    after = wait_until(
        lambda: (up := fleet_is_up()) and all(up[n] != before[n] for n in AGENTS) and up, 90, "new agent processes"
    )
    assert set(after) == set(AGENTS)
    recovered("kill -9 tmux server")


def test_kill_9_one_agent_cli_restarts_only_it():
    before = wait_fleet()
    sh(f"kill -9 {before['A']}")
    killed = time.monotonic()
    wait_until(lambda: agent_pids().get("A") not in (None, before["A"]), 60, "agent A started again", 0.5)
    back_s = time.monotonic() - killed
    after = agent_pids()
    assert {n: after[n] for n in AGENTS if n != "A"} == {n: before[n] for n in AGENTS if n != "A"}
    assert back_s >= 4, f"back after {back_s:.1f}s: the 5 s back-off was not kept"
    recovered("kill -9 agent CLI")
    note(f"kill -9 of agent A's CLI: back after {back_s:.1f} s (back-off 5 s), the others untouched")


def test_restart_of_the_vm_container_brings_everything_back():
    podman("restart", "--time", "20", VM, timeout=120)
    recovered("VM container restart", timeout=150)


def test_data_directory_full_refuses_writes_cleanly_and_recovers(rel_vm):
    if rel_vm.data_mount is None:
        pytest.skip("no tmpfs could be mounted on this machine for the VM's data directory")
    filler = rel_vm.data_mount / "filler"
    subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=1M"], capture_output=True)  # stops at ENOSPC
    try:
        # Until a write is refused (SQLite's WAL may still have room for a few), then 3 more.
        filled = api("fill", "3000", "8000", timeout=300)
        COMMITTED.update(filled["acked"])
        refused = [(s, b) for s, b in filled["answers"] if s != 201]
        assert refused, f"{len(filled['acked'])} writes accepted on a full disk, none refused"
        for status, body in refused:
            assert 400 <= status < 600, (status, body)
            assert isinstance(json.loads(body), dict), body  # a JSON error, not a stack trace
        assert health() in (200, 503)  # still answering
    finally:
        filler.unlink(missing_ok=True)
    again = wait_until(lambda: api("post", "1")["acked"], 30, "writes accepted again once space returns")
    COMMITTED.update(again)
    recovered("data directory full")
    note(
        f"disk full: writes refused with {sorted({s for s, _ in refused})} after {len(filled['acked'])} more were "
        f"accepted (room left in the WAL), e.g. {refused[0][1][:160]!r}; accepted again once space returned"
    )


def test_coordinator_down_during_a_site_run_fails_clearly_and_keeps_the_agents(rel_vm):
    """A squatter holds port 3000 (answering 404), so the coordinator cannot come back during the run.

    central-mcp.socket holds the port and starts the service on the next call, so both go first: the
    run then cannot take the port back for the socket, or the service never answers /health.
    """
    before = wait_fleet()
    sh("systemctl stop central-mcp.socket central-mcp.service")
    sh("systemd-run --unit rel-squatter python3 -m http.server 3000 --bind 127.0.0.1 --directory /var/empty")
    try:
        run = rel_vm.run(extravars={"coordinator_health_timeout_s": 8})
        assert run.rc != 0
        messages = " ".join(m for _, _, m in run.failed)
        assert "did not become healthy" in messages or "central-mcp.socket" in messages, run.failed
        assert wait_fleet() == before  # the agents were not stopped or restarted
    finally:
        sh("systemctl stop rel-squatter.service", check=False)
        sh("systemctl start central-mcp.socket")
        sh("systemctl restart central-mcp.service")
    recovered("coordinator down during site.yml")


def test_compute_api_fault_during_a_resize_rolls_back(rel_vm):
    """End to end through site.yml: the VM cannot start on its new type; it runs again on the old one.

    Two 503s are retried first. The module's other faults (429, 403 rate limits, slow or failed
    operations, timeouts, refused credentials) are covered in tests/unit/test_gce_machine_type.py.
    """
    before = wait_fleet()
    gce = {"gce_project": "rel-project", "gce_zone": "us-central1-a", "gce_instance": VM}
    with start_emulator(durations={"stop": 0.2, "start": 0.2, "setMachineType": 0.1}) as emu:
        emu.add_instance(gce["gce_project"], gce["gce_zone"], VM, "e2-micro")
        emu.fault("http", status=503, times=2)  # transient: retried
        emu.fault("operation_error", method="instances.start", times=1)  # zone exhausted on the new type
        run = rel_vm.run(
            extravars={
                **gce,
                "vm_upgrade_machine_type": "e2-standard-4",
                "vm_upgrade_auth_kind": "accesstoken",
                "vm_upgrade_access_token": "rel-emulator-token",
                "vm_upgrade_api_endpoint": emu.api_endpoint,
            }
        )
        vm = emu.instance(gce["gce_project"], gce["gce_zone"], VM)
        assert emu.violations() == []
    assert run.rc != 0
    messages = " ".join(m for _, _, m in run.failed)
    assert "ZONE_RESOURCE_POOL_EXHAUSTED" in messages and "e2-micro" in messages, run.failed
    assert (vm["machineType"].rsplit("/", 1)[-1], vm["status"]) == ("e2-micro", "RUNNING")
    assert wait_fleet() == before
    recovered("Compute API fault during a resize")
