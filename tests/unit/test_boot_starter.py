# SPDX-License-Identifier: Apache-2.0
"""The launcher's boot starter (roles/launcher/files/central-mcp-boot) in a pod of the test bed.

A container of the project's pod image (no systemd: tini and the image's
start script as PID 1) with a volume at /workspace. The starter is given a
small spec of its own: a plain service, a forking one watched by its pid
file (as the tmux server is), a kept directory, a link, a root file and a
user. It restarts what exits, carries on in a new copy of itself without
restarting anything, runs its stop command when the pod stops, and after
the container disk is wiped (a new container on the same volume, as RunPod
starts a stopped pod) puts the user, the link, the file and the services
back by itself.
"""

from __future__ import annotations

import json
import secrets
import shutil
import sys
import time

import pytest
from gce_harness import REPO

sys.path.insert(0, str(REPO / "tests"))
from gitserver import podman  # noqa: E402

IMAGE = "localhost/central-mcp-pod:bookworm"
BOOT = REPO / "roles" / "launcher" / "files" / "central-mcp-boot"
STATE = "/workspace/.central-mcp"
SPEC = {
    "links": ["/etc/central-mcp-test", "/home/agent"],  # the home made by useradd moves onto the volume
    "bin_links": {"/usr/local/bin/hello-test": "/etc/central-mcp-test/hello"},
    "files": [{"path": "/etc/sudoers.d/central-mcp-test", "mode": "0440", "content": "# kept by the starter\n"}],
    "users": [{"name": "agent", "home": "/home/agent", "shell": "/bin/bash", "groups": []}],
    "needs": ["python3", "tmux", "setpriv"],
    "services": [
        {"name": "sleeper", "user": "agent", "command": ["sleep", "1000"], "restart_s": 0.5,
         "credentials": {"token": "/etc/central-mcp-test/token"}},  # root's file, handed to its user alone
        {
            "name": "session", "user": "agent", "keep": True, "no_new_privileges": False,
            "command": ["sh", "-c", "tmux new-session -d -s t 'sleep 1h'; tmux display -p '#{pid}' > /run/t/tmux.pid"],
            "pidfile": "/run/t/tmux.pid", "runtime_dirs": ["/run/t"], "stop": ["tmux", "kill-server"],
            "restart_s": 0.5,
        },
    ],
    "on_stop": [["sh", "-c", "echo handed back > /workspace/on_stop"]],
}  # fmt: skip


class Pod:
    def __init__(self) -> None:
        self.name = f"central-mcp-boot-test-{secrets.token_hex(3)}"
        self.volume = f"{self.name}-workspace"

    def start(self) -> None:
        podman("run", "--detach", "--name", self.name, "--volume", f"{self.volume}:/workspace", IMAGE)
        self.until(lambda: "sshd listening" in podman("logs", self.name).stdout, "the start script")

    def sh(self, script: str, check: bool = True) -> str:
        return podman("exec", self.name, "sh", "-c", script, check=check).stdout.strip()

    def status(self) -> dict:
        return json.loads(self.sh(f"{STATE}/boot status"))

    def tmux_pid(self) -> int:
        return int(self.sh("runuser -u agent -- tmux display -p '#{pid}'", check=False) or 0)

    def settled(self) -> dict:
        """The services' pids once the session's is the tmux server's (its first process forks it, then exits)."""
        try:
            return self.until(lambda: (p := self.pids()).get("session") == self.tmux_pid() and len(p) == 2 and p, "")
        except AssertionError:
            raise AssertionError(
                f"services not settled: {self.status()}\n{self.sh(f'tail -20 {STATE}/boot.log')}"
            ) from None

    def pids(self) -> dict:
        return {name: s["pid"] for name, s in self.status()["services"].items() if s["alive"]}

    def until(self, check, what: str, timeout: float = 20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            time.sleep(0.2)
        raise AssertionError(f"{what}: not within {timeout} s")


@pytest.fixture
def pod():
    if shutil.which("podman") is None or podman("image", "exists", IMAGE, check=False).returncode != 0:
        pytest.skip(f"podman or {IMAGE} is missing: tests/testbed/setup.sh builds it")
    pod = Pod()
    pod.start()
    try:
        yield pod
    finally:
        podman("rm", "--force", "--time", "0", pod.name, check=False)
        podman("volume", "rm", "--force", pod.volume, check=False)


def test_the_starter_supervises_carries_on_in_new_code_and_puts_back_what_a_stop_wiped(pod):
    podman("cp", str(BOOT), f"{pod.name}:{STATE}/boot")
    pod.sh(f"chmod 0700 {STATE}/boot && useradd --create-home --shell /bin/bash agent")
    pod.sh(f"install -d {STATE}/host/etc/central-mcp-test && echo secret > {STATE}/host/etc/central-mcp-test/token"
           f" && chmod 0600 {STATE}/host/etc/central-mcp-test/token")  # fmt: skip
    pod.sh(f"cat > {STATE}/boot.json <<'EOF'\n{json.dumps(SPEC)}\nEOF")
    started = json.loads(pod.sh(f"{STATE}/boot start"))
    assert started["started"] and started["prepared"] == [
        "/etc/central-mcp-test", "/home/agent", "/usr/local/bin/hello-test", "/etc/sudoers.d/central-mcp-test"
    ]  # fmt: skip
    pod.sh("runuser -u agent -- sh -c 'echo mine > /home/agent/kept.txt'")
    pids = pod.settled()
    where = "/run/central-mcp/boot/credentials/sleeper"
    assert pod.sh(f"stat -c '%U %a' {where}/token {where}; runuser -u agent -- cat {where}/token") == (
        "agent 400\nagent 500\nsecret"
    )  # as systemd's LoadCredential=: a copy only the service's user reads
    assert pod.sh(f"ps -o user= -p {pids['sleeper']}") == "agent"
    assert pod.sh("readlink /etc/central-mcp-test") == f"{STATE}/host/etc/central-mcp-test"
    assert json.loads(pod.sh(f"{STATE}/boot start"))["changed"] is False  # a second start: nothing to do

    # What exits is started again; the tmux server is watched by its pid file (it forks).
    pod.sh(f"kill {pids['sleeper']}")
    pod.until(lambda: pod.pids().get("sleeper") not in (None, pids["sleeper"]), "the sleeper")
    pod.sh("runuser -u agent -- tmux kill-server")
    pod.until(lambda: pod.tmux_pid() not in (0, pids["session"]), "tmux")
    again = pod.settled()
    assert again["sleeper"] != pids["sleeper"]

    # A new copy of the starter (a new release of the launcher) carries on with the services as they run.
    supervisor = pod.status()["supervisor"]
    pod.sh(f"touch {STATE}/boot")
    pod.until(lambda: "carries on in new code" in pod.sh(f"cat {STATE}/boot.log"), "the re-exec")
    time.sleep(1)
    assert pod.status()["supervisor"] == supervisor and pod.pids() == again

    # The pod stops: the stop command runs before the services stop, on the volume that is kept.
    uid = pod.sh("id -u agent")
    podman("stop", "--time", "15", pod.name, timeout=60)
    assert podman("run", "--rm", "--volume", f"{pod.volume}:/workspace", "--entrypoint", "cat", IMAGE,
                  "/workspace/on_stop").stdout == "handed back\n"  # fmt: skip

    # A new container disk on the same volume: the start script's starter puts everything back by itself.
    podman("rm", "--force", pod.name)
    pod.start()
    back = pod.settled()
    assert pod.sh("id -u agent") == uid  # the files on the volume are still its own
    assert pod.sh("readlink /usr/local/bin/hello-test") == "/etc/central-mcp-test/hello"
    assert pod.sh("cat /etc/sudoers.d/central-mcp-test; stat -c %a /etc/sudoers.d/central-mcp-test") == (
        "# kept by the starter\n440"
    )
    assert pod.sh(f"ps -o user= -p {back['sleeper']}") == "agent"
    assert pod.sh("cat /home/agent/kept.txt; stat -c %U /home/agent/kept.txt") == "mine\nagent"
