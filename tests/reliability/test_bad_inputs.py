# SPDX-License-Identifier: Apache-2.0
"""Hostile or wrong inventory values fail before any change, naming the value.

Every case of bad_inputs.yml runs the whole site.yml against the converged VM
(the real preflights, argument specs and filters, through ansible-runner)
with its values as extra vars. A case passes when the run fails, no task
reports a change, a failed task's message contains the case's `expect`, and
the host's state (tmux panes, every file under /etc/central-mcp, the units,
the services' main PIDs, the database's row counts) is byte for byte what it
was. Failing runs are short, so they run two at a time; the host state is
compared after every four, which still names the four that changed it.
Values only the launcher reads run with `--tags agents` (the coordinator's
tasks are skipped; every role's checks are tagged `always` and still run).
Cases marked `xfail` are findings (accepted today); they run with a tag no
task has, so only the checks run and an accepted value cannot damage the
host the other tests share.
"""

from __future__ import annotations

import copy
import re
import string
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml
from conftest import AGENTS, COORD_PY, DB, FLEET, HERE, REPO, SESSION, VM, note, record, sh

sys.path.insert(0, str(REPO))
from tests.gce_emulator import start as start_emulator  # noqa: E402

CASES = yaml.safe_load((HERE / "bad_inputs.yml").read_text())["cases"]
HUGE = re.compile(r"^\{\{ '(.)' \* (\d+) \}\}$")  # "{{ 'x' * N }}": N copies of x, made here (not by Jinja)
GCE = {"gce_project": "rel-project", "gce_zone": "us-central1-a", "gce_instance": VM}
WORKERS = 2  # the machine is shared: two short runs at a time
BATCH = 4  # cases between two snapshots of the host
CHECKS_ONLY = "reliability-checks-only"  # no task has it: only the always-tagged checks run
SNAPSHOT = f"""
runuser -u agent -- tmux list-panes -s -t ={SESSION} -F '#{{window_name}} #{{pane_pid}}'
find /etc/central-mcp /etc/systemd/system/central-mcp.service /etc/systemd/system/central-mcp-agents.service \
  -type f -print0 | sort -z | xargs -0 sha256sum
stat -c '%n %a %U' /etc/central-mcp /var/lib/central-mcp /home/agent /etc /
systemctl show -p MainPID -p ActiveState central-mcp.service central-mcp-agents.service
{COORD_PY} -c "import sqlite3; c = sqlite3.connect('file:{DB}?mode=ro', uri=True)
print([(t, c.execute(f'select count(*) from {{t}}').fetchone()[0]) for t in ('agents', 'tasks', 'notes')])"
"""


def host_state() -> str:
    return sh(SNAPSHOT)


def expand(value):
    """Make the huge strings the YAML describes as "{{ 'x' * N }}"."""
    if isinstance(value, str) and (m := HUGE.match(value)):
        return m[1] * int(m[2])
    if isinstance(value, dict):
        return {expand(k): expand(v) for k, v in value.items()}
    if isinstance(value, list):
        return [expand(v) for v in value]
    return value


def agent_names(count: int) -> list[str]:
    """A..Z, then AA, AB, ...: 27 agents are one more than the letters."""
    letters = string.ascii_uppercase
    return [letters[i] if i < 26 else letters[i // 26 - 1] + letters[i % 26] for i in range(count)]


def extravars(case: dict, emulator_endpoint: str) -> dict:
    extra = expand(copy.deepcopy(case.get("vars") or {}))
    if "agent" in case:
        extra["central_mcp_agents"] = FLEET + [expand(case["agent"])]
    if "agents_count" in extra:
        extra["central_mcp_agents"] = [{"name": n, "role": "backend"} for n in agent_names(extra.pop("agents_count"))]
    if case.get("gce"):
        extra = {
            **GCE,
            "vm_upgrade_auth_kind": "accesstoken",
            "vm_upgrade_access_token": "rel-emulator-token",
            "vm_upgrade_api_endpoint": emulator_endpoint,
            **extra,
        }
    return extra


def rejected_cleanly(case: dict, run, state_changed: bool) -> bool:
    """Failed, changed nothing, and said which value was wrong."""
    named = any(case["expect"] in message for _, _, message in run.failed)
    return run.rc != 0 and not run.changed and named and not state_changed


@pytest.fixture(scope="module")
def emulator():
    """The Compute API the gce cases talk to: this VM as e2-standard-2 (resized only if a case were accepted)."""
    with start_emulator() as emu:
        emu.add_instance(GCE["gce_project"], GCE["gce_zone"], VM, "e2-standard-2", disk_size_gb=20)
        yield emu


@pytest.fixture(scope="module")
def outcomes(rel_vm, emulator):
    """Run every case once (two at a time); {id: (run, host state changed?, state after)}."""
    before = host_state()
    started = time.monotonic()
    results: dict[str, tuple] = {}

    def one(case):
        tags = CHECKS_ONLY if case.get("xfail") else case.get("tags")
        return case["id"], rel_vm.run(extravars=extravars(case, emulator.api_endpoint), tags=tags)

    tried = [c for c in CASES if not c.get("changes")]  # those would alter the host the others compare
    with ThreadPoolExecutor(WORKERS) as pool:
        for i in range(0, len(tried), BATCH):
            batch = list(pool.map(one, tried[i : i + BATCH]))
            after = host_state()
            for case_id, run in batch:
                results[case_id] = (run, after != before, after)
            if after != before:  # blame this batch, then compare the next against the new state
                before = after
    clean = [c["id"] for c in tried if rejected_cleanly(c, *results[c["id"]][:2])]
    record("bad_inputs", f"{len(CASES)} cases, {len(tried)} tried / {len(clean)} rejected before any change")
    record("bad_inputs_s", round(time.monotonic() - started))
    findings = [c["id"] for c in CASES if c["id"] not in clean]
    note(f"Hostile inputs not rejected cleanly (findings, xfail in bad_inputs.yml): {', '.join(findings)}")
    emulator_vm = emulator.instance(GCE["gce_project"], GCE["gce_zone"], VM)
    results["__emulator__"] = (emulator_vm["machineType"].rsplit("/", 1)[-1], emulator_vm["status"])
    return results


def test_there_are_at_least_40_cases():
    ids = [c["id"] for c in CASES]
    assert len(ids) >= 40 and len(set(ids)) == len(ids)


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(
            c, id=c["id"], marks=[pytest.mark.xfail(reason=c.get("xfail"), run=not c.get("changes"))] * ("xfail" in c)
        )
        for c in CASES
    ],
)
def test_bad_value_fails_before_any_change(outcomes, case):
    run, state_changed, _ = outcomes[case["id"]]
    messages = [message for _, _, message in run.failed]
    assert run.rc != 0, f"accepted: {case['id']} (rc 0)"
    assert run.changed == [], f"changed before failing: {run.changed}"
    assert any(case["expect"] in message for message in messages), messages
    assert not state_changed, "the host's state changed"


def test_nothing_ran_and_the_agents_kept_running(outcomes):
    """No injected command ran, the emulated VM was not resized, and the same agent processes still run."""
    assert sh("ls /tmp/pwned 2>/dev/null || true").strip() == ""
    assert outcomes["__emulator__"] == ("e2-standard-2", "RUNNING")
    panes = sh(f"runuser -u agent -- tmux list-windows -t ={SESSION} -F '#{{window_name}}'").split()
    assert panes == ["Control", *AGENTS, "Logs"]
