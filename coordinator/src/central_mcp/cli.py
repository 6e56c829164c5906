# SPDX-License-Identifier: Apache-2.0
"""``central-mcp``: run the service, talk to it, or maintain its database file.

Most commands are clients of the REST API (``--url``, token from
``CENTRAL_MCP_API_TOKEN`` or ``--token-file``), so they work the same on the
VM and through a tunnel, and never touch the database behind the service's
back. ``central-mcp db ...`` is the exception: it acts on the file directly,
for upgrades and checks while the service is stopped.

Exit codes: 0 done, 1 the coordinator refused or is failing, 2 bad usage or
configuration, 3 the coordinator cannot be reached.

Everything it prints from the coordinator (agents' notes, progress, results,
file lists, and whatever the API was given) goes through
:func:`central_mcp.safetext.escape`: no control character or escape sequence
from stored text reaches the terminal. One-line layouts (tables, lists,
``key: value``) show a newline as ``\\n``; ``task show`` prints the long texts
as indented blocks. ``--json`` is escaped by JSON itself.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.parse
from pathlib import Path
from typing import Any

from central_mcp import __version__
from central_mcp.safetext import escape

DEFAULT_URL = "http://127.0.0.1:3000"


class CliError(Exception):
    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


# -- talking to the API -----------------------------------------------------------


def _token(args: argparse.Namespace) -> str:
    if args.token_file:
        try:
            return Path(args.token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise CliError(f"--token-file {args.token_file}: {exc}", 2) from None
    return os.environ.get("CENTRAL_MCP_API_TOKEN", "").strip()


def call(args: argparse.Namespace, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    """One HTTP request to the coordinator; returns (status, decoded JSON)."""
    # Imported here: with http.client and email they are about 6 MB of the pane relay, which runs
    # from this entry point for days and never makes a request.
    import ssl  # noqa: PLC0415
    import urllib.error  # noqa: PLC0415
    import urllib.request  # noqa: PLC0415

    url = args.url.rstrip("/") + path
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Accept", "application/json")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    token = _token(args)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    context = None
    if args.ca_file:  # the fleet CA, for a coordinator serving HTTPS with its certificate
        try:
            context = ssl.create_default_context(cafile=args.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise CliError(f"--ca-file {args.ca_file}: cannot load it as a CA certificate ({exc})", 2) from None
    try:
        with urllib.request.urlopen(request, timeout=args.timeout, context=context) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        try:
            doc = json.loads(exc.read() or b"null")
        except ValueError:
            doc = None
        if path == "/health" and isinstance(doc, dict) and "status" in doc:
            return exc.code, doc
        message = doc.get("message") if isinstance(doc, dict) else None
        raise CliError(f"{method} {path}: HTTP {exc.code}: {message or exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CliError(f"cannot reach the coordinator at {args.url}: {reason} (is central-mcp running?)", 3) from None


def table(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> str:
    """A plain text table: header, then one line per row; None shows as '-', each cell escaped to one line."""
    if not rows:
        return "(none)"
    cells = [[("-" if r.get(k) is None else escape(r.get(k))) for k, _ in columns] for r in rows]
    widths = [max(len(title), *(len(c[i]) for c in cells)) for i, (_, title) in enumerate(columns)]
    lines = ["  ".join(title.ljust(w) for (_, title), w in zip(columns, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)


def _out(args: argparse.Namespace, doc: Any, text: str) -> None:
    """Print JSON (ASCII, every control escaped by JSON) or the text, escaped again as a whole: what a command
    forgot to escape still cannot reach the terminal raw (its own newlines stay)."""
    print(json.dumps(doc, indent=2) if args.json else escape(text, keep_newlines=True))


# The long texts of a task: shown as blocks, indented, so a line in them cannot pass for another field.
BLOCK_FIELDS = ("description", "notes", "result")


def _field(key: str, value: Any, writer: str | None) -> list[str]:
    """One field of ``task show``: ``key: value`` on one line, or ``key:`` and an indented block."""
    label = f"{key} (written by {escape(writer)})" if writer else key
    if isinstance(value, list):
        value = ", ".join(escape(v) for v in value) or None
    if key in BLOCK_FIELDS and isinstance(value, str) and "\n" in value:
        return [f"{label}:", *(f"    {escape(line)}" for line in value.split("\n"))]
    return [f"{label}: {'-' if value is None else escape(value)}"]


# -- commands -------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    from central_mcp.app import serve
    from central_mcp.settings import Settings

    serve(Settings.from_env())
    return 0


def cmd_relay(args: argparse.Namespace) -> int:
    from central_mcp import tls
    from central_mcp.relay import run
    from central_mcp.relay_auth import Address, check_token

    if bool(args.tls_cert_file) != bool(args.tls_key_file):
        raise CliError("relay: give --tls-cert-file and --tls-key-file together (the host's certificate and its key)")
    if args.tls_cert_file and args.socket:
        raise CliError("relay: TLS is for --listen; a unix socket (--socket) stays on this machine")
    try:
        listen = Address(path=Path(args.socket)) if args.socket else Address.parse(f"tcp:{args.listen}")
        token = None
        if args.relay_token_file:
            path = args.relay_token_file
            token = check_token(Path(path).read_text(encoding="utf-8"), f"--relay-token-file {path}")
        context = None
        if args.tls_cert_file:
            cert, key = Path(args.tls_cert_file), Path(args.tls_key_file)
            context = tls.server_context(cert, key, "--tls-cert-file", "--tls-key-file")
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CliError(f"relay: {exc}") from None
    if listen.tcp and token is None:
        raise CliError(f"relay: --listen {args.listen} is reachable from the network: give --relay-token-file")
    return run(
        listen, args.session, args.tmux_socket_name, args.allow_input, args.group, args.log_level, token, context
    )


def cmd_tasks(args: argparse.Namespace) -> int:
    query = {k: v for k, v in (("state", args.state), ("role", args.role)) if v}
    _, doc = call(args, "GET", "/api/tasks" + ("?" + urllib.parse.urlencode(query) if query else ""))
    cols = [("id", "ID"), ("state", "STATE"), ("priority", "PRI"), ("role", "ROLE"), ("claimed_by", "AGENT")]
    cols += [("progress", "%"), ("title", "TITLE")]
    _out(args, doc, table(doc["tasks"], cols))
    return 0


def cmd_task(args: argparse.Namespace) -> int:
    if args.task_cmd == "add":
        body = {"title": args.title, "description": args.description or "", "role": args.role or ""}
        body["priority"] = args.priority
        _, doc = call(args, "POST", "/api/tasks", body)
        title, role = escape(doc["title"]), escape(doc["role"] or "any")
        _out(args, doc, f"task {doc['id']} created: {title} (role {role}, P{doc['priority']})")
    elif args.task_cmd == "show":
        _, doc = call(args, "GET", f"/api/tasks/{args.id}")
        writers = doc.get("written_by") or {}
        lines = [line for k in doc if k not in ("events", "written_by") for line in _field(k, doc[k], writers.get(k))]
        lines += [
            "  " + " ".join(escape(e[k]) for k in ("at", "actor")) + ": "
            + " -> ".join(escape(e[k]) for k in ("kind", "state")) + f" {escape(e['text'])}".rstrip()
            for e in doc["events"]
        ]  # fmt: skip
        _out(args, doc, "\n".join(lines))
    else:
        _, doc = call(args, "POST", f"/api/tasks/{args.id}/{args.task_cmd}", {"reason": args.reason or ""})
        _out(args, doc, f"task {doc['id']} is now {escape(doc['state'])}")
    return 0


def cmd_agents(args: argparse.Namespace) -> int:
    _, doc = call(args, "GET", "/api/agents" + ("?retired=1" if args.retired else ""))
    rows = []
    for a in doc["agents"]:
        task = a["current_task"]
        seen = None if a["last_seen_s"] is None else f"{a['last_seen_s']:.0f}s ago"
        rows.append({**a, "seen": seen, "task": f"#{task['id']} {task['title']}" if task else None})  # table escapes
    cols = [("name", "NAME"), ("role", "ROLE"), ("model", "MODEL"), ("kind", "KIND"), ("state", "STATE")]
    cols += [("registered", "REGISTERED"), ("seen", "LAST SEEN"), ("task", "TASK")]
    _out(args, doc, table(rows, cols))
    return 0


def cmd_notes(args: argparse.Namespace) -> int:
    _, doc = call(args, "GET", f"/api/notes?limit={args.limit}")
    # "agent A: ..." or "person (ops): ...": who wrote it, as the agents read it
    lines = [
        f"{escape(n['at'])}  {escape(n.get('written_by') or n['author'])}: {escape(n['text'])}"
        for n in reversed(doc["notes"])
    ]
    _out(args, doc, "\n".join(lines) or "(no notes)")
    return 0


def cmd_note(args: argparse.Namespace) -> int:
    _, doc = call(args, "POST", "/api/notes", {"text": args.text, "author": args.author})
    _out(args, doc, f"note {doc['id']} posted")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    status, doc = call(args, "GET", "/health")
    agents, tasks, db = doc["agents"], doc["tasks"], doc["database"]
    lines = [
        f"central-mcp {escape(doc['version'])}: {escape(doc['status']).upper()} (up {doc['uptime_s']:.0f} s)",
        f"database:  {'ok' if db['ok'] else 'NOT OK'} ({escape(db['path'])}, "
        f"integrity {escape(db['integrity'])}, {escape(db['backups'])} backups)",
        "agents:    " + ", ".join(f"{escape(k)} {escape(v)}" for k, v in agents.items()),
        "tasks:     " + ", ".join(f"{escape(k)} {escape(v)}" for k, v in tasks.items() if v or k == "total"),
        "loops:     "
        + ", ".join(
            f"{escape(n)} {'ok' if lp['ok'] else 'ERROR' if lp['ok'] is False else 'pending'}"
            for n, lp in doc["loops"].items()
        ),
    ]
    lines += [f"problem:   {escape(p)}" for p in doc["problems"]]
    _out(args, doc, "\n".join(lines))
    return 1 if status >= 500 or doc["status"] == "failing" else 0


def cmd_backup(args: argparse.Namespace) -> int:
    _, doc = call(args, "POST", "/api/backup")
    _out(args, doc, f"backup written: {escape(doc['path'])} ({doc['size_bytes']} bytes)")
    return 0


def cmd_reload(args: argparse.Namespace) -> int:
    _, doc = call(args, "POST", "/api/reload")
    _out(args, doc, f"agents file: {doc['agents']} agents, changes {escape(doc['changes'] or 'none')}")
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    from central_mcp.settings import Settings
    from central_mcp.store import Store

    settings = Settings.from_env()
    db = Path(args.db) if args.db else settings.db_path
    backup_dir = settings.backup_dir if not args.db else db.parent / "backups"
    if args.db_cmd != "migrate" and not db.exists():
        raise CliError(f"database {db} does not exist", 2)
    store = Store(db, backup_dir, settings.backups_keep).open()
    try:
        if args.db_cmd == "migrate":
            before = store.schema_version()
            applied = store.migrate()
            doc = {"path": str(db), "from": before, "to": store.schema_version(), "applied": applied}
            _out(args, doc, f"{db}: schema {before} -> {doc['to']}" if applied else f"{db}: already at {before}")
            return 0
        if args.db_cmd == "check":
            result = store.integrity_check()
            doc = {"path": str(db), "integrity": result, "schema_version": store.schema_version()}
            _out(args, doc, f"{db}: integrity {result}, schema version {doc['schema_version']}")
            return 0 if result == "ok" else 1
        path = store.backup("cli")
        _out(args, {"path": str(path)}, f"backup written: {path}")
        return 0
    finally:
        store.close()


# -- argument parsing ---------------------------------------------------------------


def _common(top: bool) -> argparse.ArgumentParser:
    """Options accepted before and after the command; only the top level sets defaults
    (a subcommand's default would overwrite ``central-mcp --json tasks``)."""

    def default(value: Any) -> Any:
        return value if top else argparse.SUPPRESS

    common = argparse.ArgumentParser(add_help=False)
    url = os.environ.get("CENTRAL_MCP_URL", DEFAULT_URL)
    # No %(default)s: a subcommand's suppressed default has none to show (argparse would raise).
    common.add_argument("--url", default=default(url), help=f"coordinator base URL (default: {url})")
    common.add_argument(
        "--token-file", default=default(None), help="file holding the API token (default: $CENTRAL_MCP_API_TOKEN)"
    )
    ca_file = os.environ.get("CENTRAL_MCP_CA_FILE") or None
    common.add_argument(
        "--ca-file",
        default=default(ca_file),
        help="CA certificate to check an https:// URL against (default: $CENTRAL_MCP_CA_FILE, else the system's CAs)",
    )
    common.add_argument("--json", action="store_true", default=default(False), help="print JSON for machines")
    common.add_argument("--timeout", type=float, default=default(10.0), help="HTTP timeout in seconds")
    return common


def parser() -> argparse.ArgumentParser:
    common = _common(top=False)
    p = argparse.ArgumentParser(prog="central-mcp", description=__doc__.splitlines()[0], parents=[_common(top=True)])
    p.add_argument("--version", action="version", version=f"central-mcp {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("serve", parents=[common], help="run the coordinator (settings from CENTRAL_MCP_* variables)")

    relay = sub.add_parser("relay", help="serve the agents' tmux panes to the dashboard (run as the tmux owner)")
    where = relay.add_mutually_exclusive_group(required=True)
    where.add_argument("--socket", help="unix socket to listen on (created 0660)")
    where.add_argument("--listen", metavar="HOST:PORT", help="TCP address to listen on (needs --relay-token-file)")
    relay.add_argument("--relay-token-file", help="file holding the token every client must prove it knows")
    relay.add_argument("--tls-cert-file", help="serve TLS (with --listen): this host's certificate from the fleet CA")
    relay.add_argument("--tls-key-file", help="the key of --tls-cert-file (PEM)")
    relay.add_argument("--session", default="central-mcp-agents", help="tmux session (default: %(default)s)")
    relay.add_argument("--tmux-socket-name", help="tmux -L name of the server (default: tmux's default)")
    relay.add_argument("--group", help="give the socket to this group (the coordinator's user must be in it)")
    relay.add_argument("--allow-input", action="store_true", help="let clients type into panes (default: read-only)")
    relay.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))

    task = sub.add_parser("task", parents=[common], help="add, show, cancel or reopen one task")
    task_sub = task.add_subparsers(dest="task_cmd", metavar="ACTION", required=True)
    add = task_sub.add_parser("add", parents=[common], help="create an AVAILABLE task")
    add.add_argument("title")
    add.add_argument("--role", default="", help="only agents of this role are offered it (default: any)")
    add.add_argument("--description", "-d", default="")
    add.add_argument("--priority", "-p", type=int, default=3, choices=range(1, 6), help="1 most urgent .. 5")
    for name, what in (("show", "show a task and its history"), ("cancel", "withdraw a task"), ("reopen", "reopen")):
        action = task_sub.add_parser(name, parents=[common], help=what)
        action.add_argument("id", type=int)
        if name != "show":
            action.add_argument("--reason", default="")

    tasks = sub.add_parser("tasks", parents=[common], help="list tasks")
    tasks.add_argument("--state", help="e.g. AVAILABLE or CLAIMED,IN_PROGRESS")
    tasks.add_argument("--role")
    agents = sub.add_parser("agents", parents=[common], help="list agents and their state")
    agents.add_argument("--retired", action="store_true", help="include retired agents")
    notes = sub.add_parser("notes", parents=[common], help="show fleet notes")
    notes.add_argument("--limit", type=int, default=20)
    note = sub.add_parser("note", parents=[common], help="post a note to the fleet")
    note.add_argument("text")
    note.add_argument("--author", default="operator")
    sub.add_parser("status", parents=[common], help="health summary (exit 1 when failing)")
    sub.add_parser("backup", parents=[common], help="online backup through the running service")
    sub.add_parser("reload", parents=[common], help="re-read the agents file now (like SIGHUP)")

    db = sub.add_parser("db", parents=[common], help="act on the database file directly (upgrades, checks)")
    db.add_argument("db_cmd", choices=("migrate", "check", "backup"), help="migrate: stop the service first")
    db.add_argument("--db", help="database file (default: $CENTRAL_MCP_DB)")
    return p


COMMANDS = {
    "serve": cmd_serve,
    "relay": cmd_relay,
    "tasks": cmd_tasks,
    "task": cmd_task,
    "agents": cmd_agents,
    "notes": cmd_notes,
    "note": cmd_note,
    "status": cmd_status,
    "backup": cmd_backup,
    "reload": cmd_reload,
    "db": cmd_db,
}


def main(argv: list[str] | None = None) -> int:
    from central_mcp.agents import AgentsFileError
    from central_mcp.settings import ConfigError
    from central_mcp.store import StoreError

    args = parser().parse_args(argv)
    command = args.command or "serve"
    try:
        return COMMANDS[command](args)
    except CliError as exc:  # it may quote the coordinator's answer: escaped like the rest
        print(f"central-mcp: {escape(exc)}", file=sys.stderr)
        return exc.code
    except (ConfigError, AgentsFileError) as exc:
        print(f"central-mcp: configuration error: {escape(exc)}", file=sys.stderr)
        return 2
    except StoreError as exc:
        print(f"central-mcp: {escape(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
