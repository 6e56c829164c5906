# SPDX-License-Identifier: Apache-2.0
"""Each VM of the fleet against its own agents, and what each and the fleet cost.

A VM's capacity is the sizing rule (``sysinfo.capacity``) over its own vCPUs
and memory: the coordinator's VM as it measures itself, every other VM as
its pane relay reports it. Its cost is what the agents file says
(``fleet_hosts``): the price under its own plan, and every plan's. A VM
nobody has measured or priced shows ``None`` (the page shows "—"), never
a guess; the fleet's total is then unknown as well.

A host billed by the hour (a pod) costs what it ran: its price an hour times
the hours it ran in the last week (its agents seen by its relay, in 5-minute
windows), as a month (730 hours a month, 168 a week). The same under every
plan: Compute Engine's plans do not apply to it.
"""

from __future__ import annotations

from typing import Any

from central_mcp import sysinfo, usage
from central_mcp.fleet_hosts import PLANS, HostSpec
from central_mcp.service import Service

WEEKS_A_MONTH = 730 / 168  # hours a month (as Compute Engine's prices count them) over hours a week


def vms_view(
    svc: Service, system: dict[str, Any], agents: list[dict[str, Any]], machines: dict[str, dict[str, int]]
) -> list[dict[str, Any]]:
    """One row per VM: its agents, vCPUs, memory, how many agents it fits, its type, model and price."""
    hosts = svc.hosts or [
        HostSpec(name="", coordinator=True, machine_type=svc.settings.machine_type,
                 monthly_cost=svc.settings.monthly_cost)
    ]  # fmt: skip
    active = [agent for agent in agents if agent.get("state") != "retired"]
    hourly = {host.name for host in hosts if host.hourly_cost is not None}
    ran = usage.hours_run(svc.store, {
        name: [agent["name"] for agent in agents if agent.get("host") == name] for name in sorted(hourly)
    }) if hourly else {}  # fmt: skip
    rows = []
    for host in hosts:
        if host.coordinator:
            on_it = [agent for agent in active if svc.on_this_vm(agent.get("host", ""))]
            cpus, memory = system.get("cpus"), (system.get("memory") or {}).get("total_bytes") or None
        else:
            on_it = [agent for agent in active if agent.get("host") == host.name]
            machine = machines.get(host.name) or {}
            cpus, memory = machine.get("cpus"), machine.get("memory_bytes")
        fits = sysinfo.capacity(cpus, memory, len(on_it))["fits"] if cpus and memory else None
        rows.append({
            "name": host.name,
            "coordinator": host.coordinator,
            "machine_type": host.machine_type or None,
            "provisioning_model": host.provisioning_model or None,
            "agents": len(on_it),
            "cpus": cpus,
            "memory_bytes": memory,
            "fits": fits,
            "over": fits is not None and len(on_it) > fits,
            "monthly_cost": host.monthly_cost,
            "plans": {plan: host.plans.get(plan) for plan in PLANS} if host.plans else None,
            "price_date": host.price_date or None,
            "spot": svc.spot_view.get(host.name),  # the Spot watcher's story: preempted, back after how long
            "hourly_cost": host.hourly_cost,
            "hours_7d": None,
        })  # fmt: skip
        if host.hourly_cost is not None:
            month = round(host.hourly_cost * ran[host.name] * WEEKS_A_MONTH, 2)
            rows[-1].update(monthly_cost=month, plans=dict.fromkeys(PLANS, month), hours_7d=round(ran[host.name], 2))
    return rows


def fleet_cost(rows: list[dict[str, Any]], agents: int) -> dict[str, Any]:
    """The fleet's monthly cost now (each VM on its own plan), per agent, and under every plan."""
    now = _total(row["monthly_cost"] for row in rows)
    plans = None
    if all(row["plans"] for row in rows):
        plans = {plan: _total(row["plans"][plan] for row in rows) for plan in PLANS}
    return {
        "monthly_cost": now,
        "cost_per_agent": round(now / agents, 2) if now is not None and agents else None,
        "plans": plans,
        "price_date": next((row["price_date"] for row in rows if row["price_date"]), None),
    }


def _total(values) -> float | None:
    values = list(values)
    return None if not values or None in values else round(sum(values), 2)
