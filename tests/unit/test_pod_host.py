# SPDX-License-Identifier: Apache-2.0
"""A pod in the test bed, reached as Ansible reaches a RunPod pod: the inventory, direct SSH, stop and start.

The pod is a podman container of the project's agent image (images/pod: no
systemd; tini and the image's start script as PID 1, sshd started by it) with
a volume at /workspace. RunPod's stand-in (tests/runpod_emulator.py) drives
it as RunPod drives a pod: a pod that runs is a container publishing 22 on a
port of its own; a stop removes the container (its disk is gone) and keeps
the volume; a start makes a new container on a new port. Ansible finds it
through the runpod inventory plugin and changes its state with runpod_pod.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from gce_harness import REPO

sys.path.insert(0, str(REPO / "tests"))
import runpod_emulator  # noqa: E402
from gitserver import podman  # noqa: E402

IMAGE = "localhost/central-mcp-pod:bookworm"
KEY = "rp-test-key"
BIN = Path(sys.executable).parent


class Pods:
    """Each RunPod pod as a container: made when it runs, removed (its volume kept) when it stops."""

    def __init__(self, public_key: str) -> None:
        self.public_key = public_key
        self.containers: set[str] = set()
        self.volumes: set[str] = set()

    def run(self, pod: dict) -> int:
        name, volume = f"central-mcp-pod-{pod['id']}", f"central-mcp-pod-{pod['id']}-workspace"
        podman("rm", "--force", name, check=False)
        podman("run", "--detach", "--name", name, "--publish", "127.0.0.1::22", "--volume", f"{volume}:/workspace",
               "--env", f"PUBLIC_KEY={self.public_key}", IMAGE)  # fmt: skip
        self.containers.add(name)
        self.volumes.add(volume)
        for _ in range(100):  # sshd is up once the start script says so
            if "sshd listening" in podman("logs", name, check=False).stdout:
                break
            time.sleep(0.1)
        return int(podman("port", name, "22/tcp").stdout.strip().rsplit(":", 1)[1])

    def on_state(self, pod: dict, status: str) -> None:
        if status in ("EXITED", "ERROR", "TERMINATED"):  # the container disk goes with the container
            podman("rm", "--force", "--time", "2", f"central-mcp-pod-{pod['id']}", check=False)
        if status == "TERMINATED":
            podman("volume", "rm", "--force", f"central-mcp-pod-{pod['id']}-workspace", check=False)

    def clean(self) -> None:
        for name in self.containers:
            podman("rm", "--force", "--time", "0", name, check=False)
        for volume in self.volumes:
            podman("volume", "rm", "--force", volume, check=False)


@pytest.fixture
def pod_bed(tmp_path: Path):
    if shutil.which("podman") is None or podman("image", "exists", IMAGE, check=False).returncode != 0:
        pytest.skip(f"podman or {IMAGE} is missing: tests/testbed/setup.sh builds it")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "id")], check=True)
    pods = Pods((tmp_path / "id.pub").read_text().strip())
    with runpod_emulator.start(KEY, boot_s=0.0) as (api, url):
        api.port_for(pods.run)
        api.on_state = pods.on_state
        (tmp_path / "pods.runpod.yml").write_text(
            yaml.safe_dump({
                "plugin": "central_mcp.agents.runpod",
                "names": ["gpu-agents-*"],
                "host_key_scope": "pod",
                "known_hosts_dir": str(tmp_path / "known"),
                "groups": {"agents": "runpod_status == 'RUNNING'"},
            })
        )  # fmt: skip
        env = {
            **os.environ,
            "RUNPOD_API_KEY": KEY,
            "RUNPOD_API_URL": url,
            "ANSIBLE_COLLECTIONS_PATH": str(REPO / "collections"),
            "ANSIBLE_PRIVATE_KEY_FILE": str(tmp_path / "id"),
            "ANSIBLE_PYTHON_INTERPRETER": "/usr/bin/python3",
            "ANSIBLE_HOST_KEY_CHECKING": "true",
        }
        try:
            yield api, tmp_path, env
        finally:
            pods.clean()


def ansible(tmp_path: Path, env: dict, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "ansible"), "-i", str(tmp_path / "pods.runpod.yml"), *args],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=180,
    )  # fmt: skip


def test_a_pod_is_reached_over_ssh_and_comes_back_the_same_host_after_a_stop(pod_bed) -> None:
    api, tmp_path, env = pod_bed
    pod_id = api.add_pod("gpu-agents-1", status="PROVISIONING")
    api.handle("GET", "/v2/pods", None)  # RunPod boots it: its container runs now

    write = "echo kept > /workspace/kept; echo gone > /root/gone; cat /proc/1/cmdline | tr '\\0' ' '"
    first = ansible(tmp_path, env, "agents", "-m", "ansible.builtin.shell", "-a", write)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "tini -- /usr/local/sbin/central-mcp-pod-start" in first.stdout  # no systemd: the image's start
    # The roles' first look at a host (host_info) says plainly that a pod cannot run their units yet.
    units = ansible(
        tmp_path, env, "agents", "-m", "central_mcp.agents.host_info", "-a", "units=central-mcp-agents.service"
    )
    assert units.returncode != 0
    assert "not booted with systemd (its PID 1 is tini)" in units.stdout, units.stdout + units.stderr
    port = api.pods[pod_id]["ssh"]["direct"]["port"]

    local = {**env, "ANSIBLE_INVENTORY": "localhost,"}
    for state in ("stopped", "running"):
        done = subprocess.run(
            [str(BIN / "ansible"), "localhost", "-c", "local", "-m", "central_mcp.agents.runpod_pod",
             "-a", f"name=gpu-agents-1 state={state} wait_timeout=60"],
            capture_output=True, text=True, env=local, cwd=tmp_path, timeout=180,
        )  # fmt: skip
        assert done.returncode == 0 and "CHANGED" in done.stdout, done.stdout + done.stderr
    assert api.pods[pod_id]["ssh"]["direct"]["port"] != port  # a new start, a new port

    # The same host key at the new address (kept on the volume), checked, not learned again: the first
    # connection's key is the only one known under the pod's alias.
    again = ansible(tmp_path, env, "agents", "-m", "ansible.builtin.shell", "-a",
                    "cat /workspace/kept; cat /root/gone 2>/dev/null || echo 'container disk new'")  # fmt: skip
    assert again.returncode == 0, again.stdout + again.stderr
    assert "kept" in again.stdout and "container disk new" in again.stdout
    known = tmp_path / "known" / pod_id
    assert len(known.read_text().splitlines()) == 1  # one key, learned at the first start (names may be hashed)
    found = subprocess.run(["ssh-keygen", "-F", f"runpod-{pod_id}", "-f", str(known)], capture_output=True, text=True)
    assert found.returncode == 0, found.stderr

    listing = subprocess.run(
        [str(BIN / "ansible-inventory"), "-i", str(tmp_path / "pods.runpod.yml"), "--list"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert json.loads(listing.stdout)["agents"]["hosts"] == ["gpu-agents-1"]

    # An image that makes new host keys at every start (keys not on the volume) is refused under the pod's
    # alias, not silently learned again.
    wiped = ansible(
        tmp_path, env, "agents", "-m", "ansible.builtin.shell", "-a", "rm -f /workspace/.central-mcp/ssh/ssh_host_*"
    )
    assert wiped.returncode == 0, wiped.stdout + wiped.stderr
    api.handle("POST", f"/v2/pods/{pod_id}/action", {"action": "stop"})
    api.handle("POST", f"/v2/pods/{pod_id}/action", {"action": "start"})
    api.handle("GET", "/v2/pods", None)
    refused = ansible(tmp_path, env, "agents", "-m", "ansible.builtin.ping")
    assert refused.returncode != 0
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in refused.stdout + refused.stderr
