# SPDX-License-Identifier: Apache-2.0
"""Named background loops: liveness, assignment, health, upkeep.

Each loop runs its step once at start and then every ``interval_s``. A step
that raises is logged with its traceback and recorded (``last_error`` in
/health); the loop carries on at the next interval, so one bad iteration
never takes the service down. Steps are short synchronous calls on the
event loop: they share the one database connection with the request handlers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable

from central_mcp import retention, sysinfo, usage
from central_mcp.authors import BY_COORDINATOR
from central_mcp.service import Service

log = logging.getLogger(__name__)

DAILY_BACKUP_S = 24 * 3600


class Loops:
    """Starts and stops the four loops of one :class:`Service`."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self._tasks: list[asyncio.Task[None]] = []
        self._meter = sysinfo.CpuMeter()
        self._last_backup = 0.0

    def start(self) -> None:
        s = self.service.settings
        for name, interval, step in (
            ("liveness", s.liveness_s, self.liveness),
            ("assignment", s.assign_s, self.assignment),
            ("health", s.health_s, self.health),
            ("upkeep", s.upkeep_s, self.upkeep),
        ):
            self.service.loop_status(name, interval)
            self._tasks.append(asyncio.create_task(self._run(name, interval, step), name=f"central-mcp-{name}"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def _run(self, name: str, interval: float, step: Callable[[], None]) -> None:
        status = self.service.loop_status(name, interval)
        while True:
            if self.service.stopping:
                return
            started = time.time()
            try:
                step()
            except Exception as exc:  # a loop must survive any one bad iteration
                status.failures += 1
                status.last_ok = False
                status.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("loop %s failed; retrying in %g s", name, interval)
            else:
                status.last_ok = True
                status.last_error = None
            status.last_run = started
            status.runs += 1
            status.last_duration_ms = round((time.time() - started) * 1000, 2)
            await asyncio.sleep(interval)

    # -- steps ------------------------------------------------------------------

    def liveness(self) -> None:
        """Re-read a changed agents file, then move agents between states; an agent gone offline gives its tasks back.

        The hand-back happens here, at once, not at the next assignment
        round: a runtime's agent is offline seconds after its last heartbeat.
        """
        svc = self.service
        svc.reload_agents_file(force=False)
        for name, old, new in svc.roster.refresh(svc.settings.stale_s, svc.settings.offline_s):
            log.info("agent %s: %s -> %s", name, old, new)
            if new == "offline":
                self._hand_back_offline(name)

    def _hand_back_offline(self, name: str) -> None:
        """An offline agent's open tasks go back to the board, each as a failed attempt."""
        svc = self.service
        runtime = svc.roster.runtimes.get(name) is not None
        silent = svc.settings.runtime_offline_s if runtime else svc.settings.offline_s
        why = f"agent {name} is offline (no {'heartbeat from its runtime' if runtime else 'activity'} for {silent:g} s)"
        tasks = svc.work.attempt_failed(name, None, why)
        if tasks:
            listing = ", ".join(f"#{t['id']} ({t['state']})" for t in tasks)
            svc.board.post_note("coordinator", f"Handed back {listing}: {why}.", written_by=BY_COORDINATOR)
            log.info("handed back %s: %s", listing, why)

    def assignment(self) -> None:
        """Hand back tasks of offline or retired agents; suggest open tasks to idle agents of the right role."""
        svc = self.service
        agents = svc.roster.states()
        holding = svc.roster.working()  # only these can have anything to hand back
        for agent in agents:
            if agent["name"] not in holding:
                continue
            if agent["state"] == "offline":
                self._hand_back_offline(agent["name"])  # what the liveness step missed (e.g. at start)
            elif agent["state"] == "retired":
                why = f"agent {agent['name']} is retired"
                ids = svc.board.hand_back(agent["name"], why)
                if ids:
                    listing = ", ".join(f"#{i}" for i in ids)
                    svc.board.post_note(
                        "coordinator",
                        f"Handed back {listing}: {why}. They are AVAILABLE again.",
                        written_by=BY_COORDINATOR,
                    )
                    log.info("handed back %s: %s", listing, why)
        idle = [a for a in agents if a["state"] == "idle"]
        if not idle:
            return
        open_tasks = svc.board.available(role=None)
        idle_names = {a["name"] for a in idle}
        taken = {t["suggested_agent"] for t in open_tasks if t["suggested_agent"] in idle_names}
        # Idle agents in name order, per role and all together: each task takes the first one not yet taken,
        # so a round costs tasks + agents steps, not tasks x agents.
        anyone: deque[dict] = deque(a for a in idle if a["name"] not in taken)
        by_role: dict[str, deque[dict]] = {}
        for a in anyone:
            by_role.setdefault(a["role"], deque()).append(a)

        def first_free(queue: deque[dict]) -> dict | None:
            while queue and queue[0]["name"] in taken:
                queue.popleft()
            return queue.popleft() if queue else None

        for task in open_tasks:
            if task["suggested_agent"] in taken:
                continue  # its suggestion still stands: the agent is idle and was told
            match = first_free(by_role.get(task["role"], deque()) if task["role"] else anyone)
            if match is None:
                continue
            taken.add(match["name"])
            svc.board.suggest(task["id"], match["name"])
            svc.board.post_note(
                "coordinator",
                f"Task #{task['id']} \u201c{task['title']}\u201d (priority {task['priority']}) suggested for "
                f"{match['name']} ({match['role'] or 'any role'}): claim it with claim_task.",
                task["id"],
                written_by=BY_COORDINATOR,
            )

    def health(self) -> None:
        """Record CPU, memory, disk and capacity; a warning in the log when this VM's agents outgrow it or its disk.

        Only the agents on this VM count against its capacity: another VM's agents use that VM's CPUs.
        """
        svc = self.service
        agents = sum(1 for a in svc.roster.states() if a["state"] != "retired" and svc.on_this_vm(a["host"]))
        before = set(svc.system.get("warnings", []))
        svc.system = sysinfo.snapshot(
            self._meter, svc.settings.db_path.parent, agents, svc.settings.disk_warn_percent,
            svc.settings.agent_processes,
        )  # fmt: skip
        svc.system["taken_at"] = time.time()
        for warning in svc.system["warnings"]:
            if warning not in before:
                log.warning("health: %s", warning)

    def upkeep(self) -> None:
        """Retention of old events and notes, WAL checkpoint, full integrity check, a daily backup, backup retention."""
        svc = self.service
        deleted = retention.prune(svc.store, svc.settings.retention_days)
        if any(deleted.values()):
            log.info(
                "retention: deleted %d events and %d notes older than %d days",
                deleted["events"], deleted["notes"], svc.settings.retention_days,
            )  # fmt: skip
        svc.pruned = {key: svc.pruned.get(key, 0) + count for key, count in deleted.items()}
        usage.prune(svc.store)  # the agents' measured peaks: a week and a day
        svc.store.checkpoint()
        svc.integrity = svc.store.integrity_check()
        svc.integrity_at = time.time()
        if svc.integrity != "ok":
            log.error("integrity check of %s: %s", svc.store.path, svc.integrity)
        backups = svc.store.backups()
        newest = backups[-1].stat().st_mtime if backups else 0.0
        if time.time() - max(newest, self._last_backup) >= DAILY_BACKUP_S:
            self._last_backup = time.time()
            log.info("daily backup: %s", svc.store.backup("daily"))
        svc.store.prune_backups()
