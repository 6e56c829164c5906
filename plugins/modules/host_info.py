#!/usr/bin/python
# SPDX-License-Identifier: Apache-2.0
"""Ansible module: one read-only look at a host, for the roles to skip every step that is done."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: host_info
short_description: Read in one module run what a role needs to know about a host
version_added: "0.3.0"
description:
  - Answers, in B(one) module run that changes nothing, the questions a role
    asks before it changes a host. Which of some paths exist, and where
    their links point? Which OS packages are missing? Are some users there
    as they should be? Are some systemd units enabled and running? How much
    room is free on the disk? Does a URL answer? And which Python runs
    modules on it?
  - The collection's roles call it first and skip each step the answer
    shows done. A re-run that changes nothing then costs a few module runs
    per host instead of one per step. Each C(ansible.builtin.user),
    C(systemd_service), C(stat) or C(uri) that only finds its work done
    costs a whole module run (a fraction of a second over SSH, more over
    C(podman exec)).
  - It reads only. It also runs in check mode, so check mode sees what a
    real run would do.
  - RV(paths), RV(users) and RV(units) are keyed by the path, user or unit
    asked for, and what each value holds is listed under them (so
    RV(paths.link_target) is C(paths[PATH].link_target)). RV(free_bytes) is
    keyed by path too. RV(memory_mb) is the VM's memory (each agent's memory
    ceiling is worked out from it).
author:
  - Central-MCP maintainers (@central-mcp)
options:
  paths:
    description: Paths to look at (links are not followed for RV(paths.link_target)).
    type: list
    elements: path
    default: []
  packages:
    description:
      - Debian package names; those that C(dpkg-query) does not list as
        installed are returned in RV(missing_packages).
    type: list
    elements: str
    default: []
  users:
    description: Users that should exist with these attributes; each is compared and reported in RV(users).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: User name.
        type: str
        required: true
      home:
        description: Home directory it should have. Omit it to accept any.
        type: path
      shell:
        description: Login shell it should have. Omit it to accept any.
        type: path
      groups:
        description: Groups it should be a member of (others are allowed).
        type: list
        elements: str
        default: []
  units:
    description: systemd units to report on, read with one C(systemctl show).
    type: list
    elements: str
    default: []
  free_space:
    description:
      - Paths whose filesystem's free space (for unprivileged users, as
        C(df) shows it) is returned in RV(free_bytes). Paths that do not
        exist are left out.
    type: list
    elements: path
    default: []
  url:
    description: A URL to ask with one GET; its HTTP status is returned in RV(url_status).
    type: str
  stamps:
    description:
      - Stamps left by M(central_mcp.agents.fleet_files) (its C(stamp) option), each checked against the
        paths it signs and returned in RV(stamps). A role leaves its C(fleet_files) task out when the stamp
        is intact and records the input of this run's arguments.
    type: list
    elements: path
    default: []
  url_timeout:
    description: Seconds to wait for O(url).
    type: float
    default: 3
attributes:
  check_mode:
    support: full
    description: It only reads, so it runs in check mode as in a real run and gives the same answers.
  diff_mode:
    support: none
    description: It changes nothing, so there is nothing to diff.
  platform:
    support: full
    platforms: posix
    description:
      - Runs on the target. O(packages) needs C(dpkg-query) (Debian, Ubuntu);
        O(units) needs systemd's C(systemctl), and a host that was not booted with systemd (a RunPod pod,
        a plain container) fails with a message saying so and naming its PID 1.
"""

EXAMPLES = r"""
- name: Look at the host once
  central_mcp.agents.host_info:
    paths: [/opt/central-mcp/current]
    packages: [tmux, nodejs]
    users:
      - {name: agent, home: /home/agent, shell: /bin/bash, groups: [systemd-journal]}
    units: [central-mcp.service]
    free_space: [/home/agent/workspaces, /home/agent, /home, /]
    url: http://127.0.0.1:3000/health
  register: __host

- name: Create the agent user only where it is missing or different
  ansible.builtin.user:
    name: agent
    home: /home/agent
    shell: /bin/bash
    groups: [systemd-journal]
    append: true
  when: not __host.users.agent.in_step
"""

RETURN = r"""
python:
  description: The Python that runs modules on the host.
  returned: always
  type: dict
  contains:
    executable:
      description: Its path.
      type: str
    version:
      description: Its major and minor version, for example V(3.11).
      type: str
    arch:
      description: The machine architecture, for example V(x86_64).
      type: str
    venv_support:
      description: Whether it can make a virtualenv with pip (Debian puts ensurepip in python3-venv).
      type: bool
paths:
  description: Each path of O(paths), by path.
  returned: always
  type: dict
  contains:
    exists:
      description: Whether the path (or the target of a link) exists.
      type: bool
    link_target:
      description: Where the path links to when it is a symbolic link, else an empty string.
      type: str
    realpath:
      description: The path with every link resolved.
      type: str
    executable:
      description: Whether it can be executed.
      type: bool
missing_packages:
  description: The packages of O(packages) that are not installed, in the given order.
  returned: always
  type: list
  elements: str
users:
  description: Each user of O(users), by name.
  returned: always
  type: dict
  contains:
    exists:
      description: Whether the user exists.
      type: bool
    home:
      description: Its home directory (empty when it does not exist).
      type: str
    shell:
      description: Its login shell.
      type: str
    groups:
      description: The groups it is a member of, its primary group included.
      type: list
      elements: str
    in_step:
      description: Whether it exists with the home, the shell and the groups asked for.
      type: bool
units:
  description: Each unit of O(units), by name.
  returned: always
  type: dict
  contains:
    load_state:
      description: The LoadState systemd gives, for example V(loaded) or V(not-found).
      type: str
    active_state:
      description: The ActiveState systemd gives, for example V(active) or V(failed).
      type: str
    unit_file_state:
      description: The UnitFileState systemd gives, for example V(enabled) or V(disabled).
      type: str
    need_daemon_reload:
      description: Whether its unit file changed since systemd read it.
      type: bool
    running:
      description: Whether it is active and its unit file is the one systemd has read.
      type: bool
    enabled:
      description: Whether it starts at boot.
      type: bool
free_bytes:
  description: Free bytes on the filesystem of each path of O(free_space) that exists, by path.
  returned: always
  type: dict
memory_mb:
  description: The VM's memory in MB (MemTotal of C(/proc/meminfo)), 0 when it cannot be read.
  returned: always
  type: int
systemd:
  description: Whether the host was booted with systemd (C(/run/systemd/system) exists, as sd_booted(3) tells).
  returned: always
  type: bool
pid1:
  description: The name of the host's PID 1 (C(systemd) on a VM; C(tini) or a start script in a pod).
  returned: always
  type: str
stamps:
  description: Each stamp of O(stamps), by path.
  returned: always
  type: dict
  contains:
    input:
      description:
        - The input the stamp records (C(stamp.input) of M(central_mcp.agents.fleet_files)), null without a
          readable stamp.
      type: str
    intact:
      description:
        - Whether the stamp is there and every path it signs still has that signature. Then nothing was changed,
          made or removed there since that run, and no user or group either.
      type: bool
url_status:
  description: The HTTP status O(url) answered with, or 0 when it could not be reached.
  returned: when O(url) is set
  type: int
url_error:
  description: Why O(url) could not be reached (empty when it answered).
  returned: when O(url) is set
  type: str
"""

import grp
import importlib.util
import os
import platform
import pwd
import sys

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.central_mcp.agents.plugins.module_utils import disk_use, files_stamp

ARGUMENT_SPEC = {
    "paths": {"type": "list", "elements": "path", "default": []},
    "packages": {"type": "list", "elements": "str", "default": []},
    "users": {
        "type": "list",
        "elements": "dict",
        "default": [],
        "options": {
            "name": {"type": "str", "required": True},
            "home": {"type": "path"},
            "shell": {"type": "path"},
            "groups": {"type": "list", "elements": "str", "default": []},
        },
    },
    "units": {"type": "list", "elements": "str", "default": []},
    "free_space": {"type": "list", "elements": "path", "default": []},
    "url": {"type": "str"},
    "url_timeout": {"type": "float", "default": 3},
    "stamps": {"type": "list", "elements": "path", "default": []},
}

# The properties read for each unit (systemctl prints them as KEY=value lines).
UNIT_PROPERTIES = ("Id", "LoadState", "ActiveState", "UnitFileState", "NeedDaemonReload")


def python_info() -> dict:
    return {
        "executable": sys.executable,
        "version": f"{sys.version_info[0]}.{sys.version_info[1]}",
        "arch": platform.machine(),
        "venv_support": importlib.util.find_spec("ensurepip") is not None,
    }


def path_info(path: str) -> dict:
    is_link = os.path.islink(path)
    return {
        "exists": os.path.exists(path),
        "link_target": os.readlink(path) if is_link else "",
        "realpath": os.path.realpath(path),
        "executable": os.access(path, os.X_OK),
    }


def missing_packages(module: AnsibleModule, packages: list) -> list:
    if not packages:
        return []
    # Status-Abbrev "ii " is installed; a package dpkg does not know is only
    # an error on stderr (exit 1), so the exit code says nothing here.
    rc, out, err = module.run_command(
        ["dpkg-query", "--show", "--showformat", "${db:Status-Abbrev}${binary:Package}\\n", *packages],
        environ_update={"LC_ALL": "C"},
    )
    if rc not in (0, 1):
        module.fail_json(msg=f"dpkg-query could not list the packages {packages}: {err.strip()}")
    installed = {line[3:].strip().split(":")[0] for line in out.splitlines() if line.startswith("ii ")}
    return [p for p in packages if p not in installed]


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:  # a gid with no group entry: nothing to name
        return ""


def user_info(wanted: dict) -> dict:
    try:
        entry = pwd.getpwnam(wanted["name"])
    except KeyError:
        return {"exists": False, "home": "", "shell": "", "groups": [], "in_step": False}
    groups = sorted({_group_name(gid) for gid in os.getgrouplist(entry.pw_name, entry.pw_gid)} - {""})
    in_step = (
        wanted["home"] in (None, entry.pw_dir)
        and wanted["shell"] in (None, entry.pw_shell)
        and set(wanted["groups"]) <= set(groups)
    )
    return {"exists": True, "home": entry.pw_dir, "shell": entry.pw_shell, "groups": groups, "in_step": in_step}


# sd_booted(3): a host booted with systemd has this directory; that is how systemd's own tools tell.
SYSTEMD_RUNTIME = "/run/systemd/system"


def pid1() -> str:
    try:
        with open("/proc/1/comm", encoding="utf-8") as comm:
            return comm.read().strip() or "unknown"
    except OSError:
        return "unknown"


def units_info(module: AnsibleModule, units: list) -> dict:
    if not units:
        return {}
    if not os.path.isdir(SYSTEMD_RUNTIME):
        module.fail_json(
            msg=f"this host was not booted with systemd (its PID 1 is {pid1()}), and the units {units} need it: "
            "run the coordinator on a VM; for agents on a host without systemd (a RunPod pod), set "
            "launcher_persistent_root to the directory that outlives a stop there (/workspace on RunPod): the "
            "launcher then runs them with its boot starter"
        )
    rc, out, err = module.run_command(
        ["systemctl", "show", "--property=" + ",".join(UNIT_PROPERTIES), "--", *units],
        environ_update={"LC_ALL": "C"},
    )
    if rc != 0:
        module.fail_json(msg=f"systemctl show could not read the units {units}: {err.strip()}")
    # One block of KEY=value lines per unit, in the order asked, blank-line separated.
    blocks = [dict(line.split("=", 1) for line in block.splitlines() if "=" in line) for block in out.split("\n\n")]
    blocks = [block for block in blocks if block]
    if len(blocks) != len(units):
        module.fail_json(msg=f"systemctl show gave {len(blocks)} answers for the {len(units)} units {units}")
    found = {}
    for unit, props in zip(units, blocks, strict=True):
        active, file_state = props.get("ActiveState", ""), props.get("UnitFileState", "")
        stale = props.get("NeedDaemonReload", "no") == "yes"
        found[unit] = {
            "load_state": props.get("LoadState", ""),
            "active_state": active,
            "unit_file_state": file_state,
            "need_daemon_reload": stale,
            "running": active == "active" and not stale,
            "enabled": file_state == "enabled",
        }
    return found


def memory_mb() -> int:
    """MemTotal in MB, 0 when /proc/meminfo cannot be read."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def free_bytes(paths: list) -> dict:
    # Measured as the status table measures it (disk_use: the space unprivileged users may fill).
    return {path: disk_use.measure(path)["free_bytes"] for path in paths if os.path.exists(path)}


def ask(url: str, timeout: float) -> tuple[int, str]:
    # http.client, not ansible.module_utils.urls: this runs on every re-run of the
    # site, and urls takes ~80 ms to import, more than the whole answer of /health.
    # Imported here: a run that asks no URL (the launcher's) pays for nothing.
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return 0, f"not an http(s) URL: {url}"
    try:
        port = parts.port
    except ValueError as error:  # a port out of range
        return 0, str(error)
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = connection_class(parts.hostname, port, timeout=timeout)
    try:
        connection.request("GET", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
        return connection.getresponse().status, ""
    except (OSError, http.client.HTTPException) as error:  # refused, timed out, not HTTP
        return 0, str(error) or type(error).__name__
    finally:
        connection.close()


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    result = {
        "changed": False,
        "python": python_info(),
        "paths": {path: path_info(path) for path in params["paths"]},
        "missing_packages": missing_packages(module, params["packages"]),
        "users": {user["name"]: user_info(user) for user in params["users"]},
        "units": units_info(module, params["units"]),
        "free_bytes": free_bytes(params["free_space"]),
        "memory_mb": memory_mb(),
        "systemd": os.path.isdir(SYSTEMD_RUNTIME),
        "pid1": pid1(),
        "stamps": {path: files_stamp.check(path) for path in params["stamps"]},
    }
    if params["url"]:
        result["url_status"], result["url_error"] = ask(params["url"], params["url_timeout"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
