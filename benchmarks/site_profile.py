#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Profile site.yml from ansible-runner events: a first converge and a no-op re-run.

Starts two fresh VM containers (the test bed's image): vm-a runs the
coordinator and agents A-D, vm-b agents E-H. Prints the ten slowest tasks of
each run, the time per role, and the no-op re-run divided by `ansible -m
ping` on the same hosts (1 host, then 2; each the median of 3 runs), over
two connections, and then with a Compute identity:

- podman: the test bed's own (podman exec; that plugin cannot pipeline, so
  every module run costs several podman calls);
- ssh: what a real VM is reached by, with pipelining and a persistent
  control connection as ansible.cfg sets them (sshd is installed in the
  containers after the converge; root logs in with a throw-away key);
- ssh + gce: the same hosts known as Compute Engine VMs, as on GCP and in
  `make demo` (gce_project, gce_zone, gce_instance; machine type and boot
  disk `auto`), their API the test bed's Compute API emulator: vm_upgrade's
  API calls and the guest's filesystem check run on every re-run.

Removes the containers at the end.
Run it after `make setup`: .venv/bin/python benchmarks/site_profile.py
"""

from __future__ import annotations

import collections
import datetime
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import ansible_runner
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.gce_emulator import start as start_emulator  # noqa: E402 (the test bed's stand-in for Google's API)

GCE_PROJECT, GCE_ZONE = "demo-project", "us-central1-a"
IMAGE = "localhost/debian-systemd:bookworm"
HOSTS = {"bench-vm-a": "ABCD", "bench-vm-b": "EFGH"}


def podman(*args: str) -> str:
    return subprocess.run(["podman", *args], check=True, capture_output=True, text=True).stdout


def write_inventory(path: Path, hosts: list[str], ssh: dict[str, str] | None = None, gce: str | None = None) -> Path:
    """An inventory of the given hosts; with ssh ({host: port}, plus "key"), reached over SSH; with gce (the
    Compute API's endpoint), known as Compute Engine VMs whose machine type and boot disk follow their fleet."""
    host_vars = {
        name: {"central_mcp_agents": [{"name": a, "role": "bench", "model": "claude-sonnet-5-5"} for a in HOSTS[name]]}
        for name in hosts
    }
    connection = {"ansible_connection": "containers.podman.podman"}
    if ssh:
        connection = {
            "ansible_connection": "ansible.builtin.ssh",
            "ansible_host": "127.0.0.1",
            "ansible_user": "root",
            "ansible_ssh_private_key_file": ssh["key"],
            "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
        }
        for name in hosts:
            host_vars[name]["ansible_port"] = int(ssh[name])
    for name in hosts:
        # The address other VMs reach this one by: the same whatever the connection, so that
        # switching from podman to ssh changes nothing on the VMs.
        host_vars[name]["central_mcp_private_address"] = name
    if gce:
        for name in hosts:
            host_vars[name].update(gce_project=GCE_PROJECT, gce_zone=GCE_ZONE, gce_instance=name)
        connection.update(
            vm_upgrade_machine_type="auto", vm_upgrade_disk_size_gb="auto", vm_upgrade_api_endpoint=gce,
            vm_upgrade_auth_kind="accesstoken", vm_upgrade_access_token="bench-emulator-token",
        )  # fmt: skip
    credentials = str(path.parent / "credentials")  # generated tokens: in the run's temporary directory
    inventory = {
        "all": {
            "vars": {
                **connection,
                "ansible_python_interpreter": "/usr/bin/python3",
                "coordinator_credentials_dir": credentials,
                "launcher_credentials_dir": credentials,
                # vm_upgrade's memory of / filling the disk: in the run's temporary directory too
                "vm_upgrade_fs_cache_dir": str(path.parent / "vm_upgrade"),
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
    plays = [(e["created"], e["event_data"].get("play")) for e in events if e["event"] == "playbook_on_play_start"]
    ends = [e["created"] for e in events if e["event"] == "playbook_on_stats"]
    if plays and ends:
        print("  time per play (wall):")
        for (start, play), end in zip(plays, [p[0] for p in plays[1:]] + ends[:1], strict=True):
            seconds = datetime.datetime.fromisoformat(end) - datetime.datetime.fromisoformat(start)
            print(f"    {seconds.total_seconds():6.2f} s  {play}")
    ran = collections.Counter(host for _, host, _ in tasks)
    includes = collections.Counter(e["event_data"].get("host") for e in events if e["event"] == "playbook_on_include")
    print(f"  tasks per host (run or skipped): {dict(ran)}; includes: {sum(includes.values())}")
    if os.environ.get("SITE_PROFILE_ALL_TASKS"):  # every task, to compare two trees' runs
        for duration, host, task in sorted(tasks, key=lambda t: (t[1] or "", -t[0])):
            print(f"    {duration:6.2f} s  {host:<11} {task}")


def enable_ssh(tmp: str) -> dict[str, str]:
    """sshd in each container, root's key authorised; {host: published port, key: path}."""
    key = Path(tmp) / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    ssh = {"key": str(key)}
    for name in HOSTS:
        podman(
            "exec", name, "sh", "-c", "DEBIAN_FRONTEND=noninteractive apt-get install -y -q openssh-server >/dev/null"
        )
        podman("exec", name, "mkdir", "-p", "-m", "700", "/root/.ssh")
        subprocess.run(["podman", "exec", "-i", name, "sh", "-c", "cat > /root/.ssh/authorized_keys"],
                       input=key.with_suffix(".pub").read_text(), text=True, check=True)  # fmt: skip
        podman("exec", name, "systemctl", "restart", "ssh")
        ssh[name] = podman("port", name, "22/tcp").strip().rsplit(":", 1)[1]
    return ssh


def changed_tasks(events: list[dict]) -> int:
    return sum(
        1 for e in events if e["event"] == "runner_on_ok" and e.get("event_data", {}).get("res", {}).get("changed")
    )


ROUNDS = 3  # each figure is the median of this many runs: one run varies by ±15 % on a shared machine


def median_run(inventory: Path, **kwargs) -> tuple[float, list[dict], list[float]]:
    """ROUNDS runs; the median's wall time and events, and every wall time."""
    runs = sorted((run(inventory, **kwargs) for _ in range(ROUNDS)), key=lambda r: r[0])
    elapsed, events = runs[len(runs) // 2]
    return elapsed, events, [r[0] for r in runs]


def noop(inventory: Path) -> tuple[float, list[dict], list[float]]:
    """No-op re-runs: a first run settles what this inventory itself says (1 host drops
    vm-b's agents from the coordinator, for one), the next ROUNDS are measured."""
    run(inventory, playbook="site.yml")
    return median_run(inventory, playbook="site.yml")


def noop_ratio(label: str, tmp: str, ssh: dict | None, gce: str | None = None) -> None:
    both = write_inventory(Path(tmp) / f"two-{label}.yml", list(HOSTS), ssh, gce)
    one = write_inventory(Path(tmp) / f"one-{label}.yml", list(HOSTS)[:1], ssh, gce)
    noop_two, events_two, all_two = noop(both)
    report(f"no-op re-run, 2 hosts, {label} (the median of {ROUNDS})", noop_two, events_two)
    ping_two, _, pings_two = median_run(both, module="ansible.builtin.ping", host_pattern="all")
    noop_one, events_one, all_one = noop(one)
    ping_one, _, pings_one = median_run(one, module="ansible.builtin.ping", host_pattern="all")
    print(f"\nno-op re-run / ping over {label}, medians of {ROUNDS} runs (goal <= 6x; tasks changed, goal 0):")
    for hosts, noop_s, ping_s, events, noops, pings in (
        ("1 host ", noop_one, ping_one, events_one, all_one, pings_one),
        ("2 hosts", noop_two, ping_two, events_two, all_two, pings_two),
    ):
        print(
            f"  {hosts}: {noop_s:5.1f} s / {ping_s:4.1f} s = {noop_s / ping_s:4.1f}x  ({changed_tasks(events)} changed;"
            f" runs {min(noops):.1f}-{max(noops):.1f} s, pings {min(pings):.1f}-{max(pings):.1f} s)"
        )


def main() -> None:
    # SITE_PROFILE_PARTS: which connections to measure, of podman,ssh,gce (default all three)
    parts = os.environ.get("SITE_PROFILE_PARTS", "podman,ssh,gce").split(",")
    os.environ.setdefault("CONTAINERS_CONF", str(REPO / "tests/testbed/containers.conf"))
    for name in HOSTS:
        subprocess.run(["podman", "rm", "-f", "-t", "3", name], capture_output=True, check=False)
        podman("run", "-d", "--name", name, "--hostname", name, "--systemd=always", "--cap-add", "NET_ADMIN",
               "-p", "127.0.0.1::22", IMAGE, "/sbin/init")  # fmt: skip
    try:
        time.sleep(5)
        with tempfile.TemporaryDirectory() as tmp:
            report(
                "first converge, 2 hosts",
                *run(write_inventory(Path(tmp) / "two.yml", list(HOSTS)), playbook="site.yml"),
            )
            if "podman" in parts:
                noop_ratio("podman", tmp, None)
            ssh = enable_ssh(tmp)
            if "ssh" in parts:
                noop_ratio("ssh", tmp, ssh)
            if "gce" not in parts:
                return
            # The VMs' first run with a Compute identity resizes them (e2-micro -> auto) and grows their disks.
            with start_emulator(durations={"stop": 0.5, "start": 0.5, "resize": 0.2}) as emulator:
                for name in HOSTS:
                    emulator.add_instance(GCE_PROJECT, GCE_ZONE, name, "e2-micro")
                noop_ratio("ssh + gce", tmp, ssh, emulator.api_endpoint)
    finally:
        for name in HOSTS:
            subprocess.run(["podman", "rm", "-f", "-t", "3", name], capture_output=True, check=False)


if __name__ == "__main__":
    main()
