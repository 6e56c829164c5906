# SPDX-License-Identifier: Apache-2.0
"""Tell the truth about every agent of a tmux fleet: its process, its cost, its coordinator record.

Two lives, like tmux_fleet.py: the ``agent_status`` module imports this file,
and the Control window can run it on the target
(``python3 agent_probe.py --session S --watch 5``). Hence the standard library only.

The cost is the same for 4 agents or 100: ONE tmux call (``list-panes`` over
the session), two /proc samples ``CPU_INTERVAL_S`` apart for every process at
once (never one per agent), and at most one HTTP GET to the coordinator, made
while the CPU sample runs.

The agent is the pane's process or, when the pane runs the launcher's wrapper
``agent-run``, the wrapper's child: the wrapper is what restarts, the child is
the agent. An agent of its own user runs in a unit of its own (the
launcher's agent-unit starts it with systemd-run, in the window): the
processes of that unit count as the systemd-run's children, found once per
probe among PID 1's children by their cgroup. A worker's window between
tasks runs ``sleep infinity``: the agent
is ``idle`` (healthy; its CLI starts with its next task). CPU % and RSS
cover the agent and its descendants (the tools it runs are its work); CPU %
is of one core, as in top.

Kinds: the agent's CLI kind comes from AGENT_KIND in the agent's environment
(agent-run sets it from the env file the launcher writes), else from the
coordinator. ``cli_pid`` is the CLI itself: the youngest process of the tree
whose command line holds the word AGENT_PROCESS names (the kind file's
``process``; the kind's name when unset), since Codex's Node wrapper starts
a native ``codex`` binary and Gemini's ``node gemini.js`` starts itself
again with a larger heap.

Restarts: a wrapper may publish ``"<its pid>:<starts>"`` in the pane option
``@agent_run_starts`` (``tmux set-option -p``) at each start; it comes back in
the same tmux call, so it costs nothing. Without it the count is 0 when the
agent started within ``MIN_RESTART_GAP_S`` of its wrapper (agent-run never
restarts sooner), and None (unknown) otherwise.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.parse
from typing import Any, NamedTuple  # records as NamedTuple: 2.5 MB less in the Control window

DEFAULT_SESSION = "central-mcp-agents"
RESERVED = ("Control", "Logs")  # the windows around the agents (tmux_fleet.py)
WRAPPER = "agent-run"
SYSTEMD_RUN = "systemd-run"  # starts an agent of its own user in a unit of its own (agent-unit)
IDLE_WORKER = ["sleep", "infinity"]  # a worker's window between tasks (agent_worker.IDLE_COMMAND)
STARTS_OPTION = "@agent_run_starts"
CPU_INTERVAL_S = 0.2
MIN_RESTART_GAP_S = 1.0  # agent-run's shortest back-off
MAX_ANSWER_BYTES = 4 * 2**20
# The name goes last: tmux constrains every other field, so only it may hold a tab.
_FIELDS = ("window_index", "pane_pid", "pane_dead", "pane_dead_status", STARTS_OPTION)
_FORMAT = "\t".join("#{" + f + "}" for f in (*_FIELDS, "window_name"))
_TICK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


class ProbeError(Exception):
    """Nothing can be read at all (no tmux binary)."""


class CoordinatorError(Exception):
    """The coordinator gave no usable answer; the message says why (never the token)."""


class Options(NamedTuple):
    """What to probe: the module's options (``expected``: the agents this host should run)."""

    session: str = DEFAULT_SESSION
    socket_name: str | None = None
    coordinator_url: str | None = None
    token: str | None = None
    timeout: float = 2.0
    expected: tuple[str, ...] = ()
    tmux: str | None = None  # the binary; looked up on PATH when None
    ca_file: str | None = None  # an https coordinator's CA (the fleet's): the only one trusted


class Pane(NamedTuple):
    """The first pane of one agent window, as tmux reports it."""

    window: int
    name: str
    pid: int
    dead: bool
    dead_status: str
    starts: str


class Proc(NamedTuple):
    """What /proc/PID/stat says about one process."""

    pid: int
    ppid: int
    state: str
    ticks: int  # utime + stime
    start: int  # clock ticks after boot
    rss: int  # bytes


# ----------------------------------------------------------------------- tmux
def read_panes(session: str, socket_name: str | None, binary: str | None) -> tuple[list[Pane] | None, str]:
    """Every agent pane of the session, in ONE tmux call; (None, why) without the session."""
    binary = binary or shutil.which("tmux")
    if not binary:
        raise ProbeError("tmux was not found on PATH: install the tmux package")
    sock = ["-L", socket_name] if socket_name else []
    argv = [binary, *sock, "list-panes", "-s", "-t", f"={session}", "-F", _FORMAT]
    proc = subprocess.run(argv, capture_output=True, encoding="utf-8", errors="replace", check=False)
    if proc.returncode:
        return None, proc.stderr.strip() or f"tmux exited with status {proc.returncode}"
    first: dict[int, Pane] = {}  # tmux lists a window's panes in order: the first is the agent's
    for line in proc.stdout.splitlines():
        parts = line.split("\t", len(_FIELDS))
        if len(parts) > len(_FIELDS) and parts[-1] not in RESERVED and int(parts[0]) not in first:
            window, pid, dead, status, starts, name = parts
            first[int(window)] = Pane(int(window), name, int(pid or 0), dead == "1", status, starts)
    return [first[w] for w in sorted(first)], ""


# ----------------------------------------------------------------------- /proc
def _stat(pid: int) -> Proc | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:  # gone since the listing
        return None
    f = data[data.rfind(b")") + 2 :].split()  # the command name may hold spaces and ')'
    return Proc(pid, int(f[1]), f[0].decode(), int(f[11]) + int(f[12]), int(f[19]), int(f[21]) * _PAGE)


def snapshot(pids: set[int] | None = None) -> dict[int, Proc]:
    """Every process (for the process trees), or only ``pids`` (the second CPU sample)."""
    if pids is None:
        pids = {int(n) for n in os.listdir("/proc") if n.isdigit()}
    return {p.pid: p for p in map(_stat, pids) if p is not None}


def _argv(pid: int) -> list[str]:
    """A process's command line ([] once it is gone)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return [a.decode(errors="replace") for a in fh.read().split(b"\0")]
    except OSError:
        return []


def _words(pid: int) -> list[str]:
    """Basenames of the first four argv words of a process ([] once it is gone)."""
    return [os.path.basename(a) for a in _argv(pid)[:4] if a]


def _is_idle_worker(pid: int) -> bool:
    """Whether the pane's process is a worker's window between tasks: the worker runtime (agent-runtime)
    leaves ``sleep infinity`` there and starts the next task's CLI in its place."""
    return _words(pid)[:2] == IDLE_WORKER


def _is_wrapper(pid: int) -> bool:
    """agent-run runs as ``agent-run ...`` or, through its shebang, ``python3 [-opts] .../agent-run ...``."""
    argv = _words(pid)
    if argv and argv[0].startswith("python"):
        argv = [a for a in argv[1:] if not a.startswith("-")]
    return bool(argv) and argv[0] == WRAPPER


class _Seen(NamedTuple):
    pane: Pane
    wrapper: Proc | None
    agent: Proc | None
    tree: tuple[Proc, ...]  # the agent and its descendants, first sample


def _env_kind(pid: int) -> tuple[str | None, str | None]:
    """AGENT_KIND and AGENT_PROCESS from the agent's environment (readable for its own user and root)."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            env = dict(item.partition(b"=")[::2] for item in fh.read().split(b"\0") if item)
    except OSError:
        return None, None
    kind, process = (env.get(name, b"").decode(errors="replace") or None for name in (b"AGENT_KIND", b"AGENT_PROCESS"))
    return kind, process or kind


def _argv_kind(pid: int) -> tuple[str | None, str | None]:
    """--kind and --process from agent-run's command line in a process's argv (agent-run itself, whose agent
    runs as its own user, in its own unit, with an environment no one else may read)."""
    argv = _argv(pid)
    at = next((i for i, a in enumerate(argv) if os.path.basename(a) == WRAPPER), len(argv))
    found: dict[str, str] = {}
    for flag, value in zip(argv[at + 1 :], argv[at + 2 :], strict=False):
        if flag == "--":
            break
        if flag in ("--kind", "--process"):
            found.setdefault(flag, value)
    kind = found.get("--kind")
    return kind, found.get("--process") or kind


def _kind_and_cli(tree: tuple[Proc, ...], wrapper: Proc | None = None) -> tuple[str | None, int | None]:
    """The agent's kind and the PID of the CLI itself (the youngest process whose command line shows it)."""
    if not tree:
        return None, None
    kind, process = _env_kind(tree[0].pid)
    for pid in ([wrapper.pid] if wrapper else []) + [tree[0].pid]:
        if kind is None:
            kind, process = _argv_kind(pid)
    cli = None
    for proc in sorted(tree, key=lambda p: p.start):
        if process and process in _words(proc.pid):
            cli = proc.pid
    return kind, cli


def _unit_of(pid: int) -> str | None:
    """The unit a systemd-run process starts (its --unit=NAME), None for any other process."""
    argv = _argv(pid)
    if not argv or os.path.basename(argv[0]) != SYSTEMD_RUN:
        return None
    unit = next((a.partition("=")[2] for a in argv if a.startswith("--unit=")), "")
    return (unit if unit.endswith(".service") else f"{unit}.service") if unit else None


def _unit_mains(procs: dict[int, Proc]) -> dict[str, int]:
    """Unit name -> its main process, for the services PID 1 started (their processes are its children)."""
    mains = {}
    for proc in procs.values():
        if proc.ppid != 1:
            continue
        try:
            with open(f"/proc/{proc.pid}/cgroup", encoding="utf-8", errors="replace") as fh:
                lines = fh.read().split()
        except OSError:
            continue
        unit = next((line.rpartition("/")[2] for line in lines if line.endswith(".service")), None)
        if unit and unit not in mains:
            mains[unit] = proc.pid
    return mains


def _locate(
    pane: Pane, procs: dict[int, Proc], kids: dict[int, list[int]], mains: dict[str, int] | None = None
) -> _Seen:
    """Find the wrapper (the pane's process, or its child under a shell) and the agent it runs.

    An agent of its own user runs in a unit of its own, which systemd-run (in the window, below sudo and
    agent-unit) asked PID 1 to start: that unit's processes count as the systemd-run's children. ``mains``
    (unit -> main pid) is read on first need and kept for the other panes.
    """
    if pane.dead or pane.pid not in procs:
        return _Seen(pane, None, None, ())
    wrapper = next((procs[p] for p in (pane.pid, *kids.get(pane.pid, [])) if _is_wrapper(p)), None)
    agent: Proc | None = procs[pane.pid]
    if wrapper is not None:  # its oldest live child (a helper it runs is younger); a zombie only when alone
        children = [procs[c] for c in kids.get(wrapper.pid, [])]
        agent = min([c for c in children if c.state != "Z"] or children, key=lambda c: c.start, default=None)
    tree, todo = [], [agent.pid] if agent else []
    while todo:
        tree.append(procs[todo.pop()])
        todo += kids.get(tree[-1].pid, [])
        unit = _unit_of(tree[-1].pid) if not kids.get(tree[-1].pid) else None
        if unit:
            if mains is not None and not mains:
                mains.update(_unit_mains(procs) or {"": 0})  # {"": 0}: read, and none found
            main = (mains if mains is not None else _unit_mains(procs)).get(unit)
            todo += [main] if main in procs else []
    return _Seen(pane, wrapper, agent, tuple(tree))


# ---------------------------------------------------------------- coordinator
def public_url(url: str) -> str:
    """The URL as it may appear in a message: without user:password@."""
    parts = urllib.parse.urlsplit(url)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def fetch_coordinator(
    url: str, token: str | None = None, timeout: float = 2.0, ca_file: str | None = None
) -> dict[str, dict[str, Any]]:
    """GET {url}/api/agents: the coordinator's agents by name. Any failure is a CoordinatorError.

    urllib.request is imported here, not at the top: with http.client and email it is about 6 MB of
    every process that loads this file, and the Control window's view, which runs for as long as the
    session, never asks the coordinator.
    """
    import http.client  # noqa: PLC0415 (see above)
    import urllib.error  # noqa: PLC0415
    import urllib.request  # noqa: PLC0415

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:  # the token must not follow a redirect
            return None

    headers = {"Accept": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    request = urllib.request.Request(url.rstrip("/") + "/api/agents", headers=headers)
    handlers: list = [NoRedirect]
    if ca_file:  # the fleet's CA only, not the system's: the coordinator's certificate is the fleet's
        import ssl  # noqa: PLC0415 (only for a coordinator on TLS)

        handlers.append(urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=ca_file)))
    try:
        with urllib.request.build_opener(*handlers).open(request, timeout=timeout) as answer:
            body = answer.read(MAX_ANSWER_BYTES + 1)  # each read waits at most `timeout`
        if len(body) > MAX_ANSWER_BYTES:
            raise CoordinatorError(f"answered more than {MAX_ANSWER_BYTES} bytes")
        doc = json.loads(body)
    except urllib.error.HTTPError as exc:
        hint = ": check coordinator_token" if exc.code in (401, 403) else ""
        raise CoordinatorError(f"HTTP {exc.code} {exc.reason}{hint}") from None
    except urllib.error.URLError as exc:
        raise CoordinatorError(str(exc.reason)) from None
    except (OSError, ValueError, http.client.HTTPException) as exc:
        raise CoordinatorError(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("agents"), list):
        raise CoordinatorError('answered JSON without an "agents" list')
    if not all(isinstance(e, dict) and isinstance(e.get("name"), str) for e in doc["agents"]):
        raise CoordinatorError("answered an agent entry without a name")
    return {e["name"]: e for e in doc["agents"]}


# ---------------------------------------------------------------------- merge
def _blank(name: str, window: int | None) -> dict[str, Any]:
    row = {"name": name, "kind": None, "window": window, "pid": None, "cli_pid": None, "wrapper_pid": None}
    row["alive"] = False
    keys = ("cpu_percent", "rss_bytes", "uptime_s", "restarts", "registered", "last_seen_s", "current_task")
    return {**row, **dict.fromkeys(keys)}


def _row(seen: _Seen, after: dict[int, Proc], elapsed: float, uptime: float) -> dict[str, Any]:
    """One agent from what tmux and /proc said, before the coordinator is merged in."""
    pane, wrapper, agent = seen.pane, seen.wrapper, seen.agent
    row = {**_blank(pane.name, pane.window), "wrapper_pid": wrapper.pid if wrapper else None}
    if pane.dead:
        return {**row, "state": "dead", "problem": f"its pane is dead (exit status {pane.dead_status or '?'})"}
    if agent is not None and wrapper is None and _is_idle_worker(agent.pid):
        # A worker between tasks: its runtime waits for work and no CLI runs (nothing costs a model call).
        row.update(pid=agent.pid, alive=True, rss_bytes=agent.rss, cpu_percent=0.0)
        return {**row, "state": "idle", "problem": None}
    if agent is None:
        what = "its wrapper runs but the agent does not (waiting to restart it)" if wrapper else "no process"
        return {**row, "state": "restarting" if wrapper else "gone", "problem": what}
    pairs = [(p, after[p.pid]) for p in seen.tree if p.pid in after and after[p.pid].start == p.start]
    row["pid"] = agent.pid
    row["kind"], row["cli_pid"] = _kind_and_cli(seen.tree, seen.wrapper)
    row["cpu_percent"] = round(sum(b.ticks - a.ticks for a, b in pairs) / _TICK / elapsed * 100, 1)
    row["rss_bytes"] = sum(b.rss for _, b in pairs)  # a reused pid is another process: left out
    row["uptime_s"] = round(max(uptime - agent.start / _TICK, 0.0), 1)
    pid, _, starts = pane.starts.partition(":")
    if wrapper and pid == str(wrapper.pid) and starts.isdigit():
        row["restarts"] = max(int(starts) - 1, 0)
    elif wrapper and (agent.start - wrapper.start) / _TICK < MIN_RESTART_GAP_S:
        row["restarts"] = 0
    if agent.state == "Z":
        return {**row, "state": "zombie", "problem": f"process {agent.pid} exited and was not reaped (zombie)"}
    row["alive"] = True
    if agent.state in ("T", "t"):
        return {**row, "state": "stopped", "problem": f"process {agent.pid} is stopped"}
    return {**row, "state": "running", "problem": None}


def merge(rows: list[dict[str, Any]], coordinator: dict[str, dict] | None, expected: tuple[str, ...]) -> None:
    """Add the coordinator's record by name. An agent named by ``expected`` (or, without
    it, by the coordinator) that has no window is reported as missing."""
    have = {r["name"] for r in rows}
    for name in expected or tuple(coordinator or ()):
        if name not in have:
            rows.append({**_blank(name, None), "state": "missing", "problem": "it has no tmux window"})
            have.add(name)
    for row in rows if coordinator is not None else ():
        entry = coordinator.get(row["name"]) or {}
        if row["kind"] is None and isinstance(entry.get("kind"), str):
            row["kind"] = entry["kind"]  # no process to ask: what the coordinator was told
        row["registered"] = bool(entry.get("registered", True)) if entry else False
        seen, task = entry.get("last_seen_s"), entry.get("current_task")
        if isinstance(seen, (int, float)) and not isinstance(seen, bool):
            row["last_seen_s"] = round(float(seen), 1)
        if isinstance(task, dict):
            row["current_task"] = {"id": task.get("id"), "title": task.get("title")}
        if row["problem"] is None and not row["registered"]:
            row.update(state="unregistered", problem="the coordinator does not list it as registered")
        elif row["problem"] is None and isinstance(entry.get("state"), str):
            row["state"] = entry["state"]


def summary_line(total: int, running: int, registered: int | None, unhealthy: int, hosts: int | None = None) -> str:
    """'8 agents: 8 running, 8 registered, 0 unhealthy' ('?' registered when unknown)."""
    where = "" if hosts is None else f" on {hosts} host{'s' if hosts != 1 else ''}"
    counts = f"{running} running, {'?' if registered is None else registered} registered, {unhealthy} unhealthy"
    return f"{total} agent{'s' if total != 1 else ''}{where}: {counts}"


def probe(opts: Options, interval: float = CPU_INTERVAL_S) -> dict[str, Any]:
    """Read tmux once, sample /proc twice, ask the coordinator once (during the sample), merge.
    Returns {agents, summary, warnings}: the module's results and the warnings it gives."""
    warnings = []
    panes, why = read_panes(opts.session, opts.socket_name, opts.tmux)
    if panes is None:
        warnings.append(f"tmux session {opts.session!r} is not running: {why}")
    start = time.monotonic()
    before = snapshot()
    t0 = (start + time.monotonic()) / 2  # the middle of a scan of every process
    kids: dict[int, list[int]] = {}
    for proc in before.values():
        kids.setdefault(proc.ppid, []).append(proc.pid)
    mains: dict[str, int] = {}
    seen = [_locate(p, before, kids, mains) for p in panes or []]
    coordinator, status = None, "not asked"
    if opts.coordinator_url:
        try:
            coordinator = fetch_coordinator(opts.coordinator_url, opts.token, opts.timeout, opts.ca_file)
            status = "ok"
        except CoordinatorError as exc:
            status, url = "unreachable", public_url(opts.coordinator_url).rstrip("/") + "/api/agents"
            warnings.append(f"coordinator {url} gave no usable answer ({exc}); registration is unknown (null)")
    time.sleep(max(0.0, interval - (time.monotonic() - t0)))
    after = snapshot({p.pid for s in seen for p in s.tree})
    elapsed = time.monotonic() - t0
    with open("/proc/uptime", encoding="ascii") as fh:
        uptime = float(fh.read().split()[0])
    rows = [_row(s, after, elapsed, uptime) for s in seen]
    merge(rows, coordinator, opts.expected)
    for row in rows:
        row["healthy"] = row["problem"] is None
    running, unhealthy = sum(r["alive"] for r in rows), sum(not r["healthy"] for r in rows)
    registered = sum(r["registered"] is True for r in rows) if status == "ok" else None
    line = summary_line(len(rows), running, registered, unhealthy)
    line += "" if panes is not None else f"; tmux session {opts.session} is not running"
    summary = {"total": len(rows), "running": running, "registered": registered, "unhealthy": unhealthy}
    summary.update(line=line, session_found=panes is not None, coordinator=status)
    return {"agents": rows, "summary": summary, "warnings": warnings}


# ---------------------------------------------------------------------- table
HEADERS = (
    *("AGENT", "KIND", "HOST", "WIN", "ALIVE", "CPU%", "RSS"),
    *("UPTIME", "RESTARTS", "REGISTERED", "LAST SEEN", "STATE"),
)
_RIGHT = {"WIN", "CPU%", "RSS", "UPTIME", "RESTARTS", "LAST SEEN"}


def human_duration(seconds: float | None) -> str:
    """42s, 12m05s, 3h07m, 2d04h: two units are enough to read at a glance."""
    s = int(seconds or 0)
    for unit, size, sub, subsize in (("d", 86400, "h", 3600), ("h", 3600, "m", 60), ("m", 60, "s", 1)):
        if s >= size:
            return f"{s // size}{unit}{(s % size) // subsize:02d}{sub}"
    return "-" if seconds is None else f"{s}s"


def _cells(a: dict[str, Any]) -> dict[str, str]:
    task, rss = a.get("current_task"), a["rss_bytes"]
    title = f"#{task.get('id')} {task.get('title') or ''}".strip() if task else "-"
    return {
        "AGENT": a["name"],
        "KIND": a.get("kind") or "-",
        "HOST": str(a.get("host", "")),
        "WIN": "-" if a["window"] is None else str(a["window"]),
        "ALIVE": "yes" if a["alive"] else "NO",
        "CPU%": "-" if a["cpu_percent"] is None else f"{a['cpu_percent']:.1f}",
        "RSS": "-" if rss is None else f"{rss / 2**20:.{1 if rss < 10 * 2**20 else 0}f}M",
        "UPTIME": human_duration(a["uptime_s"]),
        "RESTARTS": "-" if a["restarts"] is None else str(a["restarts"]),
        "REGISTERED": {True: "yes", False: "NO"}.get(a["registered"], "?"),
        "LAST SEEN": "-" if a["last_seen_s"] is None else human_duration(a["last_seen_s"]) + " ago",
        "STATE": a["state"],
        "TASK": title if len(title) <= 40 else title[:39] + "…",
    }


def render_table(agents: list[dict[str, Any]], line: str, hosts: bool = False) -> str:
    """The fleet as a text table, then why each unhealthy agent is unhealthy, then the summary line."""
    heads = [h for h in (*HEADERS, "TASK") if hosts or h != "HOST"]
    rows = [_cells(a) for a in agents]
    width = {h: max([len(h), *(len(r[h]) for r in rows)]) for h in heads}
    lines = [
        "  ".join(r[h].rjust(width[h]) if h in _RIGHT else r[h].ljust(width[h]) for h in heads).rstrip()
        for r in [{h: h for h in heads}, *rows]
    ]
    where = (lambda a: f" on {a.get('host')}") if hosts else (lambda a: "")
    lines += [f"! {a['name']}{where(a)}: {a['problem']}" for a in agents if a.get("problem")]
    return "\n".join([*lines, line])


# --------------------------------------------------------------------- script
@functools.lru_cache(maxsize=1)
def _disk_use() -> Any:
    """disk_use.py from beside this file, or None. Loaded by path, not imported: as module_utils,
    agent_status measures the disk itself; as the Control window's script, this file runs alone."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "disk_use.py")
    spec = importlib.util.spec_from_file_location("disk_use", path)
    if spec is None or spec.loader is None or not os.path.isfile(path):
        return None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _disk(paths: list[str], warn_percent: float) -> tuple[list[dict[str, Any]] | None, list[str]]:
    """The disk of ``paths``' filesystems and its table lines; (None, []) without disk_use.py."""
    disk_use = _disk_use()
    if disk_use is None:
        return None, []
    disks = disk_use.report(paths, warn_percent)
    return disks, disk_use.render_lines(disks)


def main(argv: list[str] | None = None) -> int:
    """The Control window's view: the table once, or redrawn every --watch seconds."""
    parser = argparse.ArgumentParser(description="Show every agent: process, CPU, memory, coordinator record.")
    add = parser.add_argument
    add("--session", default=DEFAULT_SESSION)
    add("--socket-name", help="tmux -L socket name")
    add("--coordinator-url", help="base URL, e.g. http://127.0.0.1:3000")
    add("--token-file", help="file holding the coordinator token (never put it in argv)")
    add("--timeout", type=float, default=2.0, help="coordinator timeout, seconds")
    add("--expected", nargs="*", default=[], metavar="NAME", help="agents this host should run")
    add("--watch", type=float, metavar="SECONDS", help="redraw every SECONDS (at least 1)")
    add("--json", action="store_true", help="JSON (one document per line with --watch)")
    add("--disk", nargs="*", default=["/"], metavar="PATH", help="show the disk use of these paths' filesystems")
    add("--disk-warn-percent", type=float, default=85.0, help="warn at this disk use, percent")
    args = parser.parse_args(argv)
    try:
        token = None
        if args.token_file:
            with open(args.token_file, encoding="utf-8") as fh:
                token = fh.read().strip() or None
        opts = Options(args.session, args.socket_name, args.coordinator_url, token, args.timeout, tuple(args.expected))
        while True:
            r = probe(opts)
            disk, disk_lines = _disk(args.disk, args.disk_warn_percent) if args.disk else (None, [])
            if args.json:
                text = json.dumps({**r, "disk": disk}, indent=None if args.watch else 2)
            else:
                text = "\n".join(
                    [
                        render_table(r["agents"], r["summary"]["line"]),
                        *(f"warning: {w}" for w in r["warnings"]),
                        *disk_lines,
                    ]
                )
            if not args.watch:
                print(text)
                return 0
            clear = "" if args.json else f"\033[H\033[2J{time.strftime('%Y-%m-%d %H:%M:%S')}  {args.session}\n"
            sys.stdout.write(f"{clear}{text}\n")
            sys.stdout.flush()
            time.sleep(max(args.watch, 1.0))
    except (OSError, ProbeError) as exc:
        print(f"agent_probe: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
