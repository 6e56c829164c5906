# SPDX-License-Identifier: Apache-2.0
"""tmux_agents against a real tmux server, on a private socket per test.

The module runs through its real ``main()`` (arguments patched in the way
Ansible's own unit tests do), once through ``python -m`` with the arguments on
stdin, and the boot script through ``python3 tmux_fleet.py --spec``. What tmux
holds is always read back with plain tmux commands, not with the code under
test, so a wrong reading and a wrong writing cannot cancel out.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml
from ansible.module_utils.testing import patch_module_args
from ansible_collections.central_mcp.agents.plugins.module_utils import tmux_fleet as tf
from ansible_collections.central_mcp.agents.plugins.modules import tmux_agents

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "plugins" / "module_utils" / "tmux_fleet.py"
SESSION = "fleet"
AGENTS = ["A", "B", "C", "D"]

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")


# ----------------------------------------------------------------- helpers
def agent(name: str, **extra) -> dict:
    return {"name": name, "command": "sleep 1000", **extra}


def args_for(socket: str, names=AGENTS, **extra) -> dict:
    base = {"session": SESSION, "socket_name": socket, "control_command": "sleep 1000", "logs_command": "sleep 1000"}
    return {**base, "agents": [agent(n) for n in names], **extra}


def run_module(args: dict, check: bool = False, diff: bool = False) -> dict:
    """Run the module's real main() in-process; return its JSON result."""
    internal = {"_ansible_check_mode": check, "_ansible_diff": diff}
    out = io.StringIO()
    with patch_module_args({**args, **internal}), contextlib.redirect_stdout(out):
        with pytest.raises(SystemExit) as exit_info:
            tmux_agents.main()
    result = json.loads(out.getvalue())
    result["rc"] = exit_info.value.code
    return result


def tmux(socket: str, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(["tmux", "-L", socket, *argv], capture_output=True, text=True, check=False)


def windows(socket: str) -> list[tuple[int, str, int, bool]]:
    """(index, name, pane pid, dead) straight from tmux; [] if no session."""
    fmt = "#{window_index}\t#{window_name}\t#{pane_pid}\t#{pane_dead}"
    proc = tmux(socket, "list-windows", "-t", f"={SESSION}", "-F", fmt)
    rows = [line.split("\t") for line in proc.stdout.splitlines()] if proc.returncode == 0 else []
    return [(int(i), n, int(p), d == "1") for i, n, p, d in rows]


def names(socket: str) -> list[str]:
    return [w[1] for w in windows(socket)]


def pids(socket: str) -> dict[str, int]:
    return {w[1]: w[2] for w in windows(socket)}


def has_session(socket: str) -> bool:
    return tmux(socket, "has-session", "-t", f"={SESSION}").returncode == 0


@pytest.fixture
def socket():
    """A private tmux server; killed, and its socket file removed, afterwards."""
    name = f"cmtest-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    yield name
    tmux(name, "kill-server")
    # Where tmux puts a -L socket (tmux(1), -L); the server leaves the file behind.
    tmpdir = os.environ.get("TMUX_TMPDIR") or "/tmp"
    (Path(tmpdir) / f"tmux-{os.getuid()}" / name).unlink(missing_ok=True)


@pytest.fixture
def fleet(socket):
    """A converged fleet A-D; returns its socket."""
    assert run_module(args_for(socket))["changed"] is True
    return socket


# ------------------------------------------------------------ module runs
def test_create_from_nothing(socket):
    result = run_module(args_for(socket))
    assert result["rc"] == 0 and result["changed"] is True
    assert result["added"] == AGENTS and result["restarted"] == result["removed"] == result["unchanged"] == []
    assert result["windows"] == ["Control", *AGENTS, "Logs"]
    assert [(i, n) for i, n, _, _ in windows(socket)] == list(enumerate(["Control", *AGENTS, "Logs"]))
    opts = tmux(socket, "show-options", "-w", "-t", f"={SESSION}:A").stdout
    for line in ("remain-on-exit on", "automatic-rename off", "allow-rename off", "@central_mcp_spec "):
        assert line in opts


def test_same_input_twice_changes_nothing(fleet):
    before = pids(fleet)
    result = run_module(args_for(fleet))
    assert result["changed"] is False
    assert result["unchanged"] == AGENTS and result["added"] == result["restarted"] == result["removed"] == []
    assert pids(fleet) == before


CHANGES = [
    # id, agents (from A-D), expected added/restarted/removed, final agent order
    ("add E", [*AGENTS, "E"], {"added": ["E"]}, [*AGENTS, "E"]),
    ("insert E after A", ["A", "E", "B", "C", "D"], {"added": ["E"]}, ["A", "E", "B", "C", "D"]),
    ("C env", [agent(n, env={"MODEL": "glm-4.6"}) if n == "C" else n for n in AGENTS], {"restarted": ["C"]}, AGENTS),
    ("C command", [agent(n, command="sleep 999") if n == "C" else n for n in AGENTS], {"restarted": ["C"]}, AGENTS),
    ("C revision", [agent(n, revision="2") if n == "C" else n for n in AGENTS], {"restarted": ["C"]}, AGENTS),
    ("C workdir", [agent(n, workdir="/") if n == "C" else n for n in AGENTS], {"restarted": ["C"]}, AGENTS),
    ("remove D", ["A", "B", "C"], {"removed": ["D"]}, ["A", "B", "C"]),
    ("reorder", ["D", "C", "B", "A"], {}, ["D", "C", "B", "A"]),
]


@pytest.mark.parametrize(("agents", "expected", "order"), [c[1:] for c in CHANGES], ids=[c[0] for c in CHANGES])
def test_change_touches_only_what_changed(fleet, agents, expected, order):
    before = pids(fleet)
    args = args_for(fleet)
    args["agents"] = [agent(a) if isinstance(a, str) else a for a in agents]
    result = run_module(args)
    touched = {n for key in ("added", "restarted", "removed") for n in expected.get(key, [])}
    assert result["changed"] is True
    for key in ("added", "restarted", "removed"):
        assert result[key] == expected.get(key, []), key
    assert result["unchanged"] == [n for n in order if n not in touched]
    assert names(fleet) == ["Control", *order, "Logs"]
    assert [w[0] for w in windows(fleet)] == list(range(len(order) + 2))
    after = pids(fleet)
    for name in ["Control", "Logs", *result["unchanged"]]:
        assert after[name] == before[name], f"{name} was restarted"
    for name in expected.get("restarted", []):
        assert after[name] != before[name]
    assert run_module(args)["changed"] is False  # and it is converged


def test_logs_command_change_restarts_only_logs(fleet):
    before = pids(fleet)
    result = run_module({**args_for(fleet), "logs_command": "sleep 999\n# a second line"})
    assert result["changed"] is True and result["unchanged"] == AGENTS and result["restarted"] == []
    after = pids(fleet)
    assert after["Logs"] != before["Logs"]
    assert all(after[n] == before[n] for n in ["Control", *AGENTS])


def test_a_window_with_a_task_waits_for_its_end_before_it_restarts(fleet):
    """The worker runtime marks a window whose task's CLI runs: its change is pending, never cut short."""
    before = pids(fleet)
    assert tmux(fleet, "set-option", "-w", "-t", f"={SESSION}:=C", "@central_mcp_task", "12").returncode == 0
    changed = args_for(fleet)
    changed["agents"] = [agent(n, revision="2") if n in "BC" else agent(n) for n in AGENTS]
    result = run_module(changed, diff=True)
    assert (result["restarted"], result["pending"]) == (["B"], ["C"]) and "restart pending" in result["diff"]["after"]
    assert pids(fleet)["C"] == before["C"] and pids(fleet)["B"] != before["B"]
    os.killpg(before["C"], signal.SIGKILL)  # a dead pane with a task is the runtime's to look at, too
    time.sleep(0.3)
    assert run_module(changed)["pending"] == ["C"]
    tmux(fleet, "set-option", "-w", "-u", "-t", f"={SESSION}:=C", "@central_mcp_task")  # the task ended
    result = run_module(changed)
    assert (result["restarted"], result["pending"]) == (["C"], [])


def test_dead_pane_is_respawned(fleet):
    before = pids(fleet)
    os.killpg(before["B"], signal.SIGKILL)
    for _ in range(100):
        if dict((w[1], w[3]) for w in windows(fleet))["B"]:
            break
        time.sleep(0.02)
    else:
        pytest.fail("tmux never marked B's pane dead")
    result = run_module(args_for(fleet), diff=True)
    assert result["restarted"] == ["B"] and result["unchanged"] == ["A", "C", "D"]
    assert "2 B (dead)" in result["diff"]["before"] and "2 B (restarted)" in result["diff"]["after"]
    after = {w[1]: w for w in windows(fleet)}
    assert after["B"][3] is False and after["B"][2] != before["B"]
    assert all(after[n][2] == before[n] for n in ["Control", "A", "C", "D", "Logs"])


def test_check_mode_on_nothing_creates_nothing(socket):
    result = run_module(args_for(socket), check=True)
    assert result["changed"] is True and result["added"] == AGENTS
    assert not has_session(socket)


@pytest.mark.parametrize(
    ("args_change", "expected"),
    [
        ({"agents": [agent(n) for n in [*AGENTS, "E"]]}, {"added": ["E"]}),
        ({"agents": [agent(n, revision="2") for n in AGENTS]}, {"restarted": AGENTS}),
        ({"agents": [agent("A")]}, {"removed": ["B", "C", "D"]}),
        ({"state": "absent"}, {"removed": AGENTS}),
    ],
    ids=["add", "restart", "remove", "absent"],
)
def test_check_mode_reports_and_touches_nothing(fleet, args_change, expected):
    before = windows(fleet)
    result = run_module({**args_for(fleet), **args_change}, check=True)
    assert result["changed"] is True
    for key in ("added", "restarted", "removed"):
        assert result[key] == expected.get(key, [])
    assert windows(fleet) == before


def test_diff_shows_window_lists(fleet):
    args = args_for(fleet, names=["A", "B", "C", "E"])
    args["agents"][2]["env"] = {"MODEL": "glm-4.6"}
    result = run_module(args, check=True, diff=True)
    assert result["diff"]["before"] == "0 Control\n1 A\n2 B\n3 C\n4 D\n5 Logs\n"
    assert result["diff"]["after"] == "0 Control\n1 A\n2 B\n3 C (restarted)\n4 E\n5 Logs\n"
    assert "diff" not in run_module(args, check=True)


def test_state_absent(fleet):
    result = run_module({**args_for(fleet), "state": "absent"})
    assert result["changed"] is True and result["removed"] == AGENTS
    assert not has_session(fleet)
    again = run_module({**args_for(fleet), "state": "absent"})
    assert again["changed"] is False and again["removed"] == []


def test_literal_semicolons_hashes_and_env_reach_the_agent(socket, tmp_path):
    """tmux treats a trailing ';' and '#{...}' in -c specially; values must arrive intact."""
    workdir = tmp_path / "w#{pane_id};"
    workdir.mkdir()
    out = tmp_path / "out.txt"
    cmd = f"printf '%s|%s' \"$X\" \"$PWD\" > '{out}'; exec sleep 1000"
    args = args_for(socket, names=[])
    args["agents"] = [{"name": "A", "command": cmd, "env": {"X": "a;b;"}, "workdir": str(workdir)}]
    assert run_module(args)["added"] == ["A"]
    for _ in range(100):
        if out.exists() and out.read_text():
            break
        time.sleep(0.02)
    assert out.read_text() == f"a;b;|{workdir}"
    assert run_module(args)["changed"] is False


# ------------------------------------------------------ hostile input table
HOSTILE = [
    # id, how the args change, the bad value the message must name
    ("shell list", {"agents": [agent("A; rm -rf /")]}, "A; rm -rf /"),
    ("substitution", {"agents": [agent("$(id)")]}, "$(id)"),
    ("single quote", {"agents": [agent("a'b")]}, "a'b"),
    ("double quote", {"agents": [agent('a"b')]}, 'a"b'),
    ("newline", {"agents": [agent("A\nB")]}, "A\nB"),
    ("empty", {"agents": [agent("")]}, ""),
    ("33 chars", {"agents": [agent("A" * 33)]}, "A" * 33),
    ("reserved Control", {"agents": [agent("Control")]}, "Control"),
    ("reserved logs", {"agents": [agent("logs")]}, "logs"),
    ("40 duplicates", {"agents": [agent("X") for _ in range(40)]}, "X"),
    ("env key", {"agents": [agent("A", env={"BAD-KEY": "1"})]}, "BAD-KEY"),
    ("env value newline", {"agents": [agent("A", env={"K": "x\ny"})]}, "x\ny"),
    ("relative workdir", {"agents": [agent("A", workdir="tmp")]}, "tmp"),
    ("missing workdir", {"agents": [agent("A", workdir="/nonexistent/dir")]}, "/nonexistent/dir"),
    ("session", {"session": "$(id)"}, "$(id)"),
    ("socket", {"socket_name": "../x"}, "../x"),
]


@pytest.mark.parametrize(("change", "bad"), [c[1:] for c in HOSTILE], ids=[c[0] for c in HOSTILE])
def test_hostile_input_is_refused_before_tmux(socket, change, bad):
    result = run_module({**args_for(socket), **change})
    assert result["rc"] == 1 and result.get("failed") is True
    assert repr(bad) in result["msg"], result["msg"]
    assert not has_session(socket)


def test_a_name_never_reaches_a_shell(socket, tmp_path):
    marker = tmp_path / "pwned"
    for name in (f"$(touch {marker})", f"`touch {marker}`", f"A;touch {marker}"):
        assert run_module(args_for(socket, names=["A", name]))["rc"] == 1
    assert not marker.exists() and not has_session(socket)


@pytest.mark.parametrize(("change", "bad"), [c[1:] for c in HOSTILE[:12]], ids=[c[0] for c in HOSTILE[:12]])
def test_hostile_agent_changes_nothing_in_a_running_fleet(fleet, change, bad):
    before = windows(fleet)
    args = args_for(fleet)
    args["agents"] = args["agents"] + change["agents"]
    result = run_module(args)
    assert result["rc"] == 1 and repr(bad) in result["msg"]
    assert windows(fleet) == before


# ----------------------------------------------------------- boot script
def test_spec_file_script_then_module_agrees(socket, tmp_path):
    spec, pidfile = tmp_path / "fleet.json", tmp_path / "tmux.pid"
    args = args_for(socket)
    spec.write_text(json.dumps(args))
    proc = subprocess.run([sys.executable, str(SCRIPT), "--spec", str(spec), "--pidfile", str(pidfile)],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert names(socket) == ["Control", *AGENTS, "Logs"]
    server_pid = tmux(socket, "display-message", "-p", "-t", f"={SESSION}:", "#{pid}").stdout.strip()
    assert pidfile.read_text().strip() == server_pid
    # The module through its real entry point: python -m, arguments on stdin.
    env = {**os.environ, "PYTHONPATH": str(REPO / "collections")}
    stdin = json.dumps({"ANSIBLE_MODULE_ARGS": {**args, "state": "present"}})
    mod = subprocess.run([sys.executable, "-m", tmux_agents.__name__], input=stdin, env=env,
                         capture_output=True, text=True, check=False)  # fmt: skip
    result = json.loads(mod.stdout)
    assert result["changed"] is False and result["unchanged"] == AGENTS, mod.stdout + mod.stderr


def test_spec_file_script_with_existing_never_starts_a_session(socket, tmp_path):
    """The worker runtime reconciles with --existing: a tmux server it started would live in its sandbox."""
    spec = tmp_path / "fleet.json"
    spec.write_text(json.dumps(args_for(socket)))
    run = [sys.executable, str(SCRIPT), "--spec", str(spec), "--existing"]
    proc = subprocess.run(run, capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and "no session" in proc.stderr, proc.stderr
    assert not has_session(socket)
    subprocess.run([sys.executable, str(SCRIPT), "--spec", str(spec)], capture_output=True, check=True)
    spec.write_text(json.dumps(args_for(socket, names=["A", "B"])))
    assert subprocess.run(run, capture_output=True, text=True, check=False).returncode == 0
    assert names(socket) == ["Control", "A", "B", "Logs"], "a session that runs is reconciled as without the flag"


def test_spec_file_script_refuses_bad_spec(socket, tmp_path):
    spec = tmp_path / "fleet.json"
    spec.write_text(json.dumps({**args_for(socket), "agents": [agent("A;B")]}))
    proc = subprocess.run([sys.executable, str(SCRIPT), "--spec", str(spec)], capture_output=True, text=True)
    assert proc.returncode == 1 and "'A;B'" in proc.stderr
    assert not has_session(socket)


# ------------------------------------------------------------- pure plan
def win(index: int, name: str, spec: tf.WindowSpec | None = None, dead: bool = False) -> tf.Window:
    return tf.Window(f"@{index + 10}", index, spec.digest if spec else "", 100 + index, dead, name)


SPEC = tf.validate({"agents": [agent(n) for n in ("A", "B")], "control_command": "c", "logs_command": "l"})
CTL, A, B, LOG = SPEC.windows
CONVERGED = [win(0, "Control", CTL), win(1, "A", A), win(2, "B", B), win(3, "Logs", LOG)]
KEEP = ["keep"] * 4
RESTART_A = ["keep", "restart", "keep", "keep"]
PLANS = [
    # id, current windows, expected actions (Control, A, B, Logs), removed names, reorder
    ("no session", None, ["add"] * 4, [], False),
    ("converged", CONVERGED, KEEP, [], False),
    ("dead A", [CONVERGED[0], win(1, "A", A, dead=True), *CONVERGED[2:]], RESTART_A, [], False),
    ("A changed", [CONVERGED[0], win(1, "A", tf.WindowSpec("A", "old")), *CONVERGED[2:]], RESTART_A, [], False),
    ("stray window", [*CONVERGED, win(4, "bash")], KEEP, ["bash"], False),
    ("namesake", [*CONVERGED, win(4, "A", A)], KEEP, ["A"], False),
    ("B missing", [CONVERGED[0], CONVERGED[1], win(3, "Logs", LOG)], ["keep", "keep", "add", "keep"], [], True),
    ("swapped", [CONVERGED[0], win(1, "B", B), win(2, "A", A), CONVERGED[3]], KEEP, [], True),
    ("base-index 1", [win(i + 1, w.name, s) for i, (w, s) in enumerate(zip(CONVERGED, SPEC.windows, strict=True))],
     KEEP, [], True),
]  # fmt: skip


@pytest.mark.parametrize("current, actions, removed, reorder", [p[1:] for p in PLANS], ids=[p[0] for p in PLANS])
def test_plan(current, actions, removed, reorder):
    p = tf.plan(current, SPEC)
    assert [a for a, _, _ in p.steps] == actions
    assert [w.name for w in p.remove] == removed
    assert p.reorder is reorder
    assert p.changed is (actions != ["keep"] * 4 or bool(removed) or reorder)


def test_a_change_waits_for_a_task_at_most_the_drain_timeout():
    spec = tf.validate({"agents": [{"name": "W", "command": "sleep 2"}]})
    old = tf.WindowSpec("W", "sleep 1")
    busy = [win(0, "Control", spec.windows[0]), tf.Window("@11", 1, old.digest, 101, False, "W", True, 1000.0),
            win(2, "Logs", spec.windows[2])]  # fmt: skip
    actions = lambda p: [a for a, _, _ in p.steps]  # noqa: E731
    assert actions(tf.plan(busy, spec, None, now=10**9)) == ["keep", "pending", "keep"]  # never cut short
    assert actions(tf.plan(busy, spec, 600, now=1500.0)) == ["keep", "pending", "keep"]
    assert actions(tf.plan(busy, spec, 600, now=1600.0)) == ["keep", "restart", "keep"]
    assert not tf.plan(busy, spec, 600, now=1500.0).changed


def test_plan_absent_and_render():
    p = tf.plan_absent(CONVERGED)
    assert p.kill_session and p.result()["removed"] == ["A", "B"] and p.result()["windows"] == []
    assert p.diff() == {"before": "0 Control\n1 A\n2 B\n3 Logs\n", "after": ""}
    assert tf.plan_absent(None).changed is False
    assert tf.render_windows([(0, "Control", ""), (1, "A", "restarted")]) == "0 Control\n1 A (restarted)\n"


def test_digest_is_canonical():
    one = tf.validate({"agents": [agent("A", env={"X": "1", "Y": "2"})]}).windows[1]
    two = tf.validate({"agents": [agent("A", env={"Y": "2", "X": "1"})]}).windows[1]
    assert one.digest == two.digest
    assert one.digest != tf.validate({"agents": [agent("A", env={"X": "1"})]}).windows[1].digest


def test_documented_defaults_match_the_code():
    doc = yaml.safe_load(tmux_agents.DOCUMENTATION)["options"]
    for key, spec in tmux_agents.ARGUMENT_SPEC.items():
        assert doc[key].get("default") == spec.get("default"), key
        assert doc[key]["type"] == spec["type"], key
    for key, spec in tmux_agents.AGENT_OPTIONS.items():
        assert doc["agents"]["suboptions"][key]["type"] == spec["type"], key


def test_check_mode_reports_a_new_agent_whose_workdir_is_not_made_yet(fleet):
    """The run that really adds it creates the workdir first (the launcher does); check mode only reports."""
    before = windows(fleet)
    args = args_for(fleet)
    args["agents"] = args["agents"] + [agent("E", workdir="/nonexistent/dir-of-E")]
    result = run_module(args, check=True)
    assert result["rc"] == 0 and result["changed"] is True and result["added"] == ["E"], result
    assert windows(fleet) == before
    assert run_module(args)["rc"] == 1  # a real run still refuses it
