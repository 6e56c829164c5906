# SPDX-License-Identifier: Apache-2.0
"""The /health report: one JSON document a probe, the CLI and the dashboard all read.

``status`` is ``failing`` when the database cannot be read or fails its
integrity check (HTTP 503: restart or restore), ``degraded`` when something
needs attention but agents can work (a loop erroring or stuck, a broken
agents file, the fleet larger than the VM fits), else ``ok``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from central_mcp import __version__
from central_mcp.agents import AGENT_STATES, iso
from central_mcp.service import Service


def report(svc: Service) -> dict[str, Any]:
    """Build the health document from what the loops last recorded (cheap: no heavy checks here)."""
    now = time.time()
    problems: list[str] = []
    db_ok = svc.store.ping()
    if not db_ok:
        problems.append(f"database {svc.store.path} cannot be read")
    if svc.integrity not in (None, "ok"):
        problems.append(f"database integrity check failed: {svc.integrity}")
    failing = bool(problems)

    loops = {}
    for name, status in svc.loops.items():
        loops[name] = status.view()
        if status.last_ok is False:
            problems.append(f"loop {name}: {status.last_error}")
        elif status.overdue(now):
            problems.append(f"loop {name} has not run for {now - (status.last_run or now):.0f} s")
    if svc.agents_file.error:
        problems.append(svc.agents_file.error)
    problems.extend(svc.system.get("warnings", []))

    states = [s for s in AGENT_STATES if s != "retired"]
    agents = {"total": 0, "registered": 0, **dict.fromkeys(states, 0)}
    agents["retired"] = 0
    tasks: dict[str, int] = {}
    if db_ok:
        for agent in svc.roster.list(include_retired=True, now=now):
            agents[agent["state"]] = agents.get(agent["state"], 0) + 1
            if agent["state"] != "retired":
                agents["total"] += 1
            agents["registered"] += 1 if agent["registered"] else 0
        tasks = svc.board.counts()

    status = "failing" if failing else ("degraded" if problems else "ok")
    size, wal = _size(svc.store.path), _size(svc.store.path.with_name(svc.store.path.name + "-wal"))
    backups = svc.store.backups()
    return {
        "status": status,
        "version": __version__,
        "uptime_s": round(now - svc.started_at, 1),
        "problems": problems,
        "database": {
            "ok": db_ok and svc.integrity in (None, "ok"),
            "integrity": svc.integrity,
            "integrity_checked_at": iso(svc.integrity_at),
            "path": str(svc.store.path),
            "size_bytes": size,
            "wal_bytes": wal,
            "total_bytes": None if size is None else size + (wal or 0),  # what it takes on disk, WAL included
            "backups": len(backups),
            "backups_bytes": sum(_size(path) or 0 for path in backups),
            "retention_days": svc.settings.retention_days or None,  # None: kept forever
            "pruned": {"events": svc.pruned.get("events", 0), "notes": svc.pruned.get("notes", 0)},
        },
        "loops": loops,
        "agents": agents,
        "tasks": tasks,
        "agents_file": {
            "path": svc.agents_file.path,
            "loaded_at": iso(svc.agents_file.loaded_at),
            "agents": svc.agents_file.agents,
            "error": svc.agents_file.error,
        },
        "system": svc.system,
        # The Spot watcher's story of each Spot VM (central_mcp.spot): running, preempted, back after how long.
        "spot": svc.spot_view,
        "events": {"subscribers": svc.bus.subscribers, "published": svc.bus.published},
    }


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None
