# SPDX-License-Identifier: Apache-2.0
"""A coordinator release that does not become healthy is rolled back.

A copy of the project gets a coordinator that cannot start (a new release,
since its sources changed). site.yml backs up the database, switches to it,
waits for /health in vain, switches back, restarts the previous release and
fails saying so. The fleet keeps its coordinator; the agents keep running.
Before it, a configuration change restarts the coordinator. Both while an
agent's calls and /health probes run: none is refused or fails (the port
is central-mcp.socket's throughout). Runs after test_runner_awx.py (file order).
"""

import json
import os
import sys
from pathlib import Path

import ansible_runner
import testinfra.utils.ansible_runner

sys.path.insert(0, str(Path(__file__).resolve().parent))
from call_probe import assert_no_call_refused_or_failed, probing  # noqa: E402
from test_runner_awx import awx_private_data_dir  # noqa: E402

INVENTORY = Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent
RUNNER = testinfra.utils.ansible_runner.AnsibleRunner(str(INVENTORY))
testinfra_hosts = [f"podman://{name}" for name in RUNNER.get_hosts("coordinator")]
TOKEN = RUNNER.get_variables(RUNNER.get_hosts("coordinator")[0])["launcher_agent_tokens"]["A"]  # an agent's calls


def test_a_configuration_change_restarts_the_coordinator_and_refuses_no_call(host, tmp_path):
    """site.yml with a new coordinator setting: the service restarts on its held socket while agents call."""
    pid_before = host.check_output("systemctl show -P MainPID central-mcp")
    root = awx_private_data_dir(tmp_path / "job")
    (root / "env" / "extravars").write_text(json.dumps({"coordinator_retention_days": 31}))
    with probing(host, TOKEN) as seen:
        result = ansible_runner.run(
            private_data_dir=str(root), playbook="site.yml", cmdline="--ask-vault-pass --tags coordinator", quiet=True
        )
    assert result.rc == 0, result.stdout.read()[-3000:]
    print(f"\nduring a configuration change run of site.yml: {seen}")
    assert "CENTRAL_MCP_RETENTION_DAYS=31" in host.file("/etc/central-mcp/coordinator.env").content_string
    assert host.check_output("systemctl show -P MainPID central-mcp") != pid_before  # it did restart
    assert_no_call_refused_or_failed(seen)


def test_a_release_that_never_gets_healthy_is_rolled_back(host, tmp_path):
    live_before = host.file("/opt/central-mcp/current").linked_to
    agents_before = host.check_output("pgrep -f '^/usr/local/bin/claude' | sort")
    backups_before = len(host.file("/var/lib/central-mcp/backups").listdir())
    root = awx_private_data_dir(tmp_path / "job")
    cli = root / "project" / "coordinator" / "src" / "central_mcp" / "cli.py"
    cli.write_text('raise SystemExit("a broken release, for the rollback test")\n' + cli.read_text())
    (root / "env" / "extravars").write_text(json.dumps({"coordinator_health_timeout_s": 8}))
    with probing(host, TOKEN) as seen:  # calls wait for the broken release, then the previous one answers
        result = ansible_runner.run(
            private_data_dir=str(root), playbook="site.yml", cmdline="--ask-vault-pass --tags coordinator", quiet=True
        )
    print(f"\nduring an upgrade that rolls back: {seen}")
    assert result.rc != 0
    failures = [
        e["event_data"]["res"].get("msg", "")
        for e in result.events
        if e["event"] == "runner_on_failed" and not e["event_data"].get("ignore_errors")
    ]
    assert any("did not become healthy" in m and "Rolled back to" in m for m in failures), failures
    assert host.file("/opt/central-mcp/current").linked_to == live_before
    assert host.service("central-mcp").is_running
    health = host.check_output(
        "python3 -c 'import urllib.request; print(urllib.request.urlopen(\"http://127.0.0.1:3000/health\").status)'"
    )
    assert health == "200"
    assert len(host.file("/var/lib/central-mcp/backups").listdir()) > backups_before  # taken before the switch
    assert host.check_output("pgrep -f '^/usr/local/bin/claude' | sort") == agents_before
    assert_no_call_refused_or_failed(seen)
