# SPDX-License-Identifier: Apache-2.0
"""Verify the coordinator on the converged VM container, with the real agents.

Runs before test_launcher.py (file order): the agents' Claude Code must
register with the coordinator on its own, with no one typing "connect".
"""

import json
import os
import sys
import time
from pathlib import Path

import pytest
import testinfra.utils.ansible_runner

sys.path.insert(0, str(Path(__file__).resolve().parent))
from call_probe import assert_no_call_refused_or_failed, probing  # noqa: E402

INVENTORY = str(Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent)
RUNNER = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY)
testinfra_hosts = [f"podman://{name}" for name in RUNNER.get_hosts("coordinator")]
AGENTS = ["A", "B", "C", "D"]
FETCH = """
import json, sys, urllib.request
request = urllib.request.Request(sys.argv[1], headers={"Authorization": "Bearer " + sys.argv[2]})
try:
    with urllib.request.urlopen(request, timeout=5) as answer:
        print(json.dumps({"status": answer.status, "body": json.load(answer)}))
except urllib.error.HTTPError as error:
    print(json.dumps({"status": error.code, "body": error.read().decode()}))
except OSError as error:  # not listening (yet): a restart in progress
    print(json.dumps({"status": 0, "body": str(error)}))
"""


def api(host, path, token=None):
    """GET the coordinator's HTTP API from inside the VM (it listens on loopback only)."""
    if token is None:
        token = RUNNER.get_variables(host.backend.get_hostname())["coordinator_api_token"]
    out = host.check_output(f"python3 -c '{FETCH}' http://127.0.0.1:3000{path} {token}")
    return json.loads(out)


def registered(host):
    return {a["name"]: a for a in api(host, "/api/agents")["body"]["agents"] if a["registered"]}


def wait_registered(host, names, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = registered(host)
        if set(names) <= set(found):
            return found
        time.sleep(1)
    pytest.fail(f"registered after {timeout}s: {sorted(found)}, expected {names}")


def test_service_is_active_enabled_and_hardened(host):
    unit = host.service("central-mcp")
    assert unit.is_running and unit.is_enabled
    score = host.check_output("systemd-analyze security central-mcp.service --no-pager | tail -1")
    assert "OK" in score or "SAFE" in score, score
    assert host.file("/var/lib/central-mcp").mode == 0o700
    assert host.file("/etc/central-mcp/coordinator.env").mode == 0o600


def test_health_is_good(host):
    health = api(host, "/health", token="none")
    assert health["status"] == 200, health
    assert health["body"]["status"] in ("ok", "degraded")
    assert health["body"]["database"]["ok"] is True


def test_rest_api_needs_the_token(host):
    assert api(host, "/api/agents", token="wrong-token")["status"] == 401


def test_every_agent_registers_within_30_seconds(host):
    wait_registered(host, AGENTS, timeout=30)


def test_claude_mcp_list_shows_the_coordinator_connected(host):
    for name in AGENTS:
        out = host.check_output(
            f"cd /home/agent/workspaces/{name} && runuser -u agent-{name.lower()} -- env "
            f"HOME=/home/agent/.central-mcp/{name} CLAUDE_CONFIG_DIR=/home/agent/.central-mcp/{name} "
            "timeout 60 /usr/local/bin/claude mcp list"
        )
        line = next((line for line in out.splitlines() if line.startswith("central-mcp")), "")
        assert "Connected" in line and "✔" in line, out


def test_a_restart_refuses_no_call_and_keeps_the_agents_windows(host):
    """central-mcp.socket holds the port while the service restarts: no connection is refused, a call made
    meanwhile waits for the new process, and one the old process had taken when the stop began is answered."""
    panes = host.check_output(
        "runuser -u agent -- tmux list-panes -s -t =central-mcp-agents -F '#{window_name} #{pane_pid}'"
    )
    assert host.service("central-mcp.socket").is_running and host.service("central-mcp.socket").is_enabled
    token = RUNNER.get_variables(host.backend.get_hostname())["launcher_agent_tokens"]["A"]
    with probing(host, token) as seen:
        restart_s = host.check_output(
            "python3 -c 'import subprocess, time; started = time.monotonic(); "
            'subprocess.run(["systemctl", "restart", "central-mcp"], check=True); '
            "print(round(time.monotonic() - started, 2))'"
        )
    print(f"\nduring systemctl restart central-mcp ({restart_s} s): {seen}")
    assert_no_call_refused_or_failed(seen)
    after = host.check_output(
        "runuser -u agent -- tmux list-panes -s -t =central-mcp-agents -F '#{window_name} #{pane_pid}'"
    )
    assert after == panes
    agents = {a["name"]: a for a in api(host, "/api/agents")["body"]["agents"]}
    assert set(AGENTS) <= set(agents), agents  # the data survived the restart


DASHBOARD_LOGIN = """
import http.cookiejar, json, sys, urllib.parse, urllib.request
jar = http.cookiejar.CookieJar()
opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
base = "http://127.0.0.1:8000"
try:
    opener.open(base + "/api/state")
    print(json.dumps({"before_login": 200}))
except urllib.error.HTTPError as error:
    before = error.code
form = urllib.parse.urlencode({"token": open("/etc/central-mcp/api.token").read().strip()}).encode()
opener.open(urllib.request.Request(base + "/login", data=form, headers={"Origin": base}))
state = json.load(opener.open(base + "/api/state"))
print(json.dumps({"before_login": before, "cookies": [c.name for c in jar], "state": state}))
"""


def test_dashboard_needs_a_login_and_shows_every_agent_with_a_live_terminal(host):
    assert host.socket("tcp://127.0.0.1:8000").is_listening
    relay = host.file("/run/central-mcp-relay/relay.sock")
    assert relay.is_socket and relay.mode == 0o660 and relay.user == "agent" and relay.group == "central-mcp"
    out = json.loads(host.check_output(f"python3 -c '{DASHBOARD_LOGIN}'"))
    assert out["before_login"] == 401
    agents = {agent["name"]: agent for agent in out["state"]["agents"]}
    assert set(AGENTS) <= set(agents)
    assert all(agents[name]["terminal"] for name in AGENTS), agents
