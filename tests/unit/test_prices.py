# SPDX-License-Identifier: Apache-2.0
"""The price table and the plan filters: every plan per VM, for the fleet and per agent, from one table."""

from __future__ import annotations

from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.central_mcp.agents.plugins.filter import prices as f
from ansible_collections.central_mcp.agents.plugins.module_utils import prices as p

# Each plan's monthly price of e2-standard-4 by hand: 4 vCPUs and 16 GB at the E2 rates, 730 hours.
E2_STANDARD_4 = {"on_demand": 97.83, "spot": 29.35, "commit_1y": 61.64, "commit_3y": 44.03}


def test_a_type_is_priced_from_its_family_rates_under_every_plan():
    plans = f.vm_plan_costs("e2-standard-4")
    assert {plan: plans[plan] for plan in p.PLANS} == E2_STANDARD_4
    assert plans["date"] == p.DEFAULT_TABLE["date"]
    # Spot and commitments cost less, in that order, as Google prices them.
    assert plans["spot"] < plans["commit_3y"] < plans["commit_1y"] < plans["on_demand"]


@pytest.mark.parametrize(
    ("machine_type", "vcpus", "memory_gb"),
    [
        ("e2-micro", 0.25, 1),
        ("e2-medium", 1.0, 4),
        ("e2-standard-8", 8, 32),
        ("e2-highmem-4", 4, 32),
        ("n2-highcpu-16", 16, 16),
        ("e2-custom-6-12288", 6, 12),
    ],
)
def test_shapes_come_from_compute_engine_names(machine_type, vcpus, memory_gb):
    family, billed, memory = p.shape(machine_type, p.table())
    assert (family, billed, memory) == (machine_type.split("-")[0], vcpus, memory_gb)


def test_a_disk_costs_the_same_under_every_plan():
    plans = f.vm_plan_costs("e2-standard-4", 50, "pd-ssd")
    assert plans["on_demand"] == pytest.approx(E2_STANDARD_4["on_demand"] + 8.5)
    assert plans["spot"] == pytest.approx(E2_STANDARD_4["spot"] + 8.5)


def test_the_inventory_overrides_part_of_the_table_and_keeps_the_rest():
    table = f.price_table({"date": "2026-11-30", "machine_types": {"e2-standard-4": {"spot": 0.05}}})
    assert table["date"] == "2026-11-30" and table["disks"] == p.DEFAULT_TABLE["disks"]
    plans = f.vm_plan_costs("e2-standard-4", prices=table)
    assert plans["spot"] == 36.5 and plans["on_demand"] == E2_STANDARD_4["on_demand"]
    assert f.vm_plan_costs("e2-standard-4", prices={"rates": {"e2": {"spot": [0.01, 0.001]}}})["spot"] == 40.88


def test_a_type_the_table_cannot_price_is_unknown_never_free():
    plans = f.vm_plan_costs("c3-standard-4", 30)
    assert {plan: plans[plan] for plan in p.PLANS} == dict.fromkeys(p.PLANS)
    costs = f.fleet_costs([{"host": "a", "machine_type": "c3-standard-4", "agents": 2}])
    assert costs["fleet"]["on_demand"] is None and costs["now"] is None
    assert "?" in costs["lines"][2]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ("cheap", "central_mcp_prices must be a mapping"),
        ({"rate": {}}, "unknown key\\(s\\) rate"),
        ({"date": "last week"}, "date 'last week' must be the prices' date"),
        ({"hours_per_month": 24}, "hours_per_month 24 is not a month of hours"),
        ({"rates": {"e2": {"reserved": [1, 1]}}}, "'reserved' is not a plan"),
        ({"rates": {"e2": {"spot": [0.01, "0.001"]}}}, "rates.e2.spot must be a price of 0 or more"),
        ({"machine_types": {"e2-micro": {"spot": True}}}, "machine_types.e2-micro.spot must be a price"),
        ({"disks": {"pd-ssd": -0.1}}, "disks.pd-ssd must be a price of 0 or more"),
    ],
)
def test_a_bad_table_is_refused_with_the_value_named(overrides, message):
    with pytest.raises(AnsibleFilterError, match=message):
        f.price_table(overrides)


def test_the_fleet_each_vm_on_its_own_plan():
    vms = [
        {"host": "vm1", "machine_type": "e2-standard-2", "disk_size_gb": 28, "agents": 4},
        {"host": "vm2", "machine_type": "e2-standard-2", "disk_size_gb": 28, "agents": 4, "provisioning_model": "SPOT"},
    ]
    costs = f.fleet_costs(vms)
    vm = f.vm_plan_costs("e2-standard-2", 28)
    assert costs["fleet"]["on_demand"] == pytest.approx(2 * vm["on_demand"])
    assert costs["per_agent"]["spot"] == pytest.approx(round(2 * vm["spot"] / 8, 2))
    assert costs["now"] == pytest.approx(vm["on_demand"] + vm["spot"])
    assert [row["plan"] for row in costs["vms"]] == ["on_demand", "spot"] and costs["agents"] == 8
    lines = costs["lines"]
    assert lines[0].startswith(f"US dollars a month, prices of {p.DEFAULT_TABLE['date']}")
    assert lines[2].split()[:4] == ["vm1", "e2-standard-2", "4", "on-demand"]
    assert lines[3].split()[3] == "Spot" and lines[4].split()[:4] == ["fleet", "2", "VMs", "8"]
    assert (
        lines[-1]
        == f"now, each VM on its own plan: ${costs['now']:,.2f} a month, ${costs['now_per_agent']:,.2f} per agent"
    )


def test_bad_vms_are_named():
    with pytest.raises(AnsibleFilterError, match="each VM needs a host"):
        f.fleet_costs([{"machine_type": "e2-micro"}])
    with pytest.raises(AnsibleFilterError, match="must be a list"):
        f.fleet_costs("vm1")


def test_filters_are_registered_under_their_documented_names():
    names = set(f.FilterModule().filters())
    docs = {path.stem for path in Path(f.__file__).parent.glob("*.yml")} & names
    assert names == docs == {
        "price_table", "vm_plan_costs", "fleet_costs", "fleet_vms", "coordinator_hosts", "fleet_pods"
    }  # fmt: skip


def test_fleet_vms_reads_what_vm_upgrade_told_of_each_host():
    hostvars = {
        "vm1": {"vm_upgrade_current": {"machine_type": "e2-standard-2", "provisioning_model": "", "disk_size_gb": 28},
                "central_mcp_agents": [{"name": "a"}, {"name": "b"}]},
        "vm2": {"vm_upgrade_current": {"machine_type": "e2-standard-2", "provisioning_model": "spot"}},
        "pod": {"central_mcp_agents": [{"name": "c"}]},
    }  # fmt: skip
    vms = f.fleet_vms(hostvars, ["vm1", "vm2", "pod", "gone"])
    assert [(vm["host"], vm["agents"], vm["provisioning_model"]) for vm in vms] == [("vm1", 2, ""), ("vm2", 0, "spot")]
    assert vms[0]["disk_size_gb"] == 28 and vms[0]["disk_type"] == "pd-balanced"


def test_coordinator_hosts_tells_the_coordinator_each_vm_and_its_price():
    plan = {"coordinator": {"host": "vm1"}, "hosts": {"vm2": {}, "pod": {}}}
    hostvars = {
        "vm1": {"vm_upgrade_current": {"machine_type": "e2-standard-4", "provisioning_model": "standard"}},
        "vm2": {"vm_upgrade_current": {"machine_type": "e2-standard-2", "provisioning_model": "spot",
                                       "disk_size_gb": 28, "gce": {"project": "p", "zone": "z", "instance": "vm-2"}},
                "central_mcp_agents": [{"name": "E"}]},
        "pod": {"central_mcp_agents": [{"name": "G"}]},
    }  # fmt: skip
    hosts = f.coordinator_hosts(plan, hostvars)
    assert [(h["name"], h["coordinator"]) for h in hosts] == [("vm2", False), ("pod", False), ("vm1", True)]
    vm2 = hosts[0]
    assert (vm2["machine_type"], vm2["provisioning_model"]) == ("e2-standard-2", "spot")
    assert vm2["gce"] == {"project": "p", "zone": "z", "instance": "vm-2"} and "gce" not in hosts[2]
    assert vm2["monthly_cost"] == f.vm_plan_costs("e2-standard-2", 28)["spot"] == vm2["plans"]["spot"]
    assert vm2["price_date"] == p.DEFAULT_TABLE["date"] and hosts[1] == {"name": "pod", "coordinator": False}
    assert hosts[2]["monthly_cost"] == E2_STANDARD_4["on_demand"]
    with pytest.raises(AnsibleFilterError, match="expected the fleet plan"):
        f.coordinator_hosts({"hosts": {}}, hostvars)


def test_a_pod_is_priced_by_the_hour_outside_the_monthly_totals():
    """RunPod's price an hour (the runpod inventory's runpod_cost_per_hour; 0 for a stopped pod is no price),
    or central_mcp_hourly_cost: told to the coordinator, listed beside the VMs, never added to their months."""
    hostvars = {
        "vm1": {"vm_upgrade_current": {"machine_type": "e2-standard-2"}, "central_mcp_agents": [{"name": "A"}]},
        "pod": {"runpod_cost_per_hour": 0.44, "central_mcp_agents": [{"name": "P"}, {"name": "Q"}]},
        "own": {"runpod_cost_per_hour": 0.44, "central_mcp_hourly_cost": 0.5},
        "stopped": {"runpod_cost_per_hour": 0},
    }  # fmt: skip
    pods = f.fleet_pods(hostvars, ["vm1", "pod", "own", "stopped"])
    assert pods == [{"host": "pod", "hourly_cost": 0.44, "agents": 2}, {"host": "own", "hourly_cost": 0.5, "agents": 0}]
    plan = {"coordinator": {"host": "vm1"}, "hosts": {"vm1": {}, "pod": {}, "stopped": {}}}
    hosts = {h["name"]: h for h in f.coordinator_hosts(plan, hostvars)}
    assert hosts["pod"] == {"name": "pod", "coordinator": False, "hourly_cost": 0.44}
    assert "hourly_cost" not in hosts["stopped"] and "hourly_cost" not in hosts["vm1"]
    costs = f.fleet_costs(f.fleet_vms(hostvars, ["vm1", "pod"]), pods=pods[:1])
    assert costs["now"] == f.vm_plan_costs("e2-standard-2")["on_demand"] and costs["pods"] == pods[:1]
    assert costs["lines"][-1].startswith("pod pod (2 agents): $0.44 an hour while it runs")
