# SPDX-License-Identifier: Apache-2.0
"""The reliability suite's test bed: ONE converged VM container, shared by every test file.

Converging costs most of the suite's time, so it happens once per session
(`rel_vm`); bad inputs, faults and the security scan then run against the
same host. Names (container, network, credentials) differ from Molecule's and
the demo's so the suite can run beside them. Figures for the README's
reliability table are collected in `SUMMARY` and written at the end of the
session to tests/reliability/results.md (and printed).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))
from playbook_run import run_playbook  # noqa: E402

os.environ.setdefault("CONTAINERS_CONF", str(REPO / "tests" / "testbed" / "containers.conf"))
os.environ.setdefault("ANSIBLE_CONFIG", str(REPO / "ansible.cfg"))
# ansible-runner starts ansible-playbook from PATH: the one beside this interpreter (.venv/bin).
os.environ["PATH"] = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"

VM = "central-mcp-rel-vm1"
NETWORK = "central-mcp-rel"
IMAGE = os.environ.get("IMAGE", "localhost/debian-systemd:bookworm")
SESSION = "central-mcp-agents"
AGENTS = ["A", "B", "C"]
COORD_PY = "/opt/central-mcp/current/bin/python"
DATA_DIR = "/var/lib/central-mcp"
DB = f"{DATA_DIR}/central-mcp.db"
# Distinctive secrets, so a scan can look for them byte for byte.
SECRETS = {
    "launcher_anthropic_api_key": "rel-api-key-Zq7Kx2Lm9Np4Rs6Tv8Wy0",
    "coordinator_api_token": "rel-coordinator-api-token-Hj3Gf5Dk7Sa9",
    "launcher_agent_tokens": {n: f"rel-agent-token-{n}-Pq1Wo3Ei5Ru7Ty9" for n in AGENTS},
    "glm": "rel-glm-auth-token-Mn2Bv4Cx6Zl8Kj0",
}
FLEET = [
    {"name": "A", "role": "backend", "model": "claude-sonnet-5-5"},
    {"name": "B", "role": "review", "model": "claude-sonnet-5-5"},
    {
        "name": "C",
        "role": "backend",
        "model": "glm-4.6",
        "env": {"ANTHROPIC_BASE_URL": "http://127.0.0.1:9/glm", "ANTHROPIC_AUTH_TOKEN": SECRETS["glm"]},
    },
]
# Figures for the README's table: filled by the test files, written at session end.
SUMMARY: dict[str, object] = {}


def all_secrets() -> list[str]:
    s = SECRETS
    return [s["launcher_anthropic_api_key"], s["coordinator_api_token"], s["glm"], *s["launcher_agent_tokens"].values()]


def podman(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["podman", *args], capture_output=True, text=True, check=check, timeout=timeout)


def sh(command: str, check: bool = True, timeout: float = 120) -> str:
    """Run a shell command inside the VM as root; its stdout."""
    done = podman("exec", VM, "sh", "-c", command, check=False, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"{command!r} failed ({done.returncode}): {done.stderr or done.stdout}")
    return done.stdout


def tmux(*args: str, check: bool = True) -> str:
    return sh("runuser -u agent -- tmux " + shlex.join(args), check=check)


def wait_until(predicate, timeout: float, what: str, interval: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"{what}: not within {timeout:.0f}s")


# The agent CLI below a window's pane: below agent-run run sudo, agent-unit and systemd-run (root's), which asks
# systemd for the agent's own unit, whose main process is the CLI (its own user's); the pane's own child for the
# Control and Logs windows.
CLI_PID = r"""
import subprocess, sys
pid = first = None
todo = [int(sys.argv[1])]
while todo:
    try:
        argv = open(f"/proc/{todo[0]}/cmdline", "rb").read().decode().split("\0")
        unit = next((a.partition("=")[2] for a in argv if a.startswith("--unit=")), None)
        if argv[0].endswith("systemd-run") and unit:
            main = subprocess.run(["systemctl", "show", "--property", "MainPID", "--value", unit],
                                  capture_output=True, text=True).stdout.strip()
            pid, first = (int(main) if main.isdigit() and int(main) else None), None
            break
        kids = [int(k) for k in open(f"/proc/{todo[0]}/task/{todo[0]}/children").read().split()]
        uid = next(int(line.split()[1]) for line in open(f"/proc/{kids[0]}/status") if line.startswith("Uid:"))
    except (OSError, IndexError, StopIteration):
        break
    first = first or kids[0]
    if uid != 0:
        pid = kids[0]
        break
    todo = kids[:1]
print(pid or first or "")
"""


def agent_pids() -> dict[str, int | None]:
    """Window name -> pid of the agent CLI, None while it is down."""
    out = tmux("list-windows", "-t", f"={SESSION}", "-F", "#{window_name} #{pane_pid}", check=False)
    pids: dict[str, int | None] = {}
    for line in out.splitlines():
        name, pane = line.split()
        found = sh(f"python3 -c {shlex.quote(CLI_PID)} {pane}", check=False).strip()
        pids[name] = int(found) if found.isdigit() else None
    return pids


def fleet_is_up(names=AGENTS) -> dict[str, int] | None:
    pids = agent_pids()
    up = {n: pids.get(n) for n in names}
    return up if list(pids)[:1] == ["Control"] and all(up.values()) else None


def wait_fleet(timeout: float = 90) -> dict[str, int]:
    return wait_until(fleet_is_up, timeout, f"agents {AGENTS} running in tmux")


def health() -> int:
    """HTTP status of the coordinator's /health inside the VM (0: not listening)."""
    probe = (
        "import urllib.request as u, urllib.error as e\n"
        "try: print(u.urlopen('http://127.0.0.1:3000/health', timeout=3).status)\n"
        "except e.HTTPError as x: print(x.code)\nexcept OSError: print(0)"
    )
    out = sh(f"python3 -c {shlex.quote(probe)}", check=False).strip()
    return int(out) if out.isdigit() else 0


def integrity() -> str:
    code = (
        f"import sqlite3;db = sqlite3.connect('file:{DB}?mode=ro', uri=True);"
        "print(db.execute('PRAGMA integrity_check').fetchone()[0])"
    )
    return sh(f'{COORD_PY} -c "{code}"').strip()


def task_ids() -> set[int]:
    """Every task id on disk, read from the database itself (the API lists at most 5000)."""
    code = (
        f"import sqlite3;db = sqlite3.connect('file:{DB}?mode=ro', uri=True);"
        "print(' '.join(str(r[0]) for r in db.execute('SELECT id FROM tasks')))"
    )
    return {int(i) for i in sh(f'{COORD_PY} -c "{code}"').split()}


def write_inventory(directory: Path, extra: dict | None = None) -> Path:
    """hosts.yml + host_vars for the VM container (with the known secrets and a private credentials dir)."""
    directory.mkdir(parents=True, exist_ok=True)
    hosts = {
        "all": {
            "children": {"coordinator": {"hosts": {VM: None}}, "agents": {"hosts": {VM: None}}},
            "vars": {
                "ansible_connection": "containers.podman.podman",
                "ansible_python_interpreter": "/usr/bin/python3",
            },
        }
    }
    (directory / "hosts.yml").write_text(yaml.safe_dump(hosts))
    (directory / "host_vars").mkdir(exist_ok=True)
    credentials = str(directory / "credentials")
    host_vars = {
        "central_mcp_agents": FLEET,
        "launcher_anthropic_api_key": SECRETS["launcher_anthropic_api_key"],
        "coordinator_api_token": SECRETS["coordinator_api_token"],
        "launcher_agent_tokens": SECRETS["launcher_agent_tokens"],
        "coordinator_credentials_dir": credentials,
        "launcher_credentials_dir": credentials,
        "vm_upgrade_fs_cache_dir": str(directory / "vm_upgrade"),  # nothing left in the user's home
        # Long-lived CLIs, whose processes the faults kill and the checks find (not worker mode's idle windows).
        "launcher_agent_mode": "interactive",
        **(extra or {}),
    }
    (directory / "host_vars" / f"{VM}.yml").write_text(yaml.safe_dump(host_vars, sort_keys=False))
    return directory


class RelVM:
    """The converged container and what tests need to drive it."""

    def __init__(self, inventory: Path, converge_s: float, data_mount: Path | None) -> None:
        self.inventory = inventory
        self.converge_s = converge_s
        self.data_mount = data_mount  # this machine's side of the VM's /var/lib/central-mcp (a small tmpfs)

    def run(self, **kw):
        return run_playbook(self.inventory, **kw)


def _data_mount(directory: Path) -> Path | None:
    """A 48 MB tmpfs on this machine for the VM's data directory: real ENOSPC, and it outlives a VM restart."""
    directory.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m,mode=0700", "tmpfs", str(directory)], check=False)
    return directory if done.returncode == 0 else None


def _boot(data_mount: Path | None) -> None:
    podman("rm", "-f", "--time", "5", VM, check=False)
    if podman("network", "exists", NETWORK, check=False).returncode != 0:
        podman("network", "create", NETWORK)
    mount = ["--mount", f"type=bind,source={data_mount},destination={DATA_DIR}"] if data_mount else []
    podman(
        "run",
        "-d",
        "--name",
        VM,
        "--hostname",
        VM,
        "--network",
        NETWORK,
        *mount,
        "--systemd=always",
        "--cap-add",  # nftables: the launcher refuses the metadata server to the agents' users
        "NET_ADMIN",
        IMAGE,
        "/sbin/init",
    )
    wait_until(
        lambda: sh("systemctl is-system-running", check=False).strip() in ("running", "degraded"), 60, "systemd up"
    )


@pytest.fixture(scope="session")
def rel_vm(tmp_path_factory) -> RelVM:
    """Converge the site once on a fresh container; remove it (and its network) at the end."""
    started = time.monotonic()
    # RELIABILITY_REUSE_VM=1 (while writing tests) keeps a converged container from an earlier run.
    reuse = os.environ.get("RELIABILITY_REUSE_VM") and podman("container", "exists", VM, check=False).returncode == 0
    data_mount = None
    try:
        inventory = write_inventory(tmp_path_factory.mktemp("inventory"))
        if reuse:
            found = podman("inspect", VM, "--format", "{{range .Mounts}}{{.Destination}}={{.Source}} {{end}}").stdout
            data_mount = next((Path(m.split("=", 1)[1]) for m in found.split() if m.startswith(DATA_DIR + "=")), None)
        else:
            data_mount = _data_mount(tmp_path_factory.mktemp("data"))
            _boot(data_mount)
            run = run_playbook(inventory)
            assert run.rc == 0, run.failed
        wait_fleet(120)
        for helper in ("vm_api.py", "mcp_identity.py", "hostile_agent.py"):  # the in-VM halves of the tests
            podman("cp", str(HERE / helper), f"{VM}:/usr/local/sbin/rel_{helper}")
        SUMMARY["converge_s"] = round(time.monotonic() - started)
        yield RelVM(inventory, time.monotonic() - started, data_mount)
    finally:
        if not os.environ.get("RELIABILITY_KEEP_VM") and not reuse:
            podman("rm", "-f", "--time", "5", VM, check=False)
            podman("network", "rm", "-f", NETWORK, check=False)
            if data_mount:
                subprocess.run(["umount", str(data_mount)], check=False)


def _table() -> str:
    s = SUMMARY
    rows = [
        ("Hostile inventory values tried / rejected before any change", s.get("bad_inputs", "not run")),
        ("Faults injected / survived", s.get("faults", "not run")),
        ("Committed tasks lost", s.get("tasks_lost", "not run")),
        ("Secrets found outside 0600 files, ps, tmux, journal, -vvv output", s.get("secrets_found", "not run")),
        ("`systemd-analyze security central-mcp.service` exposure", s.get("exposure", "not run")),
        ("Hostile agent: attacks tried / blocked (as agent A's own user)", s.get("hostile", "not run")),
        ("`systemd-analyze security`: relay, agent A's unit, agents' session", s.get("exposure_launcher", "not run")),
        ("Load: 16 MCP agents on loopback", s.get("load", "not run")),
    ]
    lines = ["| Check | Result |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)]
    notes = s.get("notes") or []
    return "\n".join(lines + [""] + [f"- {n}" for n in notes]) + "\n"


def pytest_terminal_summary(terminalreporter):
    if SUMMARY:
        table = _table()
        (HERE / "results.md").write_text("# Reliability results\n\n" + table)
        terminalreporter.write_sep("=", "reliability summary")
        terminalreporter.write(table)


def record(key: str, value) -> None:
    SUMMARY[key] = value


def note(text: str) -> None:
    SUMMARY.setdefault("notes", []).append(text)
