# SPDX-License-Identifier: Apache-2.0
"""The launcher's directories and files on one host, as arguments of the fleet_files module.

One list for the whole host, so that a run writes (or, more often, checks)
all of them in one module run: each agent's workspace and private CLI
directory, its env file and CLI settings (secrets: mode 0600, the agent
user's), the scripts that run on the target without Ansible, and the fleet
spec the unit starts the session from.
"""

from __future__ import annotations

import json
import posixpath


def launcher_files(fleet: list[dict], layout: dict) -> dict:
    """{'directories': [...], 'files': [...]} for fleet_files, from launcher_fleet's output.

    layout: user, home, workspace_root, libexec_dir, config_dir, scripts (a
    list of {name, content, mode} installed in libexec_dir), spec (the
    fleet spec's text) and session (the tmux session: the runtime spec's).
    """
    user, config_dir = layout["user"], layout["config_dir"]

    def directory(path: str, owner: str, mode: str) -> dict:
        return {"path": path, "owner": owner, "group": owner, "mode": mode}

    def private(path: str, content: str) -> dict:
        return {"path": path, "content": content, "owner": user, "group": user, "mode": "0600"}

    directories = [
        directory(layout["libexec_dir"], "root", "0755"),
        directory(posixpath.dirname(config_dir), "root", "0755"),
        {"path": config_dir, "owner": "root", "group": user, "mode": "0750"},
        directory(layout["workspace_root"], user, "0750"),
        directory(f"{layout['home']}/.central-mcp", user, "0700"),
    ]
    files = [
        {"path": f"{layout['libexec_dir']}/{script['name']}", "content": script["content"],
         "owner": "root", "group": "root", "mode": script["mode"]}
        for script in layout["scripts"]
    ]  # fmt: skip
    for agent in fleet:
        directories += [directory(agent["workdir"], user, "0750"), directory(agent["state_dir"], user, "0700")]
        files.append(private(f"{config_dir}/{agent['name']}.env", agent["env_file"]))
        # Settings documents are JSON whatever the CLI reads: agent-run merges them into its own files.
        # A worker's file (its CLI's command line and exit keys, its task prompt) is read by agent-run itself.
        documents = agent["configs"] + ([agent["worker"]] if agent.get("worker") else [])
        files += [private(c["path"], json.dumps(c["content"], indent=4, sort_keys=True) + "\n") for c in documents]
    files.append({"path": f"{config_dir}/fleet.json", "content": layout["spec"], "owner": "root", "group": user,
                  "mode": "0640"})  # fmt: skip
    # What agent-runtime runs: every worker of the host (it reads the file again when it changes).
    # The fleet spec: where the runtime applies a window change that waited for a task to end.
    workers = [a["runtime"] for a in fleet if a.get("runtime")]
    runtime = {"session": layout["session"], "fleet_spec": f"{config_dir}/fleet.json", "workers": workers}
    files.append({"path": f"{config_dir}/runtime.json", "content": json.dumps(runtime, indent=2) + "\n",
                  "owner": "root", "group": user, "mode": "0640"})  # fmt: skip
    return {"directories": directories, "files": files}


class FilterModule:
    def filters(self):
        return {"launcher_files": launcher_files}
