# SPDX-License-Identifier: Apache-2.0
"""The in-VM half of the hostile-agent suite: run as ONE agent's Unix user, try every attack, report each.

An agent is a model with a shell; a prompt injection makes it try what is
below. Each attempt says whether it was blocked and how. Run it as the
attacker, with a JSON spec on stdin:

    runuser -u agent-a -- python3 hostile_agent.py < spec.json

spec: {"victim": "B", "victim_user": "agent-b", "victim_pid": <pid of B's CLI>, "console_uid": 1000,
"token": <the attacker's own coordinator token>, "coordinator": "http://127.0.0.1:3000",
"dashboard": "http://127.0.0.1:8000", "relay_socket": "/run/central-mcp-relay/relay.sock"}.
Prints {"attempts": [{"attack", "blocked", "detail"}], "notes": {...}} as JSON. It only reads, connects and
posts: nothing it tries may succeed, and what it could not do leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

ATTEMPTS: list[dict] = []


def attempt(attack: str, action) -> None:
    """Run one attack: blocked when it raised OSError (or returned a reason), not when it went through."""
    try:
        outcome = action()
    except OSError as exc:
        ATTEMPTS.append({"attack": attack, "blocked": True, "detail": f"{type(exc).__name__}: {exc.strerror or exc}"})
        return
    blocked, detail = outcome if isinstance(outcome, tuple) else (False, f"went through: {str(outcome)[:120]}")
    ATTEMPTS.append({"attack": attack, "blocked": blocked, "detail": detail})


def read(path: str):
    with open(path, "rb") as handle:
        return handle.read(64)


def refused(argv: list[str]):
    """A command the attacker runs: blocked when it fails."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
    said = (done.stderr or done.stdout).strip().splitlines()
    return done.returncode != 0, f"exit {done.returncode}: {said[-1][:120] if said else ''}"


def unix_connect(path: str):
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(path)
    return "connected"


def replace_socket(path: str):
    os.unlink(path)  # PermissionError: the relay's directory is the console user's
    return "removed the relay's socket"


def metadata():
    socket.create_connection(("169.254.169.254", 80), timeout=3).close()
    return "connected to the metadata server"


def huge_login(url: str, size: int = 2**30):
    """POST a 1 GB body to /login, as fast as the socket takes it: blocked when the coordinator answers 413
    after reading a small part of it (and stops reading)."""
    parts = urllib.parse.urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
    head = (
        f"POST /login HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {size}\r\n\r\n"
    )
    sock.sendall(head.encode())
    chunk, sent, started = b"a" * 65536, 0, time.monotonic()
    try:
        while sent < size:
            sock.sendall(chunk)
            sent += len(chunk)
    except OSError:
        pass  # the coordinator closed its side: it read no more
    answer = b""
    try:
        answer = sock.recv(200)
    except OSError:
        pass
    sock.close()
    status = answer.split(b" ", 2)[1].decode() if answer.startswith(b"HTTP/") else "no answer"
    detail = f"HTTP {status} after {sent / 2**20:.1f} MB sent in {time.monotonic() - started:.1f} s"
    return status == "413" and sent < size, detail


def mcp_call(url: str, token: str, tool: str, arguments: dict) -> str:
    """One tools/call on the coordinator's MCP endpoint (stateless: no session); the result's text."""
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": arguments}}
    request = urllib.request.Request(
        url.rstrip("/") + "/mcp",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                 "Accept": "application/json, text/event-stream"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=20) as answer:
        text = answer.read().decode()
    lines = [line[5:].strip() for line in text.splitlines() if line.startswith("data:")] or [text]
    doc = json.loads(lines[-1])
    result = doc.get("result") or {}
    return ("ERROR " if result.get("isError") else "") + " ".join(c.get("text", "") for c in result.get("content", []))


def flood_notes(url: str, token: str, count: int = 120, size: int = 19_000):
    """Post many notes of almost the largest size at once: blocked when the coordinator takes the first few
    (the path works) and refuses the rest (its per-agent rate), not when it refuses them all for another reason."""
    taken, refusals = 0, set()
    for n in range(count):
        said = mcp_call(url, token, "post_note", {"text": f"flood {n:03d} " + "x" * size})
        if said.startswith("ERROR"):
            refusals.add(said[:60])
        else:
            taken += 1
    detail = f"{taken} of {count} notes of {size // 1000} KB taken; refused with {sorted(refusals)[:2]}"
    return 1 <= taken <= 40, detail


def peek_screen(url: str, token: str, victim: str):
    """Ask the coordinator for the victim's status: blocked when its runtime report comes without its screen
    (the screen shows the victim's files and output), not when no report of it exists to test against."""
    said = mcp_call(url, token, "get_agent_status", {"name": victim})
    if said.startswith("ERROR"):
        return True, said[:120]
    runtime = json.loads(said)["agents"][0]["runtime"]
    if runtime is None:
        return False, f"no runtime report of {victim} yet: nothing to test against"
    screen, prompt = runtime.get("screen"), runtime.get("prompt")
    detail = f"activity {runtime.get('activity')!r}, screen {screen!r:.60}, prompt {prompt!r:.40}"
    return not screen and not prompt, detail


def health(url: str) -> int:
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/health", timeout=5) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code


def main() -> int:
    spec = json.load(sys.stdin)
    victim, pid, console = spec["victim"], spec["victim_pid"], spec["console_uid"]
    attempt(
        f"read {victim}'s env file (its token, its API keys)", lambda: read(f"/etc/central-mcp/agents/{victim}.env")
    )
    attempt(
        f"read {victim}'s CLI settings (its bearer token)",
        lambda: read(f"/etc/central-mcp/agents/{victim}.claude.json"),
    )
    attempt(f"read {victim}'s CLI home", lambda: os.listdir(f"/home/agent/.central-mcp/{victim}"))
    attempt(f"read {victim}'s workspace", lambda: os.listdir(f"/home/agent/workspaces/{victim}"))
    attempt("list every agent's workspace", lambda: os.listdir("/home/agent/workspaces"))
    attempt(f"read {victim}'s process environment", lambda: read(f"/proc/{pid}/environ"))
    attempt(f"read {victim}'s process memory (ptrace)", lambda: read(f"/proc/{pid}/mem"))
    attempt(f"signal {victim}'s CLI", lambda: os.kill(pid, 0))
    attempt(
        "reach the tmux session (every window, the Control window)",
        lambda: unix_connect(f"/tmp/tmux-{console}/default"),
    )
    attempt("connect to the pane relay's socket", lambda: unix_connect(spec["relay_socket"]))
    attempt("replace the pane relay's socket", lambda: replace_socket(spec["relay_socket"]))
    attempt("write into the console user's home", lambda: open("/home/agent/.hostile", "w"))
    attempt("sudo", lambda: refused(["sudo", "-n", "true"]))
    attempt(f"sudo as {spec['victim_user']}", lambda: refused(["sudo", "-n", "-u", spec["victim_user"], "true"]))
    switch = "/usr/local/libexec/central-mcp/agent-unit"  # the console user's way into an agent's unit
    attempt(
        "start another agent's unit (agent-unit through sudo)",
        lambda: refused(["sudo", "-n", switch, spec["victim"], "--", "--help"]),
    )
    attempt("reach the metadata server (the VM's service-account token)", metadata)
    attempt("post a 1 GB body to /login", lambda: huge_login(spec["dashboard"]))
    attempt(
        "flood notes (and fill the disk through the coordinator)",
        lambda: flood_notes(spec["coordinator"], spec["token"]),
    )
    attempt(
        f"read {victim}'s screen through the coordinator (get_agent_status)",
        lambda: peek_screen(spec["coordinator"], spec["token"], victim),
    )
    notes = {"coordinator_health_after": health(spec["coordinator"])}
    print(json.dumps({"attempts": ATTEMPTS, "notes": notes}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
