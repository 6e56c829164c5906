#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Profile site.yml from ansible-runner events: a first converge and a no-op re-run.

Starts two fresh VM containers (the test bed's image): vm-a runs the
coordinator and agents A-D, vm-b agents E-H. Prints the ten slowest tasks of
each run, the time per role, and the no-op re-run divided by `ansible -m
ping` on the same hosts (1 host, then 2). Removes the containers at the end.
Run it after `make setup`: .venv/bin/python benchmarks/site_profile.py
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import ansible_runner
import yaml

REPO = Path(__file__).resolve().parents[1]
IMAGE = "localhost/debian-systemd:bookworm"
HOSTS = {"bench-vm-a": "ABCD", "bench-vm-b": "EFGH"}


def podman(*args: str) -> str:
    return subprocess.run(["podman", *args], check=True, capture_output=True, text=True).stdout


def write_inventory(path: Path, hosts: list[str]) -> Path:
    host_vars = {
        name: {"central_mcp_agents": [{"name": a, "role": "bench", "model": "claude-sonnet-4-5"} for a in HOSTS[name]]}
        for name in hosts
    }
    inventory = {
        "all": {
            "vars": {
                "ansible_connection": "containers.podman.podman",
                "ansible_python_interpreter": "/usr/bin/python3",
            },
            "children": {
                "coordinator": {"hosts": {hosts[0]: {}}},
                "agents": {"hosts": {name: host_vars[name] for name in hosts}},
            },
        }
    }
    path.write_text(yaml.safe_dump(inventory))
    return path


def run(inventory: Path, **kwargs) -> tuple[float, list[dict]]:
    """Run through ansible-runner; return the wall time and the events (read before the data dir goes)."""
    env = {
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": f"{REPO / 'collections'}:{Path.home() / '.ansible/collections'}",
        "ANSIBLE_ROLES_PATH": str(REPO / "roles"),
    }
    with tempfile.TemporaryDirectory(prefix="central-mcp-profile-") as data_dir:
        started = time.monotonic()
        result = ansible_runner.run(
            private_data_dir=data_dir,
            project_dir=str(REPO),
            inventory=str(inventory),
            envvars=env,
            quiet=True,
            **kwargs,
        )
        elapsed = time.monotonic() - started
        if result.rc != 0:
            sys.exit(f"run failed ({kwargs}): {result.stdout.read()[-2000:]}")
        return elapsed, list(result.events)


def report(title: str, elapsed: float, events: list[dict]) -> None:
    tasks, roles = [], collections.Counter()
    for event in events:
        data = event.get("event_data", {})
        if event["event"] in ("runner_on_ok", "runner_on_failed", "runner_on_skipped") and "duration" in data:
            tasks.append((float(data["duration"]), data.get("host"), data.get("task")))
            roles[data.get("role") or "(play)"] += float(data["duration"])
    print(f"\n{title}: {elapsed:.1f} s wall")
    print("  ten slowest tasks:")
    for duration, host, task in sorted(tasks, reverse=True)[:10]:
        print(f"    {duration:6.2f} s  {host:<11} {task}")
    print("  time per role (summed over hosts):")
    for role, seconds in roles.most_common():
        print(f"    {seconds:6.1f} s  {role}")


def main() -> None:
    os.environ.setdefault("CONTAINERS_CONF", str(REPO / "tests/testbed/containers.conf"))
    for name in HOSTS:
        subprocess.run(["podman", "rm", "-f", "-t", "3", name], capture_output=True, check=False)
        podman("run", "-d", "--name", name, "--hostname", name, "--systemd=always", IMAGE, "/sbin/init")
    try:
        time.sleep(5)
        with tempfile.TemporaryDirectory() as tmp:
            both = write_inventory(Path(tmp) / "two.yml", list(HOSTS))
            one = write_inventory(Path(tmp) / "one.yml", list(HOSTS)[:1])
            report("first converge, 2 hosts", *run(both, playbook="site.yml"))
            noop_two, events = run(both, playbook="site.yml")
            report("no-op re-run, 2 hosts", noop_two, events)
            noop_one, _ = run(one, playbook="site.yml")
            ping_one, _ = run(one, module="ansible.builtin.ping", host_pattern="all")
            ping_two, _ = run(both, module="ansible.builtin.ping", host_pattern="all")
            print("\nno-op re-run / ping (goal <= 6x):")
            print(f"  1 host : {noop_one:5.1f} s / {ping_one:4.1f} s = {noop_one / ping_one:4.1f}x")
            print(f"  2 hosts: {noop_two:5.1f} s / {ping_two:4.1f} s = {noop_two / ping_two:4.1f}x")
    finally:
        for name in HOSTS:
            subprocess.run(["podman", "rm", "-f", "-t", "3", name], capture_output=True, check=False)


if __name__ == "__main__":
    main()
