# SPDX-License-Identifier: Apache-2.0
"""Verify the launcher on the converged VM container.

Tests run in file order: the later ones restart the unit, reboot the
container and add agent E, each checking that the agents come back or keep
running.
"""

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
import testinfra.utils.ansible_runner

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests" / "integration"))
from playbook_run import run_playbook  # noqa: E402

# The inventory directory: Molecule keeps host_vars beside the inventory file.
INVENTORY = str(Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent)
RUNNER = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY)
# Straight `podman exec` (much faster than one Ansible run per command).
testinfra_hosts = [f"podman://{name}" for name in RUNNER.get_hosts("agents")]
SESSION = "central-mcp-agents"
AGENTS = ["A", "B", "C", "D"]
FLEET = ["Control", *AGENTS, "Logs"]  # the windows, in order


def host_vars(host):
    return RUNNER.get_variables(host.backend.get_hostname())


def secrets(host):
    hv = host_vars(host)
    found = [hv["launcher_anthropic_api_key"], hv["coordinator_api_token"], *hv["launcher_agent_tokens"].values()]
    for agent in hv["central_mcp_agents"]:
        found += [v for k, v in (agent.get("env") or {}).items() if "TOKEN" in k or "KEY" in k]
    return found


def tmux(host, *args):
    cmd = host.run("runuser -u agent -- tmux " + " ".join(shlex.quote(a) for a in args))
    assert cmd.rc == 0, cmd.stderr
    return cmd.stdout


def windows(host):
    """[(name, pane_pid)] in window order."""
    out = tmux(host, "list-windows", "-t", f"={SESSION}", "-F", "#{window_name} #{pane_pid}")
    return [(name, int(pid)) for name, pid in (line.split() for line in out.splitlines())]


def agent_pid(host, pane_pid):
    """The agent CLI process: below the window's agent-run wrapper run sudo, agent-unit and systemd-run (root's),
    which asks systemd for the agent's own unit; the CLI is that unit's main process, its own user's."""
    pid = pane_pid
    while True:
        argv = host.run(f"tr '\\0' '\\n' < /proc/{pid}/cmdline").stdout.splitlines()
        unit = next((a.partition("=")[2] for a in argv if a.startswith("--unit=")), None)
        if argv and argv[0].endswith("systemd-run") and unit:
            main = host.run(f"systemctl show --property MainPID --value {unit}").stdout.strip()
            return (
                int(main) if main.isdigit() and int(main) and host.process.get(pid=int(main)).user != "root" else None
            )
        out = host.run(f"cat /proc/{pid}/task/{pid}/children").stdout.split()
        if not out:
            return None
        pid = int(out[0])
        if host.process.get(pid=pid).user != "root":
            return pid


def proc_list(host, pid, name):
    """A NUL-separated /proc file of an agent process, read as root (its own user may not: its CLI runs in a
    user namespace of its own)."""
    out = host.check_output(f"tr '\\0' '\\n' < /proc/{pid}/{name}")
    return out.splitlines()


def started(host, pid):
    """When a process started (clock ticks since boot): with its pid, what tells a new process from an old one."""
    stat = host.run(f"cat /proc/{pid}/stat")
    return int(stat.stdout.rsplit(")", 1)[1].split()[19]) if stat.rc == 0 else None


def wait_for_fleet(host, names, timeout=90, replacing=None):
    """Wait until the windows are ``names`` and each agent's CLI runs; {agent: (pane pid, its start time)}.

    The pane's process is the window's agent-run wrapper, which only a new window replaces (it restarts
    the CLI itself). With ``replacing`` (such a dict from before a restart), wait until every agent's
    window runs a new one.
    """
    deadline = time.monotonic() + timeout
    found = {}
    while time.monotonic() < deadline:
        cmd = host.run(f"runuser -u agent -- tmux list-windows -t ={SESSION} -F '#{{window_name}} #{{pane_pid}}'")
        if cmd.rc == 0:
            current = [line.split() for line in cmd.stdout.splitlines()]
            found = {}
            for name, pane in current:
                if name not in ("Control", "Logs"):
                    start = started(host, pane) if agent_pid(host, int(pane)) else None
                    found[name] = (int(pane), start) if start else None
            if (
                [n for n, _ in current] == names
                and all(found.values())
                and not (replacing and any(found.get(n) == old for n, old in replacing.items()))
            ):
                return found
        time.sleep(1)
    pytest.fail(f"the fleet did not come back within {timeout}s: {cmd.stdout or cmd.stderr}; agents {found}")


def test_unit_is_active_and_enabled(host):
    unit = host.service("central-mcp-agents")
    assert unit.is_running
    assert unit.is_enabled


def test_windows_are_control_agents_logs_in_order(host):
    assert [name for name, _ in windows(host)] == ["Control", *AGENTS, "Logs"]


def test_each_agent_runs_claude_as_agent_with_its_env(host):
    hv = host_vars(host)
    by_name = {a["name"]: a for a in hv["central_mcp_agents"]}
    panes = dict(windows(host))
    for name in AGENTS:
        pid = agent_pid(host, panes[name])
        assert pid, f"no agent process under window {name}"
        user = f"agent-{name.lower()}"
        assert host.process.get(pid=pid).user == user, "each agent runs as its own user"
        argv = proc_list(host, pid, "cmdline")
        assert argv[0] == "/usr/local/bin/claude", argv
        environ = dict(item.split("=", 1) for item in proc_list(host, pid, "environ") if "=" in item)
        assert environ["AGENT_NAME"] == name
        assert environ["AGENT_ROLE"] == by_name[name]["role"]
        assert environ["AGENT_MODEL"] == by_name[name]["model"]
        assert environ["CENTRAL_MCP_URL"] == "http://127.0.0.1:3000/mcp"
        for key, value in (by_name[name].get("env") or {}).items():
            assert environ[key] == value


def test_env_files_are_private(host):
    for name in AGENTS:
        env_file = host.file(f"/etc/central-mcp/agents/{name}.env")
        assert env_file.mode == 0o600
        assert env_file.user == "agent"
        for path in (f"/home/agent/.central-mcp/{name}", f"/home/agent/workspaces/{name}"):
            own = host.file(path)
            assert (own.user, own.group, own.mode) == (f"agent-{name.lower()}", f"agent-{name.lower()}", 0o700)


def test_claude_is_configured_to_start_unattended_with_its_own_token(host):
    hv = host_vars(host)
    for name in AGENTS:
        config = host.file(f"/home/agent/.central-mcp/{name}/.claude.json")
        data = json.loads(config.content_string)
        assert data["hasCompletedOnboarding"] is True
        assert data["projects"][f"/home/agent/workspaces/{name}"]["hasTrustDialogAccepted"] is True
        server = data["mcpServers"]["central-mcp"]
        assert server["url"] == "http://127.0.0.1:3000/mcp"
        assert server["headers"]["Authorization"] == f"Bearer {hv['launcher_agent_tokens'][name]}"
        settings = json.loads(host.file(f"/home/agent/.central-mcp/{name}/settings.json").content_string)
        assert settings["permissions"]["defaultMode"] == "dontAsk"  # never waits for an approval
        assert "mcp__central-mcp" in settings["permissions"]["allow"]
        screen = tmux(host, "capture-pane", "-p", "-t", f"={SESSION}:={name}")
        assert "Claude Code" in screen, screen


def test_no_secret_in_ps_scrollback_or_history(host):
    processes = host.run("ps -eo args").stdout
    scrollback = "".join(
        tmux(host, "capture-pane", "-p", "-S", "-", "-t", f"={SESSION}:={name}") for name, _ in windows(host)
    )
    history = host.run("cat /home/agent/.bash_history /root/.bash_history 2>/dev/null").stdout
    for secret in secrets(host):
        assert secret not in processes
        assert secret not in scrollback
        assert secret not in history


HOSTILE = [
    ({"name": "A; rm -rf /", "role": "x"}, "'A; rm -rf /'"),
    ({"name": "$(touch /tmp/pwned)", "role": "x"}, "$(touch /tmp/pwned)"),
    ({"name": "B\nC", "role": "x"}, "'B\\nC'"),
    ({"name": "A", "role": "x"}, "used twice"),
    ({"name": "E", "role": "x", "env": {"BAD-KEY": "1"}}, "'BAD-KEY'"),
    ({"name": "E", "role": "x", "unknown_key": "1"}, "unknown_key"),
]


@pytest.mark.parametrize(("entry", "needle"), HOSTILE, ids=[repr(e["name"]) for e, _ in HOSTILE])
def test_a_bad_entry_fails_before_any_change(host, entry, needle):
    before = windows(host)
    fleet = host_vars(host)["central_mcp_agents"] + [entry]
    run = run_playbook(INVENTORY, extravars={"central_mcp_agents": fleet})
    assert run.rc != 0
    assert run.changed == [], run.changed
    assert any(needle in message for _, _, message in run.failed), run.failed
    assert windows(host) == before
    assert not host.file("/tmp/pwned").exists


def test_agent_status_reports_every_agent_running(host):
    run = run_playbook(INVENTORY, playbook="playbooks/status.yml")
    assert run.rc == 0, run.failed
    (status,) = [res for _, task, res in run.results if "summary" in res]
    assert status["changed"] is False
    assert {a["name"]: a["alive"] for a in status["agents"]} == dict.fromkeys(AGENTS, True)
    assert status["summary"]["running"] == len(AGENTS) and status["summary"]["unhealthy"] == 0
    for agent in status["agents"]:
        assert agent["rss_bytes"] > 50 * 2**20, agent  # the real claude process, not its wrapper


# Each role's one files step (fleet_files), left out when its stamp shows nothing to do.
FILES_STEPS = ("Write the data and configuration directories", "Write the agents' workspaces")


def test_check_mode_on_the_converged_host_reports_nothing(host):
    run = run_playbook(INVENTORY, check=True, diff=True)
    assert run.rc == 0, run.failed
    assert run.changed == [], run.changed
    # Nothing changed since the last run: the look found both stamps intact, so neither files step ran.
    skipped = [task for _, task in run.skipped]
    assert [step for step in FILES_STEPS if not any(task.startswith(step) for task in skipped)] == [], skipped


def test_a_file_changed_by_hand_is_put_back_though_a_no_op_leaves_the_files_steps_out(host):
    """The stamp holds each path's inode, owner, mode, size and times: a change by hand, however made, shows."""
    stamps = host.file("/var/lib/central-mcp-stamps")
    assert (stamps.user, stamps.mode) == ("root", 0o700)
    for name in ("coordinator.json", "launcher.json"):
        stamp = host.file(f"{stamps.path}/{name}")
        assert (stamp.user, stamp.mode) == ("root", 0o600)
        assert not [s for s in secrets(host) if s in stamp.content_string]
    fleet_file, slice_unit = "/etc/central-mcp/coordinator-agents.json", "/etc/systemd/system/central-mcp-agents.slice"
    fleet_before = host.file(fleet_file).content_string
    # The fleet file keeps its size and mtime (a space of its indent made a tab, the same JSON): the ctime still
    # tells. Neither change restarts anything.
    edit = f"touch -r {fleet_file} /tmp/mtime && sed -i '2s/^ /\\t/' {fleet_file} && touch -r /tmp/mtime {fleet_file}"
    assert host.run(edit).rc == 0
    assert host.file(fleet_file).content_string != fleet_before
    assert host.run(f"chmod 0600 {slice_unit}").rc == 0
    before = dict(windows(host))
    run = run_playbook(INVENTORY)
    assert run.rc == 0, run.failed
    changed = [task for _, task in run.changed]
    assert [step for step in FILES_STEPS if not any(task.startswith(step) for task in changed)] == [], changed
    assert host.file(fleet_file).content_string == fleet_before
    assert host.file(slice_unit).mode == 0o644
    assert dict(windows(host)) == before  # no agent restarted


def test_agents_come_back_after_restarting_the_unit(host):
    before = wait_for_fleet(host, FLEET)
    assert host.run("systemctl restart central-mcp-agents").rc == 0
    wait_for_fleet(host, FLEET, replacing=before)


def test_agents_come_back_after_tmux_is_killed(host):
    before = wait_for_fleet(host, FLEET)
    # The server renames itself: its process name is "tmux: server" (a bare "tmux" is a client).
    killed = host.run("pkill -KILL -u agent -x 'tmux: server'")
    assert killed.rc == 0, f"no tmux server of the agent user to kill: {killed.stderr}"
    wait_for_fleet(host, FLEET, replacing=before)


def test_agents_come_back_after_the_vm_reboots(host):
    before = wait_for_fleet(host, FLEET)
    name = host.backend.get_hostname()
    subprocess.run(["podman", "restart", "--time", "20", name], check=True, capture_output=True)
    wait_for_fleet(host, FLEET, timeout=120, replacing=before)


def test_adding_agent_e_restarts_none_of_the_others(host):
    before = dict(windows(host))
    fleet = host_vars(host)["central_mcp_agents"] + [{"name": "E", "role": "review", "model": "claude-sonnet-5-5"}]
    run = run_playbook(INVENTORY, extravars={"central_mcp_agents": fleet})
    assert run.rc == 0, run.failed
    for secret in secrets(host):
        assert secret not in run.stdout
    after = dict(windows(host))
    assert list(after) == ["Control", *AGENTS, "E", "Logs"]
    assert {n: after[n] for n in AGENTS} == {n: before[n] for n in AGENTS}
    wait_for_fleet(host, ["Control", *AGENTS, "E", "Logs"])


def test_removing_agent_e_again_closes_only_e(host):
    before = dict(windows(host))
    run = run_playbook(INVENTORY)
    assert run.rc == 0, run.failed
    after = dict(windows(host))
    assert list(after) == ["Control", *AGENTS, "Logs"]
    assert {n: after[n] for n in AGENTS} == {n: before[n] for n in AGENTS}
    assert not host.file("/etc/central-mcp/agents/E.env").exists
    assert host.file("/home/agent/workspaces/E").is_directory  # work is never deleted
