# SPDX-License-Identifier: Apache-2.0
"""The launcher's directories and files on one host, as arguments of the fleet_files module.

One list for the whole host, so that a run writes (or, more often, checks)
all of them in one module run: each agent's workspace and CLI home, its env
file and CLI settings, the scripts that run on the target without Ansible,
the sudo rule that starts each agent as its own user, and the fleet spec
the unit starts the session from.

Who may read what, with an agent of its own Unix user (launcher_fleet's
``user``): the console user (layout ``user``: the tmux session, the worker
runtime, the Control window) reads the env files (the runtime claims tasks
with their tokens) and hands each agent its own environment through sudo;
an agent's user owns its workspace and CLI home (0700) and reads its own
CLI settings (root's, group its own, 0640), and nothing of another agent.
"""

from __future__ import annotations

import json
import posixpath

SUDOERS = "/etc/sudoers.d/central-mcp-agents"


def sudoers(console: str, agent_run: str, users: list[str]) -> str:
    """The one sudo rule: the console user runs agent-run, and only agent-run, as each agent's user.

    SETENV: agent-run hands the agent its environment (its token, its API keys) from the env file only
    the console user reads; the values never appear on a command line. !syslog: the command line of a
    task holds its prompt, which does not belong in the journal.
    """
    return (
        "# Written by Ansible (central_mcp.agents.launcher): the console user, which owns the tmux session,\n"
        "# starts each agent's CLI as that agent's own user, through agent-run only.\n"
        f"Defaults!{agent_run} !syslog\n"
        f"{console} ALL=({', '.join(users)}) NOPASSWD:SETENV: {agent_run}\n"
    )


def launcher_files(fleet: list[dict], layout: dict) -> dict:
    """{'directories': [...], 'files': [...]} for fleet_files, from launcher_fleet's output.

    layout: user, home, workspace_root, libexec_dir, config_dir, scripts (a
    list of {name, content, mode} installed in libexec_dir), spec (the
    fleet spec's text) and session (the tmux session: the runtime spec's).
    """
    user, config_dir = layout["user"], layout["config_dir"]

    def directory(path: str, owner: str, mode: str, group: str | None = None) -> dict:
        return {"path": path, "owner": owner, "group": group or owner, "mode": mode}

    def private(path: str, content: str, group: str | None = None) -> dict:
        return {"path": path, "content": content, "owner": "root" if group else user, "group": group or user,
                "mode": "0640" if group else "0600"}  # fmt: skip

    # Agents of their own users go through the console user's home, its .central-mcp and the
    # workspaces to reach their own directories (x), and list none of them.
    through = "0711" if any(agent.get("user") for agent in fleet) else None
    directories = [
        directory(layout["libexec_dir"], "root", "0755"),
        directory(posixpath.dirname(config_dir), "root", "0755"),
        {"path": config_dir, "owner": "root", "group": user, "mode": "0751" if through else "0750"},
        directory(layout["workspace_root"], user, through or "0750"),
        directory(f"{layout['home']}/.central-mcp", user, through or "0700"),
    ]
    if through:
        directories.insert(0, directory(layout["home"], user, "0751"))
    files = [
        {"path": f"{layout['libexec_dir']}/{script['name']}", "content": script["content"],
         "owner": "root", "group": "root", "mode": script["mode"]}
        for script in layout["scripts"]
    ]  # fmt: skip
    for agent in fleet:
        owner = agent.get("user") or user
        # recurse: a workspace or CLI home made before the agent had a user of its own becomes its user's.
        directories += [
            {**directory(agent["workdir"], owner, "0700" if agent.get("user") else "0750"), "recurse": True},
            {**directory(agent["state_dir"], owner, "0700"), "recurse": True},
        ]
        if agent.get("runtime"):  # its CLI's end-of-turn hook writes here, the runtime reads and removes
            turn_dir = posixpath.dirname(agent["runtime"]["turn_file"])
            directories.append(directory(turn_dir, user, "0770", owner))
        files.append(private(f"{config_dir}/{agent['name']}.env", agent["env_file"]))
        # Settings documents are JSON whatever the CLI reads: agent-run merges them into its own files,
        # as the agent's user. A worker's file (its CLI's command line and exit keys, its task prompt) is
        # read by the runtime.
        files += [
            private(c["path"], json.dumps(c["content"], indent=4, sort_keys=True) + "\n", agent.get("user"))
            for c in agent["configs"]
        ]
        if agent.get("worker"):
            worker = json.dumps(agent["worker"]["content"], indent=4, sort_keys=True) + "\n"
            files.append(private(agent["worker"]["path"], worker))
    files.append({"path": f"{config_dir}/fleet.json", "content": layout["spec"], "owner": "root", "group": user,
                  "mode": "0640"})  # fmt: skip
    # What agent-runtime runs: every worker of the host (it reads the file again when it changes).
    # The fleet spec: where the runtime applies a window change that waited for a task to end.
    workers = [a["runtime"] for a in fleet if a.get("runtime")]
    runtime = {"session": layout["session"], "fleet_spec": f"{config_dir}/fleet.json", "workers": workers}
    files.append({"path": f"{config_dir}/runtime.json", "content": json.dumps(runtime, indent=2) + "\n",
                  "owner": "root", "group": user, "mode": "0640"})  # fmt: skip
    users = [agent["user"] for agent in fleet if agent.get("user")]
    if users:
        # visudo checks it before it replaces the old one: a broken rule would lock out sudo itself.
        rule = sudoers(user, f"{layout['libexec_dir']}/agent-run", users)
        files.append({"path": SUDOERS, "content": rule, "owner": "root", "group": "root", "mode": "0440",
                      "validate": "/usr/sbin/visudo -cqf %s"})  # fmt: skip
    return {"directories": directories, "files": files}


class FilterModule:
    def filters(self):
        return {"launcher_files": launcher_files}
