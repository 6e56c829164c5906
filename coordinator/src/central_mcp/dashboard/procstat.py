# SPDX-License-Identifier: Apache-2.0
"""CPU time and resident memory of process trees, from /proc (standard library only).

Used on both sides of the relay socket. The relay runs as the agents' user
and sees their processes even when the coordinator cannot (its hardened unit
has ``ProtectProc=invisible``), so it reports each pane's figures with the
pane list; the coordinator turns CPU seconds into a share and, for a relay
that sent none, reads /proc itself. A process that cannot be seen gives
``None``: the page shows "—", never a guess.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def scan(proc: Path = Path("/proc")) -> dict[int, tuple[int, float, int]]:
    """pid -> (parent pid, CPU seconds used, RSS bytes) of every visible process."""
    table: dict[int, tuple[int, float, int]] = {}
    try:
        entries = list(os.scandir(proc))
    except OSError:
        return table
    for entry in entries:
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(entry.path, "stat").read_text()
            fields = raw[raw.rfind(")") + 2 :].split()  # the command name may hold spaces and parentheses
            table[int(entry.name)] = (
                int(fields[1]),
                (int(fields[11]) + int(fields[12])) / CLK_TCK,
                int(fields[21]) * PAGE,
            )
        except (OSError, IndexError, ValueError):
            continue
    return table


def tree_usage(roots: Iterable[int], proc: Path = Path("/proc")) -> dict[int, tuple[float, int]]:
    """root pid -> (CPU seconds, RSS bytes) summed over it and its descendants; invisible roots are left out."""
    table = scan(proc)
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    usage: dict[int, tuple[float, int]] = {}
    for root in roots:
        if root not in table:
            continue
        cpu, rss, stack = 0.0, 0, [root]
        while stack:
            pid = stack.pop()
            _, used, resident = table[pid]
            cpu, rss = cpu + used, rss + resident
            stack.extend(children.get(pid, ()))
        usage[root] = (cpu, rss)
    return usage


class CpuRate:
    """CPU share (% of one core) of a key between two readings of its cumulative CPU seconds."""

    def __init__(self) -> None:
        self._last: dict[object, tuple[float, float]] = {}

    def percent(self, key: object, cpu_s: float, now: float | None = None) -> float | None:
        """None on the first reading of ``key`` (a rate needs two)."""
        now = time.monotonic() if now is None else now
        last, self._last[key] = self._last.get(key), (cpu_s, now)
        if last is None or now <= last[1]:
            return None
        return round(max(0.0, 100.0 * (cpu_s - last[0]) / (now - last[1])), 1)

    def keep(self, keys: Iterable[object]) -> None:
        """Forget keys no longer seen (agents removed, panes respawned)."""
        wanted = set(keys)
        self._last = {k: v for k, v in self._last.items() if k in wanted}
