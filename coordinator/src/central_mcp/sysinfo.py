# SPDX-License-Identifier: Apache-2.0
"""CPU, memory and disk of this VM, read from /proc and statvfs (no psutil).

The sizing rule of the collection: an API-backed agent needs about 0.5 vCPU
and 300-500 MB of RAM. The health loop compares the fleet with what the VM
has and warns before the VM starts swapping or the agents start starving.
The disk gets an early warning too: above ``CENTRAL_MCP_DISK_WARN_PERCENT``
(85 % by default) of the filesystem that holds the database is in use, the
warning names the inventory variable that grows the boot disk.
Agent processes are found by name where /proc lets us see them; under the
hardened unit (``ProtectProc=invisible``) they are not visible, and the
launcher's ``agent_status`` module reports them instead.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

CPU_PER_AGENT = 0.5
MB_PER_AGENT = 500  # the top of the 300-500 MB range: size for the heavy case
MB_RESERVED = 512  # the OS, the coordinator and tmux


class CpuMeter:
    """Whole-VM CPU use between two readings of /proc/stat."""

    def __init__(self, proc: Path = Path("/proc")) -> None:
        self.proc = proc
        self._last: tuple[int, int] | None = None

    def _read(self) -> tuple[int, int]:
        fields = (self.proc / "stat").read_text().splitlines()[0].split()[1:]
        values = [int(v) for v in fields]
        idle = values[3] + (values[4] if len(values) > 4 else 0)
        return sum(values[:8]), idle

    def percent(self) -> float | None:
        """Busy share of all CPUs since the previous call (None on the first call, or if /proc/stat is hidden)."""
        try:
            total, idle = self._read()
        except (OSError, ValueError, IndexError):
            return None
        last, self._last = self._last, (total, idle)
        if last is None or total == last[0]:
            return None
        return round(100.0 * (1 - (idle - last[1]) / (total - last[0])), 1)


def meminfo(proc: Path = Path("/proc")) -> dict[str, int]:
    """Total and available memory in bytes."""
    values: dict[str, int] = {}
    try:
        text = (proc / "meminfo").read_text()
    except OSError:  # hidden by ProcSubset=pid
        return {"total_bytes": 0, "available_bytes": 0}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("MemTotal", "MemAvailable"):
            values[key] = int(rest.split()[0]) * 1024
    total = values.get("MemTotal", 0)
    return {"total_bytes": total, "available_bytes": values.get("MemAvailable", total)}


def disk(path: Path, statvfs: Callable[[Path], os.statvfs_result] | None = None) -> dict[str, Any]:
    """Size, free space and use of the filesystem holding ``path`` (the database), as ``df`` shows them.

    ``used_percent`` is df's: used / (used + available to users), so the 5 %
    that ext4 reserves for root counts as unavailable and 100 % means that
    agents (not root) can write nothing more.
    """
    st = (statvfs or os.statvfs)(path)
    total = st.f_blocks * st.f_frsize
    free = st.f_bavail * st.f_frsize
    used = (st.f_blocks - st.f_bfree) * st.f_frsize
    percent = round(100.0 * used / (used + free), 1) if used + free else None
    return {"path": str(path), "total_bytes": total, "free_bytes": free, "used_bytes": used, "used_percent": percent}


def size_text(n: int) -> str:
    """1.2 GiB, or 750 MiB below a GiB (a small data volume must not read as 0.0 GiB)."""
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def disk_warning(dsk: dict[str, Any], warn_percent: float) -> str | None:
    """The early warning above ``warn_percent``: what is used, and the inventory variable that grows the disk."""
    percent = dsk.get("used_percent")
    if percent is None or percent < warn_percent:
        return None
    return (
        f"disk: {percent:g} % used on the filesystem of {dsk['path']} ({size_text(dsk['free_bytes'])} free of "
        f"{size_text(dsk['total_bytes'])}), above the {warn_percent:g} % warning threshold: raise "
        f"vm_upgrade_disk_size_gb in the inventory (or set it to auto) and run site.yml; the boot disk grows online"
    )


def rss_bytes(pid: int | str = "self", proc: Path = Path("/proc")) -> int:
    """Resident memory of one process (0 if it is gone or hidden)."""
    try:
        for line in (proc / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def agent_processes(commands: tuple[str, ...], proc: Path = Path("/proc")) -> dict[str, Any]:
    """Count and total RSS of visible agent CLI processes: those with one of ``commands`` among the basenames of
    their first words (the launcher's kinds say how each CLI shows: claude, codex, gemini.js)."""
    count = rss = 0
    try:
        entries = list(proc.iterdir())
    except OSError:
        entries = []
    for entry in entries:
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")[:3]
        except OSError:
            continue
        words = " ".join(os.path.basename(a.decode(errors="replace")) for a in argv)
        if set(commands) & set(words.split()):
            count += 1
            rss += rss_bytes(entry.name, proc)
    return {"count": count, "rss_bytes": rss}


def capacity(cpus: int, mem_total_bytes: int, agents: int) -> dict[str, Any]:
    """How many agents this VM fits by the sizing rule, and warnings when the fleet is bigger."""
    by_cpu = int(cpus / CPU_PER_AGENT)
    by_ram = max(0, int((mem_total_bytes / 2**20 - MB_RESERVED) / MB_PER_AGENT))
    fits = min(by_cpu, by_ram)
    warnings = []
    if agents > fits:
        limit = "CPU" if by_cpu <= by_ram else "RAM"
        warnings.append(
            f"{agents} agents on {cpus} vCPU / {mem_total_bytes / 2**30:.1f} GiB: the sizing rule "
            f"({CPU_PER_AGENT} vCPU and {MB_PER_AGENT} MB per agent) fits {fits}; {limit} is the limit. "
            "Use a bigger machine type or move agents to another VM."
        )
    return {"agents": agents, "fits": fits, "by_cpu": by_cpu, "by_ram": by_ram, "warnings": warnings}


def snapshot(
    meter: CpuMeter, db_dir: Path, agents: int, disk_warn_percent: float = 85.0, commands: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Everything the health loop records, in one dict."""
    cpus = os.cpu_count() or 1  # the VM's vCPUs, even if this process is pinned to fewer
    mem = meminfo()
    dsk = {**disk(db_dir), "warn_percent": disk_warn_percent}
    cap = capacity(cpus, mem["total_bytes"], agents) if mem["total_bytes"] else {"agents": agents, "warnings": []}
    warnings = list(cap["warnings"])
    if mem["total_bytes"] and mem["available_bytes"] < 0.1 * mem["total_bytes"]:
        warnings.append(f"memory: only {mem['available_bytes'] / 2**20:.0f} MB available")
    dsk["warning"] = disk_warning(dsk, disk_warn_percent)
    if dsk["warning"]:
        warnings.append(dsk["warning"])
    cpu_pct = meter.percent()
    if cpu_pct is not None and cpu_pct > 90:
        warnings.append(f"cpu: {cpu_pct:.0f}% busy")
    return {
        "cpus": cpus,
        "cpu_percent": cpu_pct,
        "memory": mem,
        "disk": dsk,
        "coordinator_rss_bytes": rss_bytes(),
        "agent_processes": agent_processes(commands),
        "capacity": cap,
        "warnings": warnings,
    }
