#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A pod beside the VMs: its first converge against a VM's, its no-op re-run ÷ ping, and a start's way back.

Starts three containers on one podman network: vm-1 (the test bed's VM
image: the coordinator and agents A-D), vm-2 (the same image: agents E-H)
and a pod (the project's pod image: no systemd, a volume at /workspace,
agents P and Q, reaching vm-1 through its SSH tunnel). All three are
reached with podman exec, so a VM host and the pod host are timed alike.
Prints:

- the first converge of the coordinator's VM, then (``--limit``) of a VM
  host and of the pod host, each with its agents;
- the no-op re-run of the whole site ÷ ``ansible -m ping`` on its hosts, and
  of the pod alone (``--limit``: then the launcher checks the relay's release
  there itself, as the coordinator's play did not name it), each the median
  of 3;
- a start of the pod as RunPod makes one (a new container on the same
  volume, its container disk new) → both its agents registered again with
  the coordinator, with no run of Ansible.

Removes the containers and the volume at the end.
Run it after `make setup`: .venv/bin/python benchmarks/pod_host.py
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
NET = "bench-pod-net"
VM1, VM2, POD = "bench-pod-vm1", "bench-pod-vm2", "bench-pod-pod"
VOLUME = f"{POD}-workspace"
VM_IMAGE, POD_IMAGE = "localhost/debian-systemd:bookworm", "localhost/central-mcp-pod:bookworm"
ROUNDS = 3
CLI = "/opt/central-mcp/current/bin/central-mcp --token-file /etc/central-mcp/api.token --json agents"


def podman(*args: str, check: bool = True) -> str:
    return subprocess.run(["podman", *args], check=check, capture_output=True, text=True).stdout


def inventory(path: Path, credentials: Path) -> Path:
    agents = {VM1: "ABCD", VM2: "EFGH", POD: "PQ"}
    host_vars = {host: {"central_mcp_agents": [{"name": n, "role": "bench"} for n in names]}
                 for host, names in agents.items()}  # fmt: skip
    host_vars[POD].update(launcher_persistent_root="/workspace", central_mcp_tunnel=True, runpod_cost_per_hour=0.44)
    doc = {
        "all": {
            "vars": {
                "ansible_connection": "containers.podman.podman",
                "ansible_python_interpreter": "/usr/bin/python3",
                "coordinator_credentials_dir": str(credentials),
                "launcher_credentials_dir": str(credentials),
                "coordinator_api_token": "bench-pod-coordinator-api-token-0123456789",
                "launcher_anthropic_api_key": "bench-pod-api-secret-0123456789abcdef",
                "launcher_agent_mode": "interactive",  # long-lived CLIs: each registers when it starts
            },
            "children": {"coordinator": {"hosts": {VM1: None}}, "agents": {"hosts": host_vars}},
        }
    }
    path.write_text(yaml.safe_dump(doc))
    return path


def ansible(*args: str) -> float:
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")}
    started = time.monotonic()
    done = subprocess.run([*args], cwd=REPO, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(args[:4])} failed:\n{done.stdout[-3000:]}{done.stderr[-1000:]}")
    return time.monotonic() - started


def site(inv: Path, *limit: str) -> float:
    return ansible(str(BIN / "ansible-playbook"), "-i", str(inv), "playbooks/site.yml", *limit)


def sessions() -> dict[str, int]:
    """How many times each agent registered (a CLI's MCP session) with the coordinator."""
    try:
        agents = json.loads(podman("exec", VM1, "sh", "-c", CLI))["agents"]
    except (subprocess.CalledProcessError, ValueError):
        return {}
    return {a["name"]: a.get("session_count") or 0 for a in agents}


def start_pod() -> None:
    podman("run", "--detach", "--name", POD, "--hostname", POD, "--network", NET, "--volume",
           f"{VOLUME}:/workspace", POD_IMAGE)  # fmt: skip


def main() -> None:
    podman("network", "create", NET, check=False)
    for name in (VM1, VM2):
        podman("run", "--detach", "--name", name, "--hostname", name, "--network", NET, "--systemd=always",
               "--cap-add", "NET_ADMIN", VM_IMAGE, "/sbin/init")  # fmt: skip
    start_pod()
    try:
        time.sleep(5)
        with tempfile.TemporaryDirectory(prefix="central-mcp-pod-bench-") as tmp:
            inv = inventory(Path(tmp) / "inventory.yml", Path(tmp) / "credentials")
            first_vm1 = site(inv, "--limit", VM1)
            first_vm2 = site(inv, "--limit", VM2)
            first_pod = site(inv, "--limit", POD)
            print(f"first converge (podman exec; the coordinator's VM first, {first_vm1:.1f} s, with agents A-D):")
            print(f"  a VM host, agents E-H:   {first_vm2:6.1f} s")
            print(f"  the pod host, agents P-Q: {first_pod:6.1f} s  (no systemd: the boot starter, the tunnel)")

            for label, hosts in (("the whole site, 3 hosts", "all"), ("--limit the pod", POD)):
                limit = () if hosts == "all" else ("--limit", hosts)
                noops = [site(inv, *limit) for _ in range(ROUNDS)]
                pings = [ansible(str(BIN / "ansible"), "-i", str(inv), hosts, "-m", "ansible.builtin.ping")
                         for _ in range(ROUNDS)]  # fmt: skip
                noop, ping = statistics.median(noops), statistics.median(pings)
                print(f"no-op re-run, {label}: {noop:.1f} s ÷ ping {ping:.1f} s = {noop / ping:.1f}× "
                      f"(medians of {ROUNDS}: {', '.join(f'{s:.1f}' for s in noops)} ÷ "
                      f"{', '.join(f'{s:.1f}' for s in pings)})")  # fmt: skip

            deadline = time.monotonic() + 240
            while not all(sessions().get(name) for name in "PQ") and time.monotonic() < deadline:
                time.sleep(1)
            before = sessions()
            podman("stop", "--time", "20", POD)
            podman("rm", "--force", POD)
            started = time.monotonic()
            start_pod()
            while not all(sessions().get(name, 0) > before.get(name, 0) for name in "PQ"):  # a new session each
                if time.monotonic() - started > 240:
                    sys.exit("P and Q did not come back within 240 s")
                time.sleep(0.5)
            print(f"pod start (a new container on its volume) -> P and Q registered: {time.monotonic() - started:.1f} s"
                  " (no Ansible; the agents' CLIs wait for the tunnel's coordinator)")  # fmt: skip
    finally:
        if not os.environ.get("KEEP"):  # KEEP=1: leave the containers, to look at them
            podman("rm", "--force", "--time", "0", VM1, VM2, POD, check=False)
            podman("volume", "rm", "--force", VOLUME, check=False)
            podman("network", "rm", NET, check=False)


if __name__ == "__main__":
    main()
