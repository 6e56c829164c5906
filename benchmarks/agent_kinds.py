# SPDX-License-Identifier: Apache-2.0
"""Agent kinds side by side: one real Claude Code, Codex and Gemini agent on one coordinator.

The flow of ``tests/e2e/test_real_kinds.py`` with figures instead of
assertions: each CLI as the launcher installs and starts it (kind files,
agent-run, its env file and merged configs), the scripted model speaking
each CLI's wire format (0.1 s of "thinking" per step), a real coordinator.
Printed per kind:

* install size on the target: what the launcher unpacks (each kind's npm
  tree: for claude, its native binary's platform package);
* time from the tmux window's start to "registered" at the coordinator;
* agent RSS while idle at an empty task board (the agent and its processes:
  Node wrappers and the CLI), after start-up settled;
* tasks completed by each kind (2 per agent, for its own role), and prompts
  that blocked an agent (windows showing a question for a person; goal 0).

Run with the coordinator's venv: ``coordinator/.venv/bin/python
benchmarks/agent_kinds.py`` (about 30 s once the CLIs are in the cache; the
first run fetches them from the npm registry, ~550 MB).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from plugins.module_utils.agent_probe import Options, probe  # noqa: E402
from tests.e2e.fleet import Unavailable, claude_binary, cli_tree, wait_for  # noqa: E402
from tests.e2e.kinds import GRANT, KindFleet, kind_files  # noqa: E402
from tests.e2e.prompt_markers import PROMPT_MARKERS  # noqa: E402
from tests.model_api import ModelApi, ModelApiServer, Policy  # noqa: E402

AGENTS = [
    {"name": "A", "role": "backend", "model": "claude-sonnet-5-5", "tools": GRANT},
    {"name": "E", "role": "review", "kind": "codex", "model": "gpt-5-codex", "tools": GRANT},
    {"name": "F", "role": "docs", "kind": "gemini", "model": "gemini-2.5-pro", "tools": GRANT},
]
PROMPT = "You are agent {name} ({role}). Work the coordinator's task board until no task is left."


def tree_bytes(path: Path) -> int:
    """Bytes of the files below ``path`` as unpacked on a host (du -sb: apparent sizes)."""
    return int(subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True, check=True).stdout.split()[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks-per-agent", type=int, default=2)
    parser.add_argument("--idle-s", type=float, default=5.0, help="settle time before the idle RSS sample")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="agent-kinds-") as tmp:
        root = Path(tmp)
        try:
            kinds = kind_files()
            trees = {k: cli_tree(k, kinds[k]["install"]) for k in ("claude", "codex", "gemini")}
            claude = claude_binary(root)
        except Unavailable as exc:
            print(f"agent_kinds: skipped: {exc}")
            return 0
        sizes = {k: tree_bytes(t / "node_modules") for k, t in trees.items()}
        policy = Policy(idle_polls=400, poll_s=0.5, think_s=0.1)
        model = ModelApi("worker", default=policy)
        server = ModelApiServer(model).start()
        fleet = KindFleet(root / "fleet", AGENTS, server.url, liveness_s=0.5, assign_s=0.5, health_s=5.0)
        try:
            fleet.start_coordinator()
            fleet.render(trees, PROMPT, claude)
            fleet.start_agents()
            registered: dict[str, float] = {}

            def all_registered() -> bool:
                now, rows = time.monotonic(), fleet.coordinator.agents()
                for name in fleet.items:
                    if name not in registered and rows[name]["registered"]:
                        registered[name] = now - fleet.started_at[name]
                return len(registered) == len(fleet.items)

            wait_for(all_registered, 120, "every agent registered", interval=0.05)
            time.sleep(args.idle_s)  # start-up settles; the agents poll an empty board
            opts = Options("kinds", fleet.socket_name, fleet.coordinator.url, fleet.coordinator.api_token)
            idle = {r["name"]: r for r in probe(opts)["agents"]}
            ids = [
                fleet.coordinator.create_task(f"bench {a['role']} {i}", "benchmark", role=a["role"])["id"]
                for a in AGENTS
                for i in range(args.tasks_per_agent)
            ]
            began = time.monotonic()
            wait_for(lambda: {fleet.coordinator.task(i)["state"] for i in ids} == {"COMPLETE"}, 180, "tasks", 0.2)
            took = time.monotonic() - began
            done = [fleet.coordinator.task(i)["claimed_by"] for i in ids]
            blocked = {n: [m for m in PROMPT_MARKERS if m in fleet.pane(n)] for n in fleet.items}
        except TimeoutError as exc:
            print(f"agent_kinds: {exc}")
            for name in fleet.items:
                print(f"--- {name} ---\n{fleet.pane(name)[-1500:]}")
            return 1
        finally:
            fleet.close()
            server.stop()
    print(f"{'kind':8} {'install size':>13} {'window->registered':>19} {'RSS idle':>9} {'tasks done':>11}  CLI")
    for agent in AGENTS:
        name, kind = agent["name"], agent.get("kind", "claude")
        version = kinds[kind]["install"]["version"]
        print(
            f"{kind:8} {sizes[kind] / 2**20:>10.0f} MB {registered[name]:>17.1f} s "
            f"{idle[name]['rss_bytes'] / 2**20:>6.0f} MB {done.count(name):>6}/{args.tasks_per_agent:<4}  {version}"
        )
    print(
        f"{len(ids)} tasks COMPLETE {took:.1f} s after creation; errors at the model API: {len(model.errors)}; "
        f"prompts that blocked an agent: {sum(len(v) for v in blocked.values())} (goal 0)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
