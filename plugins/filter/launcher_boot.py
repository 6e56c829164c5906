# SPDX-License-Identifier: Apache-2.0
"""What the launcher's boot starter runs on a host without systemd: its spec, boot.json.

The same session, relay and runtime as the systemd units run on a VM (the
same commands, users and credentials), for roles/launcher/files/central-mcp-boot,
plus what a stop of a pod wipes and the boot puts back: the launcher's
directories (links into the persistent root), the CLIs' links, the sudo
rule and the users.
"""

from __future__ import annotations

import posixpath

from ansible_collections.central_mcp.agents.plugins.filter.launcher_files import SUDOERS, sudoers

SESSION_RUN_DIR = "/run/central-mcp-agents"
# What the boot starter and the agents' switch run (the pod's image has them; see images/pod).
NEEDS = ("python3", "tmux", "sudo", "setpriv")


def _under(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def launcher_boot(layout: dict) -> dict:
    """boot.json for one host, from where the launcher puts things there (``layout``, see the doc)."""
    user, home, libexec = layout["user"], layout["home"], layout["libexec_dir"]
    python = "/usr/bin/python3"
    # The launcher's own directories, each kept as a link into the persistent root; a directory under
    # another of them (the workspaces under the home) goes with it.
    kept = []
    for path in [layout["config_parent"], libexec, *layout["state_dirs"], home, layout["workspace_root"]]:
        if not any(_under(path, other) for other in kept):
            kept = [other for other in kept if not _under(other, path)] + [path]
    services = []
    tunnel = layout.get("tunnel")
    if tunnel:  # first: the agents reach the coordinator through it, and the dashboard the relay
        # No one's ssh_config (-F /dev/null); the VM's host key, and only it, is trusted; a forward that cannot
        # be opened (the VM still holds the last one) ends ssh, and the starter tries again.
        options = [
            "BatchMode=yes", "ExitOnForwardFailure=yes", "ServerAliveInterval=15", "ServerAliveCountMax=3",
            "StrictHostKeyChecking=yes", f"UserKnownHostsFile={tunnel['known_hosts']}", "IdentitiesOnly=yes",
            "IdentityFile=%d/tunnel_key",
        ]  # fmt: skip
        command = [
            "ssh", "-N", "-F", "/dev/null", *(arg for option in options for arg in ("-o", option)),
            "-p", str(tunnel["ssh_port"]), "-L", f"127.0.0.1:{tunnel['forward']}:127.0.0.1:{tunnel['forward']}",
            "-R", f"127.0.0.1:{tunnel['port']}:127.0.0.1:{tunnel['relay_port']}",
            f"{tunnel['user']}@{tunnel['address']}",
        ]  # fmt: skip
        services.append(
            {
                "name": "tunnel",
                "user": user,
                "command": command,
                "credentials": {"tunnel_key": tunnel["key_file"]},
                "env": {"HOME": home, "LANG": "C.UTF-8"},
                "restart_s": 3,
            }
        )
    pidfile = f"{SESSION_RUN_DIR}/tmux.pid"  # the tmux server forks: the starter watches the pid written here
    services += [
        {
            "name": "session",
            "user": user,
            "keep": True,  # never restarted for a new definition: that would end every agent
            "no_new_privileges": False,  # its windows start each agent as its own user through sudo
            "command": [python, f"{libexec}/tmux_fleet.py", "--spec", layout["fleet_spec"], "--pidfile", pidfile],
            "pidfile": pidfile,
            "runtime_dirs": [SESSION_RUN_DIR],
            "cwd": home,
            "env": {"HOME": home, "LANG": "C.UTF-8", "TERM": "tmux-256color"},
            "stop": ["tmux", "kill-server"],
            "restart_s": 5,
        }
    ]
    relay = layout.get("relay")
    if relay:
        command = [
            relay["bin"], "relay", "--listen", relay["listen"], "--relay-token-file", "%d/relay_token",
            "--tls-cert-file", "%d/tls_cert", "--tls-key-file", "%d/tls_key", "--session", layout["session"],
            *(["--allow-input"] if relay.get("allow_input") else []),
        ]  # fmt: skip
        services.append(
            {
                "name": "relay",
                "user": user,
                "command": command,
                "credentials": {
                    "relay_token": relay["token_file"],
                    "tls_cert": relay["tls_cert"],
                    "tls_key": relay["tls_key"],
                },
                "env": {"HOME": home, "LANG": "C.UTF-8"},
                "restart_s": 2,
            }
        )
    if layout.get("workers"):
        services.append(
            {
                "name": "runtime",
                "user": user,
                "command": [python, f"{libexec}/agent-runtime", "--spec", layout["runtime_spec"]],
                "cwd": home,
                "env": {"HOME": home, "LANG": "C.UTF-8", "MALLOC_ARENA_MAX": "1"},
                "restart_s": 1,
            }
        )
    return {
        "links": kept,
        "bin_links": {link: target for install in layout["installs"] for link, target in install["bin"].items()},
        "files": [{"path": SUDOERS, "mode": "0440", "content": sudoers(user, f"{libexec}/agent-unit")}],
        "users": [{"name": user, "home": home, "shell": "/bin/bash", "groups": []}, *layout["agent_users"]],
        "needs": [*NEEDS, *(["ssh"] if tunnel else [])],
        "services": services,
        # A stop of the pod: the host's tasks go back to the coordinator at once (as a VM's shutdown does).
        "on_stop": [[python, f"{libexec}/agent-leaving", "--config-dir", layout["config_dir"], "--now"]],
        "dir": posixpath.join(layout["persistent_root"], ".central-mcp"),
    }


class FilterModule:
    def filters(self):
        return {"launcher_boot": launcher_boot}
