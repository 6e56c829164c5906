# SPDX-License-Identifier: Apache-2.0
"""The roster: which agents exist, who a bearer token belongs to, who is alive.

The agents file (written by the Ansible role) is the source of truth for who
*may* connect; the database remembers everyone who ever did. An agent removed
from the file is retired (its token stops working), never deleted, so its
finished tasks keep their author.

Liveness is derived from the agent's runtime when it has one (its
heartbeats, see ``runtimes``), else from ``last_seen``: any MCP request
counts. Writing
``last_seen`` on every request would fsync on every call, so it is kept in
memory and written at once only when a session opens or the agent's state
changes; the others are written together, one transaction for the whole
fleet, at each liveness tick and at a stop (``flush_seen``). A call thus
costs the same whatever the fleet's size.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from central_mcp.authors import by_agent
from central_mcp.events import EventBus
from central_mcp.runtimes import Runtimes
from central_mcp.store import Store

log = logging.getLogger(__name__)

AGENT_STATES = ("starting", "idle", "working", "quiet", "waiting", "stale", "offline", "retired")
# States of an agent that is there and answering (registered, counted as running).
LIVE_STATES = ("idle", "working", "quiet", "waiting", "stale")
ACTIVE_TASK_STATES = ("CLAIMED", "IN_PROGRESS")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
TOOL_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")


class AgentsFileError(ValueError):
    """The agents file cannot be used; the message names the file and the bad entry."""


@dataclass(frozen=True)
class AgentSpec:
    """One entry of the agents file."""

    name: str
    role: str
    model: str
    kind: str
    host: str
    token_sha256: str
    # The coordinator tools this agent may call (the inventory's `tools`); None: all of them.
    tools: frozenset[str] | None = None


def token_sha256(token: str) -> str:
    """The form in which tokens are stored and compared: hex SHA-256 of the UTF-8 token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def parse_agents_file(path: Path) -> list[AgentSpec]:
    """Read and validate ``{"agents": [{name, role, model, kind, host, token_sha256, tools?}, ...]}``."""
    return parse_agents_doc(read_agents_file(path), path)


def read_agents_file(path: Path) -> Any:
    """The agents file as JSON; AgentsFileError says why it cannot be read."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AgentsFileError(f"agents file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AgentsFileError(f"agents file {path} cannot be read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise AgentsFileError(f"agents file {path} is not valid JSON: {exc}") from None
    return doc


def parse_agents_doc(doc: Any, path: Path) -> list[AgentSpec]:
    """The agents of an agents file read as JSON, validated."""
    entries = doc.get("agents") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        raise AgentsFileError(f'agents file {path}: expected an object {{"agents": [...]}}')
    specs: list[AgentSpec] = []
    names: set[str] = set()
    hashes: set[str] = set()
    for i, entry in enumerate(entries):
        where = f"agents file {path}, entry {i}"
        if not isinstance(entry, dict):
            raise AgentsFileError(f"{where}: expected an object, got {type(entry).__name__}")
        name = str(entry.get("name", ""))
        if not NAME_RE.match(name):
            raise AgentsFileError(f"{where}: name {name!r} must match {NAME_RE.pattern}")
        digest = str(entry.get("token_sha256", "")).lower()
        if not SHA256_RE.match(digest):
            raise AgentsFileError(f"{where} ({name}): token_sha256 must be 64 hex digits (the SHA-256 of the token)")
        if name in names:
            raise AgentsFileError(f"{where}: agent name {name!r} appears twice")
        if digest in hashes:
            raise AgentsFileError(f"{where} ({name}): the same token is given to two agents; give each its own")
        tools = entry.get("tools")
        if tools is not None and (
            not isinstance(tools, list) or not all(isinstance(t, str) and TOOL_RE.fullmatch(t) for t in tools)
        ):
            raise AgentsFileError(f"{where} ({name}): tools must be a list of tool names, got {tools!r:.120}")
        names.add(name)
        hashes.add(digest)
        specs.append(
            AgentSpec(
                name=name,
                role=str(entry.get("role") or ""),
                model=str(entry.get("model") or ""),
                kind=str(entry.get("kind") or "claude"),
                host=str(entry.get("host") or ""),
                token_sha256=digest,
                tools=None if tools is None else frozenset(tools),
            )
        )
    return specs


class Roster:
    """Agents in the database plus the in-memory token index and last-seen times."""

    def __init__(self, store: Store, bus: EventBus, runtime_offline_s: float = 15.0, quiet_s: float = 900.0) -> None:
        self.store = store
        self.bus = bus
        self.runtimes = Runtimes()
        self.runtime_offline_s = runtime_offline_s
        self.quiet_s = quiet_s
        self._by_token: dict[str, str] = {}
        self._seen: dict[str, float] = {}
        self._mcp_at: dict[str, float] = {}  # the last MCP call: what "quiet" measures besides the screen
        # A live agent was alive when this process started: its silence counts from then, so a
        # restart of the coordinator never makes it offline before its runtime could beat again.
        self.started = time.time()
        self._written: dict[str, float] = {}
        self._grants: dict[str, frozenset[str] | None] = {}
        self._roles: dict[str, str] = {}

    # -- the agents file ----------------------------------------------------

    def sync(self, specs: list[AgentSpec]) -> dict[str, list[str]]:
        """Make the database match the agents file; return added/updated/retired/returned names."""
        now = time.time()
        wanted = {s.name: s for s in specs}
        self._grants = {s.name: s.tools for s in specs}
        self._roles = {s.name: s.role for s in specs}
        changes: dict[str, list[str]] = {"added": [], "updated": [], "retired": [], "returned": []}
        state_events: list[tuple[str, str, str]] = []
        with self.store.transaction() as conn:
            rows = {r["name"]: r for r in conn.execute("SELECT * FROM agents").fetchall()}
            # Clear tokens first: a token moving from one agent to another must not trip the unique index.
            conn.execute("UPDATE agents SET token_sha256 = NULL")
            for name, row in rows.items():
                if name not in wanted and row["state"] != "retired":
                    conn.execute("UPDATE agents SET state = 'retired', updated_at = ? WHERE name = ?", (now, name))
                    changes["retired"].append(name)
                    state_events.append((name, row["state"], "retired"))
            for name, spec in wanted.items():
                fields = (spec.role, spec.model, spec.kind, spec.host, spec.token_sha256)
                row = rows.get(name)
                if row is None:
                    conn.execute(
                        "INSERT INTO agents (name, role, model, kind, host, token_sha256, state, created_at,"
                        " updated_at) VALUES (?, ?, ?, ?, ?, ?, 'starting', ?, ?)",
                        (name, *fields, now, now),
                    )
                    changes["added"].append(name)
                    continue
                state = row["state"]
                if state == "retired":
                    state = "starting" if row["last_seen"] is None else "offline"
                    changes["returned"].append(name)
                    state_events.append((name, "retired", state))
                elif (row["role"], row["model"], row["kind"], row["host"], row["token_sha256"]) != fields:
                    changes["updated"].append(name)
                conn.execute(
                    "UPDATE agents SET role = ?, model = ?, kind = ?, host = ?, token_sha256 = ?, state = ?,"
                    " updated_at = ? WHERE name = ?",
                    (*fields, state, now, name),
                )
        self._by_token = {s.token_sha256: s.name for s in specs}
        for name, old, new in state_events:
            self.bus.publish("agent.state", {"name": name, "state": new, "previous": old})
        return changes

    def load_tokens(self) -> None:
        """Rebuild the token index from the database (at start, before the file is read)."""
        rows = self.store.query("SELECT name, token_sha256 FROM agents WHERE token_sha256 IS NOT NULL")
        self._by_token = {r["token_sha256"]: r["name"] for r in rows}

    def may_call(self, name: str, tool: str) -> bool:
        """Whether the agents file grants ``tool`` to agent ``name`` (no ``tools`` list: every tool)."""
        grant = self._grants.get(name)
        return grant is None or tool in grant

    def agent_for_token(self, token: str) -> str | None:
        """The agent a bearer token belongs to, or None (unknown or retired)."""
        return self._by_token.get(token_sha256(token))

    # -- liveness -------------------------------------------------------------

    def touch(self, name: str, *, session_opened: bool = False, mcp: bool = True) -> None:
        """Record activity of ``name``; on a new MCP session, count it and mark the agent registered.

        ``mcp``: the activity is an MCP call (not a runtime's heartbeat).

        Clients on the stateless 2026-07-28 protocol (Claude Code among them) never send
        ``initialize``, so the first message of an agent this process has not seen yet
        also counts as its session opening.
        """
        now = time.time()
        session_opened = session_opened or name not in self._seen
        self._seen[name] = now
        if mcp:
            self._mcp_at[name] = now
        row = self.store.query_one("SELECT state, registered_at FROM agents WHERE name = ?", (name,))
        if row is None:
            return
        old = row["state"]
        new = self._state_now(name, now) if old in ("starting", "stale", "offline") else old
        if not (session_opened or new != old):
            return  # last_seen goes with the next flush_seen
        with self.store.transaction() as conn:
            if session_opened:
                conn.execute(
                    "UPDATE agents SET last_seen = ?, state = ?, session_count = session_count + 1,"
                    " registered_at = COALESCE(registered_at, ?), updated_at = ? WHERE name = ?",
                    (now, new, now, now, name),
                )
            else:
                conn.execute(
                    "UPDATE agents SET last_seen = ?, state = ?, updated_at = ? WHERE name = ?", (now, new, now, name)
                )
        self._written[name] = now
        if session_opened:
            self.bus.publish("agent.registered", {"name": name, "state": new, "first": row["registered_at"] is None})
        if new != old:
            self.bus.publish("agent.state", {"name": name, "state": new, "previous": old})

    def flush_seen(self) -> int:
        """Write every in-memory last-seen time that moved since it was written, in one transaction; how many."""
        due = [(seen, name) for name, seen in self._seen.items() if seen > self._written.get(name, 0.0)]
        if due:
            with self.store.transaction() as conn:
                conn.executemany("UPDATE agents SET last_seen = MAX(COALESCE(last_seen, 0), ?) WHERE name = ?", due)
            for seen, name in due:
                self._written[name] = seen
        return len(due)

    def last_seen(self, name: str, stored: float | None) -> float | None:
        """The freshest of the stored and in-memory last-seen times."""
        mem = self._seen.get(name)
        if mem is None:
            return stored
        return mem if stored is None else max(mem, stored)

    def _live_state(self, name: str) -> str:
        """``working`` when the agent holds a claimed or in-progress task, else ``idle``."""
        marks = ",".join("?" * len(ACTIVE_TASK_STATES))
        row = self.store.query_one(
            f"SELECT 1 FROM tasks WHERE claimed_by = ? AND state IN ({marks}) LIMIT 1", (name, *ACTIVE_TASK_STATES)
        )
        return "working" if row else "idle"

    def working(self) -> set[str]:
        """Every agent that holds a claimed or in-progress task: one read, however many agents there are."""
        marks = ",".join("?" * len(ACTIVE_TASK_STATES))
        rows = self.store.query(
            f"SELECT DISTINCT claimed_by FROM tasks WHERE state IN ({marks}) AND claimed_by IS NOT NULL",
            ACTIVE_TASK_STATES,
        )
        return {r["claimed_by"] for r in rows}

    def _state_now(self, name: str, now: float, live: str | None = None) -> str:
        """A live agent's state: from its runtime's reports when it has one, else idle or working."""
        live = live or self._live_state(name)
        by_runtime = self.runtimes.state(
            name, live == "working", self._mcp_at.get(name), self.runtime_offline_s, self.quiet_s, now
        )
        return by_runtime or live

    def recompute(self, name: str) -> str | None:
        """After a claim/complete/fail/hand-back or a heartbeat: the state of a live agent, now; its state after."""
        row = self.store.query_one("SELECT state FROM agents WHERE name = ?", (name,))
        if row is None or row["state"] not in ("idle", "working", "quiet", "waiting", "offline"):
            return None if row is None else row["state"]  # stale, starting, retired: only a call of its own (touch)
        if row["state"] == "offline" and self.runtimes.get(name) is None:
            return "offline"  # no runtime: only a call of its own brings it back (touch)
        new = self._state_now(name, time.time())
        if new != row["state"]:
            self._set_states([(name, row["state"], new)])
        return new

    def role_of(self, name: str) -> str:
        """An agent's role, from the agents file as last read (no database read: every poll asks)."""
        if name in self._roles:
            return self._roles[name]
        row = self.store.query_one("SELECT role FROM agents WHERE name = ?", (name,))
        return "" if row is None else row["role"]

    def refresh(self, stale_s: float, offline_s: float, now: float | None = None) -> list[tuple[str, str, str]]:
        """The liveness rule.

        An agent with a runtime: offline after three missed heartbeats, else
        waiting, quiet, working or idle from its reports (never stale: its
        model may be silent for hours in a build and still keeps its task).
        Without one: fresh -> idle/working, silent for ``stale_s`` -> stale,
        ``offline_s`` -> offline.
        """
        now = time.time() if now is None else now
        self.flush_seen()
        working = self.working()
        changes: list[tuple[str, str, str]] = []
        for row in self.store.query("SELECT name, state, last_seen FROM agents WHERE state != 'retired'"):
            seen = self.last_seen(row["name"], row["last_seen"])
            if seen is not None and row["state"] in LIVE_STATES:
                seen = max(seen, self.started)
            live = "working" if row["name"] in working else "idle"
            if self.runtimes.get(row["name"]) is not None:
                new = self._state_now(row["name"], now, live)
            elif seen is None:
                new = "starting"
            elif now - seen >= offline_s:
                new = "offline"
            elif now - seen >= stale_s:
                new = "stale"
            else:
                new = live
            if new != row["state"]:
                changes.append((row["name"], row["state"], new))
        self._set_states(changes)
        return changes

    def _set_states(self, changes: list[tuple[str, str, str]]) -> None:
        if not changes:
            return
        now = time.time()
        with self.store.transaction() as conn:
            for name, _old, new in changes:
                seen = self._seen.get(name)
                conn.execute(
                    "UPDATE agents SET state = ?, last_seen = MAX(COALESCE(last_seen, 0), COALESCE(?, 0)),"
                    " updated_at = ? WHERE name = ?",
                    (new, seen, now, name),
                )
        for name, old, new in changes:
            self.store.after_commit(
                lambda name=name, old=old, new=new: self.bus.publish(
                    "agent.state", {"name": name, "state": new, "previous": old}
                )
            )

    # -- views ----------------------------------------------------------------

    def states(self) -> list[dict[str, str]]:
        """Every agent's name, role, host and state, retired ones included: what the loops need, one plain read."""
        return [dict(r) for r in self.store.query("SELECT name, role, host, state FROM agents ORDER BY name")]

    def get(self, name: str) -> dict[str, Any] | None:
        """One agent as :meth:`list` shows it (read by its name alone: every heartbeat asks)."""
        found = self.list(include_retired=True, name=name)
        return found[0] if found else None

    def list(
        self, include_retired: bool = False, now: float | None = None, name: str | None = None
    ) -> list[dict[str, Any]]:
        """Agents in the shape of ``GET /api/agents`` (plus ``session_count`` and ``registered_at``); ``name``: one."""
        now = time.time() if now is None else now
        where = [] if include_retired else ["a.state != 'retired'"]
        where += [] if name is None else ["a.name = ?"]
        marks = ",".join("?" * len(ACTIVE_TASK_STATES))
        rows = self.store.query(
            "SELECT a.*, (SELECT t.id FROM tasks t WHERE t.claimed_by = a.name AND t.state IN"
            f" ({marks}) ORDER BY t.claimed_at DESC LIMIT 1) AS task_id FROM agents a"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY a.name",
            (*ACTIVE_TASK_STATES, *([] if name is None else [name])),
        )
        titles: dict[int, str] = {}
        ids = [r["task_id"] for r in rows if r["task_id"] is not None]
        if ids:
            found = self.store.query(f"SELECT id, title FROM tasks WHERE id IN ({','.join('?' * len(ids))})", ids)
            titles = {r["id"]: r["title"] for r in found}
        out = []
        for r in rows:
            seen = self.last_seen(r["name"], r["last_seen"])
            out.append(
                {
                    "name": r["name"],
                    "role": r["role"],
                    "model": r["model"],
                    "kind": r["kind"],
                    "host": r["host"],
                    "state": r["state"],
                    "registered": r["registered_at"] is not None and r["state"] in LIVE_STATES,
                    "last_seen": iso(seen),
                    "last_seen_s": None if seen is None else round(max(0.0, now - seen), 3),
                    "current_task": (
                        {"id": r["task_id"], "title": titles.get(r["task_id"], "")}
                        if r["task_id"] is not None
                        else None
                    ),
                    "registered_at": iso(r["registered_at"]),
                    "session_count": r["session_count"],
                    # its screen and prompt are the agent's own output: labelled for the agents that read them
                    "runtime": (
                        {**beat.view(now), "written_by": by_agent(r["name"])}
                        if (beat := self.runtimes.get(r["name"]))
                        else None
                    ),
                }
            )
        return out


def iso(ts: float | None) -> str | None:
    """Unix seconds -> ISO 8601 in UTC with a ``Z`` (what the API and tools show)."""
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1000):03d}Z"
