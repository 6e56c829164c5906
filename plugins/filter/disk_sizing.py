# SPDX-License-Identifier: Apache-2.0
"""Filters that size the boot disk for the fleet, price it, and check the room for new agents.

Sizing. The seed measured about 100 MB per agent, on a fresh workspace. That
is the floor, not what an agent uses after a week: its checkout grows a
``node_modules`` (300 MB to 1 GB for a web project), its user's npm cache
grows with every install, and the agent CLIs keep session transcripts and
logs that grow every day. So the default allowance is 2 GB per agent, twenty
times the seed's figure, on top of a 20 GB base for what is there once: the
OS and its updates (about 3 GB used on a fresh Debian image), the journal (it
caps itself at 10 % of the filesystem, up to 4 GB), the agent CLIs and Node
(claude ~200 MB, codex ~420 MB, gemini ~100 MB), and the coordinator with the
releases it keeps for rollback and its SQLite database. 4 agents get 28 GB,
8 get 36 GB, 16 get 52 GB; all stay under the 85 % use that the health
checks warn at. Both numbers are parameters (and role variables).

Cost. Persistent disks are billed per GB-month by type, the same under every
pricing plan; the prices come from the collection's one price table
(module_utils/prices.py: us-central1 list prices, pd-standard $0.04,
pd-balanced $0.10, pd-ssd $0.17), which ``central_mcp_prices`` overrides.

Room for new agents. Before the launcher adds agents to a host, it measures
the free space where their workspaces go (one ``df``) and refuses when the
agents that are new there (their workspace does not exist yet) need more
than that, at the same per-agent allowance as the sizing above.

The guest's side of a bigger disk (growing the partition and filesystem of
/) is the module grow_root_fs, with its parsers in module_utils/root_fs.py.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible_collections.central_mcp.agents.plugins.filter.prices import plan_of
from ansible_collections.central_mcp.agents.plugins.filter.sizing import (
    _count,
    flat_prices,
    machine_type_change,
    machine_type_monthly_cost,
)
from ansible_collections.central_mcp.agents.plugins.module_utils.prices import PriceError
from ansible_collections.central_mcp.agents.plugins.module_utils.prices import table as price_table
from ansible_collections.central_mcp.agents.plugins.plugin_utils import root_fs_memo

DISK_BASE_GB = 20
DISK_PER_AGENT_GB = 2
MIN_BOOT_DISK_GB = 10
DEFAULT_DISK_TYPE = "pd-balanced"


def _number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise AnsibleFilterError(f"{what} must be a number, got {value!r:.60}")
    try:
        number = float(value)
    except ValueError:
        raise AnsibleFilterError(f"{what} must be a number, got {value!r:.60}") from None
    if number < 0 or math.isnan(number):
        raise AnsibleFilterError(f"{what} must be 0 or more, got {value!r:.60}")
    return number


# ----------------------------------------------------------------- size and cost
def disk_size_for_agents(count, base_gb=DISK_BASE_GB, per_agent_gb=DISK_PER_AGENT_GB, repos_gb=0) -> int:
    """GB of boot disk for count agents: base + per agent + their repositories (mirrors and worktrees, see the
    repo_disk_gb filter), rounded up, never below the 10 GB minimum."""
    agents = _count(count)
    total = _number(base_gb, "base_gb") + agents * _number(per_agent_gb, "per_agent_gb")
    total += _number(repos_gb or 0, "repos_gb")
    return max(MIN_BOOT_DISK_GB, math.ceil(total))


def disk_monthly_cost(size_gb, disk_type=DEFAULT_DISK_TYPE, prices=None) -> float:
    """US dollars a month for a disk of size_gb GB of this type, from the price table's ``disks`` (with
    ``prices``, central_mcp_prices, merged in) or a plain {type: dollars per GB-month}; an unknown type names
    the known ones."""
    if not flat_prices(prices):
        try:
            prices = price_table(prices)["disks"]
        except PriceError as exc:
            raise AnsibleFilterError(str(exc)) from None
    if disk_type not in prices:
        known = ", ".join(sorted(prices)) or "none"
        raise AnsibleFilterError(
            f"no price per GB-month for disk type {disk_type!r:.60}: known types are {known} "
            "(add it to central_mcp_prices.disks)"
        )
    return round(_number(size_gb, "size_gb") * _number(prices[disk_type], f"the price of {disk_type}"), 2)


def _money(value: float | None, sign: bool = False) -> str:
    if value is None:
        return "+$?" if sign else "$?"
    text = f"${abs(value):,.2f}"
    return (("+" if value >= 0 else "-") + text) if sign else text


def _cost_or_none(size_gb, disk_type, prices) -> float | None:
    try:
        return disk_monthly_cost(size_gb, disk_type, prices)
    except AnsibleFilterError:
        return None


def disk_size_change(previous_gb, size_gb, disk_type=DEFAULT_DISK_TYPE, prices=None, wanted_gb=None) -> str:
    """One line for a person: `boot disk 10 GB → 50 GB, +$4.00/month, online, no restart`.

    ``wanted_gb`` is the size that was asked for, when the disk did not move
    to it (a smaller size is kept, a small difference is under the growth
    threshold); the line then says why. A type without a price shows as $?:
    the report must never fail a change that already happened.
    """
    previous, size = int(_number(previous_gb, "previous_gb")), int(_number(size_gb, "size_gb"))
    if previous == size:
        cost = _cost_or_none(size, disk_type, prices)
        line = f"boot disk {size} GB {disk_type} (unchanged, {_money(cost)}/month"
        wanted = None if wanted_gb in (None, "") else int(_number(wanted_gb, "wanted_gb"))
        if wanted is not None and wanted < size:
            line += f"; {wanted} GB asked, and a disk never shrinks"
        elif wanted is not None and wanted > size:
            line += f"; {wanted} GB asked, less than the growth threshold above it"
        return line + ")"
    before, after = _cost_or_none(previous, disk_type, prices), _cost_or_none(size, disk_type, prices)
    delta = None if before is None or after is None else round(after - before, 2)
    return f"boot disk {previous} GB → {size} GB, {_money(delta, sign=True)}/month, online, no restart"


def vm_monthly_cost(
    machine_type, disk_size_gb, disk_type=DEFAULT_DISK_TYPE, prices=None, disk_prices=None, plan="on_demand"
) -> str:
    """The VM's monthly cost line: `e2-standard-4 $97.83 + boot disk 50 GB pd-balanced $5.00 = $102.83/month`
    (a Spot VM's: `e2-standard-4 Spot $29.35 + ...`)."""
    if disk_prices is None and not flat_prices(prices):
        disk_prices = prices  # the price table (or overrides of it) prices the disk too
    disk = _cost_or_none(disk_size_gb, disk_type, disk_prices)
    disk_part = f"boot disk {int(_number(disk_size_gb, 'disk_size_gb'))} GB {disk_type} {_money(disk)}"
    if not machine_type:
        return f"{disk_part}/month (the machine type is not managed here)"
    try:
        machine = float(machine_type_monthly_cost(machine_type, prices, plan))
    except AnsibleFilterError:
        machine = None
    total = None if machine is None or disk is None else machine + disk
    label = f"{machine_type} Spot" if plan == "spot" else machine_type
    return f"{label} {_money(machine)} + {disk_part} = {_money(total)}/month"


def _ran(result) -> bool:
    """A registered result of a step that ran (not skipped by its when, not left undefined by --tags)."""
    return isinstance(result, Mapping) and bool(result) and not result.get("skipped")


def vm_upgrade_report(results, host, check_mode=False, prices=None, disk_prices=None, wanted_gb=None, vcpus=None,
                      memory_mb=None, machine_type_note=False) -> list:  # fmt: skip
    """The vm_upgrade role's report: one line per step that ran, each as its result says.

    ``results``: ``machine_type`` (gce_machine_type's result), ``disk``
    (gce_disk_size's) and ``filesystem`` (grow_root_fs's, or a list of its
    runs: the last that ran counts); a step that did not run is left out.
    In check mode a change is one that would be made. ``vcpus`` and
    ``memory_mb``, the VM's facts read again after a resize, are added to
    the machine type's line. Never fails on a missing price ($?): the report
    must not fail a change that already happened.
    """
    if not isinstance(results, Mapping):
        raise AnsibleFilterError(f"vm_upgrade_report: results must be a dict of step results, got {results!r:.80}")
    machine, disk = results.get("machine_type"), results.get("disk")
    runs = results.get("filesystem")
    runs = runs if isinstance(runs, list) else [runs]
    lines = []
    if _ran(machine):
        changed = bool(machine.get("changed"))
        line = ("would change: " if check_mode and changed else "") + machine_type_change(
            machine["previous_machine_type"], machine["machine_type"], prices, stops=machine.get("status") == "RUNNING",
            downtime_s=None if check_mode else machine.get("downtime_s"),
            previous_plan=plan_of(machine.get("previous_provisioning_model")),
            plan=plan_of(machine.get("provisioning_model")))  # fmt: skip
        if changed and not check_mode and vcpus is not None:
            line += f" (now {vcpus} vCPUs, {memory_mb} MB)"
        lines.append(line)
    if _ran(disk):
        changed = bool(disk.get("changed"))
        size, kind = disk["size_gb"], disk["disk_type"]
        change = disk_size_change(disk["previous_size_gb"], size, kind, disk_prices, wanted_gb=wanted_gb)
        lines.append(("would change: " if check_mode and changed else "") + change)
        pending = check_mode and (changed or (_ran(machine) and bool(machine.get("changed"))))
        machine_type = machine.get("machine_type", "") if _ran(machine) else ""
        plan = plan_of(machine.get("provisioning_model")) if _ran(machine) else "on_demand"
        cost = vm_monthly_cost(machine_type, size, kind, prices, disk_prices, plan)
        lines.append(("once changed, " if pending else "") + cost)
    ran = [run for run in runs if _ran(run)]
    if ran:
        lines.append(ran[-1]["msg"])
    lines = [f"{host}: {line}" for line in lines]
    if machine_type_note:
        lines.append(f"vm_upgrade_machine_type is empty, so the machine type of {host} is left alone.")
    return lines


def root_fs_remembered(text, known_disk, mount="/", min_room_mb=16):
    """grow_root_fs's remembered answer in ``text`` (its cache file) for this disk and size, or None.

    The vm_upgrade role looks at / only when this is None: the disk changed,
    was made again, or / was never found to fill it from this controller.
    """
    if not known_disk:
        return None
    if not isinstance(known_disk, Mapping) or "id" not in known_disk or "size_gb" not in known_disk:
        raise AnsibleFilterError(f"root_fs_remembered: known_disk must be {{id, size_gb}}, got {known_disk!r:.80}")
    return root_fs_memo.recall(text, known_disk, mount, min_room_mb)


# ----------------------------------------------------------------- room for new agents
def disk_paths_for_agents(agents, workspace_root) -> list:
    """What the launcher's one ``df`` asks about: the workspace root and its parents, then each agent's workdir."""
    root = str(workspace_root).rstrip("/") or "/"
    if not root.startswith("/"):
        raise AnsibleFilterError(f"the workspace root {root!r:.80} must be an absolute path")
    parents = [root]
    while parents[-1] != "/":
        parents.append(parents[-1].rsplit("/", 1)[0] or "/")
    return parents + [workdir for _, workdir in _workdirs(agents, root)]


def _workdirs(agents, root: str) -> list:
    if not isinstance(agents, list) or not all(isinstance(a, dict) and a.get("name") for a in agents):
        raise AnsibleFilterError(f"agents must be a list of dicts with a name (central_mcp_agents), got {agents!r:.80}")
    # The same rule as the launcher_fleet filter: an agent's own workdir, else <root>/<name>.
    return [(str(a["name"]), str(a.get("workdir") or f"{root}/{a['name']}")) for a in agents]


def _gb(n: int) -> str:
    return f"{n / 2**30:.1f} GB"  # Compute Engine's GB are GiB, and so are these


def agents_disk_room(df_output, agents, workspace_root, per_agent_gb=None, growth_gb=0) -> dict:
    """Whether the filesystem of the workspace root has room for the agents that are new on this host.

    ``df_output`` is the free bytes of each path of :func:`disk_paths_for_agents`
    that exists: the ``free_bytes`` mapping of the host_info module, or what
    ``LC_ALL=C df --block-size=1 --output=avail,file`` printed for them (one
    line per path that exists; a missing path is only an error on stderr). An agent whose workdir is
    listed is already here and needs nothing new; each other one needs
    ``per_agent_gb`` (None or "": the sizing default). The free space is that
    of the workspace root or, before the first run, of its nearest existing
    parent. ``growth_gb``: GB the boot disk is about to grow by (check mode).

    Returns new (names), need_bytes, free_bytes, missing_bytes, path (where it
    was measured), ok, and message (the refusal, or what was checked).
    """
    root = str(workspace_root).rstrip("/") or "/"
    per_agent = DISK_PER_AGENT_GB
    if per_agent_gb not in (None, ""):
        per_agent = _number(per_agent_gb, "vm_upgrade_disk_per_agent_gb")
    growth = _number(growth_gb or 0, "growth_gb")
    free_at = {}
    if isinstance(df_output, Mapping):  # host_info's free_bytes
        free_at = {str(path): int(free) for path, free in df_output.items()}
    else:
        for line in str(df_output or "").splitlines():
            avail, _, path = line.strip().partition(" ")
            if avail.isdigit():
                free_at[path.strip()] = int(avail)
    measured = next((p for p in disk_paths_for_agents([], root) if p in free_at), None)
    if measured is None:
        raise AnsibleFilterError(
            f"no free space was measured for {root} or any of its parents: {str(df_output)[:160]!r} "
            "(give host_info's free_bytes, or what `df --output=avail,file` printed with LC_ALL=C)"
        )
    new = [name for name, workdir in _workdirs(agents, root) if workdir not in free_at]
    need = int(len(new) * per_agent * 2**30)
    free = free_at[measured] + int(growth * 2**30)
    missing = max(need - free, 0)
    grown = f" (counting the {growth:g} GB the boot disk grows by in this run)" if growth else ""
    if not new:
        message = f"no new agent on this host: nothing more is needed on the filesystem of {measured}"
    else:
        message = (
            f"{len(new)} new agent{'s' if len(new) != 1 else ''} on this host ({', '.join(new)}) "
            f"need{'s' if len(new) == 1 else ''} "
            f"{_gb(need)} ({per_agent:g} GB each, vm_upgrade_disk_per_agent_gb) on the filesystem of {measured}, "
            f"which has {_gb(free)} free{grown}"
        )
    if missing:
        message += (
            f": {_gb(missing)} is missing. Raise vm_upgrade_disk_size_gb in the inventory (or set it to auto, "
            "sized for the fleet) so that the boot disk grows online, or free space on the VM, "
            "then run site.yml again. Nothing was changed."
        )
    return {"new": new, "need_bytes": need, "free_bytes": free, "missing_bytes": missing, "path": measured,
            "ok": not missing, "message": message}  # fmt: skip


class FilterModule:
    """Disk sizing, disk cost and agent room filters of central_mcp.agents."""

    def filters(self):
        return {
            "disk_size_for_agents": disk_size_for_agents,
            "disk_monthly_cost": disk_monthly_cost,
            "disk_size_change": disk_size_change,
            "vm_monthly_cost": vm_monthly_cost,
            "vm_upgrade_report": vm_upgrade_report,
            "root_fs_remembered": root_fs_remembered,
            "disk_paths_for_agents": disk_paths_for_agents,
            "agents_disk_room": agents_disk_room,
        }
