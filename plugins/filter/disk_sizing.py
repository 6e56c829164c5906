# SPDX-License-Identifier: Apache-2.0
"""Filters that size the boot disk for the fleet, price it, and decide what the guest can grow.

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

Cost. Persistent disks are billed per GB-month by type; the defaults are the
on-demand prices in us-central1 (pd-standard $0.04, pd-balanced $0.10,
pd-ssd $0.17), overridable with a table of one's own.

Room for new agents. Before the launcher adds agents to a host, it measures
the free space where their workspaces go (one ``df``) and refuses when the
agents that are new there (their workspace does not exist yet) need more
than that, at the same per-agent allowance as the sizing above.

The guest. Whether the root partition and filesystem can grow is decided
from what the tools themselves print (``findmnt``, ``lsblk``,
``growpart --dry-run``, ``dumpe2fs -h``, ``xfs_info``), parsed here rather
than in Jinja so that the decisions are unit-tested against real output.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible_collections.central_mcp.agents.plugins.filter.sizing import _count, machine_type_monthly_cost

DISK_BASE_GB = 20
DISK_PER_AGENT_GB = 2
MIN_BOOT_DISK_GB = 10
DEFAULT_DISK_TYPE = "pd-balanced"
# US dollars per GB-month, on-demand, us-central1.
DEFAULT_DISK_PRICES = {"pd-standard": 0.04, "pd-balanced": 0.10, "pd-ssd": 0.17}
GROWABLE = ("ext2", "ext3", "ext4", "xfs")
_GROWPART_CHANGE = re.compile(r"CHANGED?: partition=(\d+) start=\d+ old: size=(\d+) end=\d+ new: size=(\d+)")
_EXT_COUNT = re.compile(r"^Block count:\s+(\d+)", re.M)
_EXT_SIZE = re.compile(r"^Block size:\s+(\d+)", re.M)
_XFS_DATA = re.compile(r"^data\s+=.*?\bbsize=(\d+)\s+blocks=(\d+)", re.M)


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
def disk_size_for_agents(count, base_gb=DISK_BASE_GB, per_agent_gb=DISK_PER_AGENT_GB) -> int:
    """GB of boot disk for count agents: base + per agent, rounded up, never below the 10 GB minimum."""
    agents = _count(count)
    total = _number(base_gb, "base_gb") + agents * _number(per_agent_gb, "per_agent_gb")
    return max(MIN_BOOT_DISK_GB, math.ceil(total))


def disk_monthly_cost(size_gb, disk_type=DEFAULT_DISK_TYPE, prices=None) -> float:
    """US dollars a month for a disk of size_gb GB of this type; an unknown type names the known ones."""
    prices = DEFAULT_DISK_PRICES if prices is None else prices
    if not isinstance(prices, dict):
        raise AnsibleFilterError(
            f"disk prices must be a dict of disk type -> US dollars per GB-month, got {prices!r:.80}"
        )
    if disk_type not in prices:
        known = ", ".join(sorted(prices)) or "none"
        raise AnsibleFilterError(
            f"no price per GB-month for disk type {disk_type!r:.60}: known types are {known} "
            "(add it to the disk price table, e.g. vm_upgrade_disk_prices)"
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


def vm_monthly_cost(machine_type, disk_size_gb, disk_type=DEFAULT_DISK_TYPE, prices=None, disk_prices=None) -> str:
    """The VM's monthly cost line: `e2-standard-4 $97.00 + boot disk 50 GB pd-balanced $5.00 = $102.00/month`."""
    disk = _cost_or_none(disk_size_gb, disk_type, disk_prices)
    disk_part = f"boot disk {int(_number(disk_size_gb, 'disk_size_gb'))} GB {disk_type} {_money(disk)}"
    if not machine_type:
        return f"{disk_part}/month (the machine type is not managed here)"
    try:
        machine = float(machine_type_monthly_cost(machine_type, prices))
    except AnsibleFilterError:
        machine = None
    total = None if machine is None or disk is None else machine + disk
    return f"{machine_type} {_money(machine)} + {disk_part} = {_money(total)}/month"


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


# ----------------------------------------------------------------- the guest's decisions
def _json(text, tool: str) -> dict:
    if isinstance(text, dict):
        return text
    try:
        return json.loads(text or "{}")
    except ValueError:
        raise AnsibleFilterError(f"{tool} printed something that is not JSON: {str(text)[:120]!r}") from None


def root_fs_layout(findmnt_json, lsblk_json="") -> dict:
    """Where / lives, from `findmnt --json` and `lsblk --json --paths` of its source, and whether it can grow.

    Returns mount, source, fstype, disk and partition (None for a filesystem
    on a whole disk), grow (true when this role can grow it) and why (when not).
    """
    found = (_json(findmnt_json, "findmnt").get("filesystems") or [{}])[0]
    source = re.sub(r"\[.*\]$", "", found.get("source") or "")  # btrfs subvolumes: /dev/sda1[/@]
    layout = {"mount": found.get("target"), "source": source, "fstype": found.get("fstype") or "unknown"}
    layout.update(disk=None, partition=None, grow=False, why="")
    if layout["fstype"] == "overlay":
        return {**layout, "why": "it is an overlay filesystem (a container): there is no disk to grow under it"}
    if layout["fstype"] not in GROWABLE:
        return {**layout, "why": f"it is {layout['fstype']}: this role grows ext2/3/4 and XFS only"}
    device = (_json(lsblk_json, "lsblk").get("blockdevices") or [None])[0] if lsblk_json else None
    if not source.startswith("/dev/") or not device:
        return {**layout, "why": f"its source {source or '(none)'} is not a block device lsblk knows"}
    kind, parent = device.get("type"), device.get("pkname")
    if kind in ("disk", "loop"):  # a filesystem on the whole device: only the filesystem grows
        return {**layout, "grow": True}
    number = device.get("name", "").removeprefix(parent or "\0").removeprefix("p")
    if kind == "part" and parent and number.isdigit():
        return {**layout, "disk": parent, "partition": int(number), "grow": True}
    return {
        **layout,
        "why": f"it is on a {kind} device ({device.get('name')}): grow what is under it by hand "
        "(e.g. pvresize and lvextend), then the filesystem",
    }


def growpart_plan(stdout, rc, sector_bytes=512) -> dict:
    """What `growpart --dry-run DISK N` says: grow (bool), from_bytes, to_bytes, and why (in its words)."""
    text = (stdout or "").strip()
    found = _GROWPART_CHANGE.search(text)
    if int(rc) == 0 and found:
        number, old, new = (int(found.group(i)) for i in (1, 2, 3))
        size = int(sector_bytes)
        return {"grow": True, "from_bytes": old * size, "to_bytes": new * size, "why": f"partition {number} can grow"}
    why = text.split("NOCHANGE: ", 1)[1] if "NOCHANGE: " in text else (text or f"growpart exited {rc}")
    return {"grow": False, "from_bytes": None, "to_bytes": None, "why": why.splitlines()[0]}


def filesystem_room(info, fstype, device_bytes, min_room_mb=16) -> dict:
    """Whether the filesystem is smaller than its device by at least min_room_mb (from dumpe2fs -h / xfs_info).

    A grown filesystem can end a few blocks short of its device (resize2fs
    rounds), so "room" means more than a rounding: min_room_mb.
    """
    text = info or ""
    if str(fstype).startswith("ext"):
        count, size = _EXT_COUNT.search(text), _EXT_SIZE.search(text)
        fs_bytes = int(count.group(1)) * int(size.group(1)) if count and size else None
    elif fstype == "xfs":
        data = _XFS_DATA.search(text)
        fs_bytes = int(data.group(1)) * int(data.group(2)) if data else None
    else:
        raise AnsibleFilterError(f"filesystem_room knows ext2/3/4 and xfs, not {fstype!r:.40}")
    if fs_bytes is None:
        raise AnsibleFilterError(f"no block count and size in what was read for {fstype}: {text[:160]!r}")
    device = int(_number(device_bytes, "device_bytes"))
    room = device - fs_bytes
    grow = room >= _number(min_room_mb, "min_room_mb") * 2**20
    return {"grow": grow, "fs_bytes": fs_bytes, "device_bytes": device, "room_bytes": max(room, 0)}


class FilterModule:
    """Disk sizing, disk cost and guest filesystem filters of central_mcp.agents."""

    def filters(self):
        return {
            "disk_size_for_agents": disk_size_for_agents,
            "disk_monthly_cost": disk_monthly_cost,
            "disk_size_change": disk_size_change,
            "vm_monthly_cost": vm_monthly_cost,
            "root_fs_layout": root_fs_layout,
            "growpart_plan": growpart_plan,
            "filesystem_room": filesystem_room,
            "disk_paths_for_agents": disk_paths_for_agents,
            "agents_disk_room": agents_disk_room,
        }
