# SPDX-License-Identifier: Apache-2.0
"""What the controller remembers of a look at / (grow_root_fs) that left nothing to grow, and when it stands.

On a re-run the boot disk has almost always not changed, and a filesystem
that filled it then fills it now; yet finding that out costs a module run
on the VM. So a look that left nothing to grow, on a disk the kernel showed
at the size the Compute API reports (or a filesystem the module leaves
alone), is written down on the controller with what names the disk for good
and its size. It stands for a later run only on the same disk at the same
size, mount point and least room: a disk grown since (by the play, or by
hand with ``gcloud compute disks resize``) or made again is looked at.

Used by grow_root_fs's action plugin (it writes the entry and answers from
it) and by the filter root_fs_remembered (the vm_upgrade role decides with
it, from the file's text, whether to look at / at all).
"""

from __future__ import annotations

import datetime
import json
import os

from ansible_collections.central_mcp.agents.plugins.module_utils.private_file import write_private

GIB = 2**30
# What an entry keeps of the module's result, besides the line saying how / stands.
KEPT = ("mount", "source", "fstype", "disk", "partition", "disk_bytes")


def look_key(known_disk: dict, mount: str, min_room_mb: int) -> dict:
    """What must be the same for a remembered look to stand: the disk, its size, the mount, the least room."""
    return {"disk": str(known_disk["id"]), "size_gb": int(known_disk["size_gb"]), "mount": mount,
            "min_room_mb": int(min_room_mb)}  # fmt: skip


def recall(text, known_disk: dict, mount: str, min_room_mb: int) -> dict | None:
    """The module's answer as remembered in ``text`` (the file's content) for this look, or None."""
    try:
        entry = json.loads(text or "")
    except (TypeError, ValueError):
        return None
    if not isinstance(entry, dict) or entry.get("key") != look_key(known_disk, mount, min_room_mb):
        return None
    size = int(known_disk["size_gb"])
    msg = f"{entry['settled']} (found so on {entry['looked_at']}; its {size} GB disk has not changed since)"
    return {**{key: entry.get(key) for key in KEPT}, "changed": False, "cached": True, "msg": msg,
            "settled": entry["settled"], "nothing_to_grow": True, "partition_grown": False,
            "filesystem_grown": False, "growpart_needed": False, "commands": []}  # fmt: skip


def worth_remembering(result: dict, known_disk: dict) -> bool:
    """Nothing left to grow, on a disk the kernel shows at its full size (or a filesystem left alone)."""
    if result.get("failed") or not result.get("nothing_to_grow"):
        return False
    seen = result.get("disk_bytes")
    return seen is None or seen >= int(known_disk["size_gb"]) * GIB


def remember(path: str, known_disk: dict, mount: str, min_room_mb: int, result: dict,
             now: datetime.datetime | None = None) -> None:  # fmt: skip
    """Write the look down (atomically: a reader sees the old entry or the new one)."""
    now = now or datetime.datetime.now(datetime.UTC)
    entry = {"key": look_key(known_disk, mount, min_room_mb), "looked_at": now.strftime("%Y-%m-%d %H:%M UTC"),
             "settled": result["settled"], **{key: result.get(key) for key in KEPT}}  # fmt: skip
    write_private(os.path.expanduser(path), json.dumps(entry, indent=1, sort_keys=True), ".grow_root_fs-")


def read(path: str) -> str:
    """The file's text, or "" when there is none (or it cannot be read: a cache, looked at again)."""
    try:
        with open(os.path.expanduser(path), encoding="utf-8") as handle:
            return handle.read()
    except OSError:
        return ""
