# SPDX-License-Identifier: Apache-2.0
"""Filters that price VMs and the fleet under every plan, from one table (module_utils/prices.py).

``price_table`` checks and completes the inventory's ``central_mcp_prices``;
``vm_plan_costs`` prices one VM (machine type and boot disk) under every
plan; ``fleet_costs`` prices every VM of the fleet, the fleet and an agent,
and draws the table the vm_upgrade role prints in ``--check`` and after a
run. What each VM costs now is its own plan's price: Spot for a Spot VM,
on-demand otherwise (a commitment is bought per project and region, not per
VM, so it is shown, never assumed).
"""

from __future__ import annotations

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible_collections.central_mcp.agents.plugins.module_utils import prices as p


def price_table(overrides=None) -> dict:
    """The default price table with the inventory's overrides merged in, checked."""
    try:
        return p.table(overrides)
    except p.PriceError as exc:
        raise AnsibleFilterError(str(exc)) from None


def _table(prices) -> dict:
    """A complete table as given (it has rates), or the defaults with these overrides."""
    if isinstance(prices, Mapping) and {"rates", "disks", "date"} <= set(prices):
        return dict(prices)
    return price_table(prices)


def vm_plan_costs(machine_type, disk_size_gb=None, disk_type="pd-balanced", prices=None) -> dict:
    """{on_demand, spot, commit_1y, commit_3y: US dollars a month or None, date}: one VM under every plan."""
    table = _table(prices)
    return {**p.vm_plans(machine_type or None, disk_size_gb, disk_type, table), "date": table["date"]}


def plan_of(provisioning_model) -> str:
    """The plan a VM is billed under now: spot for a Spot VM, on_demand otherwise."""
    return "spot" if str(provisioning_model or "").lower() == "spot" else "on_demand"


def _money(value) -> str:
    return "?" if value is None else f"{value:,.2f}"


def fleet_costs(vms, prices=None, pods=None) -> dict:
    """Every VM, the fleet and one agent under every plan, and what the fleet costs now.

    ``vms``: a list of {host, machine_type, disk_size_gb, disk_type, agents (a count), provisioning_model}.
    Returns {date, source, vms: [{host, machine_type, agents, plan, plans, now}], fleet: {plan: total or None},
    per_agent: {plan: ...}, now, now_per_agent, agents, pods, lines (the table as text)}.
    A VM whose type the table cannot price counts as unknown (None), never as free. ``pods`` (fleet_pods)
    are billed by the hour they run: listed with their price an hour, outside the monthly totals.
    """
    if not isinstance(vms, list):
        raise AnsibleFilterError(f"fleet_costs: vms must be a list of VMs, got {vms!r:.80}")
    table = _table(prices)
    rows, agents = [], 0
    for vm in vms:
        if not isinstance(vm, Mapping) or not vm.get("host"):
            raise AnsibleFilterError(f"fleet_costs: each VM needs a host, got {vm!r:.80}")
        count = int(vm.get("agents") or 0)
        plans = p.vm_plans(
            vm.get("machine_type") or None, vm.get("disk_size_gb"), vm.get("disk_type") or "pd-balanced", table
        )
        plan = plan_of(vm.get("provisioning_model"))
        rows.append({"host": vm["host"], "machine_type": vm.get("machine_type") or "", "agents": count, "plan": plan,
                     "plans": plans, "now": plans[plan]})  # fmt: skip
        agents += count
    fleet = {plan: _sum(row["plans"][plan] for row in rows) for plan in p.PLANS}
    per_agent = {plan: _each(fleet[plan], agents) for plan in p.PLANS}
    now = _sum(row["now"] for row in rows)
    result = {"date": table["date"], "source": table["source"], "vms": rows, "fleet": fleet, "per_agent": per_agent,
              "now": now, "now_per_agent": _each(now, agents), "agents": agents, "pods": list(pods or [])}  # fmt: skip
    result["lines"] = _lines(result)
    return result


def _sum(values):
    values = list(values)
    return None if not values or None in values else round(sum(values), 2)


def _each(total, count):
    return None if total is None or not count else round(total / count, 2)


def _lines(costs: dict) -> list:
    heads = [p.PLAN_NAMES[plan] for plan in p.PLANS]
    width = max([len(row["host"]) for row in costs["vms"]] + [len("per agent")])
    lines = [f"US dollars a month, prices of {costs['date']}: {costs['source']} (they move: see central_mcp_prices)"]
    lines.append(f"{'VM':<{width}}  {'type':<15} {'agents':>6}  {'now':<9}" + "".join(f"{h:>12}" for h in heads))
    for row in costs["vms"]:
        plans = "".join(f"{_money(row['plans'][plan]):>12}" for plan in p.PLANS)
        now = "Spot" if row["plan"] == "spot" else "on-demand"
        lines.append(f"{row['host']:<{width}}  {row['machine_type'] or '?':<15} {row['agents']:>6}  {now:<9}{plans}")
    fleet = "".join(f"{_money(costs['fleet'][plan]):>12}" for plan in p.PLANS)
    vms = f"{len(costs['vms'])} VM{'s' if len(costs['vms']) != 1 else ''}"
    lines.append(f"{'fleet':<{width}}  {vms:<15} {costs['agents']:>6}  {'':<9}{fleet}")
    each = "".join(f"{_money(costs['per_agent'][plan]):>12}" for plan in p.PLANS)
    lines.append(f"{'per agent':<{width}}  {'':<15} {'':>6}  {'':<9}{each}")
    lines.append(
        f"now, each VM on its own plan: ${_money(costs['now'])} a month, ${_money(costs['now_per_agent'])} per agent"
    )
    for pod in costs.get("pods") or []:
        lines.append(
            f"pod {pod['host']} ({pod['agents']} agent{'' if pod['agents'] == 1 else 's'}): "
            f"${_money(pod['hourly_cost'])} an hour while it runs "
            "(the dashboard shows its month at the hours it ran)"
        )
    return lines


def fleet_vms(hostvars, hosts) -> list:
    """The VMs fleet_costs prices, from what the vm_upgrade role told of each host (``vm_upgrade_current``);
    hosts without a machine type (not a Compute Engine VM, or not managed) are left out."""
    vms = []
    for host in hosts or []:
        host_vars = hostvars[host] if host in hostvars else {}
        current = host_vars.get("vm_upgrade_current") or {}
        if not isinstance(current, Mapping) or not current.get("machine_type"):
            continue
        agents = host_vars.get("central_mcp_agents")
        vms.append({
            "host": host,
            "machine_type": current["machine_type"],
            "provisioning_model": current.get("provisioning_model") or "",
            "disk_size_gb": current.get("disk_size_gb"),
            "disk_type": current.get("disk_type") or "pd-balanced",
            "agents": len(agents) if isinstance(agents, list) else 0,
            "gce": current.get("gce") if isinstance(current.get("gce"), Mapping) else None,
        })  # fmt: skip
    return vms


def hourly_cost(host_vars) -> float | None:
    """What a host billed by the hour costs an hour (US dollars): central_mcp_hourly_cost, else the price the
    runpod inventory read (runpod_cost_per_hour; RunPod says 0 for a stopped pod, which is no price)."""
    for name in ("central_mcp_hourly_cost", "runpod_cost_per_hour"):
        value = host_vars.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            return float(value)
    return None


def fleet_pods(hostvars, hosts) -> list:
    """The hosts billed by the hour (pods): {host, hourly_cost, agents}."""
    pods = []
    for host in hosts or []:
        host_vars = hostvars[host] if host in hostvars else {}
        price = hourly_cost(host_vars)
        if price is not None:
            agents = host_vars.get("central_mcp_agents")
            pods.append({"host": host, "hourly_cost": price, "agents": len(agents) if isinstance(agents, list) else 0})
    return pods


def coordinator_hosts(plan, hostvars, prices=None) -> list:
    """What the coordinator is told of each VM of the fleet plan (its agents file's ``hosts``): name, whether
    it is the coordinator's, machine type, provisioning model, the price under its own plan and every plan's,
    and the prices' date. A VM vm_upgrade does not manage has its name only (its cost is unknown)."""
    if not isinstance(plan, Mapping) or "hosts" not in plan or "coordinator" not in plan:
        raise AnsibleFilterError(f"coordinator_hosts: expected the fleet plan, got {plan!r:.80}")
    own = plan["coordinator"].get("host")
    names = list(plan["hosts"]) + ([own] if own and own not in plan["hosts"] else [])
    vms = fleet_vms(hostvars, names)
    costs = {row["host"]: row for row in fleet_costs(vms, prices)["vms"]} if vms else {}
    date = _table(prices)["date"]
    hosts = []
    for name in names:
        entry = {"name": name, "coordinator": name == own}
        price = hourly_cost(hostvars[name] if name in hostvars else {})
        if price is not None:  # a pod: the dashboard counts the hours it runs
            entry["hourly_cost"] = price
        row = costs.get(name)
        if row is not None:
            vm = next(vm for vm in vms if vm["host"] == name)
            entry.update(machine_type=row["machine_type"], provisioning_model=str(vm["provisioning_model"]).lower(),
                         monthly_cost=row["now"], plans=row["plans"], price_date=date)  # fmt: skip
            if vm["gce"]:  # where the Compute API knows it: the watcher starts a preempted Spot VM again
                entry["gce"] = {key: str(vm["gce"].get(key) or "") for key in ("project", "zone", "instance")}
        hosts.append(entry)
    return hosts


class FilterModule:
    """Price filters of central_mcp.agents."""

    def filters(self):
        return {
            "price_table": price_table,
            "vm_plan_costs": vm_plan_costs,
            "fleet_costs": fleet_costs,
            "fleet_vms": fleet_vms,
            "coordinator_hosts": coordinator_hosts,
            "fleet_pods": fleet_pods,
        }
