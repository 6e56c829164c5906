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
    (content, then owner, group and mode) for all of them at once.
  - The module first reads every path and works out what has to change,
    without writing anything. Names of users and groups that do not exist,
    and files whose directory is neither there nor in O(directories), fail
    the run at that point, before anything is written. (Check mode reports
    them as changes instead, since a task before this one, which check mode
    skipped, may create them.) Then it applies the changes in order
    (O(directories), O(files), O(purge)).
  - A changed file is written to a temporary file created with mode 0600 in
    the same directory, given its owner, group and mode, then renamed over
    the old one, so no reader ever sees a partial file or a secret with
    wider permissions. An existing file keeps the owner, group and mode
    that its entry leaves out.
  - If a write fails half-way, the module fails with C(changed=true) when
    something was already written, and RV(changed_paths) (and RV(created),
    RV(updated), RV(removed)) list what was. A path that the failing step
    changed in part, such as a directory made but not yet given its owner,
    is listed too. A second run finishes the rest.
  - O(files[].content) is a C(no_log) option, since env files and CLI
    settings carry tokens. Set the task variable
    C(ansible_no_target_syslog=true) too, as this collection's roles do.
    Ansible logs a module's arguments to the target's journal as one string,
    in which a content's newline is escaped. A one-line secret, such as a
    token file, then no longer matches the value it is masked by.
  - A file is a B(secret) unless its mode lets every user of the host read
    it (C(o+r), as in V("0644")), before and after the change. A diff never
    shows a secret's content, only a line that says it changes. Token and
    env files (V("0600")) and group-readable files (V("0640")) are secrets.
  - Root never follows a link that another user owns. A listed path that is
    a symbolic link not owned by root fails the run before anything is
    written (a user could point it at a file of root's, to have root write
    or chown that file); O(directories[].recurse) changes links themselves,
    never what they point to.
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
        description: Absolute path. When a path is listed twice, the attributes of the later entry win.
        type: path
        required: true
      owner:
        description: Owner name (or uid). Omit it to leave the owner as it is.
        type: str
      group:
        description: Group name (or gid). Omit it to leave the group as it is.
        type: str
      mode:
        description: Octal mode as a string, for example V("0750"). Omit it to leave the mode as it is.
        type: str
      recurse:
        description:
          - When the directory's owner or group changes, what is below it and had its old owner (or
            group) gets the new one too, depth first, without following links; modes are left as they
            are. Made for a directory that passes to another user with its content (an agent's
            workspace, given a user of its own).
          - The directory itself changes last, so that a run that fails half-way is finished by the next.
        type: bool
        default: false
  files:
    description: Files to write, in order. Their directory must exist or be listed in O(directories).
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
        description:
          - Owner name (or uid). Omit it to leave the owner as it is (the
            user the module runs as for a new file).
        type: str
      group:
        description: Group name (or gid). Omit it to leave the group as it is.
        type: str
      mode:
        description:
          - Octal mode as a string, for example V("0600"). Omit it to leave
            the mode as it is; a new file without one gets V("0600").
          - Decides whether the content may appear in a diff (see the description).
        type: str
      validate:
        description:
          - A command that checks the new content before it replaces the file, with V(%s) standing for
            the temporary file, for example V(/usr/sbin/visudo -cqf %s). When it fails, the file is
            left as it was and the module fails with the command's output. Not run in check mode.
        type: str
  purge:
    description:
      - Directories to clean of files that are no longer wanted. Only regular
        files directly in O(purge[].path) that match one of
        O(purge[].patterns) are considered; those that are not listed in
        O(files) are removed. Subdirectories and links are never touched.
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
  stamp:
    description:
      - Where to leave a record of this run, so that the next run's look at the host can tell that
        there is nothing to do without this module run (the C(stamps) option of
        M(central_mcp.agents.host_info)).
      - After a run that did not fail, the stamp holds O(stamp.input) and the signature of every
        listed directory and file, of each O(purge) directory, and of C(/etc/passwd) and
        C(/etc/group). A signature is what any change to a path changes. It holds the inode, type,
        owner, group and mode, and for a file also the size, mtime and ctime (nothing in user space
        sets a ctime). A directory's own files do not count, only its attributes, except in a
        purged directory, where the names of the files that its patterns match count too.
      - Before the first change of a run, an earlier stamp is removed, so a run that fails half-way
        leaves none. The stamp is the module's own record, root's alone (its directory is created
        C(0700)). Writing it is not a change, and check mode does not write it.
    type: dict
    suboptions:
      path:
        description: Absolute path of the stamp, outside every path this task manages.
        type: path
        required: true
      input:
        description:
          - What the caller recognises these arguments by, for example the sha256 of their JSON
            (V("{{ args | to_json(sort_keys=true) | hash('sha256') }}")). A run with other
            arguments gives another input, and the stamp no longer matches.
        type: str
        required: true
attributes:
  check_mode:
    support: full
    description:
      - Reads every path, reports the same RV(changed_paths) a real run
        would change, and writes nothing.
  diff_mode:
    support: full
    description:
      - For each changed path, its state, owner, group and mode before and
        after (those its entry sets); for each file whose content changes
        (removed files included), the content before and after.
      - The content of a secret (a file not readable by every user, see the
        description) is never shown, only a line that says it changes.
  platform:
    support: full
    platforms: posix
    description: Runs on the target.
notes:
  - The content of a file shown in a diff is no longer masked as a C(no_log)
    value in that task's result; it is readable by every user of the host.
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
      - path: /etc/systemd/system/central-mcp-agents.service
        content: "{{ lookup('ansible.builtin.template', 'central-mcp-agents.service.j2') }}"
        owner: root
        group: root
        mode: "0644"  # readable by all: a diff shows its content
    purge:
      - {path: /etc/central-mcp/agents, patterns: ["*.env"]}
  register: __fleet_files
"""

RETURN = r"""
created:
  description: Paths of directories and files that did not exist before (in check mode, that would be created).
  returned: always, and on a failure after the first change
  type: list
  elements: str
  sample: [/etc/central-mcp/agents/B.env]
updated:
  description: Paths of existing directories and files whose content, owner, group or mode changed.
  returned: always, and on a failure after the first change
  type: list
  elements: str
  sample: [/etc/central-mcp/agents/A.env]
removed:
  description: Paths removed by O(purge).
  returned: always, and on a failure after the first change
  type: list
  elements: str
  sample: [/etc/central-mcp/agents/C.env]
changed_paths:
  description:
    - All of the above (created, then updated, then removed).
    - On a failure, what was written before it (the path that failed only if it was changed in part).
  returned: always, and on a failure after the first change
  type: list
  elements: str
  sample: [/etc/central-mcp/agents/B.env, /etc/central-mcp/agents/A.env, /etc/central-mcp/agents/C.env]
"""

import contextlib  # noqa: E402
import fnmatch  # noqa: E402
import grp  # noqa: E402
import os  # noqa: E402
import posixpath  # noqa: E402
import pwd  # noqa: E402
import re  # noqa: E402
import shlex  # noqa: E402
import stat  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.central_mcp.agents.plugins.module_utils import files_stamp  # noqa: E402

_ATTRS = dict(owner=dict(type="str"), group=dict(type="str"), mode=dict(type="str"))
ARGUMENT_SPEC = dict(
    directories=dict(
        type="list",
        elements="dict",
        default=[],
        options=dict(path=dict(type="path", required=True), recurse=dict(type="bool", default=False), **_ATTRS),
    ),
    files=dict(
        type="list",
        elements="dict",
        default=[],
        options=dict(
            path=dict(type="path", required=True),
            content=dict(type="str", required=True, no_log=True),
            validate=dict(type="str"),
            **_ATTRS,
        ),
    ),
    purge=dict(
        type="list",
        elements="dict",
        default=[],
        options=dict(path=dict(type="path", required=True), patterns=dict(type="list", elements="str", required=True)),
    ),
    stamp=dict(type="dict", options=dict(path=dict(type="path", required=True), input=dict(type="str", required=True))),
)
MODE_RE = re.compile(r"^[0-7]{3,4}$")
KEEP = -1  # os.chown's "leave it as it is"
UNKNOWN = -2  # a user or group that is not there yet (check mode only: an earlier task makes it)
NEW_FILE_MODE = 0o600
DIFF_MAX_BYTES = 104448  # Ansible's own default limit for a file shown in a diff
RESULT_KEYS = ("created", "updated", "removed")
VERBS = {"mkdir": "create the directory", "chattr": "set the owner, group or mode of", "write": "write",
         "remove": "remove"}  # fmt: skip


class Change:
    """One path to create, update or remove: found by reading only, written by apply()."""

    def __init__(self, what: str, action: str, path: str, found: dict | None, wanted: dict, **extra):
        self.what = what  # created | updated | removed: the result list it goes to
        self.action = action  # mkdir | chattr | write | remove
        self.path = path
        self.found = found  # {"state", "uid", "gid", "mode"} as the path is (None: absent)
        self.wanted = wanted  # the same as it should be (uid, gid KEEP: leave it)
        self.managed = extra.get("managed", {})  # the owner, group and mode the entry sets: the diff shows those
        self.content = extra.get("content")  # the new bytes (write)
        self.old = extra.get("old")  # the bytes found (an existing file's write, a remove), for the diff
        self.recurse = extra.get("recurse", False)  # a directory's chattr: its tree's owner too
        self.validate = extra.get("validate")  # a write: the command that checks the new content first


class Invalid(OSError):
    """The validate command refused the new content of a file."""


def _found(path: str) -> dict | None:
    try:
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode) and st.st_uid != 0:  # another user's link: never followed
            return {"state": "link", "uid": st.st_uid, "gid": st.st_gid, "mode": stat.S_IMODE(st.st_mode)}
        st = os.stat(path) if stat.S_ISLNK(st.st_mode) else st
    except FileNotFoundError:
        return None
    state = "directory" if stat.S_ISDIR(st.st_mode) else "file" if stat.S_ISREG(st.st_mode) else "other"
    return {"state": state, "uid": st.st_uid, "gid": st.st_gid, "mode": stat.S_IMODE(st.st_mode)}


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _lookup_id(module: AnsibleModule, name: str | None, kind: str) -> int:
    """The uid or gid an entry asks for; KEEP when it names none."""
    if name is None:
        return KEEP
    if name.isdigit():
        return int(name)
    try:
        return pwd.getpwnam(name).pw_uid if kind == "user" else grp.getgrnam(name).gr_gid
    except KeyError:
        if module.check_mode:  # a task before this one creates it; check mode skipped that task
            return UNKNOWN
        module.fail_json(
            msg=f"{kind} {name!r} does not exist on the host: create it before this task, or fix the name "
            "(nothing was written)"
        )


def _wanted(module: AnsibleModule, entry: dict, state: str) -> dict:
    """The state, owner, group and mode an entry asks for, KEEP for those it leaves out."""
    mode = entry.get("mode")
    if mode is not None and not MODE_RE.match(mode):
        module.fail_json(
            msg=f"mode {mode!r} of {entry['path']} is not an octal mode: give it as a quoted string like "
            '"0640" (nothing was written)'
        )
    return {
        "state": state,
        "uid": _lookup_id(module, entry.get("owner"), "user"),
        "gid": _lookup_id(module, entry.get("group"), "group"),
        "mode": int(mode, 8) if mode is not None else KEEP,
    }


def _differs(found: dict, wanted: dict) -> bool:
    return any(wanted[key] not in (KEEP, found[key]) for key in ("uid", "gid", "mode"))


def _managed(entry: dict) -> dict:
    return {key: entry[key] for key in ("owner", "group", "mode") if entry.get(key) is not None}


def _refuse_link(module: AnsibleModule, path: str, found: dict | None) -> None:
    if found and found["state"] == "link":
        owner = _name("uid", found["uid"])
        module.fail_json(
            msg=f"{path} is a symbolic link owned by {owner}: root does not follow another user's link. "
            "Find out why it is there, remove it, then run again (nothing was written)"
        )


def plan_directory(module: AnsibleModule, entry: dict) -> Change | None:
    path, found = entry["path"], _found(entry["path"])
    _refuse_link(module, path, found)
    if found is None and os.path.lexists(path) or found and found["state"] != "directory":
        module.fail_json(
            msg=f"{path} exists and is not a directory; move it away, then run again (nothing was written)"
        )
    wanted = _wanted(module, entry, "directory")
    if found is None:
        return Change("created", "mkdir", path, None, wanted, managed=_managed(entry))
    if _differs(found, wanted):
        recurse = entry.get("recurse") and (found["uid"], found["gid"]) != (
            found["uid"] if wanted["uid"] == KEEP else wanted["uid"],
            found["gid"] if wanted["gid"] == KEEP else wanted["gid"],
        )
        return Change("updated", "chattr", path, found, wanted, managed=_managed(entry), recurse=recurse)
    return None


def plan_file(module: AnsibleModule, entry: dict, directories: set) -> Change | None:
    path, found = entry["path"], _found(entry["path"])
    _refuse_link(module, path, found)
    if found is None and os.path.lexists(path) or found and found["state"] != "file":
        module.fail_json(
            msg=f"{path} exists and is not a regular file; move it away, then run again (nothing was written)"
        )
    wanted = _wanted(module, entry, "file")
    content, managed = entry["content"].encode("utf-8"), _managed(entry)
    if found is None:
        directory = posixpath.dirname(path)
        if not (os.path.isdir(directory) or directory in directories or module.check_mode):
            module.fail_json(
                msg=f"the directory of {path} does not exist; list {directory} in directories (nothing was written)"
            )
        wanted["mode"] = NEW_FILE_MODE if wanted["mode"] == KEEP else wanted["mode"]
        return Change(
            "created",
            "write",
            path,
            None,
            wanted,
            managed={"mode": "0600", **managed},
            content=content,
            validate=entry.get("validate"),
        )
    old = _read(path)
    if old != content:
        # A rewrite keeps what the entry leaves out (the new file is the module user's, 0600, until then).
        wanted.update({key: found[key] for key in ("uid", "gid", "mode") if wanted[key] == KEEP})
        return Change(
            "updated",
            "write",
            path,
            found,
            wanted,
            managed=managed,
            content=content,
            old=old,
            validate=entry.get("validate"),
        )
    if _differs(found, wanted):
        return Change("updated", "chattr", path, found, wanted, managed=managed)
    return None


def plan_purge(entry: dict, wanted: set) -> list:
    directory = entry["path"]
    if not os.path.isdir(directory):
        return []
    changes = []
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if path in wanted or os.path.islink(path) or not os.path.isfile(path):
            continue
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in entry["patterns"]):
            found = _found(path)
            changes.append(Change("removed", "remove", path, found, {"state": "absent"}, old=_read(path)))
    return changes


def _check(command: str, path: str) -> None:
    """Run a file's validate command on its new content (at ``path``); Invalid when it refuses it."""
    argv = [word.replace("%s", path) for word in shlex.split(command)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
    if done.returncode:
        said = " ".join((done.stdout + done.stderr).split())[:300] or f"exit status {done.returncode}"
        raise Invalid(f"{shlex.join(argv[:1])} refused the new content ({said}); the file was left as it was")


def _chown_tree(top: str, found: dict, wanted: dict) -> None:
    """What is below ``top`` and had its old owner or group gets the new one; links are changed, not followed."""
    uid = KEEP if wanted["uid"] in (KEEP, found["uid"]) else wanted["uid"]
    gid = KEEP if wanted["gid"] in (KEEP, found["gid"]) else wanted["gid"]
    for root, dirs, files in os.walk(top, topdown=False):  # never follows links to directories
        for name in dirs + files:
            path = os.path.join(root, name)
            st = os.lstat(path)
            new = (uid if st.st_uid == found["uid"] else KEEP, gid if st.st_gid == found["gid"] else KEEP)
            if new != (KEEP, KEEP):
                os.lchown(path, *new)


def apply(change: Change) -> None:
    """The one place that writes. main() does not call it in check mode."""
    path, wanted = change.path, change.wanted
    if change.action == "remove":
        os.unlink(path)
    elif change.action == "write":
        # mkstemp creates the file 0600: the content is never readable more widely
        # than the final mode, even for a moment; the rename replaces the old file at once.
        fd, tmp = tempfile.mkstemp(dir=posixpath.dirname(path), prefix=".fleet_files.")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(change.content)
                os.fchown(handle.fileno(), wanted["uid"], wanted["gid"])
                os.fchmod(handle.fileno(), wanted["mode"])
            if change.validate:
                _check(change.validate, tmp)
            os.rename(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
    else:
        if change.action == "mkdir":
            os.makedirs(path, exist_ok=True)
        if change.recurse:
            _chown_tree(path, change.found, wanted)
        if (wanted["uid"], wanted["gid"]) != (KEEP, KEEP):
            os.chown(path, wanted["uid"], wanted["gid"])
        if wanted["mode"] != KEEP:
            os.chmod(path, wanted["mode"])


# ----------------------------------------------------------------------------------- the diff
def _readable_by_all(*modes: int | None) -> bool:
    return all(mode is None or mode & stat.S_IROTH for mode in modes)


def _shown(data: bytes | None) -> str:
    if not data:
        return ""
    if len(data) > DIFF_MAX_BYTES:
        return f"(content of {len(data)} bytes, too long to show)\n"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = "\0"
    return "(binary content, not shown)\n" if "\0" in text else text


def _name(key: str, value: int) -> str:
    try:
        return pwd.getpwuid(value).pw_name if key == "uid" else grp.getgrgid(value).gr_name
    except KeyError:
        return str(value)


def _attributes(change: Change, values: dict | None) -> str:
    """The state, and the owner, group and mode the entry sets, one line each."""
    if values is None or values["state"] == "absent":
        return "state: absent\n"
    lines = [f"state: {values['state']}"]
    for key, label in (("uid", "owner"), ("gid", "group")):
        if label in change.managed:
            name = change.managed[label] if values[key] == UNKNOWN else _name(key, values[key])
            lines.append(f"{label}: {name}")
    if "mode" in change.managed:
        lines.append(f"mode: {values['mode']:04o}")
    return "\n".join(lines) + "\n"


def diff_of(change: Change) -> tuple[list, str | None]:
    """The diff entries of one change, and the content they show (None when they show none)."""
    path = change.path
    entries = []
    before, after = _attributes(change, change.found), _attributes(change, change.wanted)
    if before != after:
        entries.append({"before_header": f"{path} (attributes)", "after_header": f"{path} (attributes)",
                        "before": before, "after": after})  # fmt: skip
    if change.action not in ("write", "remove"):
        return entries, None
    old_mode = change.found["mode"] if change.found else None
    new_mode = None if change.action == "remove" else change.wanted["mode"]
    shown = None
    if _readable_by_all(old_mode, new_mode):
        text_before, text_after = _shown(change.old), _shown(change.content)
        shown = change.content.decode("utf-8") if change.content else None
    else:
        hidden = f"(secret: the content of {path} is not shown, it is not readable by every user)\n"
        text_before = hidden if change.found else ""
        text_after = "" if change.action == "remove" else hidden.replace("not shown", "not shown; it changes")
    entries.append({"before_header": path, "after_header": path, "before": text_before, "after": text_after})
    return entries, shown


# ----------------------------------------------------------------------------------- the run
def plan(module: AnsibleModule) -> list:
    """Every change, in order; reads only."""
    params = module.params
    directories = {}
    for entry in params["directories"]:  # a path listed twice: one directory, the later attributes win
        known = directories.setdefault(entry["path"], dict(entry))
        known.update({key: value for key, value in entry.items() if value is not None})
    made = set()
    for path in directories:
        while path not in ("/", ""):  # makedirs makes the parents too
            made.add(path)
            path = posixpath.dirname(path)
    changes = [plan_directory(module, entry) for entry in directories.values()]
    changes += [plan_file(module, entry, made) for entry in params["files"]]
    wanted = {entry["path"] for entry in params["files"]}
    for entry in params["purge"]:
        changes += plan_purge(entry, wanted)
    return [change for change in changes if change is not None]


def forget(module: AnsibleModule, path: str) -> None:
    try:
        files_stamp.remove(path)
    except OSError as exc:
        module.fail_json(msg=f"could not remove the stamp {path}: {exc.strerror or exc} (nothing was written)")


def leave_stamp(module: AnsibleModule, stamp: dict, params: dict) -> None:
    """Record this run's input and how every path looks now; rewritten only when it says something new."""
    wanted = files_stamp.entries(
        sorted({entry["path"] for entry in params["directories"]}),
        [entry["path"] for entry in params["files"]],
        params["purge"],
    )
    try:
        text = files_stamp.render(stamp["input"], wanted)
        if files_stamp.read(stamp["path"]) != text:
            files_stamp.write(stamp["path"], text)
    except OSError as exc:  # the files are written: only the next run's shortcut is lost
        why = exc.strerror or exc
        module.warn(f"could not write the stamp {stamp['path']} ({why}); the next run checks every path again")


def results(done: dict) -> dict:
    return {**done, "changed_paths": [path for key in RESULT_KEYS for path in done[key]]}


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    for kind in ("directories", "files", "purge"):
        for entry in params[kind]:
            path = entry["path"]
            if not os.path.isabs(path) or "\0" in path:
                module.fail_json(msg=f"{kind} path {path!r} is not an absolute path; give the full path from /")
    paths = [entry["path"] for entry in params["files"]]
    duplicates = sorted({path for path in paths if paths.count(path) > 1})
    if duplicates:
        module.fail_json(msg=f"files lists {', '.join(duplicates)} more than once; give each path once")

    stamp = params["stamp"]
    if stamp and (not os.path.isabs(stamp["path"]) or "\0" in stamp["path"]):
        module.fail_json(msg=f"stamp path {stamp['path']!r} is not an absolute path; give the full path from /")

    done, diff, shown = {key: [] for key in RESULT_KEYS}, [], {}
    changes = plan(module)
    if stamp and changes and not module.check_mode:
        forget(module, stamp["path"])  # a run that fails half-way leaves no stamp
    for change in changes:
        if not module.check_mode:  # the one change point: nothing before it has written
            try:
                apply(change)
            except OSError as exc:
                if _found(change.path) != change.found:  # changed in part: a directory made, then refused its owner
                    done[change.what].append(change.path)
                partial = results(done)
                did = f"{len(partial['changed_paths'])} path(s) were written before it, listed in changed_paths"
                module.fail_json(
                    msg=f"could not {VERBS[change.action]} {change.path}: {exc.strerror or exc}. "
                    f"{did if partial['changed_paths'] else 'Nothing was written'}; fix the cause and run again "
                    "(what is done is not done twice)",
                    exception=exc,
                    changed=bool(partial["changed_paths"]),
                    **partial,
                    **({"diff": diff} if module._diff else {}),
                )
        done[change.what].append(change.path)
        if module._diff:
            entries, content = diff_of(change)
            diff += entries
            if content:
                shown[change.path] = content
    # Content shown in the diff (files readable by every user) is not masked as no_log,
    # unless a secret file has the very same content.
    secrets = {entry["content"] for entry in params["files"] if entry["path"] not in shown}
    for content in set(shown.values()) - secrets:
        module.no_log_values.discard(content)
    final = results(done)
    if stamp and not module.check_mode:
        leave_stamp(module, stamp, params)
    module.exit_json(changed=bool(final["changed_paths"]), **final, **({"diff": diff} if module._diff else {}))


if __name__ == "__main__":
    main()
