# SPDX-License-Identifier: Apache-2.0
"""Verify a VM with one agent of each kind (Claude Code, Codex, Gemini) on one coordinator.

The agents' model is the scripted stand-in prepare.yml started on the
podman bridge; everything on the VM is what site.yml installed: the three
CLIs, their configs, the coordinator with each agent's grant.
"""

import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

# Shared with the end-to-end tests (stdlib only, so this venv can read it).
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests" / "e2e"))
from prompt_markers import PROMPT_MARKERS  # noqa: E402

testinfra_hosts = ["podman://central-mcp-molecule-kinds"]
CLI = "/opt/central-mcp/current/bin/central-mcp --token-file /etc/central-mcp/api.token --json"
SESSION = "central-mcp-agents"
AGENTS = {"A": ("claude", "backend"), "E": ("codex", "review"), "F": ("gemini", "docs")}
# Worker mode (the runtime claims, starts the CLI for the task, ends it): GW's model works 25 s in silence.
WORKERS = {"CW": ("codex", "review-worker"), "GW": ("gemini", "docs-worker")}
UNGRANTED = "get_agent_dashboard"


def cli(host, *args):
    return json.loads(host.check_output(f"{CLI} {' '.join(shlex.quote(a) for a in args)}"))


def wait(check, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout}s")
        time.sleep(1)


def test_only_the_clis_in_use_are_installed_each_in_its_version_dir(host):
    for path in ("/opt/central-mcp/codex/0.171.0/node_modules/@openai/codex/bin/codex.js",
                 "/opt/central-mcp/gemini-cli/0.61.0/node_modules/@google/gemini-cli/bundle/gemini.js"):  # fmt: skip
        assert host.file(path).exists, path
    sizes = host.check_output("du -sm /opt/central-mcp/codex/0.171.0 /opt/central-mcp/gemini-cli/0.61.0")
    print(f"\ninstall size on the VM (MB): {' '.join(sizes.split())}")


def test_every_kind_registers_with_its_own_token(host):
    def registered():
        agents = {a["name"]: a for a in cli(host, "agents")["agents"]}
        return agents if all(agents[n]["registered"] for n in AGENTS) else None

    agents = wait(registered, 120, "all three agents registered")
    assert {n: agents[n]["kind"] for n in AGENTS} == {n: kind for n, (kind, _) in AGENTS.items()}
    # The workers' runtimes register them with their heartbeats, before any CLI of theirs runs.
    for name in WORKERS:
        assert agents[name]["registered"] and agents[name]["runtime"]["activity"] == "idle", agents[name]


def test_each_kind_claims_and_completes_its_task_with_no_prompt(host):
    ids = {name: cli(host, "task", "add", f"molecule kinds: a task for {name}", "--role", role)["id"]
           for name, (_, role) in AGENTS.items()}  # fmt: skip

    def done():
        tasks = {name: cli(host, "task", "show", str(i)) for name, i in ids.items()}
        return tasks if all(t["state"] == "COMPLETE" for t in tasks.values()) else None

    tasks = wait(done, 180, "every agent's task COMPLETE")
    for name, task in tasks.items():
        assert task["claimed_by"] == name
        assert [e["kind"] for e in task["events"]] == ["created", "claimed", "progress", "completed"]
    for name in AGENTS:
        screen = host.check_output(f"runuser -u agent -- tmux capture-pane -p -J -S -300 -t ={SESSION}:{name}")
        assert not [m for m in PROMPT_MARKERS if m in screen], f"window {name} stopped at a prompt:\n{screen}"


def test_workers_of_codex_and_gemini_complete_their_tasks_across_a_coordinator_restart(host):
    ids = {name: cli(host, "task", "add", f"molecule kinds: a worker task for {name}", "--role", role)["id"]
           for name, (_, role) in WORKERS.items()}  # fmt: skip
    wait(lambda: cli(host, "task", "show", str(ids["GW"]))["claimed_by"] == "GW", 60, "GW's runtime claims its task")
    time.sleep(10)  # GW's CLI is up, its model at work for 25 s more
    assert host.run("systemctl restart central-mcp.service").rc == 0
    wait(lambda: host.run(f"{CLI} status").rc == 0, 60, "the coordinator answers again")
    # An upgrade of the runtime restarts its unit: GW's CLI is tmux's child and goes on, the new runtime with it.
    cli_before = host.check_output(f"runuser -u agent -- tmux display -p -t ={SESSION}:=GW '#{{pane_pid}}'")
    assert host.run("systemctl restart central-mcp-runtime.service").rc == 0
    assert host.check_output(f"runuser -u agent -- tmux display -p -t ={SESSION}:=GW '#{{pane_pid}}'") == cli_before

    def done():
        tasks = {name: cli(host, "task", "show", str(i)) for name, i in ids.items()}
        return tasks if all(t["state"] == "COMPLETE" for t in tasks.values()) else None

    tasks = wait(done, 180, "every worker's task COMPLETE")
    for name, task in tasks.items():
        assert task["claimed_by"] == name and task["attempts"] == 0, task
        assert [e["kind"] for e in task["events"]] == ["created", "claimed", "progress", "completed"], task["events"]

    def idle_again():
        agents = {a["name"]: a for a in cli(host, "agents")["agents"]}
        return all((agents[n].get("runtime") or {}).get("activity") == "idle" for n in WORKERS)

    wait(idle_again, 60, "both workers end their CLI and wait again")
    for name in WORKERS:
        screen = host.check_output(f"runuser -u agent -- tmux capture-pane -p -J -S -300 -t ={SESSION}:{name}")
        assert not [m for m in PROMPT_MARKERS if m in screen], f"window {name} stopped at a prompt:\n{screen}"
        assert f"task #{ids[name]} COMPLETE; waiting for the next task" in screen, screen
    log = host.check_output("journalctl -u central-mcp-runtime.service --no-pager -o cat")
    assert f"task #{ids['GW']}: its CLI (pid" in log and "started before this runtime; carrying on" in log, log


def test_a_tool_outside_the_grant_is_refused_by_the_coordinator(host):
    def refused():
        log = host.check_output("journalctl -u central-mcp.service --no-pager -o cat")
        found = {n for n in AGENTS if f"agent {n} called {UNGRANTED}, which its grant does not include" in log}
        return found == set(AGENTS)

    wait(refused, 60, f"the coordinator refused {UNGRANTED} to A, E and F")


def test_agent_status_reports_each_kind_and_its_cli_process(host):
    out = host.check_output(
        f"runuser -u agent -- python3 /usr/local/libexec/central-mcp/agent_probe.py --session {SESSION} --json"
    )
    rows = {r["name"]: r for r in json.loads(out)["agents"]}
    assert {n: rows[n]["kind"] for n in AGENTS} == {n: kind for n, (kind, _) in AGENTS.items()}
    for name in AGENTS:
        assert rows[name]["alive"] and rows[name]["cli_pid"], rows[name]
    # Codex's native binary runs under its Node wrapper: the CLI process is not the window's agent process.
    assert rows["E"]["cli_pid"] != rows["E"]["pid"]
    print("\nRSS idle (MB): " + ", ".join(f"{n} {rows[n]['rss_bytes'] / 2**20:.0f}" for n in AGENTS))


def git_server(*argv):
    """A command on the team's git server (prepare.yml's container), as a reviewer reads it."""
    done = subprocess.run(["podman", "exec", "--user", "git", "central-mcp-molecule-git", *argv],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return done.stdout


def test_every_agent_has_a_worktree_of_the_repository_and_only_its_unit_gets_the_key(host):
    key = host.file("/etc/central-mcp/repos/app.key")
    assert (key.user, key.mode) == ("root", 0o600)
    assert host.file("/var/lib/central-mcp/repos/app.git/HEAD").exists
    units = json.loads(host.check_output("cat /etc/central-mcp/agent-units.json"))["agents"]
    for name in [*AGENTS, *WORKERS, "RW"]:
        work = f"/home/agent/workspaces/{name}"
        assert host.file(f"{work}/README.md").content_string == "# app\n"
        assert (
            "/var/lib/central-mcp/repos/app.git/objects"
            in host.file(f"{work}/.git/objects/info/alternates").content_string
        )
        assert host.file(work).user == f"agent-{name.lower()}"
        assert "LoadCredential=repo_key:/etc/central-mcp/repos/app.key" in units[name]["properties"]
    # Another agent's user cannot read the key, nor this agent's worktree.
    assert host.run("runuser -u agent-a -- cat /etc/central-mcp/repos/app.key").rc != 0
    assert host.run("runuser -u agent-a -- ls /home/agent/workspaces/RW").rc != 0


def test_a_workers_task_branch_is_pushed_with_its_identity_and_nothing_else_changes(host):
    main_before = git_server("git", "--git-dir", "/home/git/app.git", "rev-parse", "main").strip()
    task_id = cli(host, "task", "add", "Change the app", "--role", "repo-worker")["id"]
    branch = f"central-mcp/{task_id}-change-the-app"

    def recorded():
        task = cli(host, "task", "show", str(task_id))
        return task if task["state"] == "COMPLETE" and (task.get("branch") or {}).get("pushed") else None

    task = wait(recorded, 180, "RW's task COMPLETE and its branch pushed")
    assert task["branch"]["branch"] == branch and task["branch"]["files_changed"] == 1, task["branch"]
    heads = dict(
        line.split()[::-1]
        for line in git_server(
            "git", "--git-dir", "/home/git/app.git", "for-each-ref", "--format=%(objectname) %(refname:short)"
        ).splitlines()
    )
    assert heads == {"main": main_before, branch: task["branch"]["head"]}  # the base untouched, one new branch
    shown = git_server("git", "--git-dir", "/home/git/app.git", "log", "-1", "--format=%an <%ae>|%s", branch)
    assert shown.strip() == f"Repo Worker <rw@molecule.invalid>|Task {task_id}: change"

    # The coordinator (its unit's credential, readable by root only) asked the forge for the pull request, over
    # the network (its unit lets it out), and the task says why there is none: nothing listens there.
    forge = host.file("/etc/central-mcp/forge.json")
    assert (forge.user, forge.mode) == ("root", 0o600)
    assert json.loads(host.check_output("cat /etc/central-mcp/forge.json"))["projects"] == {"app": "team/app"}
    unit = host.file("/etc/systemd/system/central-mcp.service").content_string
    assert "LoadCredential=forge:/etc/central-mcp/forge.json" in unit and "IPAddressDeny" not in unit
    failed = wait(lambda: (b := cli(host, "task", "show", str(task_id))["branch"])["pr_state"] == "failed" and b,
                  90, "the pull request's failure recorded")  # fmt: skip
    # refused by the server's address (nothing listens there): the unit's network filter let the call out
    why = failed["pr_error"]
    assert why.startswith("GitHub unreachable: ") and "[Errno 111]" in why and failed["pushed"], failed
