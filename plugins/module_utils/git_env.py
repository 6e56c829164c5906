# SPDX-License-Identifier: Apache-2.0
"""How every git command of the fleet reaches a repository's server, in one place.

Used by the repo_worktrees module (root, the VM's mirrors) and by
task_branch.py (the agent's own user, its task branches), which the
launcher installs beside this file on the VM. Standard library only.

- Nothing of the caller's git setup leaks in: every ``GIT_*`` variable of
  the environment is dropped, and the credential helpers of the system and
  of the user are switched off.
- git never asks: no terminal prompt, no askpass.
- Only the protocol of the repository's URL is allowed (``ssh``, ``https``,
  ``file`` for the tests' local repositories and the worktrees' clone of
  the mirror), so a URL in a submodule or a redirect cannot reach elsewhere.
- SSH: the server's host keys are pinned in a known_hosts file (never
  trusted on first use), the deploy key is the only identity offered.
- HTTPS: the token is read from its file by git's credential helper when
  the server asks, so it is never on a command line, in the environment or
  in a URL; a private CA (a self-hosted forge) is given as a file.

``said`` cuts git's message to its end and hides any credentials in a URL.
"""

from __future__ import annotations

import os
import re
import shlex

TOKEN_USER = "x-access-token"  # GitHub's user name for tokens; GitLab and others take any name with a token


def protocol(url: str, local: bool = False) -> str:
    """What git may speak for this URL: ``file`` (local), ``https`` or ``ssh``."""
    if local or url.startswith("file://"):
        return "file"
    return "https" if url.startswith("https://") else "ssh"


def git_env(url: str, known_hosts: str = "", key: str = "", token_file: str = "", username: str = "", ca_file: str = "",
            local: bool = False, protocols: str = "", connect_timeout_s: int = 15) -> dict[str, str]:  # fmt: skip
    """The environment of a git command for the repository at ``url`` (see the module's docstring); ``protocols``
    (git's GIT_ALLOW_PROTOCOL) defaults to the URL's own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    ssh = ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={connect_timeout_s}", "-o", "StrictHostKeyChecking=yes",
           "-o", f"UserKnownHostsFile={known_hosts or '/dev/null'}"]  # fmt: skip
    ssh += ["-o", "IdentitiesOnly=yes", "-i", key] if key else []
    config = [("credential.helper", "")]  # an empty value drops every helper configured before (system, user)
    if token_file:
        user = shlex.quote(username or TOKEN_USER)
        config.append(
            ("credential.helper", f"!f() {{ test \"$1\" = get || exit 0; echo username={user}; "
                                  f"printf 'password=%s\\n' \"$(cat {shlex.quote(token_file)})\"; }}; f")
        )  # fmt: skip
    if ca_file:
        config.append(("http.sslCAInfo", ca_file))
    env.update(
        GIT_SSH_COMMAND=shlex.join(ssh), GIT_TERMINAL_PROMPT="0", GIT_ASKPASS="/bin/false",
        GIT_ALLOW_PROTOCOL=protocols or protocol(url, local), GIT_CONFIG_COUNT=str(len(config)),
    )  # fmt: skip
    for index, (key_name, value) in enumerate(config):
        env[f"GIT_CONFIG_KEY_{index}"] = key_name
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    return env


def said(text: str, lines: int = 6, limit: int = 1500) -> str:
    """The end of git's message on one line, without credentials in any URL."""
    text = re.sub(r"(https?://)[^/@\s]+@", r"\1***@", text or "")
    return " / ".join(line.strip() for line in text.strip().splitlines()[-lines:] if line.strip())[:limit]
