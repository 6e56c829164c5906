# SPDX-License-Identifier: Apache-2.0
"""Filters that size the VM for its fleet and say what that costs.

Why a rule and not only a table: the seed answered "which machine for N
agents" with a table of ranges, which cannot say anything about a type it does
not list (an n2, a custom type). The rule below reproduces that table exactly,
so the defaults keep the seed's answers, and a user who overrides the table
with other types (each with its vCPUs and memory) gets answers from the same
rule.

The rule: every agent needs 0.5 vCPU and 500 MB of memory (the agent CLIs
wait on a model API most of the time); the coordinator needs 500 MB and no
reserved vCPU (it idles between the agents' calls). The smallest machine type
(fewest vCPUs, then least memory) that holds both wins. With the default
table: e2-micro for 0-1 agents, e2-standard-2 for 2-4, e2-standard-4 for 5-8,
e2-standard-8 for 9-16 (the seed wrote 2-4, 4-8 and 8-16: a count on a
boundary takes the smaller type).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible_collections.central_mcp.agents.plugins.module_utils.prices import PLAN_NAMES, PLANS, PriceError, monthly
from ansible_collections.central_mcp.agents.plugins.module_utils.prices import table as price_table

AGENT_VCPU = 0.5
AGENT_MEMORY_MB = 500
COORDINATOR_VCPU = 0.0
COORDINATOR_MEMORY_MB = 500
# vCPUs and memory as the Compute API reports them (guestCpus, memoryMb).
DEFAULT_MACHINE_TYPES = [
    {"name": "e2-micro", "vcpus": 2, "memory_mb": 1024},
    {"name": "e2-standard-2", "vcpus": 2, "memory_mb": 8192},
    {"name": "e2-standard-4", "vcpus": 4, "memory_mb": 16384},
    {"name": "e2-standard-8", "vcpus": 8, "memory_mb": 32768},
]
STOP_TIME = "~2–3 minutes"
_DIGITS = re.compile(r"^\s*\d+\s*$")


def _count(value) -> int:
    """An agent count from an int, an integral float or a string of digits (extra vars are strings)."""
    if isinstance(value, bool):
        raise AnsibleFilterError(f"agent count must be a whole number of agents, got {value!r}")
    if isinstance(value, int):
        count = value
    elif isinstance(value, float) and value.is_integer():
        count = int(value)
    elif isinstance(value, str) and _DIGITS.match(value):
        count = int(value)
    else:
        raise AnsibleFilterError(f"agent count must be a whole number of agents, got {value!r:.60}")
    if count < 0:
        raise AnsibleFilterError(f"agent count must be 0 or more, got {count}")
    return count


def _table(table) -> list[dict]:
    """The machine types, checked, smallest first."""
    if table is None:
        table = DEFAULT_MACHINE_TYPES
    if not isinstance(table, list) or not table:
        raise AnsibleFilterError(f"the machine type table must be a non-empty list, got {table!r:.80}")
    checked = []
    for entry in table:
        ok = isinstance(entry, dict) and isinstance(entry.get("name"), str) and entry["name"]
        numbers = [entry.get(key) for key in ("vcpus", "memory_mb")] if ok else []
        if not ok or not all(isinstance(n, (int, float)) and not isinstance(n, bool) and n > 0 for n in numbers):
            raise AnsibleFilterError(
                f"machine type table entry {entry!r:.120} needs a name, vcpus > 0 and memory_mb > 0"
            )
        checked.append(entry)
    return sorted(checked, key=lambda e: (e["vcpus"], e["memory_mb"]))


def agents_fitting(machine_type: dict, agent_vcpu: float = AGENT_VCPU, agent_mb: float = AGENT_MEMORY_MB) -> int:
    """How many agents one machine type holds (besides the coordinator), at the rule's share per agent or the
    given one (sizing by measurement)."""
    by_cpu = (machine_type["vcpus"] - COORDINATOR_VCPU) / agent_vcpu
    by_memory = (machine_type["memory_mb"] - COORDINATOR_MEMORY_MB) / agent_mb
    return max(0, int(min(by_cpu, by_memory)))


def machine_type_for_agents(count, table=None, agent_vcpu=None, agent_mb=None) -> str:
    """The smallest machine type of the table that holds count agents plus the coordinator, each agent taking
    the rule's 0.5 vCPU and 500 MB, or ``agent_vcpu`` and ``agent_mb`` (what the fleet was measured to use)."""
    count = _count(count)
    types = _table(table)
    vcpu = AGENT_VCPU if agent_vcpu in (None, "") else _share(agent_vcpu, "agent_vcpu")
    memory = AGENT_MEMORY_MB if agent_mb in (None, "") else _share(agent_mb, "agent_mb")
    for machine_type in types:
        if agents_fitting(machine_type, vcpu, memory) >= count:
            return machine_type["name"]
    largest = max(types, key=lambda t: agents_fitting(t, vcpu, memory))
    raise AnsibleFilterError(
        f"{count} agents do not fit on one VM: the largest machine type, {largest['name']} "
        f"({largest['vcpus']} vCPUs, {largest['memory_mb']} MB), holds {agents_fitting(largest, vcpu, memory)} "
        f"at {vcpu:g} vCPU and {memory:g} MB each; add a bigger type to the table or put "
        "the other agents on a second VM"
    )


def _share(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise AnsibleFilterError(f"{what} must be a positive number, got {value!r:.40}")
    try:
        number = float(value)
    except ValueError:
        raise AnsibleFilterError(f"{what} must be a positive number, got {value!r:.40}") from None
    if math.isnan(number) or number <= 0:
        raise AnsibleFilterError(f"{what} must be a positive number, got {value!r:.40}")
    return number


def measured_sizing(usage, count, min_windows=288) -> dict:
    """How ``auto`` sizes this host: from the fleet's measured use (the coordinator's ``GET /api/usage``: the
    95th percentile of each agent's 5-minute peaks) when it has at least ``min_windows`` windows, else by the
    rule. {rule: measured|rule, agent_vcpu, agent_mb, line}; ``usage`` may be a failed answer (its ``msg``)."""
    count = _count(count)
    per_agent = (usage or {}).get("per_agent") if isinstance(usage, Mapping) else None
    windows = (per_agent or {}).get("windows") or 0
    cpu, rss = (per_agent or {}).get("cpu_p95_percent"), (per_agent or {}).get("rss_p95_bytes")
    rule = f"the rule ({AGENT_VCPU:g} vCPU and {AGENT_MEMORY_MB} MB per agent)"
    if not per_agent:
        why = (usage or {}).get("msg") if isinstance(usage, Mapping) else None
        line = f"sized by {rule}: no measurement from the coordinator ({str(why or 'not asked')[:160]})"
        return {"rule": "rule", "agent_vcpu": AGENT_VCPU, "agent_mb": AGENT_MEMORY_MB, "line": line}
    if windows < int(min_windows) or cpu is None or rss is None:
        line = (f"sized by {rule}: the coordinator has measured {windows} five-minute windows of its agents, "
                f"fewer than the {int(min_windows)} asked (vm_upgrade_measured_min_windows)")  # fmt: skip
        return {"rule": "rule", "agent_vcpu": AGENT_VCPU, "agent_mb": AGENT_MEMORY_MB, "line": line}
    vcpu, memory = max(float(cpu) / 100, 0.01), max(float(rss) / 2**20, 1.0)
    line = (
        f"sized by measurement: the 95th percentile of {per_agent.get('agents', '?')} agents' 5-minute peaks over "
        f"{usage.get('days', '?'):g} days ({windows} windows) is {vcpu:.2f} vCPU and {memory:.0f} MB per agent, "
        f"for {count} agents here (the rule gives each {AGENT_VCPU:g} vCPU and {AGENT_MEMORY_MB} MB)"
    )
    return {"rule": "measured", "agent_vcpu": round(vcpu, 3), "agent_mb": round(memory, 1), "line": line}


def flat_prices(prices) -> bool:
    """A plain {name: number} mapping (a price per type), rather than the price table or overrides of it."""
    return isinstance(prices, Mapping) and bool(prices) and all(_is_number(v) for v in prices.values())


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def machine_type_monthly_cost(machine_type, prices=None, plan="on_demand"):
    """US dollars a month of a machine type under a plan, from the price table (module_utils/prices.py) with
    ``prices`` (central_mcp_prices) merged in; ``prices`` may also be a plain {type: dollars a month}.
    An error names the type and where its price goes."""
    if flat_prices(prices):
        if machine_type not in prices:
            known = ", ".join(sorted(prices)) or "none"
            raise AnsibleFilterError(
                f"no monthly price for machine type {machine_type!r:.60}: known types are {known} "
                "(add it to the price table)"
            )
        return prices[machine_type]
    try:
        table = price_table(prices)
    except PriceError as exc:
        raise AnsibleFilterError(str(exc)) from None
    if plan not in PLANS:
        raise AnsibleFilterError(f"plan {plan!r:.40} is not a pricing plan: use {', '.join(PLANS)}")
    value = monthly(machine_type, plan, table)
    if value is None:
        raise AnsibleFilterError(
            f"no {plan} price for machine type {machine_type!r:.60} in the price table of {table['date']}: give its "
            "family's rates (central_mcp_prices.rates) or its own prices (central_mcp_prices.machine_types)"
        )
    return round(value, 2)


def _dollars(machine_type, prices, plan="on_demand") -> str:
    try:
        price = machine_type_monthly_cost(machine_type, prices, plan)
    except AnsibleFilterError:
        return "$?"
    return f"${price:,.0f}" if float(price).is_integer() else f"${price:,.2f}"


def machine_type_change(
    previous, machine_type, prices=None, stops=True, downtime_s=None, previous_plan="on_demand", plan="on_demand"
) -> str:
    """One line for a person: `e2-micro → e2-standard-4, $6.11 → $97.83/month, the VM stops for ~2–3 minutes`.

    ``downtime_s`` (measured) replaces the estimate once the change is done;
    ``stops=False`` says that nothing stops (the VM was not running). A type
    without a price shows as $? rather than failing: the report must never
    fail a change that already happened. ``previous_plan`` and ``plan``
    (on_demand, spot) price each side under its own plan; when either is
    Spot, both sides name their plan (`e2-standard-4 on-demand → e2-standard-4 Spot`).
    """

    def label(name, its_plan):
        named = "spot" in (previous_plan, plan)
        return f"{name} {PLAN_NAMES.get(its_plan, its_plan)}" if named else str(name)

    if previous == machine_type and previous_plan == plan:
        return f"{label(machine_type, plan)} (unchanged, {_dollars(machine_type, prices, plan)}/month)"
    before, after = _dollars(previous, prices, previous_plan), _dollars(machine_type, prices, plan)
    line = f"{label(previous, previous_plan)} → {label(machine_type, plan)}, {before} → {after}/month"
    if downtime_s is not None and float(downtime_s) > 0:
        return f"{line}, the VM was down for {float(downtime_s):.1f} s"
    if stops and downtime_s is None:
        return f"{line}, the VM stops for {STOP_TIME}"
    return f"{line}, no downtime (the VM was not running)"


def agent_memory_max(value, memory_mb, agents, coordinator_here=False) -> str:
    """One agent's memory ceiling (systemd MemoryMax=): ``value`` itself, or for ``auto`` what the sizing rule
    leaves it when every other agent and the coordinator (``coordinator_here``) keep their share.

    The VM's ``memory_mb`` less 500 MB for the coordinator and 500 MB for each other agent, never below one
    agent's 500 MB: one runaway agent is stopped by the kernel before it takes the others' memory.
    """
    if value != "auto":
        return value
    memory = _count(memory_mb)
    others = max(_count(agents) - 1, 0)
    left = memory - (COORDINATOR_MEMORY_MB if coordinator_here else 0) - others * AGENT_MEMORY_MB
    return f"{max(left, AGENT_MEMORY_MB)}M"


class FilterModule:
    """Sizing and cost filters of central_mcp.agents."""

    def filters(self):
        return {
            "machine_type_for_agents": machine_type_for_agents,
            "measured_sizing": measured_sizing,
            "machine_type_monthly_cost": machine_type_monthly_cost,
            "machine_type_change": machine_type_change,
            "agent_memory_max": agent_memory_max,
        }
