# SPDX-License-Identifier: Apache-2.0
"""Filters that turn the agent_status results of every host into one fleet report.

playbooks/status.yml runs agent_status on each host, then prints, once, the
whole fleet: ``hostvars | fleet_status(ansible_play_hosts_all, '__launcher_status')
| status_table(status_format)``. The table itself is drawn by agent_probe's
``render_table`` (the module_utils the module runs), so the playbook and the
Control window on the target print the same columns.

A host without a result (unreachable, or the module failed there) is not left
out silently: it is listed, with the reason, and counted in the summary line.

Below the agents, one ``DISK`` line per filesystem of each host (agent_status's
``disk``), and a ``!`` line for each one at or above its warning threshold,
naming the inventory variable to raise (``vm_upgrade_disk_size_gb``).
"""

from __future__ import annotations

import json
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.central_mcp.agents.plugins.module_utils.agent_probe import render_table, summary_line
from ansible_collections.central_mcp.agents.plugins.module_utils.disk_use import render_lines

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
        result = _plain({"agents": result["agents"], "summary": result["summary"], "disk": result.get("disk") or []})
        agents += [{**agent, "host": host} for agent in result["agents"]]
        disks += [{**disk, "host": host} for disk in result["disk"]]
        per_host[host] = result["summary"]
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


def status_table(fleet: dict[str, Any], format: str = "table") -> str:  # noqa: A002 - the playbook's word
    """The fleet as a text table with its summary line, or as JSON for machines."""
    if format not in FORMATS:
        raise AnsibleFilterError(f"status_format {format!r} is not allowed: use {' or '.join(FORMATS)}")
    if format == "json":
        return json.dumps(fleet, sort_keys=True)
    table = render_table(fleet["agents"], fleet["summary"]["line"], hosts=True).split("\n")
    return "\n".join([*table[:-1], *render_lines(fleet.get("disks") or []), table[-1]])


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"fleet_status": fleet_status, "status_table": status_table}
