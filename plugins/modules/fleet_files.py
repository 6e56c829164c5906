#!/usr/bin/python
# SPDX-License-Identifier: Apache-2.0
"""Ansible module: write the directories and files of a fleet on one host in one pass."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: fleet_files
short_description: Write a host's fleet directories and files in one module run
version_added: "0.2.0"
description:
  - Makes sure a list of directories exists and a list of files holds the
    given content, each with its owner, group and mode, and removes files
    that no longer belong (O(purge)). Everything happens in B(one) module
    run on the target.
  - Why not C(ansible.builtin.copy) in a loop? Each loop item is a module
    run of its own (for C(copy), two when nothing changes, C(stat) and then
    C(file) for the attributes). A fleet of 8 agents has ~40 such files and
    directories per host, which made a no-op re-run of the site dozens of
    times slower than C(ansible -m ping). This module does the same checks
    (content by sha1, then owner, group, mode through Ansible's own helpers)
    for all of them at once.
  - A changed file is written to a temporary file created with mode 0600 in
    the same directory, given its owner, group and mode, then renamed over
    the old one, so no reader ever sees a partial file or a secret with
    wider permissions.
  - O(files[].content) is never shown in results or diffs (it is a C(no_log)
    option, since env files and CLI settings carry tokens). Set the task
    variable C(ansible_no_target_syslog=true) too, as this collection's roles
    do. Ansible logs a module's arguments to the target's journal as one
    string, in which a content's newline is escaped. A one-line secret, such
    as a token file, then no longer matches the value it is masked by.
author:
  - Central-MCP maintainers (@central-mcp)
options:
  directories:
    description: Directories to create (with parents) and keep at their attributes, in order.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Absolute path.
        type: path
        required: true
      owner:
        description: Owner name. Omit it to leave the owner as it is.
        type: str
      group:
        description: Group name. Omit it to leave the group as it is.
        type: str
      mode:
        description: Octal mode as a string, for example V("0750").
        type: str
  files:
    description: Files to write, in order. Their directory must exist (list it in O(directories)).
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Absolute path.
        type: path
        required: true
      content:
        description: The whole content of the file.
        type: str
        required: true
      owner:
        description: Owner name. Omit it to leave the owner as it is (root for a new file).
        type: str
      group:
        description: Group name. Omit it to leave the group as it is.
        type: str
      mode:
        description: Octal mode as a string, for example V("0600"). A new file without one gets 0600.
        type: str
  purge:
    description:
      - Directories to clean of files that are no longer wanted. Only regular
        files directly in O(purge[].path) that match one of
        O(purge[].patterns) are considered; those that are not listed in
        O(files) are removed. Subdirectories are never touched.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Absolute path of the directory.
        type: path
        required: true
      patterns:
        description: Shell-style patterns of file names, for example V(*.env).
        type: list
        elements: str
        required: true
notes:
  - Supports check mode (reports what would change and changes nothing) and
    diff mode (lists the paths that would be created, updated or removed,
    never their content).
"""

EXAMPLES = r"""
- name: Write every agent's env file and remove those of agents that left
  vars:
    ansible_no_target_syslog: true  # see the description
  central_mcp.agents.fleet_files:
    directories:
      - {path: /etc/central-mcp/agents, owner: root, group: agent, mode: "0750"}
    files:
      - path: /etc/central-mcp/agents/A.env
        content: "CENTRAL_MCP_TOKEN=...\n"
        owner: agent
        group: agent
        mode: "0600"
    purge:
      - {path: /etc/central-mcp/agents, patterns: ["*.env"]}
"""

RETURN = r"""
created:
  description: Paths of directories and files that did not exist before.
  returned: always
  type: list
  elements: str
updated:
  description: Paths of existing files whose content or attributes changed.
  returned: always
  type: list
  elements: str
removed:
  description: Paths removed by O(purge).
  returned: always
  type: list
  elements: str
changed_paths:
  description: All of the above (created, then updated, then removed).
  returned: always
  type: list
  elements: str
"""

import fnmatch
import hashlib
import os
import tempfile

from ansible.module_utils.basic import AnsibleModule

_ATTRS = dict(owner=dict(type="str"), group=dict(type="str"), mode=dict(type="str"))
ARGUMENT_SPEC = dict(
    directories=dict(
        type="list", elements="dict", default=[], options=dict(path=dict(type="path", required=True), **_ATTRS)
    ),
    files=dict(
        type="list",
        elements="dict",
        default=[],
        options=dict(
            path=dict(type="path", required=True), content=dict(type="str", required=True, no_log=True), **_ATTRS
        ),
    ),
    purge=dict(
        type="list",
        elements="dict",
        default=[],
        options=dict(path=dict(type="path", required=True), patterns=dict(type="list", elements="str", required=True)),
    ),
)


def _file_args(module: AnsibleModule, entry: dict, path: str) -> dict:
    """The dict Ansible's attribute helpers take, for one entry."""
    args = module.load_file_common_arguments({"path": path, "owner": entry.get("owner"), "group": entry.get("group")})
    args["mode"] = entry.get("mode")
    return args


def _check_absolute(module: AnsibleModule, kind: str, path: str) -> None:
    if not os.path.isabs(path) or "\0" in path:
        module.fail_json(msg=f"{kind} path {path!r} is not an absolute path; give the full path from /")


def _ensure_directory(module: AnsibleModule, entry: dict, result: dict) -> None:
    path = entry["path"]
    existed = os.path.isdir(path)
    if os.path.lexists(path) and not existed:
        module.fail_json(msg=f"{path} exists and is not a directory; move it away, then run again")
    if not existed and not module.check_mode:
        os.makedirs(path, exist_ok=True)
    if existed or not module.check_mode:
        attrs_changed = module.set_fs_attributes_if_different(_file_args(module, entry, path), False)
    else:
        attrs_changed = True
    if not existed:
        result["created"].append(path)
    elif attrs_changed:
        result["updated"].append(path)


def _sha1(path: str) -> str | None:
    try:
        with open(path, "rb") as handle:
            return hashlib.sha1(handle.read()).hexdigest()
    except FileNotFoundError:
        return None


def _write_file(module: AnsibleModule, entry: dict, result: dict) -> None:
    path = entry["path"]
    content = entry["content"].encode("utf-8")
    if os.path.lexists(path) and not os.path.isfile(path):
        module.fail_json(msg=f"{path} exists and is not a regular file; move it away, then run again")
    before = _sha1(path)
    if before == hashlib.sha1(content).hexdigest():
        if module.set_fs_attributes_if_different(_file_args(module, entry, path), False):
            result["updated"].append(path)
        return
    (result["created"] if before is None else result["updated"]).append(path)
    if module.check_mode:
        return
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        module.fail_json(msg=f"the directory of {path} does not exist; list {directory} in directories")
    # mkstemp creates the file 0600: the content is never readable more widely
    # than the final mode, even for a moment.
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".fleet_files.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        entry_mode = dict(entry, mode=entry.get("mode") or "0600")
        module.set_fs_attributes_if_different(_file_args(module, entry_mode, tmp), False)
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _purge(module: AnsibleModule, entry: dict, wanted: set[str], result: dict) -> None:
    directory = entry["path"]
    if not os.path.isdir(directory):
        return
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if path in wanted or not os.path.isfile(path) or os.path.islink(path):
            continue
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in entry["patterns"]):
            result["removed"].append(path)
            if not module.check_mode:
                os.unlink(path)


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    for kind in ("directories", "files", "purge"):
        for entry in params[kind]:
            _check_absolute(module, kind, entry["path"])
    paths = [entry["path"] for entry in params["files"]]
    duplicates = sorted({path for path in paths if paths.count(path) > 1})
    if duplicates:
        module.fail_json(msg=f"files lists {', '.join(duplicates)} more than once; give each path once")

    result = {"created": [], "updated": [], "removed": []}
    for entry in params["directories"]:
        _ensure_directory(module, entry, result)
    for entry in params["files"]:
        _write_file(module, entry, result)
    for entry in params["purge"]:
        _purge(module, entry, set(paths), result)

    changed_paths = result["created"] + result["updated"] + result["removed"]
    # Paths only: the content may be a secret.
    diff = {"prepared": "".join(f"{what} {path}\n" for what in result for path in result[what])}
    module.exit_json(changed=bool(changed_paths), changed_paths=changed_paths, diff=diff, **result)


if __name__ == "__main__":
    main()
