# SPDX-License-Identifier: Apache-2.0
"""Sizing and cost filters, driven by case tables (one line per case).

The seed sized its VM with a table of agent ranges; the filter sizes it with a
rule (0.5 vCPU and 500 MB per agent, 500 MB for the coordinator). The first
tests prove the rule gives the seed's answers for every count the table
covers, so the rule can replace the table without changing an answer.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.central_mcp.agents.plugins.filter import sizing

# The seed's table, as it was written: type -> agent range (a boundary count is in two rows).
SEED_RANGES = {"e2-micro": (0, 1), "e2-standard-2": (2, 4), "e2-standard-4": (4, 8), "e2-standard-8": (8, 16)}
# On-demand a month by the price table (vCPUs and GB at the E2 rates, 730 hours): the seed had 0 / 49 / 97 / 194.
TABLE_PRICES = {"e2-micro": 6.11, "e2-standard-2": 48.91, "e2-standard-4": 97.83, "e2-standard-8": 195.66}
N2_TABLE = [
    {"name": "n2-standard-8", "vcpus": 8, "memory_mb": 32768},  # out of order on purpose
    {"name": "n2-standard-2", "vcpus": 2, "memory_mb": 8192},
    {"name": "n2-standard-4", "vcpus": 4, "memory_mb": 16384},
]


def seed_answer(count: int) -> str:
    """The smallest type whose seed range includes count."""
    rows = [name for name, (low, high) in SEED_RANGES.items() if low <= count <= high]
    return rows[0]


@pytest.mark.parametrize("count", range(0, 17))
def test_rule_agrees_with_the_seed_table(count):
    assert sizing.machine_type_for_agents(count) == seed_answer(count)


@pytest.mark.parametrize(
    ("count", "table", "expected"),
    [
        (0, None, "e2-micro"),
        (1, None, "e2-micro"),
        (2, None, "e2-standard-2"),
        (4, None, "e2-standard-2"),
        (5, None, "e2-standard-4"),
        (8, None, "e2-standard-4"),
        (9, None, "e2-standard-8"),
        (16, None, "e2-standard-8"),
        ("6", None, "e2-standard-4"),  # extra vars arrive as strings
        (3.0, None, "e2-standard-2"),
        (1, N2_TABLE, "n2-standard-2"),
        (5, N2_TABLE, "n2-standard-4"),
        (12, N2_TABLE, "n2-standard-8"),
        (3, [{"name": "big-mem", "vcpus": 1, "memory_mb": 65536}], None),  # 1 vCPU holds only 2 agents
        (2, [{"name": "big-mem", "vcpus": 1, "memory_mb": 65536}], "big-mem"),
    ],
)
def test_machine_type_for_agents(count, table, expected):
    if expected is None:
        with pytest.raises(AnsibleFilterError, match="3 agents do not fit on one VM"):
            sizing.machine_type_for_agents(count, table)
    else:
        assert sizing.machine_type_for_agents(count, table) == expected


@pytest.mark.parametrize(
    ("count", "table", "message"),
    [
        (17, None, "17 agents do not fit on one VM: the largest machine type, e2-standard-8 .* holds 16"),
        (40, N2_TABLE, "40 agents .* n2-standard-8"),
        (-1, None, "must be 0 or more, got -1"),
        (2.5, None, "whole number of agents, got 2.5"),
        ("four", None, "whole number of agents, got 'four'"),
        (True, None, "whole number of agents, got True"),
        (None, None, "whole number of agents, got None"),
        (2, [], "non-empty list"),
        (2, [{"name": "x", "vcpus": 0, "memory_mb": 1024}], "entry .*'x'.* needs a name, vcpus > 0"),
        (2, [{"vcpus": 2, "memory_mb": 1024}], "needs a name"),
    ],
)
def test_machine_type_for_agents_errors_name_the_value(count, table, message):
    with pytest.raises(AnsibleFilterError, match=message):
        sizing.machine_type_for_agents(count, table)


@pytest.mark.parametrize(
    ("machine_type", "prices", "expected"),
    [(name, None, price) for name, price in TABLE_PRICES.items()]
    + [("n2-standard-4", None, 141.79), ("e2-custom-4-8192", None, 80.76)]
    + [("n2-standard-4", {"n2-standard-4": 141.5}, 141.5), ("e2-micro", {"e2-micro": 7}, 7)],
)
def test_monthly_cost(machine_type, prices, expected):
    assert sizing.machine_type_monthly_cost(machine_type, prices) == expected


@pytest.mark.parametrize(
    ("machine_type", "prices", "message"),
    [
        ("c3-standard-4", None, r"no on_demand price for machine type 'c3-standard-4' in the price table of 20"),
        ("zz-what", None, r"give its family's rates \(central_mcp_prices.rates\)"),
        ("e2-micro", {"e2-standard-4": 97}, "'e2-micro': known types are e2-standard-4"),
        ("e2-micro", ["e2-micro"], "central_mcp_prices must be a mapping"),
        ("e2-micro", {"rates": {"e2": {"spot": [0.1]}}}, r"rates.e2.spot must be \[per vCPU-hour, per GB-hour\]"),
        ("e2-micro", {"dates": "2026-01-01"}, "unknown key"),
    ],
)
def test_monthly_cost_unknown_type_names_it_and_the_known_ones(machine_type, prices, message):
    with pytest.raises(AnsibleFilterError, match=message):
        sizing.machine_type_monthly_cost(machine_type, prices)


@pytest.mark.parametrize(
    ("args", "kwargs", "expected"),
    [
        (
            ("e2-micro", "e2-standard-4"),
            {},
            "e2-micro → e2-standard-4, $6.11 → $97.83/month, the VM stops for ~2–3 min",
        ),
        (("e2-standard-8", "e2-standard-2"), {}, "e2-standard-8 → e2-standard-2, $195.66 → $48.91/month, the VM stops"),
        (("e2-micro", "e2-standard-4"), {"stops": False}, "$6.11 → $97.83/month, no downtime (the VM was not running)"),
        (("e2-micro", "e2-standard-4"), {"downtime_s": 94.24}, "$6.11 → $97.83/month, the VM was down for 94.2 s"),
        (("e2-standard-4", "e2-standard-4"), {}, "e2-standard-4 (unchanged, $97.83/month)"),
        (("e2-micro", "c3-standard-4"), {}, "e2-micro → c3-standard-4, $6.11 → $?/month"),
        (("e2-micro", "n2-standard-4"), {"prices": {"e2-micro": 0, "n2-standard-4": 141.5}}, "$0 → $141.50/month"),
        (
            ("e2-standard-4", "e2-standard-4"),
            {"plan": "spot"},
            "e2-standard-4 on-demand → e2-standard-4 Spot, $97.83 → $29.35/month, the VM stops for",
        ),
        (
            ("e2-standard-4", "e2-standard-4"),
            {"previous_plan": "spot", "plan": "spot"},
            "e2-standard-4 Spot (unchanged",
        ),
    ],
)
def test_machine_type_change(args, kwargs, expected):
    assert expected in sizing.machine_type_change(*args, **kwargs)


def test_filters_are_registered_under_their_documented_names():
    names = set(sizing.FilterModule().filters())
    docs = {p.stem for p in Path(sizing.__file__).parent.glob("*.yml")} & names
    assert names == docs == {
        "machine_type_for_agents", "machine_type_monthly_cost", "machine_type_change", "agent_memory_max",
        "measured_sizing",
    }  # fmt: skip


# ----------------------------------------------------------------- sizing by measurement
USAGE = {"days": 7, "per_agent": {"windows": 2016, "cpu_p95_percent": 18.0, "rss_p95_bytes": 410 * 2**20, "agents": 8}}


def test_measured_agents_size_a_smaller_vm_than_the_rule():
    sizing_ = sizing.measured_sizing(USAGE, 6)
    assert (sizing_["rule"], sizing_["agent_vcpu"], sizing_["agent_mb"]) == ("measured", 0.18, 410.0)
    assert sizing_["line"].startswith(
        "sized by measurement: the 95th percentile of 8 agents' 5-minute peaks over 7 days"
    )
    assert "0.18 vCPU and 410 MB per agent, for 6 agents here" in sizing_["line"]
    assert sizing.machine_type_for_agents(6) == "e2-standard-4"  # the rule
    assert sizing.machine_type_for_agents(6, None, sizing_["agent_vcpu"], sizing_["agent_mb"]) == "e2-standard-2"
    busy = sizing.measured_sizing({**USAGE, "per_agent": {**USAGE["per_agent"], "cpu_p95_percent": 90.0}}, 6)
    assert sizing.machine_type_for_agents(6, None, busy["agent_vcpu"], busy["agent_mb"]) == "e2-standard-8"


@pytest.mark.parametrize(
    ("usage", "says"),
    [
        (None, "no measurement from the coordinator (not asked)"),
        ({"failed": True, "msg": "Status code was -1: Connection refused"}, "(Status code was -1: Connection refused)"),
        ({**USAGE, "per_agent": {**USAGE["per_agent"], "windows": 12}}, "has measured 12 five-minute windows"),
    ],
)
def test_without_enough_measurement_the_rule_sizes(usage, says):
    kept = sizing.measured_sizing(usage, 6)
    assert (kept["rule"], kept["agent_vcpu"], kept["agent_mb"]) == ("rule", 0.5, 500)
    assert kept["line"].startswith("sized by the rule (0.5 vCPU and 500 MB per agent)") and says in kept["line"]


def test_a_bad_share_per_agent_is_named():
    with pytest.raises(AnsibleFilterError, match="agent_vcpu must be a positive number, got -1"):
        sizing.machine_type_for_agents(4, None, -1, 500)


# ------------------------------------------------------------------ agent_memory_max
@pytest.mark.parametrize(
    ("memory_mb", "agents", "coordinator_here", "expected"),
    [
        (16384, 4, True, "14384M"),  # 16384 - 500 (coordinator) - 3 x 500 (the other agents)
        (16384, 4, False, "14884M"),  # a second VM: no coordinator to keep memory for
        (8192, 1, True, "7692M"),
        (1024, 4, True, "500M"),  # never below one agent's share
    ],
)
def test_agent_memory_max_auto_leaves_every_other_agent_and_the_coordinator_their_share(
    memory_mb, agents, coordinator_here, expected
):
    assert sizing.agent_memory_max("auto", memory_mb, agents, coordinator_here) == expected


def test_agent_memory_max_keeps_a_given_size():
    assert sizing.agent_memory_max("2G", 16384, 8) == "2G"
