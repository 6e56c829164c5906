# SPDX-License-Identifier: Apache-2.0
"""agent-run, the wrapper each agent's tmux window runs, as a real process.

The wrapper is what keeps an agent alive and its secrets out of sight, so it
is tested the way the window runs it: ``python agent-run ... -- CLI``, with
stand-in CLIs that write down what they saw (their environment, their pid, a
timestamp per start) for the test to read back. Only the pure functions (the
env file reader, the JSON merge) are imported, to check their cases one by
one without paying a process start each.

The restart cases need wall-clock time (the back-off is measured in whole
seconds), so they run side by side in one module fixture: the file as a whole
stays well under twenty seconds.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
AGENT_RUN = REPO / "roles" / "launcher" / "files" / "agent-run"


def load_agent_run():
    """Import the script (no .py suffix: an explicit source loader); conftest puts its directory on the path."""
    loader = importlib.machinery.SourceFileLoader("agent_run", str(AGENT_RUN))
    spec = importlib.util.spec_from_loader("agent_run", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


agent_run = load_agent_run()

# Stand-in agent CLIs, run with sys.executable. Files are written to a
# temporary name and renamed, so the test never reads half a file.
DUMP_AND_WAIT = """
import json, os, sys, time
out, keys = sys.argv[1], sys.argv[2:]
json.dump({"pid": os.getpid(), "env": {k: os.environ.get(k) for k in keys}}, open(out + ".tmp", "w"))
os.replace(out + ".tmp", out)
time.sleep(60)
"""
COPY_AND_WAIT = """
import os, shutil, sys, time
shutil.copy(sys.argv[1], sys.argv[2] + ".tmp")
os.replace(sys.argv[2] + ".tmp", sys.argv[2])
time.sleep(60)
"""
STAMP_AND_EXIT = """
import sys, time
with open(sys.argv[1], "a") as stamps:
    stamps.write(f"{time.time()}\\n")
time.sleep(float(sys.argv[2]))
sys.exit(int(sys.argv[3]))
"""
KILL_MYSELF = "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"


# ----------------------------------------------------------------- helpers
class Wrapper:
    """One agent-run process; its stdout and stderr go to a file, read at any time."""

    def __init__(self, tmp: Path, *argv: str):
        self.log = tmp / f"agent-run-{uuid.uuid4().hex[:8]}.log"
        with open(self.log, "wb") as log:
            # A session of its own, so a failed test can still clean up the CLI too.
            self.proc = subprocess.Popen(
                [sys.executable, str(AGENT_RUN), *argv],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    @property
    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_for_output(self, pattern: str, timeout: float = 10.0) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if found := re.search(pattern, self.output):
                return found
            time.sleep(0.05)
        raise AssertionError(f"no {pattern!r} in agent-run's output within {timeout}s:\n{self.output}")

    def stop(self) -> None:
        """Ask politely, then take the whole process group down."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()


@pytest.fixture
def wrapper(tmp_path):
    """Start agent-run processes for one test; none outlives it."""
    started: list[Wrapper] = []

    def start(*argv: str) -> Wrapper:
        started.append(Wrapper(tmp_path, *argv))
        return started[-1]

    yield start
    for each in started:
        each.stop()


def wait_for_file(path: Path, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return path.read_text(encoding="utf-8")
        time.sleep(0.05)
    raise AssertionError(f"{path.name} was never written within {timeout}s")


def process_gone(pid: int, timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def announced_pauses(output: str) -> list[int]:
    return [int(s) for s in re.findall(r"starting it again in (\d+)s", output)]


# ----------------------------------------------------------------- env file
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("# a comment\n\n   \n  # indented comment\nA=1\n", {"A": "1"}, id="comments-and-blanks-skipped"),
        pytest.param("URL=https://host/p?a=b&c=d==\n", {"URL": "https://host/p?a=b&c=d=="}, id="equals-in-value-kept"),
        pytest.param("EMPTY=\n", {"EMPTY": ""}, id="empty-value"),
        pytest.param("Q=\"double\"\nS='single'\n", {"Q": '"double"', "S": "'single'"}, id="quotes-kept"),
        pytest.param("CMD=$(id)\nBT=`id`\nV=$HOME\n", {"CMD": "$(id)", "BT": "`id`", "V": "$HOME"}, id="no-expansion"),
        pytest.param("K=a b # not a comment \n", {"K": "a b # not a comment "}, id="spaces-and-hash-kept"),
        pytest.param("_x9=1\nK=first\nK=second\n", {"_x9": "1", "K": "second"}, id="underscore-key-last-wins"),
        pytest.param("K=no newline at the end", {"K": "no newline at the end"}, id="no-final-newline"),
    ],
)
def test_env_file_is_read_literally(tmp_path, text, expected):
    """Values reach the agent byte for byte: a token may hold any of these characters."""
    env_file = tmp_path / "agent.env"
    env_file.write_text(text, encoding="utf-8")
    assert agent_run.read_env_file(str(env_file)) == expected


@pytest.mark.parametrize(
    "bad_line",
    ["1X=a", "BAD-KEY=a", "novalue", "=value-without-key", "export K=v", " K=leading-space", "K.X=a"],
)
def test_bad_env_line_is_rejected_with_its_number(tmp_path, bad_line):
    """A typo must stop the start and point at the line, not pass a half-right environment on."""
    env_file = tmp_path / "agent.env"
    env_file.write_text(f"# header\nGOOD=1\n{bad_line}\nLATER=2\n", encoding="utf-8")
    with pytest.raises(SystemExit, match=r"agent\.env:3: expected KEY=VALUE"):
        agent_run.read_env_file(str(env_file))


def test_child_sees_env_file_and_nothing_is_executed(tmp_path, wrapper):
    """The secret reaches the CLI's environment only: not the wrapper's argv, environment or output."""
    secret = f"sk-test-{uuid.uuid4().hex}"
    ran = tmp_path / "ran-by-a-shell"
    env_file = tmp_path / "agent.env"
    env_file.write_text(
        f"# model API key\nTEST_AGENT_KEY={secret}\nTEST_AGENT_URL=https://h/?a=b\n"
        f"TEST_AGENT_CMD=$(touch {ran})\nTEST_AGENT_BT=`touch {ran}`\n",
        encoding="utf-8",
    )
    env_file.chmod(0o600)
    keys = ["TEST_AGENT_KEY", "TEST_AGENT_URL", "TEST_AGENT_CMD", "TEST_AGENT_BT"]
    seen_file = tmp_path / "seen.json"
    run = wrapper(
        "--name", "A", "--env-file", str(env_file), "--", sys.executable, "-c", DUMP_AND_WAIT, str(seen_file), *keys
    )
    seen = json.loads(wait_for_file(seen_file))

    assert seen["env"] == {
        "TEST_AGENT_KEY": secret,
        "TEST_AGENT_URL": "https://h/?a=b",
        "TEST_AGENT_CMD": f"$(touch {ran})",
        "TEST_AGENT_BT": f"`touch {ran}`",
    }
    assert not ran.exists(), "a value was run by a shell"
    proc = Path("/proc") / str(run.proc.pid)
    assert secret.encode() not in (proc / "cmdline").read_bytes()
    assert secret.encode() not in (proc / "environ").read_bytes()
    assert secret.encode() not in (Path("/proc") / str(seen["pid"]) / "cmdline").read_bytes()
    run.wait_for_output(r"starting agent A: ")
    assert secret not in run.output


def test_bad_env_file_backs_off_without_starting(tmp_path, wrapper):
    """The window says which line is wrong and keeps retrying slowly, so fixing the file is enough."""
    env_file = tmp_path / "agent.env"
    env_file.write_text("GOOD=1\n\nBAD-KEY=a\n", encoding="utf-8")
    stamps = tmp_path / "stamps"
    run = wrapper(
        "--name", "B", "--env-file", str(env_file), "--backoff", "1",
        "--", sys.executable, "-c", STAMP_AND_EXIT, str(stamps), "0", "0",
    )  # fmt: skip
    run.wait_for_output(r"agent B: cannot prepare its start: .*agent\.env:3: expected KEY=VALUE")
    time.sleep(1.5)
    assert not stamps.exists(), "the CLI started with a broken env file"
    assert 2 <= run.output.count("cannot prepare its start") <= 3


ENV_AND_ARGV = """
import json, os, sys
print(json.dumps({"pid": os.getpid(), "argv": sys.argv[1:], "turn": os.environ.get("CENTRAL_MCP_TURN_FILE"),
                  "name": os.environ.get("AGENT_NAME")}), flush=True)
"""


def test_a_task_makes_agent_run_the_cli_itself_with_the_agents_env_and_its_turn_file(tmp_path, wrapper):
    """Worker mode: the runtime starts agent-run in the window with a task file; agent-run becomes that CLI."""
    env_file, task_file = tmp_path / "agent.env", tmp_path / "task.json"
    env_file.write_text("AGENT_NAME=W\n", encoding="utf-8")
    argv = [sys.executable, "-c", ENV_AND_ARGV, "Task #7: fix it"]
    task_file.write_text(json.dumps({"task_id": 7, "argv": argv, "turn_file": str(tmp_path / "turn")}))
    run = wrapper("--name", "W", "--env-file", str(env_file), "--task", str(task_file))
    seen = json.loads(run.wait_for_output(r"\{.*\}").group(0))
    assert seen == {"pid": run.proc.pid, "argv": ["Task #7: fix it"], "turn": str(tmp_path / "turn"), "name": "W"}
    assert run.proc.wait(timeout=5) == 0
    assert "agent W: task #7:" in run.output
    assert not task_file.exists(), "a task file is read once: a respawned window must not start it again"


def test_a_task_file_that_is_gone_ends_the_window_with_127_and_says_why(tmp_path, wrapper):
    env_file = tmp_path / "agent.env"
    env_file.write_text("AGENT_NAME=W\n", encoding="utf-8")
    run = wrapper("--name", "W", "--env-file", str(env_file), "--task", str(tmp_path / "gone.json"))
    assert run.proc.wait(timeout=5) == 127
    assert "agent W: cannot start the task's CLI:" in run.output and "gone.json" in run.output


# ----------------------------------------------------------------- merge-json
MANAGED = {
    "hasCompletedOnboarding": True,
    "mcpServers": {"central-mcp": {"type": "http", "url": "http://127.0.0.1:3000/mcp"}},
    "projects": {"/w/A": {"hasTrustDialogAccepted": True}},
}


def test_merge_keeps_what_the_cli_wrote(tmp_path):
    """The CLI keeps its own state in the same file: the merge adds ours and drops none of it."""
    src, dest = tmp_path / "managed.json", tmp_path / "state" / ".claude.json"
    src.write_text(json.dumps(MANAGED))
    dest.parent.mkdir()
    dest.write_text(
        json.dumps(
            {
                "numStartups": 7,
                "hasCompletedOnboarding": False,
                "mcpServers": {"other": {"type": "stdio", "command": "x"}},
                "projects": {"/w/A": {"allowedTools": ["Bash"], "hasTrustDialogAccepted": False}},
            }
        )
    )
    agent_run.merge_json(str(src), str(dest))
    assert json.loads(dest.read_text()) == {
        "numStartups": 7,
        "hasCompletedOnboarding": True,
        "mcpServers": {"other": {"type": "stdio", "command": "x"}, **MANAGED["mcpServers"]},
        "projects": {"/w/A": {"allowedTools": ["Bash"], "hasTrustDialogAccepted": True}},
    }


def test_a_workspace_behind_a_link_is_trusted_under_its_real_path_too(tmp_path):
    """On a pod the workspaces sit on the volume behind a link: the CLI's cwd is the real path, which it looks up."""
    real = tmp_path / "volume" / "workspaces" / "A"
    real.mkdir(parents=True)
    (tmp_path / "home").symlink_to(tmp_path / "volume")
    linked = str(tmp_path / "home" / "workspaces" / "A")
    src, dest = tmp_path / "managed.json", tmp_path / "state" / ".claude.json"
    src.write_text(json.dumps({"projects": {linked: {"hasTrustDialogAccepted": True}, "/nowhere": {"x": 1}}}))
    agent_run.merge_json(str(src), str(dest))
    assert json.loads(dest.read_text())["projects"] == {
        linked: {"hasTrustDialogAccepted": True}, os.path.realpath(real): {"hasTrustDialogAccepted": True},
        "/nowhere": {"x": 1},
    }  # fmt: skip


@pytest.mark.parametrize("old_mode", [None, 0o644], ids=["new-file", "was-0644"])
def test_merge_writes_private_files(tmp_path, old_mode):
    """The file holds the agent's bearer token: 0600 in a 0700 directory, whatever was there."""
    src, dest = tmp_path / "managed.json", tmp_path / "state" / ".claude.json"
    src.write_text(json.dumps(MANAGED))
    if old_mode is not None:
        dest.parent.mkdir(mode=0o700)
        dest.write_text("{}")
        dest.chmod(old_mode)
    agent_run.merge_json(str(src), str(dest))
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
    assert stat.S_IMODE(dest.parent.stat().st_mode) == 0o700
    assert json.loads(dest.read_text()) == MANAGED
    assert [p.name for p in dest.parent.iterdir()] == [".claude.json"], "a temporary file was left behind"


def test_merge_without_change_leaves_the_file_alone(tmp_path):
    """Every start merges; rewriting an unchanged file would race the CLI for nothing."""
    src, dest = tmp_path / "managed.json", tmp_path / ".claude.json"
    src.write_text(json.dumps(MANAGED))
    dest.write_text(json.dumps({**MANAGED, "numStartups": 3}, indent=4))
    os.utime(dest, ns=(1_000_000_000, 1_000_000_000))
    before = dest.stat()
    agent_run.merge_json(str(src), str(dest))
    after = dest.stat()
    assert (after.st_ino, after.st_mtime_ns, after.st_size) == (before.st_ino, before.st_mtime_ns, before.st_size)


def test_corrupt_state_is_kept_aside(tmp_path):
    """A half-written file from a crash is evidence: it is moved aside, never overwritten."""
    src, dest = tmp_path / "managed.json", tmp_path / ".claude.json"
    src.write_text(json.dumps(MANAGED))
    dest.write_text('{"numStartups": 7, "proj')
    agent_run.merge_json(str(src), str(dest))
    assert json.loads(dest.read_text()) == MANAGED
    kept = list(tmp_path.glob(".claude.json.corrupt-*"))
    assert len(kept) == 1
    assert kept[0].read_text() == '{"numStartups": 7, "proj'


def test_merge_happens_before_the_cli_starts(tmp_path, wrapper):
    """The wrapper merges on its own, before the start: the CLI reads the merged file."""
    src, dest = tmp_path / "managed.json", tmp_path / "state" / ".claude.json"
    src.write_text(json.dumps(MANAGED))
    dest.parent.mkdir()
    dest.write_text(json.dumps({"numStartups": 1}))
    seen = tmp_path / "seen.json"
    wrapper(
        "--name", "A", "--merge-json", f"{src}:{dest}",
        "--", sys.executable, "-c", COPY_AND_WAIT, str(dest), str(seen),
    )  # fmt: skip
    assert json.loads(wait_for_file(seen)) == {"numStartups": 1, **MANAGED}


# ----------------------------------------------------------------- restarts
@pytest.mark.parametrize(
    ("argv", "why"),
    [
        pytest.param(["-c", "import sys; sys.exit(3)"], "exited with status 3", id="status"),
        pytest.param(["-c", KILL_MYSELF], "killed by signal SIGKILL", id="signal"),
    ],
)
def test_exit_is_explained(wrapper, argv, why):
    """Whoever looks at the window must see which agent stopped and how."""
    run = wrapper("--name", "Zed", "--", sys.executable, *argv)
    run.wait_for_output(rf"agent Zed {why} after \d+s; starting it again in 5s")


RESTART_WINDOW_S = 5.5


@pytest.fixture(scope="module")
def restarts(tmp_path_factory):
    """Three wrappers watched side by side for RESTART_WINDOW_S seconds; their output and start times.

    fast: exits 3 at once, pauses 1 s doubling to a 2 s cap.
    missing: a CLI that does not exist, same pauses.
    healthy: runs 0.6 s, longer than --healthy-after, so the pause never grows.
    """
    tmp = tmp_path_factory.mktemp("restarts")
    stamps = {name: tmp / f"{name}.stamps" for name in ("fast", "healthy")}
    runs = {
        "fast": Wrapper(
            tmp, "--name", "Fast", "--backoff", "1", "--backoff-max", "2",
            "--", sys.executable, "-c", STAMP_AND_EXIT, str(stamps["fast"]), "0", "3",
        ),
        "missing": Wrapper(
            tmp, "--name", "Gone", "--backoff", "1", "--backoff-max", "2", "--", str(tmp / "no-such-cli"), "--flag",
        ),
        "healthy": Wrapper(
            tmp, "--name", "Fine", "--backoff", "1", "--backoff-max", "4", "--healthy-after", "0.5",
            "--", sys.executable, "-c", STAMP_AND_EXIT, str(stamps["healthy"]), "0.6", "0",
        ),
    }  # fmt: skip
    try:
        time.sleep(RESTART_WINDOW_S)
        results = {}
        for name, run in runs.items():
            alive = run.proc.poll() is None
            stamp_file = stamps.get(name)
            starts = [float(x) for x in stamp_file.read_text().split()] if stamp_file and stamp_file.exists() else []
            results[name] = {"alive": alive, "output": run.output, "starts": starts}
        return results
    finally:
        for run in runs.values():
            run.stop()


def test_fast_failure_backs_off(restarts):
    """An agent failing at once is restarted, but ever more slowly up to the cap: never a tight loop."""
    fast = restarts["fast"]
    assert fast["alive"], fast["output"]
    starts = fast["starts"]
    assert 2 <= len(starts) <= 4, f"{len(starts)} starts in {RESTART_WINDOW_S}s"
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert all(gap >= 0.9 for gap in gaps), gaps
    if len(gaps) >= 2:
        assert gaps[1] >= 1.8, f"the pause did not grow: {gaps}"
    assert "agent Fast exited with status 3 after 0s" in fast["output"]
    pauses = announced_pauses(fast["output"])
    assert pauses[:2] == [1, 2] and max(pauses) == 2, pauses


def test_missing_cli_is_reported_and_backs_off(restarts):
    """A wrong path must not spin: the window says so and retries at the back-off pace."""
    missing = restarts["missing"]
    assert missing["alive"], missing["output"]
    output = missing["output"]
    assert re.search(r"agent Gone could not start '[^']*no-such-cli': No such file", output), output
    assert 2 <= output.count("could not start") <= 4
    pauses = announced_pauses(output)
    assert pauses[:2] == [1, 2] and max(pauses) == 2, pauses


def test_healthy_run_resets_the_back_off(restarts):
    """An agent that ran long enough before exiting is not punished for earlier failures."""
    healthy = restarts["healthy"]
    assert healthy["alive"], healthy["output"]
    assert len(healthy["starts"]) >= 3
    pauses = announced_pauses(healthy["output"])
    assert len(pauses) >= 2 and set(pauses) == {1}, pauses


# ----------------------------------------------------------------- stopping
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_signal_stops_wrapper_and_cli(tmp_path, wrapper, signum):
    """systemd stops with SIGTERM, tmux closes a window with SIGHUP: both end the CLI too, promptly."""
    seen = tmp_path / "seen.json"
    run = wrapper("--name", "A", "--", sys.executable, "-c", DUMP_AND_WAIT, str(seen))
    cli_pid = json.loads(wait_for_file(seen))["pid"]
    sent = time.monotonic()
    run.proc.send_signal(signum)
    assert run.proc.wait(timeout=5) == 128 + signum
    assert time.monotonic() - sent < 3, "the wrapper sat out its child timeout"
    assert process_gone(cli_pid), "the agent CLI outlived its wrapper"
    assert "starting it again" not in run.output


# ----------------------------------------------------- waiting for the coordinator
def test_the_agent_waits_a_bounded_time_for_the_coordinator(tmp_path, wrapper):
    """Started before the coordinator listens, the CLI would stay unregistered: wait, but not forever."""
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env_file = tmp_path / "agent.env"
    env_file.write_text(f"CENTRAL_MCP_URL=http://127.0.0.1:{port}/mcp\n")
    started = time.monotonic()
    run = wrapper(
        "--name", "W", "--env-file", str(env_file), "--coordinator-wait", "2", "--",
        sys.executable, "-c", "import time; time.sleep(60)",
    )  # fmt: skip
    run.wait_for_output(rf"agent W: waiting for the coordinator at http://127.0.0.1:{port}/mcp")
    run.wait_for_output(r"does not answer; starting anyway", timeout=10)
    run.wait_for_output(r"starting agent W: ")
    assert time.monotonic() - started >= 1.5


def test_a_listening_coordinator_means_no_wait(tmp_path, wrapper):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        env_file = tmp_path / "agent.env"
        env_file.write_text(f"CENTRAL_MCP_URL=http://127.0.0.1:{server.getsockname()[1]}/mcp\n")
        run = wrapper(
            "--name", "W", "--env-file", str(env_file), "--", sys.executable, "-c", "import time; time.sleep(60)"
        )
        run.wait_for_output(r"starting agent W: ", timeout=5)
        assert "waiting for the coordinator" not in run.output


# ----------------------------------------------------------------- an agent of its own user
# Stands in for sudo, agent-unit and systemd-run together, as the launcher's rule allows them
# (`sudo -n -- .../agent-unit NAME [--setenv K=V]... -- ARGS...`): it records what it was asked, then does what
# systemd does with the unit agent-unit asks for (the env file as the credential "env", only the --setenv
# variables, the agent's HOME) and runs `agent-run --exec ARGS...`.
FAKE_SUDO = """
import json, os, sys, tempfile
args = sys.argv[1:]
assert args[:2] == ["-n", "--"] and os.path.basename(args[2]) == "agent-unit", args
cut = args.index("--", 3)
name, options, rest = args[3], args[4:cut], args[cut + 1:]
with open(os.environ["FAKE_SUDO_LOG"], "w") as log:
    json.dump({"switch": args[2], "name": name, "options": options, "argv": rest}, log)
credentials = tempfile.mkdtemp()
with open(os.environ["FAKE_ENV_FILE"]) as src, open(os.path.join(credentials, "env"), "w") as dest:
    dest.write(src.read())
env = dict(pair.split("=", 1) for pair in options[1::2])
env.update(PATH=os.environ["PATH"], HOME=os.environ["FAKE_SUDO_HOME"], CREDENTIALS_DIRECTORY=credentials)
agent_run = os.path.join(os.path.dirname(args[2]), "agent-run")
os.execve(sys.executable, [sys.executable, agent_run, "--exec", *rest], env)
"""
CLI_REPORT = """
import json, os, sys
print(json.dumps({"argv": sys.argv[1:], "cwd": os.getcwd(), "key": os.environ.get("SECRET_KEY"),
                  "turn": os.environ.get("CENTRAL_MCP_TURN_FILE"), "home": os.environ.get("HOME"),
                  "settings": json.load(open(os.path.join(os.environ["HOME"], "settings.json")))}), flush=True)
"""


def test_with_user_the_cli_starts_in_its_own_unit_with_its_env_as_a_credential_never_on_a_command_line(tmp_path):
    """--user: the window's agent-run starts `agent-run --exec` in the agent's own unit through sudo and
    agent-unit; there it takes its env from the unit's credential, merges the settings into its user's home
    and becomes the CLI in its workspace."""
    bin_dir, home, work = tmp_path / "bin", tmp_path / "home", tmp_path / "work"
    for directory in (bin_dir, home, work):
        directory.mkdir()
    (bin_dir / "sudo").write_text(f"#!{sys.executable}\n{FAKE_SUDO}")
    (bin_dir / "sudo").chmod(0o755)
    env_file, task_file, src = tmp_path / "w.env", tmp_path / "task.json", tmp_path / "w.settings.json"
    env_file.write_text("AGENT_NAME=W\nSECRET_KEY=s3cret-value\n", encoding="utf-8")
    src.write_text(json.dumps({"permissions": {"defaultMode": "dontAsk"}}))
    argv = [sys.executable, "-c", CLI_REPORT, "Task #9"]
    task_file.write_text(json.dumps({"task_id": 9, "argv": argv, "turn_file": str(tmp_path / "turn")}))
    log = tmp_path / "sudo.json"
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_SUDO_LOG": str(log),
           "FAKE_SUDO_HOME": str(home), "FAKE_ENV_FILE": str(env_file)}  # fmt: skip
    done = subprocess.run(
        [sys.executable, str(AGENT_RUN), "--name", "W", "--env-file", str(env_file), "--kind", "claude",
         "--process", "claude", "--user", "agent-w", "--workdir", str(work),
         "--merge-json", f"{src}:{home}/settings.json", "--task", str(task_file)],
        env=env, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {
        "argv": ["Task #9"],
        "cwd": str(work),
        "key": "s3cret-value",
        "turn": str(tmp_path / "turn"),
        "home": str(home),
        "settings": {"permissions": {"defaultMode": "dontAsk"}},
    }
    asked = json.loads(log.read_text())
    assert asked["switch"] == str(AGENT_RUN.resolve().parent / "agent-unit") and asked["name"] == "W"
    assert asked["options"][::2] == ["--setenv"] * (len(asked["options"]) // 2)
    assert f"CENTRAL_MCP_TURN_FILE={tmp_path / 'turn'}" in asked["options"]
    assert "s3cret-value" not in json.dumps(asked), "a secret on sudo's command line would show in ps"
    assert asked["argv"][asked["argv"].index("--kind") + 1] == "claude", "agent_status reads the kind from here"
    assert "--env-file" not in asked["argv"], "the agent's user never reads the env file itself"
