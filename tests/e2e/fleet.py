# SPDX-License-Identifier: Apache-2.0
"""A fleet on one machine, with real processes: the coordinator, the real ``claude`` CLI, the scripted model.

Used by the end-to-end tests and by ``benchmarks/real_cli_tasks.py``. Each
agent is configured the way the launcher role configures it: its own
``CLAUDE_CONFIG_DIR`` whose ``.claude.json`` says onboarding is done, the
workspace is trusted, the API key is approved and the coordinator is a
user-scope HTTP MCP server reached with the agent's own bearer token. The
coordinator knows only the SHA-256 of each token (its agents file).

Agents run either interactively in tmux windows on a private socket (as the
launcher runs them, plus a first prompt) or as ``claude -p`` processes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests import socket_activation
from tests.model_api import ModelApi, ModelApiServer, Policy
from tests.npm_locks import NpmUnavailable, npm_tree

REPO = Path(__file__).resolve().parents[2]
# The version the claude kind file pins (read without YAML: this venv is the coordinator's).
CLAUDE_VERSION = re.search(
    r'version: "([^"]+)"', (REPO / "roles/launcher/vars/kinds/claude.yml").read_text(encoding="utf-8")
)[1]
CLAUDE_PACKAGE = "@anthropic-ai/claude-code-linux-x64"
PLATFORM = "linux-x64"  # the platform the tests install the CLIs for (launcher_cli_platform's default)
SERVER = "central-mcp"  # the MCP server name the launcher registers (tools are mcp__central-mcp__*)
MODEL = "claude-sonnet-5-5"
PROMPT = (
    "You are a coding agent in a fleet coordinated by the central-mcp server. Work through its task board: "
    "whoami, get_available_tasks, claim_task, update_task_progress, complete_task; repeat until none is left."
)
# What the launcher should add for unattended agents: never prompt; allow the coordinator's tools.
PERMISSION_FLAGS = ["--permission-mode", "dontAsk", "--allowedTools", f"mcp__{SERVER}"]
PERMISSION_SETTINGS = {"defaultMode": "dontAsk", "allow": [f"mcp__{SERVER}"]}
AGENTS = {"A": "backend", "B": "frontend", "C": "backend", "D": "integration"}
# Short loops and time-outs so a dead agent's task comes back within seconds, not ten minutes.
TIMING = {"liveness_s": 0.5, "assign_s": 0.5, "health_s": 5.0, "stale_s": 2.0, "offline_s": 5.0}


class Unavailable(RuntimeError):
    """Something the fleet needs is missing on this machine (the tests skip with this message)."""


def wait_for(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll ``check`` until it returns something truthy; TimeoutError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:g} s")
        time.sleep(interval)


# The committed npm locks the launcher installs the CLIs from (<kind>-<version>-<platform>/package-lock.json), and
# npm ci as its install_kind.yml runs it on the controller: exactly the lock, each tarball checked against the
# lock's integrity hash, no package's install scripts, the native packages of PLATFORM.
LOCKS = REPO / "roles" / "launcher" / "files" / "npm"
PLATFORM_ARGS = (f"--os={PLATFORM.split('-')[0]}", f"--cpu={PLATFORM.split('-')[1]}", "--libc=glibc")


def cli_tree(kind: str, install: dict[str, Any]) -> Path:
    """A kind's CLI installed into the controller cache (once) from its committed lock, as the launcher role does,
    in the same tree, so that a test run and a converge share it; the files the kind file pins by sha256
    (``install["sha256"]``) are checked."""
    version = install["version"]
    lock = LOCKS / f"{kind}-{version}-{PLATFORM}"
    if not (lock / "package-lock.json").is_file():
        raise RuntimeError(
            f"no committed npm lock {lock.relative_to(REPO)}: make it with tools/lock-cli.py {kind} {version}"
        )
    try:
        tree = npm_tree(lock, PLATFORM_ARGS)
    except NpmUnavailable as exc:
        raise Unavailable(str(exc)) from None
    for path, pinned in (install.get("sha256") or {}).items():
        actual = hashlib.sha256((tree / path).read_bytes()).hexdigest()
        if actual != pinned:
            raise RuntimeError(f"{tree / path} has sha256 {actual}, the {kind} kind file pins {pinned}")
    return tree


def claude_binary(dest: Path) -> Path:
    """The real Claude Code binary, from the npm platform package the claude kind file pins (installed if absent).

    The same tree the launcher role installs from, kept in the same cache
    directory. ``CENTRAL_MCP_E2E_CLAUDE`` may name an installed binary instead.
    """
    given = os.environ.get("CENTRAL_MCP_E2E_CLAUDE")
    if given:
        if not os.access(given, os.X_OK):
            raise Unavailable(f"CENTRAL_MCP_E2E_CLAUDE={given!r} is not an executable file")
        return Path(given)
    if sys.platform != "linux" or os.uname().machine != "x86_64":
        raise Unavailable(
            f"the tests use the linux-x64 Claude Code package; this is {sys.platform}/{os.uname().machine}"
        )
    tree = cli_tree("claude", {"version": CLAUDE_VERSION, "packages": [f"{CLAUDE_PACKAGE}@{CLAUDE_VERSION}"]})
    binary = dest / "claude"
    shutil.copyfile(tree / "node_modules" / CLAUDE_PACKAGE / "claude", binary)
    binary.chmod(0o755)
    return binary


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra`` merged in (nested dicts merge): what agent-run does to .claude.json."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


class Coordinator:
    """``central-mcp serve`` as a subprocess on a loopback port, with an agents file of token hashes.

    The listening socket is this object's, handed to each process it starts as systemd hands the socket unit's
    (sd_listen_fds): it stays open from ``stop()`` to the next ``start()``, so that a call made meanwhile waits
    in the backlog and the next process answers it, as on a converged VM.
    """

    def __init__(
        self, root: Path, agents: dict[str, str], notify_url: str = "", tls: bool = False, **settings: float
    ) -> None:
        """``tls``: it speaks TLS only, with a certificate of a throwaway CA (``ca_file``), as a coordinator
        reached from another VM does with the fleet's."""
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.tokens = {name: secrets.token_urlsafe(32) for name in agents}
        self.api_token = secrets.token_urlsafe(24)
        self.listener = socket_activation.tcp_listener()
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = root / "coordinator.log"
        spec = [
            {
                "name": name,
                "role": role,
                "model": MODEL,
                "kind": "claude",
                "host": "e2e",
                "token_sha256": hashlib.sha256(self.tokens[name].encode()).hexdigest(),
            }
            for name, role in agents.items()
        ]
        (root / "agents.json").write_text(json.dumps({"agents": spec}, indent=2))
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "CENTRAL_MCP_DB": str(root / "db" / "central-mcp.db"),
            "CENTRAL_MCP_PORT": str(self.port),
            "CENTRAL_MCP_AGENTS_FILE": str(root / "agents.json"),
            "CENTRAL_MCP_API_TOKEN": self.api_token,
            "CENTRAL_MCP_LOG_LEVEL": "info",
            "CENTRAL_MCP_DASHBOARD_PORT": "0",  # no dashboard: a test must not take the real one's port 8000
            **{f"CENTRAL_MCP_{key.upper()}": f"{value:g}" for key, value in settings.items()},
            **({"CENTRAL_MCP_NOTIFY_URL": notify_url} if notify_url else {}),
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.ssl_context, self.ca_file = None, None
        if tls:
            from tests.throwaway_ca import throwaway_tls  # noqa: PLC0415 (cryptography: only here)

            tls_env, self.ssl_context = throwaway_tls(root)
            self.env.update(tls_env)
            self.url, self.ca_file = f"https://127.0.0.1:{self.port}", root / "ca.pem"

    @staticmethod
    def command() -> list[str]:
        """The coordinator's own venv when there is one (what the role installs), else this interpreter."""
        venv = REPO / "coordinator" / ".venv" / "bin" / "central-mcp"
        if venv.exists():
            return [str(venv), "serve"]
        found = shutil.which("central-mcp")
        if found:
            return [found, "serve"]
        try:
            import central_mcp  # noqa: F401
        except ImportError:
            raise Unavailable("the central-mcp package is not installed (make the coordinator's venv)") from None
        return [sys.executable, "-m", "central_mcp", "serve"]

    def start(self, timeout: float = 20.0) -> Coordinator:
        with self.log.open("ab") as log:
            self.proc = socket_activation.popen(
                self.command(), [self.listener], env=self.env, stdout=log, stderr=subprocess.STDOUT
            )

        def healthy() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"coordinator exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(self.url + "/health", timeout=1, context=self.ssl_context) as answer:
                    return answer.status == 200
            return False

        wait_for(healthy, timeout, "coordinator /health")
        return self

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One REST call with the API token; raises with the coordinator's message on an error status."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.api_token}")
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=10, context=self.ssl_context) as answer:
                return json.load(answer)
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"{method} {path}: {exc.code} {exc.read().decode(errors='replace')}") from None

    def create_task(self, title: str, description: str = "", role: str = "", priority: int = 3) -> dict[str, Any]:
        body = {"title": title, "description": description, "role": role, "priority": priority}
        return self.api("POST", "/api/tasks", body)

    def task(self, task_id: int) -> dict[str, Any]:
        return self.api("GET", f"/api/tasks/{task_id}")

    def agents(self) -> dict[str, dict[str, Any]]:
        return {a["name"]: a for a in self.api("GET", "/api/agents")["agents"]}

    def stop(self) -> None:
        """Stop the process; the port stays open (calls wait for the next ``start()``)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def close(self) -> None:
        """Stop the process and close the port."""
        self.stop()
        self.listener.close()


class Fleet:
    """Coordinator, scripted model and N agents' homes; agents start in tmux (interactive) or as ``claude -p``."""

    def __init__(
        self, root: Path, claude: Path, agents: dict[str, str], notify_url: str = "", **coordinator_settings: float
    ) -> None:
        self.root = root
        self.claude = claude
        self.names = list(agents)
        self.coordinator = Coordinator(root, agents, notify_url, **coordinator_settings)
        self.model = ModelApi("worker", log_path=root / "model-requests.jsonl")
        self.model_server = ModelApiServer(self.model)
        self.api_key = "sk-ant-api03-e2e-" + secrets.token_hex(24)  # fake: the stand-in accepts any key
        self.tmux_socket = root / "tmux.sock"
        self.tmux_started = False
        self.procs: dict[str, subprocess.Popen[str]] = {}
        self.workers: dict[str, dict[str, Any]] = {}  # worker mode: the runtime's spec (tests/e2e/workers.py)
        self.runtime: subprocess.Popen[str] | None = None  # worker mode: the host's runtime
        self.allow: list[str] = []  # tools the agents may use besides the coordinator's (the role's allowed tools)

    def start(self) -> Fleet:
        self.coordinator.start()
        self.model_server.start()
        return self

    def close(self) -> None:
        for proc in [*self.procs.values(), *([self.runtime] if self.runtime else [])]:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.stop_interactive()
        self.model_server.stop()
        self.coordinator.close()

    # -- one agent's configuration, as the launcher writes it -------------------

    def home(self, name: str) -> Path:
        return self.root / "agents" / name

    def workdir(self, name: str) -> Path:
        return self.home(name) / "work"

    def configure(self, name: str, permissions_in_settings: bool) -> dict[str, str]:
        """Write the agent's .claude.json (merged, as agent-run does) and settings.json; return its environment."""
        config_dir, workdir = self.home(name) / "claude", self.workdir(name).resolve()
        for path in (config_dir, workdir, self.home(name) / "home"):
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
        workdir = workdir.resolve()
        managed = {
            "hasCompletedOnboarding": True,
            # The CLI's own nudges, pre-answered as the launcher's kind file does (claude.yml).
            "hasSeenAutoDefaultNudge": True,
            "hasSeenAutoDefaultNotice": True,
            "hasSeenEffortMediumNudge": True,
            "projects": {str(workdir): {"hasTrustDialogAccepted": True}},
            "customApiKeyResponses": {"approved": [self.api_key[-20:]], "rejected": []},
            "mcpServers": {
                SERVER: {
                    "type": "http",
                    "url": self.coordinator.url + "/mcp",
                    "headers": {"Authorization": f"Bearer {self.coordinator.tokens[name]}"},
                }
            },
        }
        state = config_dir / ".claude.json"
        current = json.loads(state.read_text()) if state.exists() else {}
        state.write_text(json.dumps(deep_merge(current, managed), indent=2))
        state.chmod(0o600)
        # What the launcher's claude.yml writes: no auto-update; the turn-end hook a worker's runtime reads.
        turn_hook = {"type": "command", "command": '[ -z "$CENTRAL_MCP_TURN_FILE" ] || touch "$CENTRAL_MCP_TURN_FILE"'}
        settings: dict[str, Any] = {"env": {"DISABLE_AUTOUPDATER": "1"}, "hooks": {"Stop": [{"hooks": [turn_hook]}]}}
        if permissions_in_settings:
            settings["permissions"] = {**PERMISSION_SETTINGS, "allow": [*PERMISSION_SETTINGS["allow"], *self.allow]}
        (config_dir / "settings.json").write_text(json.dumps(settings, indent=2))
        return {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.home(name) / "home"),
            "LANG": "C.UTF-8",
            "TERM": "xterm-256color",
            "CLAUDE_CONFIG_DIR": str(config_dir),
            "ANTHROPIC_BASE_URL": self.model_server.url,
            "ANTHROPIC_API_KEY": self.api_key,
        }

    # -- interactive agents in tmux (the launcher's way) -------------------------

    def tmux(self, *args: str) -> str:
        argv = ["tmux", "-S", str(self.tmux_socket), *args]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, env=self._tmux_env())
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[3:5])}: {done.stderr.strip()}")
        return done.stdout

    def _tmux_env(self) -> dict[str, str]:
        """The tmux server starts from this, not from the test's environment (no stray keys reach the agents)."""
        return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(self.root), "LANG": "C.UTF-8", "TERM": "xterm"}

    def start_interactive(self, name: str, prompt: str = PROMPT) -> None:
        """``claude --model M PROMPT`` in window ``name``; permissions from settings.json (what the launcher writes)."""
        if shutil.which("tmux") is None:
            raise Unavailable("tmux is not installed")
        env = self.configure(name, permissions_in_settings=True)
        self.window(name, env, [str(self.claude), "--model", MODEL, prompt])

    def window(self, name: str, env: dict[str, str], argv: list[str]) -> None:
        """A tmux window ``name`` running ``argv`` in the agent's workspace with ``env`` (the session on demand)."""
        if not self.tmux_started:
            self.tmux("-f", "/dev/null", "new-session", "-d", "-s", "e2e", "-n", "Control", "-x", "200", "-y", "50")
            self.tmux("set-option", "-g", "remain-on-exit", "on")  # a crashed agent's last screen stays readable
            self.tmux_started = True
        extra = [item for key, value in env.items() for item in ("-e", f"{key}={value}")]
        self.tmux("new-window", "-d", "-t", "e2e", "-n", name, "-c", str(self.workdir(name).resolve()), *extra, *argv)

    def pane(self, name: str) -> str:
        """What agent ``name``'s window shows (for failure messages)."""
        try:
            return self.tmux("capture-pane", "-p", "-t", f"e2e:{name}")
        except RuntimeError as exc:
            return f"(no pane: {exc})"

    def pane_pid(self, name: str) -> int:
        """The process in agent ``name``'s window: the claude CLI itself (started without a shell)."""
        return int(self.tmux("display-message", "-p", "-t", f"e2e:{name}", "#{pane_pid}").strip())

    def stop_interactive(self) -> None:
        if self.tmux_started:
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self.tmux("kill-server")
            with contextlib.suppress(TimeoutError):  # a new session would meet the old server on its way out
                wait_for(lambda: not self.tmux_socket.exists(), 5, "the tmux server gone")
            self.tmux_started = False

    # -- claude -p agents ---------------------------------------------------------

    def run_print(self, name: str, prompt: str = PROMPT) -> subprocess.Popen[str]:
        """``claude -p PROMPT`` with explicit permission flags (and none in settings.json): the other unattended way."""
        env = self.configure(name, permissions_in_settings=False)
        argv = [str(self.claude), "-p", prompt, "--model", MODEL, *PERMISSION_FLAGS]
        proc = subprocess.Popen(
            argv, cwd=self.workdir(name).resolve(), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.procs[name] = proc
        return proc

    # -- what the scripted model saw ----------------------------------------------

    def set_policy(self, name: str, policy: Policy) -> None:
        self.model.policies[name] = policy

    def requests(self, agent: str | None = None) -> list[dict[str, Any]]:
        with self.model.lock:
            entries = list(self.model.requests)
        return [e for e in entries if agent is None or e.get("agent") == agent]

    def polled(self, name: str) -> bool:
        """Agent ``name`` has asked the coordinator for tasks through the CLI at least once."""
        return any(e.get("reply", {}).get("tool") == f"mcp__{SERVER}__get_available_tasks" for e in self.requests(name))
