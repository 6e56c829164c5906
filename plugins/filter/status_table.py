# SPDX-License-Identifier: Apache-2.0
"""Filters that turn the agent_status results of every host into one fleet report.

playbooks/status.yml runs agent_status on each host, then prints, once, the
whole fleet: ``hostvars | fleet_status(ansible_play_hosts_all, '__launcher_status')
| status_table(status_format)``. The table itself is drawn by agent_probe's
``render_table`` (the module_utils the module runs), so the playbook and the
Control window on the target print the same columns.

A host without a result (unreachable, or the module failed there) is not left
out silently: it is listed, with the reason, and counted in the summary line.

Below the agents, one ``VM`` line per host (its agents against what its own
vCPUs and memory hold by the sizing rule, its machine type, plan and price
when the run knows them) and the fleet's cost under every plan; then one
``DISK`` line per filesystem of each host (agent_status's ``disk``), and a
``!`` line for each one at or above its warning threshold, naming the
inventory variable to raise (``vm_upgrade_disk_size_gb``).
"""

from __future__ import annotations

import json
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.central_mcp.agents.plugins.filter.sizing import agents_fitting
from ansible_collections.central_mcp.agents.plugins.module_utils.agent_probe import render_table, summary_line
from ansible_collections.central_mcp.agents.plugins.module_utils.disk_use import render_lines
from ansible_collections.central_mcp.agents.plugins.module_utils.prices import PLAN_NAMES

FORMATS = ("table", "json")


def _plain(value: Any) -> Any:
    """Ansible's lazy containers and tagged strings as plain JSON types."""
    return json.loads(json.dumps(value))


def fleet_status(hostvars: Any, hosts: list[str], var: str = "__launcher_status") -> dict[str, Any]:
    """Merge the result registered as ``var`` on each of ``hosts``.

    Returns {agents (each with its host), hosts: {host: summary, or {error}}, disks (each with its host), summary}.
    """
    agents, per_host, disks, errors = [], {}, [], 0
    for host in hosts:
        result = hostvars[host].get(var) if host in hostvars else None
        if not isinstance(result, dict) or "summary" not in result:
            errors += 1
            reason = result.get("msg") if isinstance(result, dict) else None
            if isinstance(result, dict) and result.get("skipped"):
                reason = "not checked: nothing installed to look at yet (check mode)"
            per_host[host] = {"error": str(reason or "no result: the host was unreachable or the task did not run")}
            continue
        machine = result.get("machine")
        result = _plain({"agents": result["agents"], "summary": result["summary"], "disk": result.get("disk") or []})
        agents += [{**agent, "host": host} for agent in result["agents"]]
        disks += [{**disk, "host": host} for disk in result["disk"]]
        per_host[host] = {**result["summary"], "machine": _plain(machine) if isinstance(machine, dict) else None}
    summaries = [s for s in per_host.values() if "error" not in s]
    registered = [s["registered"] for s in summaries]
    summary = {
        "total": len(agents),
        "running": sum(a["alive"] for a in agents),
        "registered": None if None in registered else sum(registered),
        "unhealthy": sum(not a["healthy"] for a in agents),
        "hosts": len(hosts),
        "hosts_without_result": errors,
    }
    line = summary_line(summary["total"], summary["running"], summary["registered"], summary["unhealthy"], len(hosts))
    notes = [f"{h}: tmux session not running" for h, s in per_host.items() if s.get("session_found") is False]
    notes += [f"{h}: {s['error']}" for h, s in per_host.items() if "error" in s]
    notes += [f"{d['host']}: disk {d['mount']} {d['used_percent']:g} % used" for d in disks if d.get("warning")]
    summary["line"] = line + "".join(f"; {n}" for n in notes)
    return {"agents": agents, "hosts": per_host, "disks": disks, "summary": summary}


def vm_lines(fleet: dict[str, Any], costs: dict[str, Any] | None = None) -> list[str]:
    """One ``VM`` line per host: its agents against what its vCPUs and memory hold by the sizing rule, its type,
    plan and price when known (``costs``: fleet_costs of the run); then the fleet's cost, when every VM's is known.
    A VM over its capacity starts with ``!``."""
    priced = {row["host"]: row for row in (costs or {}).get("vms", [])}
    pods = {pod["host"]: pod for pod in (costs or {}).get("pods") or []}
    counts: dict[str, int] = {}
    for agent in fleet["agents"]:
        counts[agent["host"]] = counts.get(agent["host"], 0) + 1
    lines = []
    for host, summary in fleet["hosts"].items():
        if "error" in summary:
            continue  # listed with its reason in the summary line
        machine = summary.get("machine") or {}
        cpus, memory = machine.get("cpus"), machine.get("memory_bytes")
        here = counts.get(host, 0)
        if cpus and memory:
            fits = agents_fitting({"vcpus": cpus, "memory_mb": memory / 2**20})
            holds = f"{here} of {fits} agents ({cpus} vCPUs, {memory / 2**30:.1f} GiB)"
        else:
            fits, holds = None, f"{here} agents (its vCPUs and memory unknown)"
        row = priced.get(host)
        price = ""
        if row is not None:
            plan = "Spot" if row["plan"] == "spot" else "on-demand"
            money = "$?" if row["now"] is None else f"${row['now']:,.2f}"
            price = f", {row['machine_type']} {plan} {money}/month"
        elif host in pods:
            price = f", pod ${pods[host]['hourly_cost']:,.2f}/hour while it runs"
        mark = "!" if fits is not None and here > fits else " "
        lines.append(f"{mark} VM {host}: {holds}{price}")
    if costs and costs.get("now") is not None and set(priced) | set(pods) >= set(fleet["hosts"]):
        plans = ", ".join(
            f"{name} ${costs['fleet'][plan]:,.2f}"
            for plan, name in PLAN_NAMES.items()
            if costs["fleet"][plan] is not None
        )
        hourly = sum(pod["hourly_cost"] for pod in pods.values())
        lines.append(
            f"  fleet: ${costs['now']:,.2f}/month now (${costs['now_per_agent'] or 0:,.2f} per agent); "
            f"{plans} (prices of {costs['date']})" + (f"; pods ${hourly:,.2f}/hour while they run" if pods else "")
        )
    return lines


def status_table(fleet: dict[str, Any], format: str = "table", costs: dict[str, Any] | None = None) -> str:  # noqa: A002
    """The fleet as a text table with its summary line, or as JSON for machines (with ``costs`` when given)."""
    if format not in FORMATS:
        raise AnsibleFilterError(f"status_format {format!r} is not allowed: use {' or '.join(FORMATS)}")
    if format == "json":
        return json.dumps({**fleet, "costs": _plain(costs) if costs else None}, sort_keys=True)
    table = render_table(fleet["agents"], fleet["summary"]["line"], hosts=True).split("\n")
    disks = render_lines(fleet.get("disks") or [])
    return "\n".join([*table[:-1], *vm_lines(fleet, costs), *disks, table[-1]])


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"fleet_status": fleet_status, "status_table": status_table}
