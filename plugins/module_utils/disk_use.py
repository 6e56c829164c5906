# SPDX-License-Identifier: Apache-2.0
"""Disk use of the filesystems that hold given paths, and the early warning that names what to raise.

Standard library only: ``agent_status`` runs it on the target, and the
``status_table`` filter renders its results on the controller. The figures
are df's: ``used_percent`` is used / (used + available to users), so ext4's
blocks reserved for root count as unavailable and 100 % means that the
agents (who are not root) can write nothing more.

Several paths on one filesystem (``/`` and the agents' workspaces, on most
VMs) give one entry, so the same disk is neither counted nor warned twice.
A path that does not exist yet (the workspace root before the first run) is
measured on the filesystem that will hold it: its nearest existing parent's.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

DEFAULT_WARN_PERCENT = 85.0
# The inventory variable that grows the boot disk (the vm_upgrade role).
RAISE_VARIABLE = "vm_upgrade_disk_size_gb"


def existing(path: str) -> str:
    """``path`` or its nearest existing parent (``/`` at worst)."""
    path = os.path.abspath(path)
    while not os.path.exists(path) and path != "/":
        path = os.path.dirname(path)
    return path


def mount_point(path: str) -> str:
    """The mount point of the filesystem that holds the existing ``path``."""
    path = os.path.realpath(path)
    while not os.path.ismount(path):
        path = os.path.dirname(path)
    return path


def measure(path: str, statvfs: Callable[[str], Any] | None = None) -> dict[str, Any]:
    """Size, free space (for users) and use of the filesystem holding ``path``."""
    st = (statvfs or os.statvfs)(existing(path))
    total, free = st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize
    used = (st.f_blocks - st.f_bfree) * st.f_frsize
    percent = round(100.0 * used / (used + free), 1) if used + free else None
    return {"total_bytes": total, "free_bytes": free, "used_bytes": used, "used_percent": percent}


def _size(value: int | None) -> str:
    """1.2 GiB, or 750 MiB below a GiB (a small filesystem must not read as 0.0 GiB)."""
    if value is None:
        return "?"
    return f"{value / 2**30:.1f} GiB" if value >= 2**30 else f"{value / 2**20:.0f} MiB"


def warning(entry: dict[str, Any], warn_percent: float = DEFAULT_WARN_PERCENT) -> str | None:
    """The early warning for one filesystem at or above ``warn_percent``, or None."""
    percent = entry.get("used_percent")
    if percent is None or percent < warn_percent:
        return None
    return (
        f"disk {entry['mount']} is {percent:g} % used ({_size(entry['free_bytes'])} free of "
        f"{_size(entry['total_bytes'])}), above the {warn_percent:g} % warning threshold: raise "
        f"{RAISE_VARIABLE} in the inventory (or set it to auto) and run site.yml; the boot disk grows online"
    )


def report(paths: list[str], warn_percent: float = DEFAULT_WARN_PERCENT) -> list[dict[str, Any]]:
    """One entry per filesystem holding ``paths``, in the order of the paths.

    Each entry: mount, paths (those asked for that it holds), total_bytes,
    free_bytes, used_bytes, used_percent, warn_percent, warning.
    """
    entries: dict[int, dict[str, Any]] = {}
    for path in paths:
        found = existing(path)
        device = os.stat(found).st_dev
        if device not in entries:
            entries[device] = {"mount": mount_point(found), "paths": [], **measure(found)}
            entries[device].update(warn_percent=warn_percent, warning=warning(entries[device], warn_percent))
        if path not in entries[device]["paths"]:
            entries[device]["paths"].append(path)
    return list(entries.values())


def render_lines(disks: list[dict[str, Any]]) -> list[str]:
    """One line per filesystem, then a ``!`` line per warning: the status table's disk part.

    An entry with a ``host`` (the status_table filter adds it) names it.
    """
    lines, warnings = [], []
    for d in disks:
        where = f"{d['host']} " if d.get("host") else ""
        others = [p for p in d.get("paths", []) if p != d["mount"]]
        holds = f" (holds {', '.join(others)})" if others else ""
        percent = "?" if d.get("used_percent") is None else f"{d['used_percent']:g} %"
        lines.append(
            f"DISK {where}{d['mount']}{holds}: {percent} used, {_size(d.get('free_bytes'))} free "
            f"of {_size(d.get('total_bytes'))}"
        )
        if d.get("warning"):
            warnings.append(f"! {d['host'] + ': ' if d.get('host') else ''}{d['warning']}")
    return lines + warnings
