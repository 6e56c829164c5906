# SPDX-License-Identifier: Apache-2.0
"""Codex and Gemini agents started the way the launcher starts them, beside a real coordinator.

The CLIs come from npm (``npm ci --ignore-scripts`` of the launcher's
committed lock of each kind file's packages, into the same controller cache
tree the role prepares its tarballs from). Each agent is rendered by the launcher's own filter
(``launcher_fleet`` over ``roles/launcher/vars/kinds``) and runs in a tmux
window as ``agent-run --env-file ... --merge-toml/--merge-json ... -- CLI``:
its 0600 env file, its config documents merged into its own CLI home, its
first prompt. Only paths differ: the install directory is the cache tree,
the homes live under the test's temporary directory.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.e2e.fleet import PLATFORM, REPO, Coordinator, Unavailable, wait_for

KIND_DIR = REPO / "roles" / "launcher" / "vars" / "kinds"
GRANT = ["whoami", "get_available_tasks", "claim_task", "update_task_progress", "complete_task"]
UNGRANTED = "get_agent_dashboard"  # a coordinator tool outside GRANT: the coordinator must refuse it

# The kinds with their installs as the fleet plan resolves them (versions and platform filled in), and the
# fleet as launcher_fleet renders it with each kind's CLI installed in its cache tree.
_RENDER = """
import json, sys, yaml
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from plugins.filter.fleet import launcher_fleet
from plugins.filter.fleet_plan import installs
args = json.load(sys.stdin)
kinds = {p.stem: yaml.safe_load(p.read_text())[p.stem] for p in Path(args["kind_dir"]).glob("*.yml")}
if args.get("kinds_only"):
    for install in installs(list(kinds), {}, args["platform"]):
        kinds[install["kind"]]["install"] = install
    print(json.dumps(kinds))
else:
    settings = {**args["settings"], "install_dirs": args["trees"], "platform": args["platform"]}
    print(json.dumps(launcher_fleet(args["agents"], kinds, settings, args["secrets"])))
"""


def _render(payload: dict[str, Any]) -> Any:
    """Run the launcher's filter with the repository's tool venv (it has PyYAML; this venv is the coordinator's)."""
    python = REPO / ".venv" / "bin" / "python"
    if not python.exists():
        raise Unavailable("the repository's .venv (make setup) is needed to read the kind files")
    done = subprocess.run(
        [str(python), "-c", _RENDER, str(REPO)], input=json.dumps(payload), capture_output=True, text=True, timeout=60
    )
    if done.returncode:
        raise RuntimeError(f"rendering the fleet failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout)


def kind_files() -> dict[str, Any]:
    return _render({"kind_dir": str(KIND_DIR), "platform": PLATFORM, "kinds_only": True})


class KindFleet:
    """A coordinator (with per-agent grants), the scripted model, and one tmux window per agent via agent-run."""

    def __init__(
        self, root: Path, agents: list[dict[str, Any]], model_url: str, tls: bool = False, **timing: float
    ) -> None:
        """``tls``: the coordinator speaks TLS with a certificate of its own CA, which each CLI trusts through
        what its kind file's ca_env names (a coordinator on another VM)."""
        self.root = root
        self.agents = agents
        self.model_url = model_url
        names = {a["name"]: a["role"] for a in agents}
        self.coordinator = Coordinator(root / "coordinator", names, tls=tls, **timing)
        spec = json.loads((root / "coordinator" / "agents.json").read_text())
        for entry, agent in zip(spec["agents"], agents, strict=True):
            entry.update(kind=agent.get("kind", "claude"), model=agent["model"], tools=agent.get("tools"))
        (root / "coordinator" / "agents.json").write_text(json.dumps(spec, indent=2))
        self.socket_name = f"central-mcp-e2e-kinds-{os.getpid()}"  # tmux -L, as agent_status reads it
        self.items: dict[str, dict[str, Any]] = {}
        self.started_at: dict[str, float] = {}

    def start_coordinator(self) -> KindFleet:
        self.coordinator.start()
        return self

    def render(self, trees: dict[str, Path], prompt: str, claude: Path | None = None) -> None:
        settings = {
            "libexec_dir": str(REPO / "roles" / "launcher" / "files"),
            "config_dir": str(self.root / "etc"),
            "home": str(self.root / "home"),
            "workspace_root": str(self.root / "work"),
            "coordinator_url": self.coordinator.url + "/mcp",
            "default_model": "unused",
            "backoff_s": 2,
            "backoff_max_s": 10,
            "healthy_after_s": 60,
            "permission_mode": "dontAsk",
            "allowed_tools": [],
            "prompt": prompt,
            "mode": "interactive",  # long-lived CLIs that poll the board (worker mode: test_worker_mode.py)
            "ca_file": str(self.coordinator.ca_file or ""),
            "agent_env": {
                "ANTHROPIC_BASE_URL": self.model_url,
                "OPENAI_API_KEY": "fake-e2e-openai-key-0000",
                "OPENAI_BASE_URL": self.model_url + "/v1",
                "GEMINI_API_KEY": "e2e-gemini-key-0000",
                "GOOGLE_GEMINI_BASE_URL": self.model_url,
            },
        }
        payload = {
            "kind_dir": str(KIND_DIR),
            "trees": {k: str(v) for k, v in trees.items()},
            "platform": PLATFORM,
            "agents": self.agents,
            "settings": settings,
            "secrets": {"tokens": self.coordinator.tokens, "api_key": "fake-e2e-role-key-0000"},
        }
        for item in _render(payload):
            if claude is not None:  # the binary the tests extracted, where the launcher links /usr/local/bin/claude
                argv = [str(claude) if a == "/usr/local/bin/claude" else a for a in shlex.split(item["command"])]
                item["command"] = shlex.join(argv)
            self.items[item["name"]] = item
            # What the launcher's configure step writes: the env file and the config sources, 0600.
            for path in (self.root / "etc", Path(item["workdir"]), Path(item["state_dir"])):
                path.mkdir(parents=True, exist_ok=True, mode=0o700)
            env_file = self.root / "etc" / f"{item['name']}.env"
            env_file.write_text(item["env_file"])
            env_file.chmod(0o600)
            for doc in item["configs"]:
                Path(doc["path"]).write_text(json.dumps(doc["content"], indent=2) + "\n")
                Path(doc["path"]).chmod(0o600)

    def tmux(self, *args: str) -> str:
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(self.root), "LANG": "C.UTF-8", "TERM": "xterm"}
        done = subprocess.run(["tmux", "-L", self.socket_name, *args], capture_output=True, text=True, env=env)
        if done.returncode:
            raise RuntimeError(f"tmux {args[0]}: {done.stderr.strip()}")
        return done.stdout

    def start_agents(self) -> None:
        if shutil.which("tmux") is None:
            raise Unavailable("tmux is not installed")
        self.tmux("-f", "/dev/null", "new-session", "-d", "-s", "kinds", "-n", "Control", "-x", "200", "-y", "50")
        self.tmux("set-option", "-g", "remain-on-exit", "on")
        for name, item in self.items.items():
            home = self.root / "home" / "user"
            home.mkdir(parents=True, exist_ok=True)
            # The unit's environment (the launcher's service): a HOME and a PATH; the rest comes from the env file.
            env = ["-e", f"HOME={home}", "-e", "TERM=xterm-256color", "-e", "PATH=/usr/local/bin:/usr/bin:/bin"]
            self.started_at[name] = time.monotonic()
            self.tmux("new-window", "-d", "-t", "kinds", "-n", name, "-c", item["workdir"], *env, item["command"])

    def pane(self, name: str) -> str:
        try:
            return self.tmux("capture-pane", "-p", "-J", "-S", "-200", "-t", f"kinds:{name}")
        except RuntimeError as exc:
            return f"(no pane: {exc})"

    def pane_pid(self, name: str) -> int:
        return int(self.tmux("display-message", "-p", "-t", f"kinds:{name}", "#{pane_pid}").strip())

    def wait_registered(self, name: str, timeout: float) -> float:
        """Seconds from the window's start until the coordinator lists the agent as registered."""
        wait_for(lambda: self.coordinator.agents()[name]["registered"], timeout, f"{name} registered", interval=0.1)
        return time.monotonic() - self.started_at[name]

    def close(self) -> None:
        try:
            self.tmux("kill-server")
        except RuntimeError:
            pass
        self.coordinator.close()
