# SPDX-License-Identifier: Apache-2.0
"""Action plugin of grow_root_fs: a look that left nothing to grow, remembered on the controller.

The manual is the module's (``ansible-doc central_mcp.agents.grow_root_fs``).
Why: on a re-run the boot disk has almost always not changed, and a
filesystem that filled it then fills it now; yet finding that out costs a
module run on the VM (a connection, a Python start, three or four reads).
With ``known_disk`` (what the Compute API says of the disk) and
``cache_file``, the look that found nothing to grow is written down, and a
later run on the same disk at the same size answers from it without
touching the VM. A disk grown since (by the play, or by hand with
``gcloud compute disks resize``) no longer matches, and is looked at.

A look is remembered only when the kernel showed the disk at the size the
API reports (or the filesystem is one the module leaves alone): a disk
that grew but that the kernel still shows at its old size is looked at
again next time.
"""

from __future__ import annotations

import datetime
import json
import os
import tempfile

from ansible.plugins.action import ActionBase
from ansible_collections.central_mcp.agents.plugins.module_utils.root_fs import ARGUMENT_SPEC, SPEC_RULES
from ansible_collections.central_mcp.agents.plugins.plugin_utils.module_actions import run_as_module

GIB = 2**30
# What a remembered look keeps of the module's result, besides the line saying how / stands.
KEPT = ("mount", "source", "fstype", "disk", "partition", "disk_bytes")


def look_key(args: dict) -> dict:
    """What must be the same for a remembered look to stand: the disk, its size, the mount, the least room."""
    known = args["known_disk"]
    return {"disk": known["id"], "size_gb": int(known["size_gb"]), "mount": args["mount"],
            "min_room_mb": args["min_room_mb"]}  # fmt: skip


def remembered(path: str, args: dict) -> dict | None:
    """The module's answer as remembered for these arguments, or None (no file, another disk or size, unreadable)."""
    try:
        with open(os.path.expanduser(path), encoding="utf-8") as handle:
            entry = json.load(handle)
    except (OSError, ValueError):
        return None
    if not isinstance(entry, dict) or entry.get("key") != look_key(args):
        return None
    found = {key: entry.get(key) for key in KEPT}
    size = args["known_disk"]["size_gb"]
    msg = f"{entry['settled']} (found so on {entry['looked_at']}; its {size} GB disk has not changed since)"
    return {**found, "changed": False, "cached": True, "msg": msg, "settled": entry["settled"],
            "nothing_to_grow": True, "partition_grown": False, "filesystem_grown": False,
            "growpart_needed": False, "commands": []}  # fmt: skip


def worth_remembering(result: dict, args: dict) -> bool:
    """Nothing left to grow, on a disk the kernel shows at its full size (or a filesystem left alone)."""
    if result.get("failed") or not result.get("nothing_to_grow"):
        return False
    seen = result.get("disk_bytes")
    return seen is None or seen >= int(args["known_disk"]["size_gb"]) * GIB


def remember(path: str, args: dict, result: dict, now: datetime.datetime | None = None) -> None:
    """Write the look down (atomically: a reader sees the old entry or the new one)."""
    now = now or datetime.datetime.now(datetime.UTC)
    entry = {"key": look_key(args), "looked_at": now.strftime("%Y-%m-%d %H:%M UTC"),
             "settled": result["settled"], **{key: result.get(key) for key in KEPT}}  # fmt: skip
    path = os.path.expanduser(path)
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, mode=0o700, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".grow_root_fs-")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(entry, out, indent=1, sort_keys=True)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


class ActionModule(ActionBase):
    _supports_async = True  # the module's run, as before (nothing is remembered from an async job)

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC, **SPEC_RULES)
        cache = args["cache_file"] if not self._task.async_val else None
        if cache and not args["disk_grew"]:
            known = remembered(cache, args)
            if known is not None:
                return {**result, **known}
        result = run_as_module(self, result, task_vars)
        if cache and not self._task.check_mode and worth_remembering(result, args):
            try:
                remember(cache, args, result)
            except OSError as exc:  # a cache: the look stands, the next run looks again
                self._display.warning(f"grow_root_fs could not remember its look in {cache}: {exc}")
        return result
