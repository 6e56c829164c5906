# SPDX-License-Identifier: Apache-2.0
"""The launcher's directories and files on one host, as arguments of the fleet_files module.

One list for the whole host, so that a run writes (or, more often, checks)
all of them in one module run: each agent's workspace and CLI home, its env
file and CLI settings, the scripts that run on the target without Ansible,
the sudo rule and the units file with which agent-unit starts each agent in
a systemd unit of its own, as its own user, and the fleet spec the unit
starts the session from.

Who may read what, with an agent of its own Unix user (launcher_fleet's
``user``): the console user (layout ``user``: the tmux session, the worker
runtime, the Control window) reads the env files (the runtime claims tasks
with their tokens); systemd hands each agent its own as a credential;
an agent's user owns its workspace and CLI home (0700) and reads its own
CLI settings (root's, group its own, 0640), and nothing of another agent.
"""

from __future__ import annotations

import json
import posixpath

SUDOERS = "/etc/sudoers.d/central-mcp-agents"
UNITS = "/etc/central-mcp/agent-units.json"  # agent-unit reads it (root's)
SLICE = "central-mcp-agents.slice"

# Every agent's unit (agent-unit starts it with systemd-run): what an agent may do, whatever it runs.
# Not here, for coding agents' sake: MemoryDenyWriteExecute (Node's JIT writes code), IP address rules
# (they reach their model's API and package registries), ProcSubset=pid (Node reads /proc/cpuinfo).
SANDBOX = (
    "NoNewPrivileges=yes",
    "CapabilityBoundingSet=",
    "ProtectSystem=strict",
    "ProtectHome=tmpfs",  # no other agent's home, no console user's: its own are bound in below
    "PrivateTmp=yes",
    "PrivateDevices=yes",
    # A user namespace of its own: other users' files are nobody's to it, and systemd may build the mount
    # sandbox above even where it holds no CAP_SYS_ADMIN itself (a container).
    "PrivateUsers=yes",
    "ProtectKernelTunables=yes",
    "ProtectKernelModules=yes",
    "ProtectKernelLogs=yes",
    "ProtectControlGroups=yes",
    "ProtectClock=yes",
    "ProtectHostname=yes",
    "ProtectProc=invisible",  # the other agents' processes are not there to see
    "RestrictSUIDSGID=yes",
    "RestrictNamespaces=yes",
    "RestrictRealtime=yes",
    "LockPersonality=yes",
    "RemoveIPC=yes",
    "KeyringMode=private",
    "UMask=0077",
    "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK",
    "SystemCallArchitectures=native",
    # Codex's own sandbox for the commands it runs is Landlock and seccomp: it may set them up.
    "SystemCallFilter=@system-service landlock_create_ruleset landlock_add_rule landlock_restrict_self seccomp",
    "SystemCallErrorNumber=EPERM",  # a tool that tries a refused call gets an error, not a SIGSYS
    "TimeoutStopSec=10",
)


def sudoers(console: str, switch: str) -> str:
    """The one sudo rule: the console user runs agent-unit, and only it, as root.

    agent-unit takes everything about an agent's unit (its user, sandbox, limits, secrets) from the
    root-owned UNITS file, so the rule needs no SETENV and no user list. !syslog: the command line of a
    task holds its prompt, which does not belong in the journal. !use_pty: systemd-run gives the agent a
    terminal of its own already; a second one between would only relay.
    """
    return (
        "# Written by Ansible (central_mcp.agents.launcher): the console user, which owns the tmux session,\n"
        "# starts each agent's CLI in a unit of its own, as its own user, through agent-unit only.\n"
        f"Defaults!{switch} !syslog, !use_pty\n"
        f"{console} ALL=(root) NOPASSWD: {switch}\n"
    )


def agent_unit(agent: dict, layout: dict) -> dict:
    """What agent-unit starts an agent's CLI with: its unit's name, its user, agent-run and the unit's properties.

    layout: as launcher_files takes it, with session_unit, firewall_unit (None without the metadata
    rule), agent_memory_max and agent_tasks_max.
    """
    name, user = agent["name"], agent["user"]
    writable = [agent["state_dir"], agent["workdir"]]
    if agent.get("runtime"):
        writable.append(posixpath.dirname(agent["runtime"]["turn_file"]))
    home = layout["home"].rstrip("/") + "/"
    # Under /home (hidden by ProtectHome=tmpfs) a path is bound in; elsewhere it is made writable.
    bound = [path for path in writable if path.startswith("/home/") or path.startswith(home)]
    properties = [
        f"Description=Central-MCP agent {name} ({agent['kind']})",
        f"Slice={SLICE}",
        f"PartOf={layout['session_unit']}",  # stopping or restarting the agents' session stops it too
        *(
            [f"Requires={layout['firewall_unit']}", f"After={layout['firewall_unit']}"]
            if layout["firewall_unit"]
            else []
        ),
        f"WorkingDirectory={agent['workdir']}",
        f"LoadCredential=env:{layout['config_dir']}/{name}.env",
        *([f"LoadCredential=repo_key:{agent['repo_key_file']}"] if agent.get("repo_key_file") else []),
        *([f"LoadCredential=repo_token:{agent['repo_token_file']}"] if agent.get("repo_token_file") else []),
        f"MemoryMax={layout['agent_memory_max']}",
        f"TasksMax={layout['agent_tasks_max']}",
        *SANDBOX,
    ]
    elsewhere = [path for path in writable if path not in bound]
    properties += [f"BindPaths={' '.join(bound)}"] if bound else []
    properties += [f"ReadWritePaths={' '.join(elsewhere)}"] if elsewhere else []
    return {
        "unit": f"central-mcp-{user}.service",
        "user": user,
        "agent_run": f"{layout['libexec_dir']}/agent-run",
        "properties": properties,
    }


def with_repos(fleet: list[dict], plan: dict) -> list[dict]:
    """The fleet, each agent with a repository (repo_plan's ``agents``) told it in its runtime spec, and the
    key or token its unit loads as a credential."""
    found = []
    for agent in fleet:
        repo = plan.get("agents", {}).get(agent["name"])
        if repo:
            planned = plan["repos"][repo["name"]]
            runtime = {**agent["runtime"], "repo": repo} if agent.get("runtime") else agent.get("runtime")
            agent = {
                **agent, "runtime": runtime, "repo_key_file": planned["key_file"] if planned["key"] else "",
                "repo_token_file": planned["token_file"] if planned.get("token") else "",
            }  # fmt: skip
        found.append(agent)
    return found


def repo_files(plan: dict) -> dict:
    """The repositories' directory (root's), each used repository's deploy key or token (root only, 0600), its
    pinned host keys (a known_hosts file every agent may read) or private CA, and where the mirrors go."""
    used = {repo["name"] for repo in plan.get("agents", {}).values()}
    repos = [plan["repos"][name] for name in sorted(used)]
    if not repos:
        return {"directories": [], "files": []}
    first = repos[0]
    directories = [
        {"path": posixpath.dirname(first["key_file"]), "owner": "root", "group": "root", "mode": "0755"},
        {"path": posixpath.dirname(first["mirror"]), "owner": "root", "group": "root", "mode": "0755"},
    ]
    files = []
    for repo in repos:
        if repo["key"]:
            files.append({"path": repo["key_file"], "content": repo["key"], "owner": "root", "group": "root",
                          "mode": "0600"})  # fmt: skip
        if repo.get("token"):
            files.append({"path": repo["token_file"], "content": repo["token"], "owner": "root", "group": "root",
                          "mode": "0600"})  # fmt: skip
        if repo.get("ca"):
            files.append({"path": repo["ca_file"], "content": repo["ca"], "owner": "root", "group": "root",
                          "mode": "0644"})  # fmt: skip
        files.append({"path": repo["known_hosts"], "content": repo["known_hosts_text"], "owner": "root",
                      "group": "root", "mode": "0644"})  # fmt: skip
    return {"directories": directories, "files": files}


def launcher_files(fleet: list[dict], layout: dict) -> dict:
    """{'directories': [...], 'files': [...]} for fleet_files, from launcher_fleet's output.

    layout: user, home, workspace_root, libexec_dir, config_dir, scripts (a
    list of {name, content, mode} installed in libexec_dir), spec (the
    fleet spec's text) and session (the tmux session: the runtime spec's);
    for agents of their own users also session_unit, firewall_unit,
    agent_memory_max and agent_tasks_max (see agent_unit); repos, repo_plan's
    output, for the agents that work on a repository.
    """
    user, config_dir = layout["user"], layout["config_dir"]
    plan = layout.get("repos") or {}
    fleet = with_repos(fleet, plan)

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
    units = {agent["name"]: agent_unit(agent, layout) for agent in fleet if agent.get("user")}
    if units:
        # visudo checks it before it replaces the old one: a broken rule would lock out sudo itself.
        rule = sudoers(user, f"{layout['libexec_dir']}/agent-unit")
        files.append({"path": SUDOERS, "content": rule, "owner": "root", "group": "root", "mode": "0440",
                      "validate": "/usr/sbin/visudo -cqf %s"})  # fmt: skip
        files.append({"path": UNITS, "content": json.dumps({"agents": units}, indent=2, sort_keys=True) + "\n",
                      "owner": "root", "group": "root", "mode": "0600"})  # fmt: skip
    repos = repo_files(plan)
    return {"directories": directories + repos["directories"], "files": files + repos["files"]}


class FilterModule:
    def filters(self):
        return {"launcher_files": launcher_files}
