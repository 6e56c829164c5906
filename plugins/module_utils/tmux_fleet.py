# SPDX-License-Identifier: Apache-2.0
"""Reconcile one tmux session of AI coding agents with a declarative spec.

Two lives, one reconcile, so a reboot and a playbook run converge on the same
windows: the ``tmux_agents`` module imports this file, and a systemd unit runs
it at boot (``python3 tmux_fleet.py --spec fleet.json [--pidfile tmux.pid]``).
Hence the standard library only.

Every window stores its identity in the window option ``@central_mcp_spec``:
sha256 of the canonical JSON of {command, env, workdir, revision}. A window
whose identity matches is never touched, so adding one agent restarts none of
the others, and changing one restarts only that one. A worker's window
while its task runs (the worker runtime sets ``@central_mcp_task``) is not
restarted either: its change is pending, and the runtime reconciles again
when the task is over.

Names are checked before any tmux command that changes anything, and tmux runs
from an argv list, never a shell (commands are shell commands by design: tmux
runs them with ``sh -c``). ``env`` goes to tmux as ``-e KEY=VALUE``, visible in
the tmux client's argv while it runs: never put secrets in ``env``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

DEFAULT_SESSION = "central-mcp-agents"
DEFAULT_CONTROL_COMMAND = (
    "while :; do clear; date; tmux list-windows -F "
    "'#{window_index} #{window_name} #{?pane_dead,DEAD,running} pid #{pane_pid}'; "
    "sleep 5; done"
)
DEFAULT_LOGS_COMMAND = "journalctl -f -u central-mcp.service"
CONTROL, LOGS = "Control", "Logs"
SPEC_OPTION = "@central_mcp_spec"
TASK_OPTION = "@central_mcp_task"  # set by the worker runtime while a task's CLI runs in the window
SINCE_OPTION = "@central_mcp_task_since"  # and when that CLI started (seconds since the epoch)
SPEC_KEYS = ("session", "socket_name", "agents", "control_command", "logs_command")
AGENT_KEYS = ("name", "command", "env", "workdir", "revision")

_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}")
_ENV_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SOCKET_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# The name goes last: tmux constrains every other field, so only it may hold a tab.
_FIELDS = ("window_id", "window_index", SPEC_OPTION, "pane_pid", "pane_dead", TASK_OPTION, SINCE_OPTION)
_FORMAT = "\t".join("#{" + f + "}" for f in (*_FIELDS, "window_name"))
# Names stay as given, and a command that exits leaves a dead pane to look at
# (respawned by the next reconcile) instead of a window that vanishes.
_WINDOW_OPTIONS = {"remain-on-exit": "on", "automatic-rename": "off", "allow-rename": "off"}


class FleetError(Exception):
    """The spec is invalid; the message names the bad value and what is allowed."""


class TmuxError(Exception):
    """A tmux command failed; ``partial`` reports what was already done."""

    def __init__(self, msg: str, partial: dict[str, list[str]] | None = None) -> None:
        super().__init__(msg)
        self.partial = partial or {}


@dataclass(frozen=True)
class WindowSpec:
    """One desired window: Control, an agent, or Logs."""

    name: str
    command: str
    env: tuple[tuple[str, str], ...] = ()
    workdir: str | None = None
    revision: str | None = None

    @property
    def digest(self) -> str:
        """Identity of what runs in the window; a different digest means a restart."""
        doc = {"command": self.command, "env": dict(self.env), "workdir": self.workdir, "revision": self.revision}
        canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class FleetSpec:
    """A validated spec: the session and its windows in their desired order."""

    session: str
    socket_name: str | None
    windows: tuple[WindowSpec, ...]


@dataclass(frozen=True)
class Window:
    """One window as tmux reports it."""

    window_id: str
    index: int
    spec: str
    pane_pid: int
    dead: bool
    name: str
    busy: bool = False  # a worker's task runs in it
    busy_since: float | None = None  # since when (seconds since the epoch), when the runtime said


@dataclass
class Plan:
    """What a reconcile does, computed without touching tmux.

    ``steps`` follows the desired order: (action, spec, current window), where
    action is ``add``, ``restart``, ``keep`` or ``pending`` (a restart that
    waits for the worker's task in the window to end).
    """

    current: list[Window] | None
    steps: list[tuple[str, WindowSpec, Window | None]] = field(default_factory=list)
    remove: list[Window] = field(default_factory=list)
    reorder: bool = False
    kill_session: bool = False

    @property
    def changed(self) -> bool:
        moves = self.remove or self.reorder or self.kill_session
        return bool(moves or any(a in ("add", "restart") for a, _, _ in self.steps))

    def result(self) -> dict[str, Any]:
        """The module's return values; the lists name agents, not Control/Logs."""
        agents = [(a, s.name) for a, s, _ in self.steps if s.name not in (CONTROL, LOGS)]
        return {
            "changed": self.changed,
            "added": [n for a, n in agents if a == "add"],
            "removed": [w.name for w in self.remove if w.name not in (CONTROL, LOGS)],
            "restarted": [n for a, n in agents if a == "restart"],
            "unchanged": [n for a, n in agents if a == "keep"],
            "pending": [n for a, n in agents if a == "pending"],
            "windows": [s.name for _, s, _ in self.steps],
        }

    def diff(self) -> dict[str, str]:
        """Before/after window lists for ``--diff``; dead and restarted are marked."""
        before = [(w.index, w.name, "dead" if w.dead else "") for w in self.current or []]
        notes = {"restart": "restarted", "pending": "restart pending: a task runs"}
        after = [(i, s.name, notes.get(a, "")) for i, (a, s, _) in enumerate(self.steps)]
        return {"before": render_windows(before), "after": render_windows(after)}


def render_windows(rows: Sequence[tuple[int, str, str]]) -> str:
    """Render (index, name, note) rows as "0 Control\\n1 A (restarted)\\n"."""
    return "".join(f"{i} {n}{f' ({note})' if note else ''}\n" for i, n, note in rows)


# ----------------------------------------------------------------- validation
def _bad(where: str, value: Any, rule: str) -> FleetError:
    return FleetError(f"{where} {value!r} is not allowed: {rule}")


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _NAME_RE.fullmatch(value):
        rule = "use 1-32 characters: a letter, then letters, digits, '_' or '-'"
        raise _bad(where, value, rule)
    return value


def _text(value: Any, where: str) -> str:
    """A string tmux can pass on as one argv word: no NUL, no newline."""
    value = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(value, str) or any(c in value for c in "\0\n\r"):
        raise _bad(where, value, "give a string without NUL or newline")
    return value


def _command(value: Any, where: str) -> str:
    """A shell command may span lines (``sh -c`` reads them all), but not hold NUL."""
    if not isinstance(value, str) or not value.strip() or "\0" in value:
        raise _bad(where, value, "give a non-empty shell command without NUL")
    return value


def _keys(raw: Any, allowed: tuple[str, ...], where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise _bad(where, raw, f"give a mapping with keys {', '.join(allowed)}")
    for key in raw:
        if key not in allowed:
            raise _bad(f"{where} key", key, f"allowed keys are {', '.join(allowed)}")
    return raw


def _agent(raw: Any, where: str) -> WindowSpec:
    raw = _keys(raw, AGENT_KEYS, where)
    name = _name(raw.get("name"), f"{where}.name")
    if name.lower() in (CONTROL.lower(), LOGS.lower()):
        raise _bad(f"{where}.name", name, f"{CONTROL} and {LOGS} are reserved")
    env = raw.get("env") or {}
    if not isinstance(env, dict):
        raise _bad(f"{where}.env", env, "give a mapping of NAME: string")
    for key in env:
        if not isinstance(key, str) or not _ENV_KEY_RE.fullmatch(key):
            rule = "use letters, digits and '_', not a digit first"
            raise _bad(f"{where}.env key", key, rule)
    pairs = tuple((k, _text(env[k], f"{where}.env.{k}")) for k in sorted(env))
    workdir = raw.get("workdir")
    if workdir is not None and not _text(workdir, f"{where}.workdir").startswith("/"):
        raise _bad(f"{where}.workdir", workdir, "give an absolute path")
    rev = None if raw.get("revision") is None else _text(raw["revision"], f"{where}.revision")
    return WindowSpec(name, _command(raw.get("command"), f"{where}.command"), pairs, workdir, rev)


def validate_session(session: Any, socket_name: Any) -> tuple[str, str | None]:
    """Check the session and socket names (all that state=absent needs)."""
    _name(session, "session")
    if socket_name is not None and (not isinstance(socket_name, str) or not _SOCKET_RE.fullmatch(socket_name)):
        rule = "use 1-64 letters, digits, '.', '_' or '-'"
        raise _bad("socket_name", socket_name, rule)
    return session, socket_name


def validate(raw: Any) -> FleetSpec:
    """Turn a dict shaped like the module options into a FleetSpec, or raise."""
    raw = {k: v for k, v in _keys(raw, SPEC_KEYS, "spec").items() if v is not None}
    session, socket_name = validate_session(raw.get("session", DEFAULT_SESSION), raw.get("socket_name"))
    agents = raw.get("agents", [])
    if not isinstance(agents, list):
        raise _bad("agents", agents, "give a list of mappings")
    control = raw.get("control_command", DEFAULT_CONTROL_COMMAND)
    windows = [WindowSpec(CONTROL, _command(control, "control_command"))]
    seen: dict[str, int] = {}
    for i, item in enumerate(agents):
        ws = _agent(item, f"agents[{i}]")
        if ws.name.lower() in seen:
            rule = f"agent names must be unique (agents[{seen[ws.name.lower()]}])"
            raise _bad(f"agents[{i}].name", ws.name, rule)
        seen[ws.name.lower()] = i
        windows.append(ws)
    logs = _command(raw.get("logs_command", DEFAULT_LOGS_COMMAND), "logs_command")
    return FleetSpec(session, socket_name, (*windows, WindowSpec(LOGS, logs)))


# ----------------------------------------------------------------------- plan
def plan(
    current: list[Window] | None, spec: FleetSpec, drain_timeout_s: float | None = None, now: float | None = None
) -> Plan:
    """Compare what tmux has (None: no session) with the spec. Pure: no tmux.

    A window with a worker's task waits for it to end (``pending``); with ``drain_timeout_s``, only
    for that long after its task started (then it restarts, and its task goes back to the board).
    """
    now = time.time() if now is None else now

    def draining(w: Window) -> bool:
        if not w.busy:
            return False
        return drain_timeout_s is None or w.busy_since is None or now - w.busy_since < drain_timeout_s

    windows = None if current is None else sorted(current, key=lambda w: w.index)
    result = Plan(current=windows)
    by_name: dict[str, Window] = {}
    for w in windows or []:
        by_name.setdefault(w.name, w)  # the lowest index wins; namesakes go
    for ws in spec.windows:
        cur = by_name.get(ws.name)
        stale = cur is not None and (cur.dead or cur.spec != ws.digest)
        action = "add" if cur is None else ("pending" if draining(cur) else "restart") if stale else "keep"
        result.steps.append((action, ws, cur))
    wanted = {ws.name for ws in spec.windows}
    for w in windows or []:
        if w.name not in wanted or by_name[w.name] is not w:
            result.remove.append(w)
    if windows is not None:
        indices = [cur.index if cur else None for _, _, cur in result.steps]
        result.reorder = indices != list(range(len(indices)))
    return result


def plan_absent(current: list[Window] | None) -> Plan:
    """state=absent: the whole session goes, if there is one."""
    windows = None if current is None else sorted(current, key=lambda w: w.index)
    return Plan(windows, remove=windows or [], kill_session=windows is not None)


def preflight(p: Plan) -> None:
    """Checks on the target's filesystem, before any change: given a missing
    directory, tmux would silently start the command somewhere else."""
    for action, ws, _ in p.steps:
        if action in ("add", "restart") and ws.workdir and not os.path.isdir(ws.workdir):
            where = f"workdir of {ws.name}"
            raise _bad(where, ws.workdir, "it is not a directory; create it first")


# ----------------------------------------------------------------------- tmux
def _arg(value: str) -> str:
    """tmux reads a trailing ';' of any argv word as a command separator."""
    return value[:-1] + "\\;" if value.endswith(";") else value


class Tmux:
    """A tmux client of one server (``-L socket_name``), run from argv lists."""

    def __init__(self, socket_name: str | None = None, binary: str | None = None) -> None:
        binary = binary or shutil.which("tmux")
        if not binary:
            raise FleetError("tmux was not found on PATH: install the tmux package")
        self.base = [binary, *(["-L", socket_name] if socket_name else [])]

    def _exec(self, commands: Sequence[Sequence[str]]) -> subprocess.CompletedProcess:
        argv = list(self.base)
        for i, cmd in enumerate(commands):
            argv += ([";"] if i else []) + [_arg(a) for a in cmd]
        for attempt in range(3):  # a server that just lost its last session may still be exiting
            proc = subprocess.run(argv, capture_output=True, encoding="utf-8", errors="replace", check=False)
            if "server exited unexpectedly" not in proc.stderr:
                break
            time.sleep(0.1 * (attempt + 1))
        return proc

    def run(self, *commands: Sequence[str]) -> str:
        """Run tmux commands in one client call: the server runs them as one."""
        proc = self._exec(commands)
        if proc.returncode:
            names = " ; ".join(c[0] for c in commands)
            raise TmuxError(f"tmux {names} failed: {proc.stderr.strip()}")
        return proc.stdout

    def windows(self, session: str) -> list[Window] | None:
        """The session's windows; None if there is no such session or no server."""
        proc = self._exec([["list-windows", "-t", f"={session}", "-F", _FORMAT]])
        if proc.returncode:
            if self._exec([["has-session", "-t", f"={session}"]]).returncode:
                return None
            raise TmuxError(f"tmux list-windows failed: {proc.stderr.strip()}")
        rows = [line.split("\t", 7) for line in proc.stdout.splitlines() if line]
        since = [float(r[6]) if r[6].replace(".", "", 1).isdigit() else None for r in rows]
        return [
            Window(r[0], int(r[1]), r[2], int(r[3] or 0), r[4] == "1", r[7], r[5] != "", s)
            for r, s in zip(rows, since, strict=True)
        ]

    def server_pid(self, session: str) -> int:
        return int(self.run(["display-message", "-p", "-t", f"={session}:", "#{pid}"]))


# ---------------------------------------------------------------------- apply
def _spawn(ws: WindowSpec) -> list[str]:
    args = ["-c", ws.workdir.replace("#", "##")] if ws.workdir else []  # a format
    for key, value in ws.env:
        args += ["-e", f"{key}={value}"]
    return [*args, "--", ws.command]


def _options(target: str, ws: WindowSpec) -> list[list[str]]:
    opts = {**_WINDOW_OPTIONS, SPEC_OPTION: ws.digest}
    return [["set-option", "-w", "-t", target, k, v] for k, v in opts.items()]


def _reorder(s: str, at: dict[int, str], order: list[str]) -> list[list[str]]:
    """Commands that put the windows ``order`` (ids) at indices 0..n-1.

    Moves and swaps address windows by id, so no process is restarted.
    """
    cmds, pos = [], {wid: i for i, wid in at.items()}
    for i, wid in enumerate(order):
        src, other = pos[wid], at.get(i)
        if other == wid:
            continue
        if other is None:
            cmds.append(["move-window", "-d", "-s", wid, "-t", f"={s}:{i}"])
            del at[src]
        else:
            cmds.append(["swap-window", "-d", "-s", wid, "-t", other])
            at[src], pos[other] = other, src
        at[i], pos[wid] = wid, i
    return cmds


def apply(tmux: Tmux, session: str, p: Plan) -> None:
    """Carry out a plan. A spawn and its window options go in one tmux call, so
    a command that exits at once still leaves its (dead) window behind."""
    s, done = session, {"added": [], "restarted": [], "removed": []}
    try:
        if p.kill_session:
            tmux.run(["kill-session", "-t", f"={s}"])
            return
        at = {w.index: w.window_id for w in p.current or []}
        order: list[str] = []
        for action, ws, cur in p.steps:
            if cur is not None:
                order.append(cur.window_id)
            if action == "restart" and cur is not None:
                respawn = ["respawn-window", "-k", "-t", cur.window_id, *_spawn(ws)]
                tmux.run(respawn, *_options(cur.window_id, ws))
            elif action == "add":
                if p.current is None and not at:
                    target = f"={s}:^"  # the first window of a new session
                    head = ["new-session", "-d", "-s", s, "-x", "200", "-y", "50"]
                else:
                    target = f"={s}:{max(at, default=-1) + 1}"
                    head = ["new-window", "-d", "-t", target]
                new = [*head, "-n", ws.name, "-P", "-F", "#{window_id} #{window_index}"]
                wid, index = tmux.run([*new, *_spawn(ws)], *_options(target, ws)).split()
                at[int(index)] = wid
                order.append(wid)
            if action in ("add", "restart"):
                done["added" if action == "add" else "restarted"].append(ws.name)
        # One last call: kills, then moves (renumbering would shift the indices).
        cmds = [["set-option", "-t", f"={s}:", "renumber-windows", "off"]]
        for w in p.remove:
            cmds.append(["kill-window", "-t", w.window_id])
            del at[w.index]
        tmux.run(*cmds, *_reorder(s, at, order))
        done["removed"] = [w.name for w in p.remove]
    except TmuxError as exc:
        msg = f"{exc} (session {s!r} is partly reconciled; run again)"
        raise TmuxError(msg, done) from exc


# --------------------------------------------------------------------- script
def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the systemd unit: reconcile from a spec file, and write the
    tmux server PID where a ``Type=forking`` unit's ``PIDFile=`` expects it."""
    parser = argparse.ArgumentParser(description="Reconcile the agents' tmux session.")
    parser.add_argument("--spec", required=True, help="JSON: tmux_agents options")
    parser.add_argument("--pidfile", help="write the tmux server PID to this file")
    parser.add_argument(
        "--existing",
        action="store_true",
        help="only a session that runs: never start one (the worker runtime's sandbox would be its tmux server's)",
    )
    args = parser.parse_args(argv)
    try:
        with open(args.spec, encoding="utf-8") as fh:
            spec = validate(json.load(fh))
        tmux = Tmux(spec.socket_name)
        current = tmux.windows(spec.session)
        if current is None and args.existing:
            print(f"tmux_fleet: {spec.session}: no session; its unit starts it", file=sys.stderr)
            return 0
        todo = plan(current, spec)  # the same steps as the module
        preflight(todo)
        if todo.changed:
            apply(tmux, spec.session, todo)
        if args.pidfile:  # written whole, then renamed: systemd never reads half a file
            pid = tmux.server_pid(spec.session)
            with open(f"{args.pidfile}.tmp", "w", encoding="ascii") as fh:
                fh.write(f"{pid}\n")
            os.replace(f"{args.pidfile}.tmp", args.pidfile)
    except (OSError, ValueError, FleetError, TmuxError) as exc:
        print(f"tmux_fleet: {exc}", file=sys.stderr)
        return 1
    result = todo.result()
    print(f"tmux_fleet: {spec.session}: " + ", ".join(f"{k} {result[k]}" for k in ("added", "restarted", "removed")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
