# SPDX-License-Identifier: Apache-2.0
"""Attack surface of the converged VM: who listens where, who may act as whom, where secrets end up.

Secrets are the inventory's own (conftest.SECRETS: the model API key, the
REST API token, every agent's token, a GLM token in one agent's env), looked
for byte for byte. `ansible-lint --profile production` runs in `make lint`
(not repeated here); `ansible-test sanity` is the collection's own target.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess

from conftest import AGENTS, COORD_PY, SECRETS, SESSION, VM, all_secrets, note, record, sh, tmux

LISTENERS = r"""
import glob, os, socket, struct
inodes = {}
for fd in glob.glob('/proc/[0-9]*/fd/*'):
    try:
        link = os.readlink(fd)
    except OSError:
        continue
    if link.startswith('socket:['):
        pid = fd.split('/')[2]
        inodes[link[8:-1]] = (pid, open(f'/proc/{pid}/comm').read().strip())
for path, family in (('/proc/net/tcp', socket.AF_INET), ('/proc/net/tcp6', socket.AF_INET6)):
    for line in open(path).read().splitlines()[1:]:
        f = line.split()
        if f[3] != '0A':
            continue
        raw, port = f[1].split(':')
        raw = bytes.fromhex(raw)
        words = b''.join(struct.pack('<I', w) for w in struct.unpack('>' + 'I' * (len(raw) // 4), raw))
        print(socket.inet_ntop(family, words), int(port, 16), *inodes.get(f[9], ('?', '?')))
"""
# Where a secret may rest: the env and credential files written for it (the agents'
# 0600 env files, their CLI configs with the bearer token and the CLI's own backups of
# them, the 0600 API token file) and systemd's credential copy for the service; never
# readable by others. A 0640 file is allowed where its group is one agent's own user's
# (the CLI settings it merges into its home: its own token, readable by it alone), and
# systemd's copy of an agent's env file for its own unit (0440 root's, and through an ACL
# that agent's user's alone).
ALLOWED_DIRS = re.compile(
    r"^(/etc/central-mcp/|/home/agent/\.central-mcp/|/run/credentials/central-mcp(-agent-[a-z0-9_-]+)?\.service/)"
)
AGENT_CREDENTIAL = re.compile(r"^/run/credentials/central-mcp-(agent-[a-z0-9_-]+)\.service/")
ALLOWED_MODES = ("600", "400", "440")


def _allowed(path: str, mode: str | None, group: str | None) -> bool:
    if not ALLOWED_DIRS.match(path):
        return False
    agent = re.match(r"^/etc/central-mcp/agents/([A-Za-z][A-Za-z0-9_-]*)\.", path)
    return mode in ALLOWED_MODES or (mode == "640" and agent is not None and group == f"agent-{agent[1].lower()}")


def test_every_service_listens_on_loopback_only():
    listeners = [line.split() for line in sh(f"python3 -c {shlex.quote(LISTENERS)}").splitlines()]
    ports = {int(port) for _, port, *_ in listeners}
    assert 3000 in ports, listeners
    exposed = [entry for entry in listeners if entry[0] not in ("127.0.0.1", "::1")]
    assert exposed == [], f"listening beyond loopback: {exposed}"
    note("Listening sockets in the VM: " + ", ".join(f"{a}:{p} ({c})" for a, p, _, c in listeners))


def test_one_agent_cannot_act_as_another():
    created = json.loads(sh("python3 /usr/local/sbin/rel_vm_api.py post 1"))["acked"][0]
    spec = {"url": "http://127.0.0.1:3000/mcp", "tokens": SECRETS["launcher_agent_tokens"], "task": created}
    done = subprocess.run(
        ["podman", "exec", "-i", VM, COORD_PY, "/usr/local/sbin/rel_mcp_identity.py"],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["a_whoami"][0][0] is False and '"A"' in report["a_whoami"][0][1], report
    assert report["b_claims"][0][0] is False, report  # B holds the task
    # A can neither pose as B nor progress or finish the task B holds.
    assert [is_error for is_error, _ in report["a_as_b"]] == [True] * 4, report["a_as_b"]  # the 4 calls, each refused
    assert (report["no_token"], report["wrong_token"]) == (401, 401), report
    assert (report["api_no_token"], report["api_agent_token"]) == (401, 401), report


def test_no_secret_in_ps_tmux_or_journal():
    processes = sh("ps -eo user,pid,args")
    windows = tmux("list-windows", "-t", f"={SESSION}", "-F", "#{window_name}").split()
    scrollback = "".join(tmux("capture-pane", "-p", "-J", "-S", "-", "-t", f"={SESSION}:={w}") for w in windows)
    journal = sh("journalctl --no-pager -o cat", timeout=120)
    found = [
        (where, secret[:12] + "...")
        for where, text in (("ps", processes), ("tmux scrollback", scrollback), ("journal", journal))
        for secret in all_secrets()
        if secret in text
    ]
    SECRETS_FOUND.extend(found)
    assert found == []


def test_no_secret_in_ansible_output_at_vvv(rel_vm):
    os.environ["ANSIBLE_VERBOSITY"] = "3"  # ansible-runner passes this process's environment on
    try:
        run = rel_vm.run()
    finally:
        del os.environ["ANSIBLE_VERBOSITY"]
    found = [("ansible -vvv", s[:12] + "...") for s in all_secrets() if s in run.stdout]
    SECRETS_FOUND.extend(found)
    if run.rc != 0:
        note(f"The -vvv run failed ({run.failed[:1]}): its output was scanned only up to there")
    assert run.rc == 0, run.failed
    # -vvv shows each connection's commands: podman's RUN/PUT, ssh's and local's ESTABLISH/EXEC.
    assert any(f"<{VM}> {word}" in run.stdout for word in ("RUN", "PUT", "ESTABLISH", "EXEC")), "not verbose"
    assert found == []


def test_secrets_rest_only_in_their_private_files():
    """grep every text file under /etc /home /var /opt /tmp /run /root; binaries are skipped (-I)."""
    patterns = "\n".join(all_secrets()) + "\n"
    done = subprocess.run(
        ["podman", "exec", "-i", VM, "sh", "-c", "grep -rlIF -f - /etc /home /var /opt /tmp /run /root || true"],
        input=patterns,
        capture_output=True,
        text=True,
        timeout=300,
    )
    files = sorted(set(done.stdout.split()))
    stats = {}
    for line in sh("stat -c '%a %G %n' " + " ".join(files)).splitlines() if files else []:
        mode, group, path = line.split(" ", 2)
        stats[path] = (mode, group)
    modes = {path: mode for path, (mode, _) in stats.items()}
    bad = [(f, modes.get(f)) for f in files if not _allowed(f, *stats.get(f, (None, None)))]
    for path in files:  # an agent's credential: readable by root and, through its ACL, by that agent alone
        owner = AGENT_CREDENTIAL.match(path)
        acl = sh(f"getfacl -cp {shlex.quote(path)}").split() if owner else []
        named = [entry for entry in acl if entry.startswith("user:") and entry[5] != ":"]
        if owner and named != [f"user:{owner[1]}:r--"]:
            bad.append((path, f"ACL {named}"))
    SECRETS_FOUND.extend(bad)
    note("Files holding a secret: " + ", ".join(f"{f} ({modes.get(f)})" for f in files))
    assert bad == [], bad


def test_services_run_as_their_own_unprivileged_users():
    assert sh("systemctl show -p User --value central-mcp.service").strip() == "central-mcp"
    assert sh("systemctl show -p User --value central-mcp-agents.service").strip() == "agent"
    coordinator = sh("systemctl show -p MainPID --value central-mcp.service").strip()
    assert sh(f"ps -o user= -p {coordinator}").strip() == "central-mcp"
    users = set(sh(f"ps -o user= --ppid {sh('cat /run/central-mcp-agents/tmux.pid').strip()}").split())
    assert users == {"agent"}, users
    # The agent CLIs themselves: each agent as its own user.
    assert set(sh("ps -o user= -C claude").split()) == {f"agent-{name.lower()}" for name in AGENTS}


def test_systemd_exposure_of_the_coordinator_is_at_most_4():
    out = sh("systemd-analyze security central-mcp.service --no-pager")
    match = re.search(r"Overall exposure level for central-mcp\.service: ([0-9.]+) (\S+)", out)
    assert match, out[-500:]
    record("exposure", f"{match[1]} {match[2]} (goal <= 4.0)")
    agents = re.search(
        r"Overall exposure level for [^:]+: ([0-9.]+) (\S+)",
        sh("systemd-analyze security central-mcp-agents.service --no-pager"),
    )
    if agents:
        note(
            f"`systemd-analyze security central-mcp-agents.service`: {agents[1]} {agents[2]} "
            "(tmux and the wrappers: each agent runs in a unit of its own)"
        )
    assert float(match[1]) <= 4.0, out


SECRETS_FOUND: list = []


def teardown_module():
    record("secrets_found", len(SECRETS_FOUND) if not SECRETS_FOUND else f"{len(SECRETS_FOUND)}: {SECRETS_FOUND}")
