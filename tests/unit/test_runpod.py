# SPDX-License-Identifier: Apache-2.0
"""RunPod pods as hosts: the runpod inventory plugin and the runpod_pod module against RunPod's stand-in.

The inventory runs as Ansible runs it (``ansible-inventory`` with an
``*.runpod.yml`` file); the module's real main() runs in-process. Both talk
HTTP to tests/runpod_emulator.py, which keeps pods' state as RunPod's v2 API
documents it (a new SSH port on every start, no address while stopped, 409
for a wrong action, 429 with Retry-After).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from gce_harness import REPO, assert_doc_matches_spec, run_module
from inventory_listing import unwrap

sys.path.insert(0, str(REPO / "tests"))
import runpod_emulator  # noqa: E402
from ansible_collections.central_mcp.agents.plugins.modules import runpod_pod  # noqa: E402

KEY = "rp-test-key"


@pytest.fixture
def runpod(monkeypatch):
    with runpod_emulator.start(KEY, boot_s=0.1) as (api, url):
        monkeypatch.setenv("RUNPOD_API_URL", url)
        monkeypatch.setenv("RUNPOD_API_KEY", KEY)
        yield api


def inventory(tmp_path: Path, config: dict, key: str = KEY) -> tuple[int, dict, str]:
    """``ansible-inventory --list`` of a pods.runpod.yml holding ``config``: (rc, the listing, stderr)."""
    path = tmp_path / "pods.runpod.yml"
    path.write_text(yaml.safe_dump({"plugin": "central_mcp.agents.runpod", **config}))
    env = {
        **os.environ,
        "RUNPOD_API_KEY": key,
        "ANSIBLE_COLLECTIONS_PATH": str(REPO / "collections"),
        "ANSIBLE_INVENTORY_ENABLED": "central_mcp.agents.runpod",
        "ANSIBLE_INVENTORY_UNPARSED_FAILED": "true",
    }
    done = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-inventory"), "-i", str(path), "--list"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    return done.returncode, unwrap(json.loads(done.stdout)) if done.returncode == 0 else {}, done.stderr


def test_running_pods_are_reached_by_direct_ssh_and_priced(runpod, tmp_path: Path) -> None:
    up = runpod.add_pod("gpu-agents-1")
    runpod.add_pod("gpu-agents-2", status="EXITED")
    runpod.add_pod("someone-elses", status="RUNNING")
    runpod.add_pod("cpu-pod", gpu=None, ports=[])
    runpod.add_pod("gpu-agents-../../x")  # not a host name: left out, with a warning
    known = tmp_path / "known"
    rc, listing, err = inventory(
        tmp_path,
        {
            "names": ["gpu-agents-*", "cpu-*"],
            "known_hosts_dir": str(known),
            "groups": {"agents": "runpod_status == 'RUNNING'"},
            "compose": {"launcher_persistent_root": "runpod_volume_path"},
        },
    )
    assert rc == 0, err
    assert "pod 'gpu-agents-../../x'" in err and "is left out: a host name is" in " ".join(err.split())
    hostvars = listing["_meta"]["hostvars"]
    assert set(hostvars) == {"gpu-agents-1", "gpu-agents-2", "cpu-pod"}
    one = hostvars["gpu-agents-1"]
    pod = runpod.pods[up]
    assert (one["ansible_host"], one["ansible_port"], one["ansible_user"]) == (
        "127.0.0.1",
        pod["ssh"]["direct"]["port"],
        "root",
    )
    assert one["runpod_id"] == up and one["runpod_status"] == "RUNNING"
    assert one["runpod_gpu"] == {"id": "NVIDIA GeForce RTX 4090", "count": 1}
    assert one["runpod_cost_per_hour"] == 0.44
    assert one["runpod_volume_path"] == one["launcher_persistent_root"] == "/workspace"
    started = "".join(c for c in pod["startedAt"] if c.isalnum())
    assert one["ansible_ssh_common_args"] == (
        f"-o HostKeyAlias=runpod-{up} -o UserKnownHostsFile={known}/{up}-{started} -o StrictHostKeyChecking=accept-new"
    )
    assert (known.stat().st_mode & 0o777) == 0o700
    stopped = hostvars["gpu-agents-2"]
    assert "ansible_host" not in stopped and stopped["runpod_cost_per_hour"] == 0.0
    assert "ansible_host" not in hostvars["cpu-pod"]  # 22/tcp not exposed: no direct SSH
    assert hostvars["cpu-pod"]["runpod_gpu"] is None
    assert set(listing["runpod"]["hosts"]) == {"gpu-agents-1", "gpu-agents-2", "cpu-pod"}
    assert listing["runpod_exited"]["hosts"] == ["gpu-agents-2"]
    assert set(listing["agents"]["hosts"]) == {"gpu-agents-1", "cpu-pod"}


def test_a_pod_started_again_has_a_new_port_and_its_host_key_is_learned_per_start(runpod, tmp_path: Path) -> None:
    pod_id = runpod.add_pod("gpu-agents-1")
    config = {"known_hosts_dir": str(tmp_path / "known")}
    _, before, _ = inventory(tmp_path, config)
    runpod.handle("POST", f"/v2/pods/{pod_id}/action", {"action": "stop"})
    runpod.handle("POST", f"/v2/pods/{pod_id}/action", {"action": "start"})
    runpod.pods[pod_id]["_up_at"] = 0
    _, after, _ = inventory(tmp_path, config)
    old, new = (x["_meta"]["hostvars"]["gpu-agents-1"] for x in (before, after))
    assert old["ansible_port"] != new["ansible_port"]
    assert old["ansible_ssh_common_args"] != new["ansible_ssh_common_args"]  # a new start, a new key file
    _, per_pod, _ = inventory(tmp_path, {**config, "host_key_scope": "pod"})
    assert (
        f"UserKnownHostsFile={tmp_path / 'known'}/{pod_id} "
        in (per_pod["_meta"]["hostvars"]["gpu-agents-1"]["ansible_ssh_common_args"])
    )


def test_the_listing_waits_out_the_rate_limit(runpod, tmp_path: Path) -> None:
    runpod.add_pod("gpu-agents-1")
    runpod.fail_next(429, retry_after=1)
    runpod.fail_next(503)
    rc, listing, err = inventory(tmp_path, {"known_hosts_dir": str(tmp_path / "k")})
    assert rc == 0, err
    assert [r for r in runpod.requests if r[0] == "GET"] == [("GET", "/v2/pods")] * 3
    assert listing["_meta"]["hostvars"]["gpu-agents-1"]["runpod_status"] == "RUNNING"


@pytest.mark.parametrize(
    ("setup", "config", "key", "message"),
    [
        (None, {}, "wrong-key", r"HTTP 401 invalid bearer token: check the API key \(RUNPOD_API_KEY"),
        ("twins", {}, KEY, r"several pods have the same name: gpu-agents-1 \(ids \w+, \w+\)"),
        (None, {"statuses": ["RUNNING", "ASLEEP"]}, KEY, "statuses ASLEEP: not a pod state"),
    ],
    ids=["wrong-key", "twins", "bad-status"],
)
def test_the_inventory_fails_naming_what_is_wrong(runpod, tmp_path: Path, setup, config, key, message) -> None:
    runpod.add_pod("gpu-agents-1")
    if setup == "twins":
        runpod.add_pod("gpu-agents-1", status="EXITED")
    rc, _, err = inventory(tmp_path, config, key=key)
    assert rc != 0
    assert re.search(message, " ".join(err.split())), err


def test_module_stops_and_starts_a_pod_and_reports_its_new_address(runpod) -> None:
    pod_id = runpod.add_pod("gpu-agents-1")
    port = runpod.pods[pod_id]["ssh"]["direct"]["port"]
    check = run_module(runpod_pod, {"name": "gpu-agents-1", "state": "stopped"}, check=True, diff=True)
    assert check["changed"] and check["action"] == "stop" and check["rc"] == 0
    assert check["diff"] == {"before": {"status": "RUNNING"}, "after": {"status": "EXITED"}}
    assert runpod.pods[pod_id]["status"] == "RUNNING" and all(m == "GET" for m, _ in runpod.requests)

    stopped = run_module(runpod_pod, {"name": "gpu-agents-1", "state": "stopped"})
    assert stopped["changed"] and stopped["pod"]["status"] == "EXITED" and "ssh_port" not in stopped
    assert stopped["pod"]["cost"] == 0.0
    runpod.requests.clear()
    again = run_module(runpod_pod, {"name": "gpu-agents-1", "state": "stopped"})
    assert not again["changed"] and runpod.requests == [("GET", "/v2/pods")]  # one read, nothing else

    started = run_module(runpod_pod, {"name": "gpu-agents-1", "state": "running", "wait_timeout": 30})
    assert started["changed"] and started["action"] == "start" and started["pod"]["status"] == "RUNNING"
    assert started["ssh_host"] == "127.0.0.1" and started["ssh_port"] != port
    assert "env" not in started["pod"] and started["pod"]["env_names"] == []


def test_an_api_url_given_to_the_module_beats_the_environments(runpod, monkeypatch) -> None:
    url = os.environ["RUNPOD_API_URL"]
    runpod.add_pod("gpu-agents-1")
    monkeypatch.setenv("RUNPOD_API_URL", "http://127.0.0.1:9")  # nothing listens there
    seen = run_module(runpod_pod, {"name": "gpu-agents-1", "api_url": url})
    assert not seen["changed"] and seen["pod"]["status"] == "RUNNING"


def test_module_creates_a_missing_pod_and_deletes_one(runpod) -> None:
    missing = run_module(runpod_pod, {"name": "gpu-agents-3"})
    assert missing["rc"] == 1 and "no pod is named gpu-agents-3: give image and gpu_type" in missing["msg"]
    created = run_module(
        runpod_pod,
        {
            "name": "gpu-agents-3",
            "image": "registry.example/central-mcp-pod:1",
            "gpu_type": "NVIDIA RTX A5000",
            "env": {"SECRET": "s3cr3t"},
            "wait_timeout": 30,
        },
    )
    assert created["changed"] and created["action"] == "create" and created["rc"] == 0
    assert created["pod"]["status"] == "RUNNING" and created["ssh_port"] > 0
    assert created["pod"]["env_names"] == ["SECRET"] and "s3cr3t" not in json.dumps(created)
    pod = runpod.pods[created["pod"]["id"]]
    assert pod["ports"] == ["22/tcp"] and pod["mounts"] == {"persistent": {"size": 20, "path": "/workspace"}}
    assert pod["gpu"] == {"id": "NVIDIA RTX A5000", "count": 1}

    gone = run_module(runpod_pod, {"name": "gpu-agents-3", "state": "absent"})
    assert gone["changed"] and gone["action"] == "terminate" and gone["pod"] == {}
    assert runpod.pods == {}
    assert not run_module(runpod_pod, {"name": "gpu-agents-3", "state": "absent"})["changed"]


def test_a_create_is_tried_once_when_runpod_may_have_made_the_pod(runpod) -> None:
    args = {"name": "gpu-agents-4", "image": "registry.example/central-mcp-pod:1", "gpu_type": "NVIDIA RTX A5000"}
    runpod.fail_next(503, method="POST")  # the create is not tried again: RunPod may have made the pod
    failed = run_module(runpod_pod, args)
    assert failed["rc"] == 1 and failed["status"] == 503 and "HTTP 503" in failed["msg"]
    assert [m for m, _ in runpod.requests] == ["GET", "POST"] and runpod.pods == {}
    runpod.fail_next(429, retry_after=1, method="POST")  # a 429 was not acted on: tried again after Retry-After
    made = run_module(runpod_pod, {**args, "wait": False})
    assert made["rc"] == 0 and made["action"] == "create" and len(runpod.pods) == 1
    assert [m for m, _ in runpod.requests][2:] == ["GET", "POST", "POST"]


def test_module_refuses_twins_and_says_what_runpod_refused(runpod) -> None:
    first = runpod.add_pod("gpu-agents-1")
    runpod.add_pod("gpu-agents-1", status="EXITED")
    twins = run_module(runpod_pod, {"name": "gpu-agents-1", "state": "stopped"})
    assert twins["rc"] == 1 and "several pods are named gpu-agents-1" in twins["msg"] and "give id" in twins["msg"]
    runpod.pods[first]["locked"] = True
    refused = run_module(runpod_pod, {"name": "gpu-agents-1", "id": first, "state": "stopped"})
    assert refused["rc"] == 1 and refused["status"] == 409
    assert "HTTP 409" in refused["msg"] and "check that it is not locked" in refused["msg"]


def test_module_manual_matches_its_options() -> None:
    assert_doc_matches_spec("runpod_pod", runpod_pod.ARGUMENT_SPEC)
