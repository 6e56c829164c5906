#!/usr/bin/python
# SPDX-License-Identifier: Apache-2.0
"""Ansible module: report the health of every agent of a tmux fleet, changing nothing."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: agent_status
short_description: Report every agent of the tmux fleet - process, CPU, memory, restarts, coordinator record
version_added: "0.1.0"
description:
  - Reads, never changes. For each agent window of the tmux session (every
    window but C(Control) and C(Logs)) it reports the agent process, whether
    it is alive, its CPU and memory, how long it has run, how often its
    wrapper restarted it, and what the coordinator knows of it.
  - The agent process is the pane's process or, when the pane runs the
    launcher's wrapper C(agent-run) (directly or under a shell), the
    wrapper's child. CPU and memory cover that process and its descendants
    (the tools the agent runs).
  - The cost does not grow with the fleet. One C(tmux list-panes) call reads
    every pane. Two samples of C(/proc), 0.2 seconds apart, read every
    process at once. With O(coordinator_url), one HTTP request is made while
    the CPU sample runs. A run takes about half a second for 8 or 100 agents.
  - "An agent is unhealthy when its pane is dead, when its wrapper runs
    without an agent (it waits to restart it), when the agent is a zombie or
    stopped, when it has no window although O(expected_agents) (or the
    coordinator) names it, or, when the coordinator answered, when the
    coordinator does not list it as registered."
  - When the coordinator is down, too slow or answers something else than
    the expected JSON, the agents are still reported, with RV(agents[].registered)
    null, and a warning names the URL and the error.
  - It also reports the disk use of the filesystems that hold
    O(disk_paths) (C(/) by default; give the agents' workspace root too),
    one entry per filesystem. At or above O(disk_warn_percent) in use, it
    warns and names the inventory variable to raise, C(vm_upgrade_disk_size_gb)
    (the boot disk then grows online on the next C(site.yml) run).
  - The same code runs on the target as a script, for the fleet's Control
    window - C(python3 agent_probe.py --session S --watch 5) (see
    C(--help)); it prints the table that C(playbooks/status.yml) prints.
author:
  - Central-MCP maintainers (@central-mcp)
options:
  session:
    description:
      - Name of the tmux session that holds the agents.
    type: str
    default: central-mcp-agents
  socket_name:
    description:
      - Name of the tmux server socket, as for C(tmux -L). Omit it to read
        the default server of the user the module runs as (the launcher's
        C(agent) user, through C(become_user)).
    type: str
  coordinator_url:
    description:
      - >-
        Base URL of the coordinator, for example V(http://127.0.0.1:3000).
        The module sends C(GET <coordinator_url>/api/agents) and expects
        C({"agents": [{"name": "A", "state": "idle", "registered": true,
        "last_seen_s": 3.2, "current_task": {"id": 12, "title": "..."}}]})
        (C(state) is one of V(idle), V(working), V(quiet), V(waiting), V(starting), V(stale), V(offline);
        C(current_task) may be null).
      - Redirects are not followed, so the token is only sent to this URL.
      - Omit it to skip the coordinator; RV(agents[].registered) is then null.
    type: str
  coordinator_ca_file:
    description:
      - For an V(https) O(coordinator_url), the CA certificate (PEM) on the target that its certificate must chain
        to, instead of the system's CAs (the fleet CA of a coordinator on another VM).
    type: path
  coordinator_token:
    description:
      - "Bearer token for the coordinator, sent as C(Authorization: Bearer ...).
        Comes from Ansible Vault; never logged."
    type: str
  timeout:
    description:
      - Seconds to wait for the coordinator (to connect, and for each read).
    type: float
    default: 2
  expected_agents:
    description:
      - Names of the agents this host should run (the names in
        C(central_mcp_agents)). One that has no window is reported, as
        C(missing) and unhealthy.
      - When empty, every agent the coordinator lists is expected here. Give
        it when agents run on several hosts, or the agents of the other hosts
        are reported missing on this one.
    type: list
    elements: str
    default: []
  disk_paths:
    description:
      - Absolute paths whose filesystems are measured (a path that does not
        exist yet is measured on its nearest existing parent's filesystem).
        Paths on one filesystem give one entry in RV(disk).
    type: list
    elements: str
    default: [/]
  disk_warn_percent:
    description:
      - Warn when a filesystem of O(disk_paths) is this full or fuller, in
        percent (above 0, at most 100); df's use, where space reserved for
        root counts as used.
    type: float
    default: 85
  fail_on_unhealthy:
    description:
      - Fail, with the summary line and each unhealthy agent's reason in the
        message and the full results, when an agent is unhealthy or the
        session is not running.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: The module never changes anything; check mode runs it as usual.
  diff_mode:
    support: none
    description: Reports, never changes anything, so there is nothing to diff.
  platform:
    support: full
    platforms: posix
    description: Runs on the target, a Linux VM.
notes:
  - Linux only (reads C(/proc)); needs tmux 3.2 or later (tested with 3.3a).
  - Run it as the user that owns the tmux server (C(become_user)), which can
    also read the agents' C(/proc) entries.
  - "RV(agents[].restarts) comes from the pane option C(@agent_run_starts),
    which a wrapper sets to C(<wrapper pid>:<starts>) (C(tmux set-option -p))
    each time it starts the agent. Without it the count is 0 when the agent
    started within one second of its wrapper (C(agent-run) never restarts
    sooner) and null (unknown) otherwise."
  - CPU percentages are of one core, as in C(top); 4 busy cores read 400.
seealso:
  - module: central_mcp.agents.tmux_agents
"""

EXAMPLES = r"""
- name: Read the fleet's health
  central_mcp.agents.agent_status:
    coordinator_url: http://127.0.0.1:3000
    coordinator_token: "{{ central_mcp_api_token }}"
    expected_agents: "{{ central_mcp_agents | map(attribute='name') | list }}"
  become: true
  become_user: agent
  register: __status

- name: Show one line per host
  ansible.builtin.debug:
    msg: "{{ __status.summary.line }}"

- name: Fail a deployment check when an agent is down or unregistered
  central_mcp.agents.agent_status:
    coordinator_url: http://127.0.0.1:3000
    coordinator_token: "{{ central_mcp_api_token }}"
    fail_on_unhealthy: true
  become: true
  become_user: agent

- name: Report the disk of / and of the agents' workspaces, warning at 90 % use
  central_mcp.agents.agent_status:
    disk_paths: [/, /home/agent/workspaces]
    disk_warn_percent: 90
  become: true
  become_user: agent
  register: __status

- name: List the agents that are not alive
  ansible.builtin.debug:
    msg: "{{ __status.agents | rejectattr('alive') | map(attribute='name') | list }}"
"""

RETURN = r"""
agents:
  description: One entry per agent window (in window order), then the agents
    that are expected but have no window.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The agent's name (its window's name).
      type: str
      sample: A
    kind:
      description: The agent's CLI kind (a file of the launcher's vars/kinds, such as V(codex)), from
        C(AGENT_KIND) in its environment, else the coordinator's record; null when nothing tells.
      type: str
      sample: codex
    window:
      description: Index of its window; null when it has none.
      type: int
      sample: 1
    pid:
      description: PID of the agent process itself (the wrapper's child when
        the pane runs C(agent-run)); null when there is none.
      type: int
      sample: 4242
    cli_pid:
      description: PID of the CLI itself, which may run under the agent
        process (Codex's native binary under its Node wrapper, Gemini's
        relaunched Node); null without a process that looks like the CLI.
      type: int
      sample: 4250
    wrapper_pid:
      description: PID of the C(agent-run) wrapper; null without one.
      type: int
      sample: 4240
    alive:
      description: The agent process exists and is not a zombie.
      type: bool
      sample: true
    cpu_percent:
      description: CPU use of the agent and its descendants over 0.2 seconds,
        in percent of one core; null without a process.
      type: float
      sample: 12.5
    rss_bytes:
      description: Resident memory of the agent and its descendants; null
        without a process.
      type: int
      sample: 412090368
    uptime_s:
      description: Seconds since the agent process started; null without one.
      type: float
      sample: 3605.2
    restarts:
      description: How often the wrapper started the agent beyond the first
        time; null when unknown (see the notes).
      type: int
      sample: 0
    registered:
      description: Whether the coordinator lists the agent as registered; null
        when the coordinator was not asked or gave no usable answer.
      type: bool
      sample: true
    last_seen_s:
      description: Seconds since the coordinator last heard from the agent.
      type: float
      sample: 3.2
    current_task:
      description: The task the coordinator has the agent on (C(id), C(title)),
        or null.
      type: dict
      sample: {id: 12, title: Add the login page}
    state:
      description: V(running) (V(idle) for a worker between tasks, whose
        runtime runs no CLI; or, once the coordinator answered, its state
        V(idle), V(working), V(quiet), V(waiting), V(starting), V(stale),
        V(offline)) when the process is fine; otherwise what is wrong -
        V(dead) (pane dead),
        V(restarting) (wrapper without agent), V(zombie), V(stopped),
        V(gone), V(missing) (no window), V(unregistered).
      type: str
      sample: working
    healthy:
      description: False when the agent is unhealthy; RV(agents[].problem) says why.
      type: bool
      sample: true
    problem:
      description: Why the agent is unhealthy, or null.
      type: str
      sample: its pane is dead (exit status 1)
disk:
  description: One entry per filesystem that holds a path of O(disk_paths), in their order.
  returned: always
  type: list
  elements: dict
  contains:
    mount:
      description: The filesystem's mount point.
      type: str
      sample: /
    paths:
      description: The paths of O(disk_paths) on this filesystem.
      type: list
      elements: str
      sample: [/, /home/agent/workspaces]
    total_bytes:
      description: The filesystem's size.
      type: int
      sample: 10464022528
    free_bytes:
      description: Space the agents (not root) can still write.
      type: int
      sample: 1293598720
    used_bytes:
      description: Space in use.
      type: int
      sample: 8633540608
    used_percent:
      description: Used share as df shows it (used / (used + free_bytes)); null for a filesystem without size.
      type: float
      sample: 87.0
    warn_percent:
      description: The threshold it was compared with (O(disk_warn_percent)).
      type: float
      sample: 85.0
    warning:
      description: The warning (also given as an Ansible warning) when RV(disk[].used_percent) is at or
        above the threshold, naming C(vm_upgrade_disk_size_gb); null otherwise.
      type: str
      sample: "disk / is 87 % used (1.2 GiB free of 9.7 GiB), above the 85 % warning threshold: raise
        vm_upgrade_disk_size_gb in the inventory (or set it to auto) and run site.yml; the boot disk grows online"
machine:
  description: This VM's vCPUs and memory, for the status table's capacity of each VM (the sizing rule holds
    its agents against them).
  returned: always
  type: dict
  contains:
    cpus:
      description: The CPUs the kernel shows.
      type: int
      sample: 2
    memory_bytes:
      description: MemTotal; null when it cannot be read.
      type: int
      sample: 8341024768
summary:
  description: Counts over RV(agents), and the same as one line.
  returned: always
  type: dict
  contains:
    total:
      description: Number of agents reported.
      type: int
      sample: 8
    running:
      description: Agents whose process is alive.
      type: int
      sample: 8
    registered:
      description: Agents the coordinator lists as registered; null when the
        coordinator was not asked or gave no usable answer.
      type: int
      sample: 8
    unhealthy:
      description: Agents with RV(agents[].healthy) false.
      type: int
      sample: 0
    line:
      description: The counts as one line, C(?) for an unknown count; names
        the session when it is not running.
      type: str
      sample: "8 agents: 8 running, 8 registered, 0 unhealthy"
    session_found:
      description: Whether the tmux session exists.
      type: bool
      sample: true
    coordinator:
      description: V(ok), V(unreachable) (see the warning) or V(not asked).
      type: str
      sample: ok
"""

from urllib.parse import urlsplit  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.central_mcp.agents.plugins.module_utils import disk_use  # noqa: E402
from ansible_collections.central_mcp.agents.plugins.module_utils.agent_probe import (  # noqa: E402
    DEFAULT_SESSION,
    Options,
    ProbeError,
    probe,
)
from ansible_collections.central_mcp.agents.plugins.module_utils.machine import machine  # noqa: E402
from ansible_collections.central_mcp.agents.plugins.module_utils.tmux_fleet import (  # noqa: E402
    FleetError,
    validate_session,
)

ARGUMENT_SPEC = {
    "session": {"type": "str", "default": DEFAULT_SESSION},
    "socket_name": {"type": "str"},
    "coordinator_url": {"type": "str"},
    "coordinator_token": {"type": "str", "no_log": True},
    "coordinator_ca_file": {"type": "path"},
    "timeout": {"type": "float", "default": 2.0},
    "expected_agents": {"type": "list", "elements": "str", "default": []},
    "disk_paths": {"type": "list", "elements": "str", "default": ["/"]},
    "disk_warn_percent": {"type": "float", "default": 85.0},
    "fail_on_unhealthy": {"type": "bool", "default": False},
}


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    binary = module.get_bin_path("tmux")
    if not binary:
        module.fail_json(msg="tmux was not found on the target's PATH: install the tmux package")
    try:
        validate_session(params["session"], params["socket_name"])
    except FleetError as exc:
        module.fail_json(msg=str(exc))
    url = params["coordinator_url"]
    if url and (urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname):
        module.fail_json(msg=f"coordinator_url {url!r} is not an http(s) URL: give one like http://127.0.0.1:3000")
    if params["timeout"] <= 0:
        module.fail_json(msg=f"timeout {params['timeout']!r} is not allowed: give a number of seconds above 0")
    relative = [p for p in params["disk_paths"] if not p.startswith("/")]
    if relative or not params["disk_paths"]:
        module.fail_json(msg=f"disk_paths {relative or []!r}: give absolute paths, like / and the workspace root")
    if not 0 < params["disk_warn_percent"] <= 100:
        pct = params["disk_warn_percent"]
        module.fail_json(msg=f"disk_warn_percent {pct!r} is not allowed: give a percentage above 0 and at most 100")
    opts = Options(
        params["session"],
        params["socket_name"],
        url,
        params["coordinator_token"],
        params["timeout"],
        tuple(params["expected_agents"]),
        binary,
        params["coordinator_ca_file"],
    )
    try:
        report = probe(opts)  # reads only: no change point, so check mode needs no guard
    except ProbeError as exc:
        module.fail_json(msg=str(exc))
    try:
        disk = disk_use.report(params["disk_paths"], params["disk_warn_percent"])
    except OSError as exc:
        module.fail_json(msg=f"cannot measure the disk of {params['disk_paths']!r}: {exc}")
    for warning in report["warnings"] + [d["warning"] for d in disk if d["warning"]]:
        module.warn(warning)
    result = {"changed": False, "agents": report["agents"], "summary": report["summary"], "disk": disk,
              "machine": machine()}  # fmt: skip
    summary = report["summary"]
    if params["fail_on_unhealthy"] and (summary["unhealthy"] or not summary["session_found"]):
        why = "; ".join(f"{a['name']}: {a['problem']}" for a in report["agents"] if a["problem"])
        module.fail_json(msg=f"{summary['line']}{' - ' + why if why else ''}", **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
