# SPDX-License-Identifier: Apache-2.0
"""A hostile agent: agent A's own Unix user tries every attack of issue 20 on the converged VM.

The attacks themselves run inside the VM (hostile_agent.py, as agent-a);
this side checks that every one was blocked, that the coordinator stayed
healthy, and that a status run (which carries the coordinator's API token)
never loads Python code agent A planted. The figures go to the README's
reliability table.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess

from conftest import SECRETS, VM, agent_pids, health, note, record, sh

ATTACKER, VICTIM = "A", "B"


def as_attacker(command: str, check: bool = False) -> str:
    return sh(f"runuser -u agent-{ATTACKER.lower()} -- sh -c {shlex.quote(command)}", check=check)


def test_every_attack_of_a_hostile_agent_is_blocked(rel_vm):
    spec = {
        "victim": VICTIM,
        "victim_user": f"agent-{VICTIM.lower()}",
        "victim_pid": agent_pids()[VICTIM],
        "console_uid": int(sh("id -u agent")),
        "token": SECRETS["launcher_agent_tokens"][ATTACKER],
        "coordinator": "http://127.0.0.1:3000",
        "dashboard": "http://127.0.0.1:8000",
        "relay_socket": "/run/central-mcp-relay/relay.sock",
    }
    done = subprocess.run(
        ["podman", "exec", "-i", VM, "runuser", "-u", f"agent-{ATTACKER.lower()}", "--",
         "python3", "/usr/local/sbin/rel_hostile_agent.py"],
        input=json.dumps(spec), capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    attempts = report["attempts"]
    through = [f"{a['attack']} ({a['detail']})" for a in attempts if not a["blocked"]]
    record(
        "hostile",
        f"{len(attempts) - len(through)} / {len(attempts)} blocked" + (f"; through: {through}" if through else ""),
    )
    note("Hostile agent, each attempt: " + "; ".join(f"{a['attack']}: {a['detail']}" for a in attempts))
    assert through == []
    assert report["notes"]["coordinator_health_after"] == 200 and health() == 200
    # The control of the screen attempt: B's screen has text to read (people see it through /api), so the
    # answer A got without it was withheld, not empty.
    seen = people_see_screen(VICTIM)
    assert any(line.strip() for line in seen), f"{VICTIM}'s screen as people see it: {seen!r}: nothing to withhold"


def people_see_screen(name: str) -> list:
    """``name``'s screen as /api (the API token: people, the dashboard) shows it."""
    agents = json.loads(sh("python3 /usr/local/sbin/rel_vm_api.py agents"))["agents"]
    return (next(a for a in agents if a["name"] == name)["runtime"] or {}).get("screen") or []


CAPTURE = """
import json, os, sys
with open("/tmp/hostile-capture", "a") as out:
    out.write(json.dumps({"argv": sys.argv, "env": dict(os.environ)}) + "\\n")
"""


def test_a_status_run_with_the_api_token_never_loads_what_an_agent_planted(rel_vm):
    site = as_attacker("python3 -m site --user-site", check=True).strip()
    as_attacker(f"mkdir -p {site} && printf '%s' {shlex.quote(CAPTURE)} > {site}/usercustomize.py", check=True)
    try:
        as_attacker("python3 -c pass")  # the control: A's own Python does load it
        assert sh("test -s /tmp/hostile-capture && echo yes", check=False).strip() == "yes"
        sh("rm -f /tmp/hostile-capture")
        run = rel_vm.run(playbook="playbooks/status.yml")
        assert run.rc == 0, run.failed
        captured = sh("cat /tmp/hostile-capture 2>/dev/null", check=False)
        assert captured == "", "a status run loaded agent A's usercustomize.py"
        assert SECRETS["coordinator_api_token"] not in captured
    finally:
        sh(f"rm -f {site}/usercustomize.py /tmp/hostile-capture", check=False)


def exposure(unit: str) -> float:
    out = sh(f"systemd-analyze security {unit} --no-pager", check=False)
    found = re.search(r"Overall exposure level for [^:]+: ([0-9.]+)", out)
    assert found, out[-500:]
    return float(found[1])


def test_exposure_of_the_launchers_units_is_measured():
    """Printed for the closing note and the README: the relay, agent A's own unit (where its CLI runs) and the
    agents' session (tmux and the wrappers, no agent: it must start sudo, so no NoNewPrivileges)."""
    units = ("central-mcp-relay", f"central-mcp-agent-{ATTACKER.lower()}", "central-mcp-agents")
    figures = {unit: exposure(f"{unit}.service") for unit in units}
    record("exposure_launcher", ", ".join(f"{unit} {value}" for unit, value in figures.items()))
    assert all(0 < value <= 10 for value in figures.values()), figures
    assert figures[f"central-mcp-agent-{ATTACKER.lower()}"] <= 5.0, figures  # the goal for the agents
