# SPDX-License-Identifier: Apache-2.0
"""One agent gone wrong stays one agent: what agent A's own user may not reach on the converged VM.

Each attempt runs as agent A's Unix user (agent-a), as a prompt-injected
agent would, and each has a positive control (the owner, or the console
user, can), so a test cannot pass because the thing it looks for is not
there at all. The wider hostile-agent suite (floods, big bodies, a status
run under attack) is tests/reliability/test_hostile_agent.py.
"""

import shlex

from test_launcher import INVENTORY, SESSION, agent_pid, run_playbook, testinfra_hosts, windows  # noqa: F401

ATTACKER, VICTIM = "agent-a", "agent-b"


def as_user(host, user, command):
    return host.run(f"runuser -u {user} -- sh -c {shlex.quote(command)}")


def test_an_agent_reads_nothing_of_another_agent(host):
    victim_cli = agent_pid(host, dict(windows(host))["B"])
    attempts = {
        "B's env file (its token, its API keys)": "cat /etc/central-mcp/agents/B.env",
        "B's CLI settings as written": "cat /etc/central-mcp/agents/B.claude.json",
        "B's CLI home": "ls /home/agent/.central-mcp/B",
        "B's workspace": "ls /home/agent/workspaces/B",
        "the list of workspaces": "ls /home/agent/workspaces",
        "B's process environment": f"cat /proc/{victim_cli}/environ",
        "a signal to B's CLI": f"kill -0 {victim_cli}",
    }
    for what, command in attempts.items():
        done = as_user(host, ATTACKER, command)
        assert done.rc != 0, f"agent A could read or reach {what}: {done.stdout[:200]}"
    # B itself (or root, for its CLI's process, which runs in a user namespace of its own) can: what A was
    # refused is there.
    for command in ("cat /etc/central-mcp/agents/B.claude.json", "ls /home/agent/.central-mcp/B"):
        assert as_user(host, VICTIM, command).rc == 0, command
    assert host.run(f"cat /proc/{victim_cli}/environ").rc == 0


def test_an_agent_cannot_reach_the_console_users_session_relay_or_sudo(host):
    uid = host.check_output("id -u agent")
    attempts = {
        "the tmux session (the Control window, every agent's window)": f"tmux -S /tmp/tmux-{uid}/default ls",
        "the pane relay's socket": 'python3 -c "import socket; socket.socket(socket.AF_UNIX)'
        ".connect('/run/central-mcp-relay/relay.sock')\"",
        "the console user's home": "touch /home/agent/.planted",
        "sudo": "sudo -n true",
        "another agent's unit through sudo": "sudo -n /usr/local/libexec/central-mcp/agent-unit B -- --help",
    }
    for what, command in attempts.items():
        assert as_user(host, ATTACKER, command).rc != 0, f"agent A could reach {what}"
    assert as_user(host, "agent", f"tmux -S /tmp/tmux-{uid}/default has-session -t ={SESSION}").rc == 0


def test_each_agent_runs_in_a_sandboxed_unit_of_its_own_with_its_own_memory_limit(host):
    """agent-unit started each CLI in central-mcp-agent-<name>.service: its user, the agents' slice, a memory
    ceiling of its own, no privileges; and in its mount namespace no other agent's home or workspace exists."""
    # The sizing rule's share (launcher_agent_memory_max: auto): the VM's memory less 500 MB for the
    # coordinator and 500 MB for each of the three other agents.
    memory_mb = int(host.check_output("awk '/^MemTotal:/ {print $2}' /proc/meminfo")) // 1024
    for name in ("A", "B"):
        unit = f"central-mcp-agent-{name.lower()}.service"
        shown = dict(
            line.split("=", 1)
            for line in host.check_output(
                f"systemctl show {unit} -p ActiveState -p User -p Slice -p MemoryMax -p TasksMax -p NoNewPrivileges"
                " -p PartOf -p MainPID"
            ).splitlines()
        )
        assert shown["ActiveState"] == "active", shown
        assert shown["User"] == f"agent-{name.lower()}"
        assert shown["Slice"] == "central-mcp-agents.slice"
        assert shown["PartOf"] == "central-mcp-agents.service"
        assert shown["NoNewPrivileges"] == "yes"
        assert shown["MemoryMax"] == str((memory_mb - 500 - 3 * 500) * 2**20), shown["MemoryMax"]
        assert shown["TasksMax"] == "1024"
        # Its view of the filesystem, through /proc/PID/root.
        root = f"/proc/{shown['MainPID']}/root"
        other = "B" if name == "A" else "A"
        for who, there in ((name, True), (other, False)):
            for path in (f"/home/agent/.central-mcp/{who}", f"/home/agent/workspaces/{who}"):
                assert host.run(f"test -e {path}").rc == 0, f"{path} is not there at all"
                seen = host.run(f"test -e {root}{path}").rc == 0
                assert seen == there, f"agent {name} {'does not see' if there else 'sees'} {path}"
    slice_max = host.check_output("systemctl show central-mcp-agents.slice -p MemoryMax --value")
    assert slice_max.isdigit(), slice_max


METADATA_CONNECT = """
import socket
try:
    socket.create_connection(("169.254.169.254", 80), timeout=3).close()
    print("connected")
except OSError as exc:
    print(type(exc).__name__)
"""


def metadata_refusals(host):
    rules = host.check_output("nft list table inet central_mcp_agents")
    line = next(line for line in rules.splitlines() if "ip daddr 169.254.169.254" in line)
    return int(line.split("packets")[1].split()[0])


def test_the_metadata_server_is_refused_to_agents_and_only_to_them(host):
    before = metadata_refusals(host)
    attacker = as_user(host, ATTACKER, f"python3 -c {shlex.quote(METADATA_CONNECT)}")
    assert attacker.stdout.strip() == "ConnectionRefusedError", attacker.stdout
    assert metadata_refusals(host) > before, "the refusal must be the agents' rule, not the network"
    counted = metadata_refusals(host)
    as_user(host, "agent", f"python3 -c {shlex.quote(METADATA_CONNECT)}")
    assert metadata_refusals(host) == counted, "the console user (and root) keep the metadata server"
    assert host.service("central-mcp-agents-firewall").is_enabled


CAPTURE = """
import json, os, sys
with open("/tmp/captured-by-agent-a", "a") as out:
    out.write(json.dumps({"argv": sys.argv, "env": dict(os.environ)}) + "\\n")
"""


def test_a_status_run_never_loads_an_agents_python_startup_file(host):
    """Plant usercustomize.py where Python loads it for agent A, then run the status playbook, which carries
    the coordinator's API token: it runs as the console user and never loads it."""
    site = as_user(host, ATTACKER, "python3 -m site --user-site").stdout.strip()
    planted = as_user(host, ATTACKER, f"mkdir -p {site} && cat > {site}/usercustomize.py <<'EOF'\n{CAPTURE}\nEOF")
    assert planted.rc == 0, planted.stderr
    try:
        as_user(host, ATTACKER, "python3 -c pass")  # the control: it does capture A's own runs
        assert host.file("/tmp/captured-by-agent-a").exists, "the planted file is not loaded at all"
        host.run("rm -f /tmp/captured-by-agent-a")
        run = run_playbook(INVENTORY, playbook="playbooks/status.yml")
        assert run.rc == 0, run.failed
        assert not host.file("/tmp/captured-by-agent-a").exists, "a status run loaded agent A's usercustomize.py"
    finally:
        host.run(f"rm -f {site}/usercustomize.py /tmp/captured-by-agent-a")
