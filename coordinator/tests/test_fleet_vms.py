# SPDX-License-Identifier: Apache-2.0
"""Each VM against its own agents and its own cost (the agents file's hosts), and the fleet's total.

The two-VM demo once counted all 8 agents against VM 1's capacity ("8 of 4
agents", degraded on a healthy fleet) and showed VM 1's price as the fleet's.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from pathlib import Path

import pytest

from central_mcp.dashboard.web import fleet_view
from central_mcp.fleet_hosts import parse_hosts
from central_mcp.health import report
from central_mcp.loops import Loops
from central_mcp.relay import machine
from central_mcp.service import Service
from central_mcp.settings import Settings

GB = 2**30
PLANS_VM1 = {"on_demand": 51.71, "spot": 17.47, "commit_1y": 33.62, "commit_3y": 24.82}
PLANS_VM2 = {"on_demand": 51.71, "spot": 17.47, "commit_1y": 33.62, "commit_3y": 24.82}
HOSTS = [
    {"name": "vm1", "coordinator": True, "machine_type": "e2-standard-2", "provisioning_model": "standard",
     "monthly_cost": 51.71, "plans": PLANS_VM1, "price_date": "2025-06-01"},
    {"name": "vm2", "machine_type": "e2-standard-2", "provisioning_model": "spot", "monthly_cost": 17.47,
     "plans": PLANS_VM2, "price_date": "2025-06-01"},
]  # fmt: skip


def agents_file(path: Path, hosts: list | None, per_host: dict[str, int]) -> None:
    agents = []
    for host, count in per_host.items():
        for n in range(count):
            token = secrets.token_urlsafe(16)
            agents.append({"name": f"{host.upper()}_{n}", "role": "backend", "host": host,
                           "token_sha256": hashlib.sha256(token.encode()).hexdigest()})  # fmt: skip
    doc = {"agents": agents} if hosts is None else {"agents": agents, "hosts": hosts}
    path.write_text(json.dumps(doc))


def service(tmp_path: Path, hosts: list | None, per_host: dict[str, int]) -> Service:
    agents_file(tmp_path / "agents.json", hosts, per_host)
    env = {"CENTRAL_MCP_DB": str(tmp_path / "c.db"), "CENTRAL_MCP_AGENTS_FILE": str(tmp_path / "agents.json")}
    svc = Service(Settings.from_env(env))
    svc.open()
    return svc


def health_with(svc: Service, cpus: int, memory_bytes: int) -> dict:
    """The health report after one run of the health loop, on a VM of these vCPUs and memory."""
    Loops(svc).health()
    svc.system.update(cpus=cpus, memory={"total_bytes": memory_bytes, "available_bytes": memory_bytes})
    return report(svc)


def test_each_vm_counts_its_own_agents_and_the_fleet_adds_up(tmp_path: Path) -> None:
    svc = service(tmp_path, HOSTS, {"vm1": 4, "vm2": 4})
    try:
        health = health_with(svc, 2, 8 * GB)  # e2-standard-2: 4 agents by the rule
        fleet = fleet_view(svc, health, machines={"vm2": {"cpus": 2, "memory_bytes": 8 * GB}})
    finally:
        svc.close()
    vm1, vm2 = fleet["vms"]
    assert (vm1["name"], vm1["agents"], vm1["fits"], vm1["over"]) == ("vm1", 4, 4, False)
    assert (vm2["name"], vm2["agents"], vm2["fits"], vm2["provisioning_model"]) == ("vm2", 4, 4, "spot")
    assert fleet["agents"] == 8 and fleet["own_agents"] == 4 and fleet["fits"] == 4
    assert fleet["monthly_cost"] == round(51.71 + 17.47, 2) and fleet["cost_per_agent"] == round(69.18 / 8, 2)
    assert fleet["plans"] == {plan: round(PLANS_VM1[plan] + PLANS_VM2[plan], 2) for plan in PLANS_VM1}
    assert fleet["price_date"] == "2025-06-01"
    assert not any("agents on" in problem for problem in fleet["problems"])  # not "8 agents on 2 vCPU"


def test_a_vm_nobody_measured_or_priced_is_unknown_not_guessed(tmp_path: Path) -> None:
    hosts = [HOSTS[0], {"name": "vm2"}]
    svc = service(tmp_path, hosts, {"vm1": 2, "vm2": 3})
    try:
        fleet = fleet_view(svc, health_with(svc, 2, 8 * GB))
    finally:
        svc.close()
    vm2 = fleet["vms"][1]
    assert (vm2["agents"], vm2["cpus"], vm2["fits"], vm2["monthly_cost"], vm2["plans"]) == (3, None, None, None, None)
    assert fleet["monthly_cost"] is None and fleet["cost_per_agent"] is None and fleet["plans"] is None


def test_this_vm_is_degraded_by_its_own_agents_only(tmp_path: Path) -> None:
    svc = service(tmp_path, HOSTS, {"vm1": 6, "vm2": 1})
    try:
        Loops(svc).health()
    finally:
        svc.close()
    # The health loop measured this machine and held its 6 agents against it, not the fleet's 7.
    assert svc.system["capacity"]["agents"] == 6


def test_without_hosts_the_file_describes_one_vm_with_every_agent(tmp_path: Path) -> None:
    svc = service(tmp_path, None, {"vm1": 3})
    try:
        fleet = fleet_view(svc, health_with(svc, 2, 8 * GB))
    finally:
        svc.close()
    (only,) = fleet["vms"]
    assert only["coordinator"] and only["agents"] == 3 and only["fits"] == 4


@pytest.mark.parametrize(
    ("hosts", "says"),
    [
        ([{"machine_type": "e2-micro"}], "hosts[0]: expected an object with a name"),
        ([{"name": "vm1", "provisioning_model": "preemptible"}], "'preemptible' is not standard or spot"),
        ([{"name": "vm1", "monthly_cost": "cheap"}], "monthly_cost must be US dollars a month"),
        ([{"name": "vm1", "plans": {"reserved": 1}}], "plans must map on_demand, spot"),
        ([{"name": "a", "coordinator": True}, {"name": "b", "coordinator": True}], "more than one host is marked"),
    ],
)
def test_a_bad_hosts_section_keeps_the_previous_roster_and_says_why(tmp_path: Path, hosts, says) -> None:
    svc = service(tmp_path, HOSTS, {"vm1": 1})
    try:
        agents_file(tmp_path / "agents.json", hosts, {"vm1": 2})
        assert svc.reload_agents_file() is False
        assert says in svc.agents_file.error and [h.name for h in svc.hosts] == ["vm1", "vm2"]
    finally:
        svc.close()


def test_a_pod_costs_its_price_an_hour_for_the_hours_it_ran(tmp_path: Path) -> None:
    """A pod is billed by the hour it runs: its month is the hours its agents were seen in the last week."""
    from central_mcp.usage import WINDOW_S, UsageRecorder

    hosts = [HOSTS[0], {"name": "pod", "hourly_cost": 0.44}]
    svc = service(tmp_path, hosts, {"vm1": 1, "pod": 2})
    try:
        recorder = UsageRecorder(svc.store)
        start = (int(time.time()) // WINDOW_S - 30) * WINDOW_S  # 24 windows (2 hours) of the last 2.5 hours
        for window in range(24):  # both agents of the pod seen: each window counts once
            recorder.observe({"POD_0": {"cpu_percent": 5.0, "rss_bytes": 1}, "POD_1": {"cpu_percent": 1.0,
                              "rss_bytes": 1}}, now=start + window * WINDOW_S)  # fmt: skip
        recorder.observe({"VM1_0": {"cpu_percent": 1.0, "rss_bytes": 1}}, now=start + 24 * WINDOW_S)
        recorder.flush()
        fleet = fleet_view(svc, health_with(svc, 2, 8 * GB))
    finally:
        svc.close()
    pod = fleet["vms"][1]
    month = round(0.44 * 2.0 * 730 / 168, 2)
    assert (pod["hourly_cost"], pod["hours_7d"], pod["monthly_cost"]) == (0.44, 2.0, month)
    assert pod["plans"] == dict.fromkeys(PLANS_VM1, month)  # Compute Engine's plans do not apply
    assert fleet["monthly_cost"] == round(51.71 + month, 2)
    assert fleet["vms"][0]["hourly_cost"] is None


@pytest.mark.parametrize("bad", [-1, "0.44", True])
def test_a_bad_hourly_price_is_named(tmp_path: Path, bad) -> None:
    with pytest.raises(ValueError, match="hourly_cost must be US dollars an hour"):
        parse_hosts({"hosts": [{"name": "pod", "hourly_cost": bad}]}, tmp_path / "agents.json")


def test_the_relay_reports_its_vms_vcpus_and_memory() -> None:
    figures = machine()
    assert figures["cpus"] >= 1 and figures["memory_bytes"] > 2**20
