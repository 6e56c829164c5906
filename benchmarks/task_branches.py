# SPDX-License-Identifier: Apache-2.0
"""A task's branch: from the task completed to its branch pushed and recorded, through real processes.

A real git server (OpenSSH and git-shell in a podman container,
tests/gitserver.py), two workers as the launcher runs them (one runtime,
the real Claude Code CLI per task, each in its own worktree), a real
coordinator, and the scripted model editing a file and committing it with
its shell tool before it completes the task. For --tasks tasks, printed:

* task completed -> its branch pushed and recorded by the coordinator: p50,
  p95, max (the runtime ends the CLI, then agent-run commits what was left,
  fetches the base, pushes over SSH and reports);
* task created -> branch recorded, p50;
* branch recorded -> its pull request opened by the coordinator (on the
  GitHub stand-in built from GitHub's OpenAPI description, tests/forge_api), p50;
* branches on the server, tasks whose work is not on the server (goal 0).

``--over https`` pushes over HTTPS with a token (git http-backend) instead of SSH.

Run with the coordinator's venv: ``coordinator/.venv/bin/python
benchmarks/task_branches.py [--tasks 8]`` (about a minute; needs the test
bed's git server image).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.e2e.fleet import Fleet, Unavailable, claude_binary, wait_for  # noqa: E402
from tests.e2e.scenarios import epoch, percentile  # noqa: E402
from tests.e2e.workers import start_worker  # noqa: E402
from tests.forge_api import Contract, GitHubApi, GitHubApiServer, description  # noqa: E402
from tests.gitserver import GitServer  # noqa: E402
from tests.model_api import Policy  # noqa: E402
from tests.npm_locks import NpmUnavailable  # noqa: E402

FORGE_TOKEN = "ghp_" + "bench" * 8

WORKERS = {"A": "backend", "B": "backend"}
EDIT_AND_COMMIT = (
    "printf 'work of agent {agent} on task {task_id}\\n' > task-{task_id}.txt",
    "git add task-{task_id}.txt && git commit --quiet -m 'Task {task_id}'",
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=8)
    parser.add_argument("--over", choices=("ssh", "https"), default="ssh")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="task-branches-") as tmp:
        root = Path(tmp)
        server = GitServer(root / "git").start()
        try:
            url = server.repository("app")
            (root / "claude").mkdir()
            claude = claude_binary(root / "claude")
            fleet = Fleet(root / "fleet", claude, WORKERS, heartbeat_s=1.0, liveness_s=0.5, assign_s=1.0)
            forge = GitHubApiServer(GitHubApi(Contract(description()), FORGE_TOKEN, lambda p: server.branches("app")
                                              if p == "team/app" else None)).start()  # fmt: skip
            forge_file = root / "forge.json"
            forge_file.write_text(json.dumps({"kind": "github", "api_url": forge.url, "token": FORGE_TOKEN,
                                              "projects": {"app": "team/app"}}))  # fmt: skip
            fleet.coordinator.env["CENTRAL_MCP_FORGE_FILE"] = str(forge_file)
            fleet.start()
        except (Unavailable, NpmUnavailable) as exc:
            server.stop()
            print(f"cannot run: {exc}")
            return 2
        try:
            fleet.model.default = Policy(think_s=0.1, shell=EDIT_AND_COMMIT)
            fleet.allow = ["Bash"]
            for name in WORKERS:
                author = f"Agent {name} <{name}@bench.invalid>"
                repo = {"name": "app", "url": url, "base": "main", "protocols": "ssh", "key": str(server.key),
                        "known_hosts": str(server.known_hosts), "author": author}  # fmt: skip
                if args.over == "https":
                    repo = {"name": "app", "url": server.https_url("app"), "base": "main", "protocols": "https",
                            "token": str(server.token), "ca": str(server.ca), "author": author}  # fmt: skip
                start_worker(fleet, name, repo=repo)
            ids = [fleet.coordinator.create_task(f"Bench task {i}", role="backend")["id"] for i in range(args.tasks)]

            def recorded() -> bool:
                return all((fleet.coordinator.task(i).get("branch") or {}).get("pr_at") for i in ids)

            wait_for(recorded, 60 + 30 * args.tasks, f"{args.tasks} branches pushed and their pull requests opened")
            tasks = [fleet.coordinator.task(i) for i in ids]
            pushed = [epoch(t["branch"]["at"]) - epoch(t["completed_at"]) for t in tasks]
            whole = [epoch(t["branch"]["at"]) - epoch(t["created_at"]) for t in tasks]
            on_server = server.branches("app")
            lost = [t["id"] for t in tasks if on_server.get(t["branch"]["branch"]) != t["branch"]["head"]]
            opened = [epoch(t["branch"]["pr_at"]) - epoch(t["branch"]["at"]) for t in tasks]
            pulls = sum(t["branch"]["pr_state"] == "opened" for t in tasks)
            print(f"{args.tasks} tasks by 2 workers, each on its own branch, pushed over {args.over.upper()} to a "
                  "local git server")  # fmt: skip
            print(f"task completed -> branch pushed and recorded: p50 {percentile(pushed, 0.5):.2f} s, "
                  f"p95 {percentile(pushed, 0.95):.2f} s, max {max(pushed):.2f} s")  # fmt: skip
            print(f"task created -> branch recorded: p50 {percentile(whole, 0.5):.2f} s")
            print(f"branch recorded -> pull request opened: p50 {percentile(opened, 0.5):.2f} s "
                  f"({pulls} of {args.tasks} opened on the GitHub stand-in)")  # fmt: skip
            print(f"branches on the server: {len(on_server) - 1}; tasks whose work is not there: {len(lost)}")
        finally:
            fleet.close()
            forge.stop()
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
