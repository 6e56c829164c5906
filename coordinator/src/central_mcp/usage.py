# SPDX-License-Identifier: Apache-2.0
"""Each agent's measured CPU and memory, kept for a week: what sizing by measurement reads.

The dashboard's metrics task reads every agent's CPU share and resident
memory every few seconds, from each VM's pane relay (its CLI's process
tree). This keeps, per agent and 5-minute window, the highest reading of
each: a window's peak. ``GET /api/usage`` answers the 95th percentile of
those peaks per agent and over every agent's windows, so the vm_upgrade
role's ``vm_upgrade_sizing: measured`` can size a VM from what its agents
used at their busiest, instead of the fixed 0.5 vCPU and 500 MB.

One row per agent and window (some 2,000 an agent a week), written once per
window; rows older than 8 days go at the upkeep.
"""

from __future__ import annotations

import math
import time
from typing import Any

from central_mcp.store import Store

WINDOW_S = 300
KEEP_DAYS = 8
DAY_S = 86400.0


def _peak(old: float | None, new: float | None) -> float | None:
    return new if old is None else old if new is None else max(old, new)


def percentile(values: list[float], share: float = 0.95) -> float | None:
    """The nearest-rank percentile (the smallest value with at least ``share`` of the values at or below it)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


class UsageRecorder:
    """Each agent's peaks in the current window, written when the window ends (and at a stop)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.window: int | None = None
        self.peaks: dict[str, tuple[float | None, float | None]] = {}

    def observe(self, figures: dict[str, dict[str, Any]], now: float | None = None) -> None:
        """One reading of every agent the relays show: ``{name: {cpu_percent, rss_bytes}}`` (None: not seen)."""
        window = int((time.time() if now is None else now) // WINDOW_S) * WINDOW_S
        if self.window is not None and window != self.window:
            self.flush()
        self.window = window
        for name, seen in figures.items():
            cpu, rss = seen.get("cpu_percent"), seen.get("rss_bytes")
            if cpu is None and rss is None:
                continue
            old_cpu, old_rss = self.peaks.get(name, (None, None))
            self.peaks[name] = (_peak(old_cpu, cpu), _peak(old_rss, rss))

    def flush(self) -> None:
        """Write the current window's peaks (a window written twice keeps the higher of each)."""
        if self.window is None or not self.peaks:
            return
        rows = [(name, self.window, cpu, rss) for name, (cpu, rss) in self.peaks.items()]
        with self.store.transaction() as conn:
            conn.executemany(
                "INSERT INTO usage (agent, at, cpu_percent, rss_bytes) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (agent, at) DO UPDATE SET cpu_percent = max(coalesce(cpu_percent, 0),"
                " coalesce(excluded.cpu_percent, 0)), rss_bytes = max(coalesce(rss_bytes, 0),"
                " coalesce(excluded.rss_bytes, 0))",
                rows,
            )
        self.peaks = {}


def prune(store: Store, now: float | None = None) -> int:
    """Forget windows older than KEEP_DAYS; how many rows went."""
    cutoff = (time.time() if now is None else now) - KEEP_DAYS * DAY_S
    with store.transaction() as conn:
        return conn.execute("DELETE FROM usage WHERE at < ?", (cutoff,)).rowcount


def summary(store: Store, days: float = 7.0, now: float | None = None) -> dict[str, Any]:
    """The 95th percentile of the window peaks, per agent and over all, for the last ``days``."""
    now = time.time() if now is None else now
    since = now - days * DAY_S
    rows = store.query("SELECT agent, cpu_percent, rss_bytes FROM usage WHERE at >= ? ORDER BY agent", (since,))
    per_agent: dict[str, dict[str, list[float]]] = {}
    for row in rows:
        seen = per_agent.setdefault(row["agent"], {"cpu": [], "rss": []})
        if row["cpu_percent"] is not None:
            seen["cpu"].append(float(row["cpu_percent"]))
        if row["rss_bytes"] is not None:
            seen["rss"].append(float(row["rss_bytes"]))

    def view(cpu: list[float], rss: list[float], windows: int) -> dict[str, Any]:
        cpu_p95, rss_p95 = percentile(cpu), percentile(rss)
        return {
            "windows": windows,
            "cpu_p95_percent": None if cpu_p95 is None else round(cpu_p95, 1),
            "rss_p95_bytes": None if rss_p95 is None else int(rss_p95),
        }

    agents = {name: view(s["cpu"], s["rss"], max(len(s["cpu"]), len(s["rss"]))) for name, s in per_agent.items()}
    every_cpu = [v for s in per_agent.values() for v in s["cpu"]]
    every_rss = [v for s in per_agent.values() for v in s["rss"]]
    return {
        "days": days,
        "since": since,
        "window_s": WINDOW_S,
        "agents": agents,
        "per_agent": {**view(every_cpu, every_rss, len(rows)), "agents": len(per_agent)},
    }


def hours_run(store: Store, agents_by_host: dict[str, list[str]], days: float = 7.0, now: float | None = None) -> dict:
    """Hours each host ran in the last ``days``: its windows in which one of its agents was seen (a pod is
    billed by the hour it runs; while it is stopped, no relay shows its agents). Ended windows only."""
    since = (time.time() if now is None else now) - days * DAY_S
    hours = {}
    for host, agents in agents_by_host.items():
        marks = ", ".join("?" * len(agents))
        rows = (
            store.query(
                f"SELECT count(DISTINCT at) AS n FROM usage WHERE at >= ? AND agent IN ({marks})",  # noqa: S608
                (since, *agents),
            )  # fmt: skip
            if agents
            else [{"n": 0}]
        )
        hours[host] = rows[0]["n"] * WINDOW_S / 3600
    return hours
