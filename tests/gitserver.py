# SPDX-License-Identifier: Apache-2.0
"""A real git server for the tests: OpenSSH and git-shell in a podman container, keys made per test.

``GitServer(root).start()`` runs tests/testbed/git_image.sh's image with a
fresh client key authorized for its "git" user (whose login shell is
git-shell: git's transfer commands only), publishes its SSH port on
loopback, makes bare repositories on demand (``repository``), each with a
first commit on ``main``, and writes the server's host key to a
known_hosts file (``known_hosts``): clients pin it, never trust it on first
use. ``branches`` reads what the server holds, as a reviewer would.

The same repositories are served over HTTPS too (``https_url``): git's own
``git http-backend`` behind tests/git_https.py, which takes the token in
``token`` (a file) and nothing else, with a certificate of a throwaway CA
(``ca``, the file clients verify it with).
"""

from __future__ import annotations

import os
import secrets
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

IMAGE = os.environ.get("CENTRAL_MCP_GIT_IMAGE", "localhost/central-mcp-git:bookworm")
CONTAINERS_CONF = Path(__file__).resolve().parent / "testbed" / "containers.conf"


class Unavailable(RuntimeError):
    """No podman or no git server image here: the test bed's setup builds it."""


def podman(*args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CONTAINERS_CONF": os.environ.get("CONTAINERS_CONF") or str(CONTAINERS_CONF)}
    done = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout, env=env)
    if check and done.returncode != 0:
        raise RuntimeError(f"podman {args[0]}: {done.stderr.strip()[-600:]}")
    return done


class GitServer:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.name = f"central-mcp-git-{secrets.token_hex(4)}"
        self.key = root / "id_ed25519"  # the client's: what a deploy key in the Vault would be
        self.known_hosts = root / "known_hosts"
        self.port = 0
        self.https_port = 0
        self.repositories: set[str] = set()
        self.https_dir = root / "https"  # the HTTPS front's script, certificate, key and token, mounted read-only
        self.ca = self.https_dir / "ca.pem"
        self.token = self.https_dir / "token"

    def start(self) -> GitServer:
        if shutil.which("podman") is None:
            raise Unavailable("podman is not installed (tests/testbed/setup.sh installs it)")
        if podman("image", "exists", IMAGE, check=False).returncode != 0:
            raise Unavailable(f"no image {IMAGE}: run tests/testbed/setup.sh")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "tests", "-f", str(self.key)], check=True)
        authorized = self.root / "authorized"
        authorized.mkdir()
        (authorized / "git").write_text(self.key.with_suffix(".pub").read_text())
        self._https_files()
        podman(
            "run", "--detach", "--name", self.name, "--publish", "127.0.0.1::22", "--publish", "127.0.0.1::8443",
            "--volume", f"{authorized}:/etc/ssh/authorized:ro",
            "--volume", f"{self.https_dir}:/etc/git-https:ro", IMAGE,
        )  # fmt: skip
        self.port = int(podman("port", self.name, "22/tcp").stdout.strip().rsplit(":", 1)[1])
        self.https_port = int(podman("port", self.name, "8443/tcp").stdout.strip().rsplit(":", 1)[1])
        podman("exec", "--detach", "--user", "git", self.name, "python3", "/etc/git-https/git_https.py",
               "--cert", "/etc/git-https/server.pem", "--key", "/etc/git-https/server.key",
               "--token-file", "/etc/git-https/token")  # fmt: skip
        host_key = self.exec("cat", "/etc/ssh/ssh_host_ed25519_key.pub").split()[:2]
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {' '.join(host_key)}\n")
        deadline = time.monotonic() + 20
        while self.ssh_probe() != 0:  # sshd up, the key taken, git-shell answering
            if time.monotonic() > deadline:
                logs = podman("logs", self.name).stderr[-1500:]
                raise RuntimeError(f"the git server never answered on port {self.port}: {logs}")
            time.sleep(0.2)
        while not self.https_probe():  # the HTTPS front up: it asks for the token
            if time.monotonic() > deadline:
                raise RuntimeError(f"the git server's HTTPS never answered on port {self.https_port}")
            time.sleep(0.2)
        return self

    def https_probe(self) -> bool:
        context = ssl.create_default_context(cafile=str(self.ca))
        try:
            urllib.request.urlopen(self.https_url("probe") + "/info/refs", context=context, timeout=5)
        except urllib.error.HTTPError as exc:
            return exc.code == 401
        except OSError:
            return False
        return False

    def _https_files(self) -> None:
        from tests.throwaway_ca import throwaway_tls  # noqa: PLC0415 (cryptography: only here)

        self.https_dir.mkdir()
        throwaway_tls(self.https_dir)
        (self.https_dir / "server.key").chmod(0o644)  # read by the container's git user; a throwaway key
        shutil.copyfile(Path(__file__).with_name("git_https.py"), self.https_dir / "git_https.py")
        self.token.write_text(secrets.token_urlsafe(24) + "\n")

    def https_url(self, name: str) -> str:
        return f"https://127.0.0.1:{self.https_port}/{name}.git"

    def exec(self, *argv: str, user: str = "root") -> str:
        return podman("exec", "--user", user, self.name, *argv).stdout

    def ssh_command(self) -> list[str]:
        return ["ssh", "-i", str(self.key), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                "-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "StrictHostKeyChecking=yes"]  # fmt: skip

    def ssh_probe(self) -> int:
        argv = [*self.ssh_command(), "-p", str(self.port), "git@127.0.0.1", "git-upload-pack '/nonexistent'"]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=20)
        return 0 if "does not appear to be a git repository" in done.stderr else 1

    def url(self, name: str) -> str:
        return f"ssh://git@127.0.0.1:{self.port}/home/git/{name}.git"

    def repository(self, name: str, files: dict[str, str] | None = None) -> str:
        """A bare repository ``name`` with one commit of ``files`` on main; its URL."""
        self.exec("git", "init", "--quiet", "--bare", "--initial-branch=main", f"/home/git/{name}.git", user="git")
        self.repositories.add(name)
        seed = self.root / f"seed-{name}"
        subprocess.run(["git", "init", "--quiet", "--initial-branch=main", str(seed)], check=True)
        for path, text in (files or {"README.md": f"# {name}\n"}).items():
            (seed / path).parent.mkdir(parents=True, exist_ok=True)
            (seed / path).write_text(text)
        env = {**os.environ, "GIT_SSH_COMMAND": " ".join(self.ssh_command())}
        team = ["-c", "user.name=Team", "-c", "user.email=team@example.invalid"]
        for argv in (
            ["add", "--all"],
            [*team, "commit", "--quiet", "-m", "Start"],
            ["push", "-q", self.url(name), "main"],
        ):
            subprocess.run(["git", "-C", str(seed), *argv], check=True, env=env, capture_output=True)
        return self.url(name)

    def branches(self, name: str) -> dict[str, str]:
        """Branch -> commit on the server."""
        out = self.exec("git", "--git-dir", f"/home/git/{name}.git", "for-each-ref",
                        "--format=%(refname:short) %(objectname)", "refs/heads", user="git")  # fmt: skip
        return dict(line.split() for line in out.splitlines())

    def show(self, name: str, ref: str, fmt: str = "%an <%ae>%n%s") -> str:
        return self.exec("git", "--git-dir", f"/home/git/{name}.git", "log", "-1", f"--format={fmt}", ref, user="git")

    def refuse_pushes(self, name: str, why: str) -> None:
        """A pre-receive hook that refuses every push, as a protected branch or a missing right would."""
        hook = f"/home/git/{name}.git/hooks/pre-receive"
        self.exec("sh", "-c", f"printf '#!/bin/sh\\necho \"{why}\" >&2\\nexit 1\\n' > {hook} && chmod 0755 {hook}",
                  user="git")  # fmt: skip

    def stop(self) -> None:
        podman("rm", "--force", "--time", "0", self.name, check=False)
