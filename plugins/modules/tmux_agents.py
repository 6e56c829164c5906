#!/usr/bin/python
# SPDX-License-Identifier: Apache-2.0
"""Ansible module: keep a tmux session of AI coding agents in line with a spec."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: tmux_agents
short_description: Keep a tmux session of AI coding agents, one window per agent
version_added: "0.1.0"
description:
  - Creates or reconciles one tmux session that holds a fleet of agents. Window
    0 is C(Control), then one window per entry of O(agents), in order, named
    by its O(agents[].name); the last window is C(Logs).
  - Each window stores the sha256 of what it runs (O(agents[].command),
    O(agents[].env), O(agents[].workdir), O(agents[].revision)) in the tmux
    window option C(@central_mcp_spec). A window whose digest matches is left
    alone, so adding an agent restarts none of the others and changing one
    agent restarts only that agent.
  - A window whose digest differs, or whose command has exited (its pane is
    dead), is respawned in place with C(respawn-window -k). A missing window is
    created. A window that is not in the spec is killed. Windows are then put
    in order by moving them, which never restarts their processes.
  - Every managed window gets C(remain-on-exit on), C(automatic-rename off) and
    C(allow-rename off), so names stay as given and an agent that exits leaves
    a dead pane to inspect; the next run respawns it.
  - The same reconcile runs at boot from the C(tmux_fleet.py) script of this
    collection's C(module_utils), fed with a JSON file holding these options.
  - Names are checked before any tmux command runs, and tmux is always run
    from an argument list, never through a shell.
author:
  - Central-MCP maintainers (@central-mcp)
options:
  session:
    description:
      - Name of the tmux session.
      - 1-32 characters, a letter first, then letters, digits, V(_) or V(-).
    type: str
    default: central-mcp-agents
  socket_name:
    description:
      - Name of the tmux server socket, as for C(tmux -L). Omit it to use the
        default server of the user the module runs as.
    type: str
  agents:
    description:
      - The agents, in window order. Ignored when O(state=absent).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description:
          - Window name. 1-32 characters, a letter first, then letters, digits,
            V(_) or V(-). Unique (case-insensitively); C(Control) and C(Logs)
            are reserved.
        type: str
        required: true
      command:
        description:
          - Shell command run in the window (tmux runs it with C(sh -c)).
        type: str
        required: true
      env:
        description:
          - Environment variables for the command, passed as C(tmux -e
            KEY=VALUE). Keys are letters, digits and V(_), not a digit first;
            values are strings without NUL or newline.
          - B(Never put secrets here); they would be visible in the tmux
            client's command line while it runs. Put them in a file readable
            only by the agent's user and have O(agents[].command) read it.
        type: dict
      workdir:
        description:
          - Absolute path of the directory the command starts in. It must
            exist (tmux would silently start elsewhere).
        type: path
      revision:
        description:
          - Free-form string that is part of the window's identity. Change it to
            restart this agent when something it reads changed but its command
            did not (a new config file, a rotated token file).
        type: str
  control_command:
    description:
      - Shell command of window 0, C(Control). The default redraws the window
        list (index, name, running or dead, pid) every 5 seconds.
    type: str
    default: >-
      while :; do clear; date; tmux list-windows -F '#{window_index}
      #{window_name} #{?pane_dead,DEAD,running} pid #{pane_pid}'; sleep 5; done
  logs_command:
    description:
      - Shell command of the last window, C(Logs).
      - The user the module runs as must be allowed to read that journal
        (for example be in the C(systemd-journal) group); a command that exits
        at once leaves a dead pane, which every run respawns (and so reports
        changed).
    type: str
    default: journalctl -f -u central-mcp.service
  drain_timeout_s:
    description:
      - A worker's window whose task's CLI runs (the worker runtime marks it
        with the window options C(@central_mcp_task) and
        C(@central_mcp_task_since)) is not restarted for a change; it is
        returned in RV(pending), and the runtime restarts it when the task
        ends.
      - With a number, a change waits at most that many seconds after the
        task started; then the window restarts, and its task goes back to
        the board. Omit it to never cut a task short.
    type: int
  state:
    description:
      - V(present) creates or reconciles the session.
      - V(absent) kills the session, and every process in it, if it exists.
    type: str
    choices: [present, absent]
    default: present
attributes:
  check_mode:
    support: full
    description: Reads the session only and reports what would change.
  diff_mode:
    support: full
    description: Shows the window list before and after, one C(index name) line
      each, with restarted windows marked.
  platform:
    support: full
    platforms: posix
    description: Runs on the target, a Linux VM.
notes:
  - Needs tmux 3.2 or later on the target (tested with 3.3a).
  - The lists in the return values name agents only; a change to the C(Control)
    or C(Logs) window shows in C(changed) and in the diff.
  - Agents run as the user the module runs as; use C(become_user) to pick it.
seealso:
  - name: tmux manual
    description: The tmux options and commands this module drives.
    link: https://man.openbsd.org/tmux.1
"""

EXAMPLES = r"""
- name: Run four agents side by side
  central_mcp.agents.tmux_agents:
    socket_name: central-mcp
    agents:
      - name: A
        command: claude --model claude-sonnet-5-5
        workdir: /srv/agents/A
      - name: B
        command: claude --model claude-sonnet-5-5
        workdir: /srv/agents/B
      - name: C
        # The API key is read from a 0600 file, never passed in env.
        command: ANTHROPIC_API_KEY="$(cat /srv/agents/C/.api-key)" exec claude
        env:
          ANTHROPIC_BASE_URL: https://api.example.invalid/anthropic
        workdir: /srv/agents/C
      - name: D
        command: claude
        workdir: /srv/agents/D
        revision: "{{ __launcher_agent_config.checksum | default('') }}"
  become: true
  become_user: agent
  register: __launcher_tmux

- name: Show what a change would do, without doing it
  central_mcp.agents.tmux_agents:
    socket_name: central-mcp
    agents: "{{ launcher_tmux_agents }}"
  check_mode: true
  diff: true

- name: Stop the whole fleet
  central_mcp.agents.tmux_agents:
    socket_name: central-mcp
    state: absent
"""

RETURN = r"""
added:
  description: Agents whose window was created.
  returned: always
  type: list
  elements: str
  sample: [E]
removed:
  description: Windows that were killed (agents no longer in the spec, stray
    windows; with O(state=absent), every agent window of the session).
  returned: always
  type: list
  elements: str
  sample: [D]
restarted:
  description: Agents whose window was respawned, because what it runs changed
    or its command had exited.
  returned: always
  type: list
  elements: str
  sample: [C]
unchanged:
  description: Agents whose window was left alone (same process).
  returned: always
  type: list
  elements: str
  sample: [A, B]
pending:
  description: Agents whose window changed while a task of theirs runs in it
    (the worker runtime marks it with the window option C(@central_mcp_task)).
    It is left alone; the runtime restarts it when the task ends.
  returned: always
  type: list
  elements: str
  sample: [D]
windows:
  description: Window names in their final order, index 0 first (empty when
    O(state=absent)).
  returned: always
  type: list
  elements: str
  sample: [Control, A, B, C, E, Logs]
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.central_mcp.agents.plugins.module_utils.tmux_fleet import (  # noqa: E402
    DEFAULT_CONTROL_COMMAND,
    DEFAULT_LOGS_COMMAND,
    DEFAULT_SESSION,
    FleetError,
    Tmux,
    TmuxError,
    apply,
    plan,
    plan_absent,
    preflight,
    validate,
    validate_session,
)

AGENT_OPTIONS = {
    "name": {"type": "str", "required": True},
    "command": {"type": "str", "required": True},
    "env": {"type": "dict"},
    "workdir": {"type": "path"},
    "revision": {"type": "str"},
}
ARGUMENT_SPEC = {
    "session": {"type": "str", "default": DEFAULT_SESSION},
    "socket_name": {"type": "str"},
    "agents": {"type": "list", "elements": "dict", "options": AGENT_OPTIONS, "default": []},
    "control_command": {"type": "str", "default": DEFAULT_CONTROL_COMMAND},
    "logs_command": {"type": "str", "default": DEFAULT_LOGS_COMMAND},
    "drain_timeout_s": {"type": "int"},
    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
}


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    binary = module.get_bin_path("tmux")
    if not binary:
        module.fail_json(msg="tmux was not found on the target's PATH: install the tmux package")
    try:
        # Validate everything before the first tmux call that could change anything.
        session, socket_name = validate_session(params["session"], params["socket_name"])
        spec = None
        if params["state"] == "present":
            spec = validate({key: params[key] for key in ARGUMENT_SPEC if key not in ("state", "drain_timeout_s")})
        tmux = Tmux(socket_name, binary=binary)
        current = tmux.windows(session)  # the one read
        todo = plan(current, spec, params["drain_timeout_s"]) if spec else plan_absent(current)
        # In check mode a new agent's workdir does not exist yet: the run
        # that really adds it creates it first (the launcher does).
        if not module.check_mode:
            preflight(todo)
        if todo.changed and not module.check_mode:  # the one change point
            apply(tmux, session, todo)
    except FleetError as exc:
        module.fail_json(msg=str(exc))
    except TmuxError as exc:
        module.fail_json(msg=str(exc), **exc.partial)
    result = todo.result()
    if module._diff:
        result["diff"] = todo.diff()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
