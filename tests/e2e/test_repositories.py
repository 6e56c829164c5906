# SPDX-License-Identifier: Apache-2.0
"""Agents work on a real repository: a branch per task from an up-to-date base, pushed over SSH for review.

A real git server (OpenSSH and git-shell in a podman container, tests/gitserver.py)
serves the team's repository; two workers run the real Claude Code CLI in
worker mode, each in its own worktree, with the repository as the launcher
writes it in the runtime's spec (its URL, base branch, the agent's identity,
the server's pinned host key and a deploy key). The scripted model edits a
file and commits it with the CLI's shell tool, as a real model does; the
runtime pushes the task's branch and the coordinator records it. The tests
read the server as a reviewer would.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.fleet import Fleet, Unavailable, wait_for
from tests.e2e.scenarios import epoch, percentile
from tests.e2e.workers import start_worker
from tests.forge_api import Contract, GitHubApi, GitHubApiServer
from tests.gitserver import GitServer
from tests.gitserver import Unavailable as NoGitServer
from tests.model_api import Policy

pytestmark = pytest.mark.e2e
WORKERS = {"A": "backend", "B": "backend"}
FORGE_TOKEN = "ghp_" + "forge" * 8
TIMING = {"heartbeat_s": 1.0, "liveness_s": 0.5, "assign_s": 1.0, "stale_s": 2.0, "offline_s": 5.0, "quiet_s": 3.0}
# What the model does with its shell tool: a file of its own, committed with the identity git has (the agent's).
EDIT_AND_COMMIT = (
    "printf 'work of agent {agent} on task {task_id}\\n' > agent-{agent}.txt",
    "git add agent-{agent}.txt && git commit --quiet -m 'Task {task_id}: add agent-{agent}.txt'",
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitServer]:
    try:
        git = GitServer(tmp_path_factory.mktemp("git-server")).start()
    except NoGitServer as exc:
        pytest.skip(str(exc))
    try:
        yield git
    finally:
        git.stop()


def repo_spec(server: GitServer, name: str, agent: str, known_hosts: Path | None = None) -> dict:
    return {
        "name": name, "url": server.url(name), "base": "main", "protocols": "ssh",
        "author": f"Agent {agent} <agent-{agent.lower()}@fleet.invalid>",
        "known_hosts": str(known_hosts or server.known_hosts), "key": str(server.key),
    }  # fmt: skip


@pytest.fixture
def forge(server: GitServer, contract: Contract) -> Iterator[GitHubApiServer]:
    """GitHub's pulls API (its stand-in, tests/forge_api) for the server's repositories, as project team/<name>."""

    def branches(project: str) -> dict[str, str] | None:
        owner, _, name = project.partition("/")
        return server.branches(name) if owner == "team" and name in server.repositories else None

    api = GitHubApi(contract, FORGE_TOKEN, branches)
    running = GitHubApiServer(api).start()
    try:
        yield running
    finally:
        running.stop()
    assert api.errors == []


@pytest.fixture
def fleet(tmp_path: Path, claude_bin: Path, forge: GitHubApiServer) -> Iterator[Fleet]:
    try:
        running = Fleet(tmp_path / "fleet", claude_bin, WORKERS, **TIMING)
    except Unavailable as exc:
        pytest.skip(str(exc))
    # The coordinator opens the pull requests: the forge's token is its credential, never an agent's.
    forge_file = tmp_path / "forge.json"
    projects = {name: f"team/{name}" for name in ("app", "locked", "pinned")}
    forge_file.write_text(
        json.dumps({"kind": "github", "api_url": forge.url, "token": FORGE_TOKEN, "projects": projects})
    )
    running.coordinator.env["CENTRAL_MCP_FORGE_FILE"] = str(forge_file)
    try:
        running.start()
    except Unavailable as exc:
        running.close()
        pytest.skip(str(exc))
    running.model.default = Policy(think_s=0.1, shell=EDIT_AND_COMMIT)
    running.allow = ["Bash"]  # as the launcher's default launcher_allowed_tools do
    try:
        yield running
    finally:
        running.close()


def branch_of(fleet: Fleet, task_id: int) -> dict | None:
    return fleet.coordinator.task(task_id).get("branch")


def test_two_agents_two_tasks_two_branches_pushed_with_their_identity(
    server: GitServer, fleet: Fleet, forge: GitHubApiServer
) -> None:
    server.repository("app")
    main_before = server.branches("app")["main"]
    for name in WORKERS:
        start_worker(fleet, name, repo=repo_spec(server, "app", name))
    ids = [fleet.coordinator.create_task(f"Add a page {i}", role="backend")["id"] for i in (1, 2)]
    wait_for(lambda: all((branch_of(fleet, i) or {}).get("pushed") for i in ids), 90, "both branches pushed")

    tasks = [fleet.coordinator.task(i) for i in ids]
    assert {t["state"] for t in tasks} == {"COMPLETE"} and {t["claimed_by"] for t in tasks} == set(WORKERS)
    on_server = server.branches("app")
    assert on_server.pop("main") == main_before  # the base is untouched...
    assert set(on_server) == {t["branch"]["branch"] for t in tasks}  # ...and nothing but the two branches came
    for task in tasks:
        agent, branch = task["claimed_by"], task["branch"]
        assert branch["branch"] == f"central-mcp/{task['id']}-add-a-page-{ids.index(task['id']) + 1}"
        assert on_server[branch["branch"]] == branch["head"] and branch["base_commit"] == main_before
        assert server.show("app", branch["branch"]) == (
            f"Agent {agent} <agent-{agent.lower()}@fleet.invalid>\nTask {task['id']}: add agent-{agent}.txt\n"
        )
        assert (branch["commit_count"], branch["files_changed"], branch["insertions"], branch["deletions"]) == (
            1, 1, 1, 0,
        )  # fmt: skip
        assert not branch["committed_leftovers"] and branch["diff_chars"] > 0
        other = next(a for a in WORKERS if a != agent)
        assert not (fleet.workdir(agent) / f"agent-{other}.txt").exists()  # each worktree its own
    pushed_s = [epoch(t["branch"]["at"]) - epoch(t["completed_at"]) for t in tasks]
    print(f"\ntask completed -> branch pushed and recorded: p50 {percentile(pushed_s, 0.5):.2f} s "
          f"(max {max(pushed_s):.2f} s) over SSH to a local git server")  # fmt: skip
    assert fleet.model.errors == []

    # The coordinator opened one pull request per branch, from the branch into main, and the task links it.
    opened = wait_for(lambda: all(branch_of(fleet, i)["pr_state"] == "opened" for i in ids) and ids, 30, "both PRs")
    pulls = {pull["head"]["ref"]: pull for pull in forge.api.pulls}
    assert len(forge.api.pulls) == 2 and len(opened) == 2
    for task in [fleet.coordinator.task(i) for i in ids]:
        pull = pulls[task["branch"]["branch"]]
        assert task["branch"]["pr_url"] == pull["html_url"] == f"https://github.test/team/app/pull/{pull['number']}"
        assert (pull["base"]["ref"], pull["head"]["sha"]) == ("main", task["branch"]["head"])
        assert pull["title"] == f"{task['title']} (task #{task['id']})"
        assert f"worked by agent {task['claimed_by']}: 1 commit(s), 1 file(s) changed, +1 -0." in pull["body"]


def test_a_refused_push_keeps_the_work_on_the_vm_and_the_task_says_why(
    server: GitServer, fleet: Fleet, forge: GitHubApiServer
) -> None:
    server.repository("locked")
    server.refuse_pushes("locked", "protected: pushes to this repository need a review")
    start_worker(fleet, "A", repo=repo_spec(server, "locked", "A"))
    task_id = fleet.coordinator.create_task("Change what is locked", role="backend")["id"]
    wait_for(lambda: branch_of(fleet, task_id), 90, "the branch recorded")

    branch = branch_of(fleet, task_id)
    assert branch["pushed"] is False and "need a review" in branch["push_error"], branch
    assert set(server.branches("locked")) == {"main"}  # nothing reached the server...
    kept = subprocess.run(["git", "-C", str(fleet.workdir("A")), "rev-parse", branch["branch"]],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    assert kept == branch["head"]  # ...and the work is on the VM, on its branch
    assert fleet.coordinator.task(task_id)["state"] == "COMPLETE"
    assert branch["pr_state"] == "" and forge.api.requests == []  # no pull request of a branch not pushed


def test_a_server_with_another_host_key_is_refused_and_the_task_says_why(
    server: GitServer, fleet: Fleet, tmp_path: Path
) -> None:
    server.repository("pinned")
    wrong = tmp_path / "known_hosts"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")], check=True)
    other_key = " ".join((tmp_path / "other.pub").read_text().split()[:2])
    wrong.write_text(f"[127.0.0.1]:{server.port} {other_key}\n")  # a key that is not the server's
    start_worker(fleet, "A", repo=repo_spec(server, "pinned", "A", known_hosts=wrong))
    task_id = fleet.coordinator.create_task("Never starts", role="backend")["id"]

    def handed_back() -> list[str]:
        return [e["text"] for e in fleet.coordinator.task(task_id)["events"] if e["kind"] == "handed_back"]

    reasons = wait_for(handed_back, 60, "the task handed back")
    assert "Host key verification failed" in reasons[0] or "REMOTE HOST IDENTIFICATION" in reasons[0], reasons
    assert set(server.branches("pinned")) == {"main"}
    time.sleep(0.5)
    assert not any(e.get("agent") == "A" and e["kind"] == "messages" for e in fleet.requests()), (
        "the model was called although the task never started"
    )


def https_spec(server: GitServer, name: str, agent: str, token: Path) -> dict:
    """An HTTPS repository as the runtime's spec has it: the token a file (the unit's credential on a VM)."""
    return {
        "name": name, "url": server.https_url(name), "base": "main", "protocols": "https", "username": "deploy",
        "author": f"Agent {agent} <agent-{agent.lower()}@fleet.invalid>", "known_hosts": "", "token": str(token),
        "ca": str(server.ca),
    }  # fmt: skip


def test_over_https_the_branch_is_pushed_with_the_token_read_from_its_file(server: GitServer, fleet: Fleet) -> None:
    server.repository("web")
    start_worker(fleet, "A", repo=https_spec(server, "web", "A", server.token))
    task_id = fleet.coordinator.create_task("Serve a page", role="backend")["id"]
    wait_for(lambda: (branch_of(fleet, task_id) or {}).get("pushed"), 90, "the branch pushed over HTTPS")

    branch = branch_of(fleet, task_id)
    assert server.branches("web")[branch["branch"]] == branch["head"]
    assert server.show("web", branch["branch"]) == f"Agent A <agent-a@fleet.invalid>\nTask {task_id}: add agent-A.txt\n"
    token = server.token.read_text().strip()
    origin = subprocess.run(["git", "-C", str(fleet.workdir("A")), "config", "--list"],
                            capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert token not in origin and token not in json.dumps(fleet.coordinator.task(task_id))  # never kept or told
    assert token not in (fleet.root / "runtime.json").read_text()


def test_over_https_a_wrong_token_hands_the_task_back_saying_why(
    server: GitServer, fleet: Fleet, tmp_path: Path
) -> None:
    server.repository("guarded")
    wrong = tmp_path / "token"
    wrong.write_text("not-the-servers-token\n")
    start_worker(fleet, "A", repo=https_spec(server, "guarded", "A", wrong))
    task_id = fleet.coordinator.create_task("Never starts either", role="backend")["id"]

    def handed_back() -> list[str]:
        return [e["text"] for e in fleet.coordinator.task(task_id)["events"] if e["kind"] == "handed_back"]

    reasons = wait_for(handed_back, 60, "the task handed back")
    assert "Authentication failed" in reasons[0] and "not-the-servers-token" not in reasons[0], reasons
    assert set(server.branches("guarded")) == {"main"}
