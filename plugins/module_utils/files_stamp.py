# SPDX-License-Identifier: Apache-2.0
"""The stamp fleet_files leaves after a run, and its check by host_info.

A stamp says: "these arguments were applied, and this is how every path
they name looked afterwards". A path's signature is what any change to it
changes: its inode, type, mode, owner and group, and for a file its size,
mtime and ctime. Nothing in user space sets a ctime, so a file that was
edited, replaced, chmod-ed or removed no longer matches, however it was
done. A purged directory is signed with the names of the files in it that
its patterns match. The user and group databases are signed too: the same
owner name may stand for another uid after a change.

The roles compare a stamp's input with this run's arguments (their sha256)
at the look they make first: the same input, every path as it was left,
and fleet_files has nothing to do, so that module run is left out. This is
how git's index and make decide without reading contents.
"""

from __future__ import annotations

import fnmatch
import json
import os
import stat

from ansible_collections.central_mcp.agents.plugins.module_utils.private_file import write_private

USER_DBS = ("/etc/passwd", "/etc/group")
_OWNER = ("st_ino", "st_mode", "st_uid", "st_gid")
_CONTENT = ("st_size", "st_mtime_ns", "st_ctime_ns")
VERSION = 1


def signature(path: str, content: bool) -> list | None:
    """The path's signature (of the link and of what it points to, for a link); None when it is not there.

    ``content``: whether what it holds counts (a file), or only its owner, group and mode (a directory,
    whose files others may write)."""
    keys = _OWNER + _CONTENT if content else _OWNER
    try:
        found = [os.lstat(path)]
        if stat.S_ISLNK(found[0].st_mode):
            found.append(os.stat(path))
    except (FileNotFoundError, NotADirectoryError):
        return None
    return [[getattr(st, key) for key in keys] for st in found]


def purged(path: str, patterns: list) -> list | None:
    """A purged directory's signature: its own, and the names of the regular files in it that match a
    pattern (fleet_files removes those it does not list); None when it is not there."""
    own = signature(path, False)
    if own is None:
        return None
    names = sorted(
        name
        for name in os.listdir(path)
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)
        and not os.path.islink(os.path.join(path, name))
        and os.path.isfile(os.path.join(path, name))
    )
    return [own, names]


def _now(entry: dict) -> list | None:
    if entry["kind"] == "purge":
        return purged(entry["path"], entry["patterns"])
    return signature(entry["path"], entry["kind"] != "directory")


def entries(directories: list, files: list, purge: list) -> list:
    """What to sign: each directory, file and purged directory (``{path, patterns}``), and the user databases."""
    found = [{"kind": "directory", "path": d} for d in directories] + [{"kind": "file", "path": f} for f in files]
    found += [{"kind": "purge", "path": p["path"], "patterns": sorted(p["patterns"])} for p in purge]
    return found + [{"kind": "file", "path": db} for db in USER_DBS]


def render(given: str, wanted: list) -> str:
    """The stamp's text: the caller's input and each entry's signature as it is now."""
    signed = [{**entry, "signature": _now(entry)} for entry in wanted]
    return json.dumps({"version": VERSION, "input": given, "entries": signed}, sort_keys=True) + "\n"


def read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def write(path: str, text: str) -> None:
    """Write the stamp atomically, root's alone (its directory 0700)."""
    write_private(path, text, ".stamp-")


def remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def check(path: str) -> dict:
    """{input, intact}: the input the stamp records (None without a readable stamp), and whether every entry
    it signs still has that signature."""
    try:
        text = read(path)
        stamp = json.loads(text) if text is not None else None
    except (OSError, ValueError):
        stamp = None
    if not isinstance(stamp, dict) or stamp.get("version") != VERSION or not isinstance(stamp.get("entries"), list):
        return {"input": None, "intact": False}
    try:
        intact = all(_now(entry) == entry["signature"] for entry in stamp["entries"])
    except (TypeError, KeyError, ValueError, OSError):
        intact = False
    return {"input": stamp.get("input"), "intact": intact}
