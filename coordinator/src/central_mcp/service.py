# SPDX-License-Identifier: Apache-2.0
"""The running coordinator: settings, store, event bus, roster and board wired together.

One :class:`Service` per process. The MCP tools, the REST API and the loops
all receive it, so none of them builds its own store or reads the environment.
It also owns the agents file: read at start, re-read on SIGHUP, when its
modification time changes, and when an unknown token shows up (so a newly
added agent is let in at once, without waiting for a loop).
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from central_mcp.agents import AgentsFileError, Roster, iso, parse_agents_doc, read_agents_file
from central_mcp.branches import Branches
from central_mcp.domain import Board
from central_mcp.events import EventBus
from central_mcp.fleet_hosts import HostSpec, parse_hosts
from central_mcp.forge import PullRequests
from central_mcp.ratelimit import RateLimiter
from central_mcp.settings import Settings
from central_mcp.store import Store
from central_mcp.work import WorkQueue

log = logging.getLogger(__name__)

UNKNOWN_TOKEN_RECHECK_S = 1.0


@dataclass
class LoopStatus:
    """What /health shows for one background loop."""

    name: str
    interval_s: float
    last_run: float | None = None
    last_ok: bool | None = None
    last_error: str | None = None
    last_duration_ms: float | None = None
    runs: int = 0
    failures: int = 0

    def overdue(self, now: float) -> bool:
        """Not run for three intervals (plus slack): the loop is stuck or dead."""
        started = self.last_run
        return started is not None and now - started > 3 * self.interval_s + 5

    def view(self) -> dict[str, Any]:
        return {
            "last_run": iso(self.last_run),
            "ok": bool(self.last_ok) if self.last_run is not None else None,
            "interval_s": self.interval_s,
            "last_error": self.last_error,
            "last_duration_ms": self.last_duration_ms,
            "runs": self.runs,
            "failures": self.failures,
        }


@dataclass
class AgentsFileStatus:
    """Outcome of the last read of the agents file, for /health and the log."""

    path: str | None
    loaded_at: float | None = None
    mtime: float | None = None
    agents: int = 0
    error: str | None = None
    last_changes: dict[str, list[str]] = field(default_factory=dict)


class Service:
    """Everything a request handler or loop needs, built from :class:`Settings`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.started_at = time.time()
        # Group commit: the HTTP servers answer only once the commits before the answer are synced.
        self.store = Store(settings.db_path, settings.backup_dir, settings.backups_keep, group_commit=True)
        self.bus = EventBus()
        self.roster = Roster(self.store, self.bus, settings.runtime_offline_s, settings.quiet_s)
        self.board = Board(self.store, self.bus, self.roster)
        self.work = WorkQueue(self.board, settings.task_max_attempts)
        self.branches = Branches(self.store)
        # The pull requests of pushed branches, when a forge is configured (started with the server).
        self.pull_requests = (
            PullRequests(self.branches, settings.forge, self.board.get, self.publish_task) if settings.forge else None
        )
        self.writes = RateLimiter(settings.agent_writes_per_minute, settings.agent_writes_burst)
        self.loops: dict[str, LoopStatus] = {}
        self.system: dict[str, Any] = {}
        self.pruned: dict[str, int] = {}  # events and notes the retention deleted since the start
        # Listening sockets systemd passed (socket activation), by name: each server takes its own.
        self.sockets: dict[str, socket.socket] = {}
        self.integrity: str | None = None
        self.integrity_at: float | None = None
        self.agents_file = AgentsFileStatus(str(settings.agents_file) if settings.agents_file else None)
        # The fleet's VMs as the agents file describes them (machine type, Spot or not, price); empty: one VM.
        self.hosts: list[HostSpec] = []
        # What the Spot watcher (central_mcp.spot) last saw of each Spot VM: preempted, back after how long.
        self.spot_view: dict[str, dict[str, Any]] = {}
        self._last_unknown_check = 0.0
        self.opened = False
        # Set once a stop was asked for: the loops judge no agent any more (no heartbeat can arrive while
        # the server stops accepting), and waiting long-polls answer at once.
        self.stopping = False
        # What holds a response open (event streams, MCP listen streams), ended when a stop begins, so that
        # the stop takes a moment, not uvicorn's graceful time-out; the clients reconnect to the next process.
        self.on_stop: list[Callable[[], None]] = [self.bus.close_all]

    def open(self) -> list[int]:
        """Open the database, migrate it, check it, read the agents file; the versions migrated.

        A broken agents file at start is fatal (the fleet would be locked out
        without anyone noticing); later, a broken file is reported and the
        previous roster kept.
        """
        self.store.open()
        applied = self.store.migrate()
        if applied:
            log.info("database %s migrated to version %d", self.store.path, applied[-1])
        self.integrity = self.store.integrity_check()
        self.integrity_at = time.time()
        if self.integrity != "ok":
            log.error("integrity check of %s: %s", self.store.path, self.integrity)
        self.roster.load_tokens()
        self.reload_agents_file(strict=True)
        self.opened = True
        return applied

    def close(self) -> None:
        self.bus.close_all()
        if self.opened:
            self.roster.flush_seen()  # the last-seen times kept in memory since the last liveness tick
            self.opened = False
        self.store.close()

    # -- agents file ---------------------------------------------------------

    def reload_agents_file(self, strict: bool = False, force: bool = True) -> bool:
        """Read the agents file if set (and, unless ``force``, only if its mtime changed); True if it was applied."""
        path = self.settings.agents_file
        status = self.agents_file
        if path is None:
            return False
        try:
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            if status.error is None or strict:
                log.warning("agents file %s does not exist: no agent can connect until it does", path)
            status.error = f"agents file {path} does not exist"
            return False
        except OSError as exc:
            status.error = f"agents file {path}: {exc}"
            return False
        if not force and mtime == status.mtime and status.error is None:
            return False
        try:
            doc = read_agents_file(path)
            specs = parse_agents_doc(doc, path)
            try:
                hosts = parse_hosts(doc, path)
            except ValueError as exc:
                raise AgentsFileError(str(exc)) from None
        except AgentsFileError as exc:
            status.error = str(exc)
            status.mtime = mtime
            if strict:
                raise
            log.error("%s; keeping the previous roster", exc)
            return False
        changes = self.roster.sync(specs)
        self.hosts = hosts
        status.loaded_at, status.mtime, status.agents, status.error = time.time(), mtime, len(specs), None
        status.last_changes = {k: v for k, v in changes.items() if v}
        log.info("agents file %s: %d agents %s", path, len(specs), status.last_changes or "(no change)")
        return True

    @property
    def own_host(self) -> str | None:
        """The inventory name of the coordinator's VM, when the agents file says which it is."""
        return next((host.name for host in self.hosts if host.coordinator), None)

    def on_this_vm(self, agent_host: str) -> bool:
        """Whether an agent runs on the coordinator's VM (every agent does when the file names no VMs)."""
        own = self.own_host
        return own is None or agent_host in (own, "")

    def publish_task(self, task_id: int) -> None:
        """Tell the board's watchers that a task changed (with its branch record)."""
        self.bus.publish("task.updated", self.with_branches([self.board.get(task_id)])[0])

    def with_branches(self, tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The tasks, each with its ``branch`` record (None without one), for people's views of the board."""
        found = self.branches.of([task["id"] for task in tasks])
        return [{**task, "branch": found.get(task["id"])} for task in tasks]

    def agent_for_token(self, token: str) -> str | None:
        """Token -> agent name; an unknown token triggers (at most once a second) a re-read of a changed file."""
        name = self.roster.agent_for_token(token)
        if name is None and self.settings.agents_file is not None:
            now = time.monotonic()
            if now - self._last_unknown_check >= UNKNOWN_TOKEN_RECHECK_S:
                self._last_unknown_check = now
                if self.reload_agents_file(force=False):
                    name = self.roster.agent_for_token(token)
        return name

    # -- loops ------------------------------------------------------------------

    def loop_status(self, name: str, interval_s: float) -> LoopStatus:
        status = self.loops.get(name)
        if status is None:
            status = self.loops[name] = LoopStatus(name, interval_s)
        return status
