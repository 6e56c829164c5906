# SPDX-License-Identifier: Apache-2.0
"""Grow a mounted filesystem (``/``) into its partition and its disk: the parsers and the one run.

Whether the partition and the filesystem can grow is decided from what the
tools themselves print (``findmnt``, ``lsblk``, ``growpart --dry-run``,
``dumpe2fs -h``, ``xfs_info``), parsed here so that the decisions are
unit-tested against real output. Standard library only (and Ansible's
module_utils): the ``grow_root_fs`` module runs this on the VM.

One run reads, in this order, and stops as soon as the answer is known:
findmnt (what is mounted), lsblk (the device, its disk and partition),
growpart's dry run (only for a partition), dumpe2fs or xfs_info (the
filesystem's own size). Sizes as ``df`` shows them come from ``statvfs``.
Nothing is written before the check-mode guard in :meth:`RootFs.grow`.

growpart comes from cloud-guest-utils, which a VM may not have. Without it
the partition's room is estimated from sysfs (start and size of the
partition, size of the disk); when there is room the run stops there with
``growpart_needed``, so that the caller installs the package and runs again.
"""

from __future__ import annotations

import json
import os
import re
import time

from ansible.module_utils.common.text.formatters import bytes_to_human

GROWABLE = ("ext2", "ext3", "ext4", "xfs")
# The module's options (the module and its action plugin check the same). known_disk and
# cache_file are the action plugin's, on the controller; the module takes and ignores them.
ARGUMENT_SPEC = {
    "mount": {"type": "path", "default": "/"},
    "min_room_mb": {"type": "int", "default": 16},
    "disk_grew": {"type": "bool", "default": False},
    "settle_timeout": {"type": "int", "default": 10},
    "known_disk": {
        "type": "dict",
        "options": {"id": {"type": "str", "required": True}, "size_gb": {"type": "int", "required": True}},
    },
    "cache_file": {"type": "path"},
}
SPEC_RULES = {"required_by": {"cache_file": "known_disk"}}
GROWPART_PACKAGE = "cloud-guest-utils"
SYSFS_BLOCK = "/sys/class/block"
SECTOR = 512  # sysfs counts 512-byte sectors, whatever the disk's own sector size
GPT_BACKUP_SECTORS = 33  # growpart leaves the backup GPT at the end of the disk
GROWPART_FUDGE_BYTES = 2**20  # growpart's own "not worth it" (cloud-utils 0.33; older ones: 10 MiB)
POLL_S = 2.0  # between two looks at a disk that grew a moment ago
_GROWPART_CHANGE = re.compile(r"CHANGED?: partition=(\d+) start=\d+ old: size=(\d+) end=\d+ new: size=(\d+)")
_EXT_COUNT = re.compile(r"^Block count:\s+(\d+)", re.M)
_EXT_SIZE = re.compile(r"^Block size:\s+(\d+)", re.M)
_XFS_DATA = re.compile(r"^data\s+=.*?\bbsize=(\d+)\s+blocks=(\d+)", re.M)


class GrowError(Exception):
    """A step failed: the message says what and what to do; ``result`` tells what was already done."""

    def __init__(self, msg: str, result: dict):
        super().__init__(msg)
        self.msg, self.result = msg, result


# ----------------------------------------------------------------- parsers
def _json(text, tool: str) -> dict:
    if isinstance(text, dict):
        return text
    try:
        return json.loads(text or "{}")
    except ValueError:
        raise ValueError(f"{tool} printed something that is not JSON: {str(text)[:120]!r}") from None


def root_fs_layout(findmnt_json, lsblk_json="") -> dict:
    """Where a filesystem lives, from `findmnt --json` and `lsblk --json --bytes --paths` of its source.

    Returns mount, source, fstype, size_bytes (of the device under it),
    disk and partition (None for a filesystem on a whole disk), grow (true
    when it can be grown here) and why (when not).
    """
    found = (_json(findmnt_json, "findmnt").get("filesystems") or [{}])[0]
    source = re.sub(r"\[.*\]$", "", found.get("source") or "")  # btrfs subvolumes: /dev/sda1[/@]
    layout = {"mount": found.get("target"), "source": source, "fstype": found.get("fstype") or "unknown"}
    layout.update(size_bytes=None, disk=None, partition=None, grow=False, why="")
    if layout["fstype"] == "overlay":
        return {**layout, "why": "it is an overlay filesystem (a container): there is no disk to grow under it"}
    if layout["fstype"] not in GROWABLE:
        return {**layout, "why": f"it is {layout['fstype']}: only ext2/3/4 and XFS are grown"}
    device = (_json(lsblk_json, "lsblk").get("blockdevices") or [None])[0] if lsblk_json else None
    if not source.startswith("/dev/") or not device:
        return {**layout, "why": f"its source {source or '(none)'} is not a block device lsblk knows"}
    kind, parent, name = device.get("type"), device.get("pkname") or "", device.get("name") or ""
    layout["size_bytes"] = int(device["size"]) if str(device.get("size", "")).isdigit() else None
    if kind in ("disk", "loop"):  # a filesystem on the whole device: only the filesystem grows
        return {**layout, "grow": True}
    number = name[len(parent) :] if parent and name.startswith(parent) else ""
    number = number[1:] if number.startswith("p") else number  # nvme0n1p1, mmcblk0p1
    if kind == "part" and number.isdigit():
        return {**layout, "disk": parent, "partition": int(number), "grow": True}
    return {
        **layout,
        "why": f"it is on a {kind} device ({name}): grow what is under it by hand "
        "(e.g. pvresize and lvextend), then the filesystem",
    }


def growpart_plan(stdout, rc, sector_bytes=SECTOR) -> dict:
    """What `growpart --dry-run DISK N` says: grow (bool), from_bytes, to_bytes, why (in its words), rc."""
    text = (stdout or "").strip()
    found = _GROWPART_CHANGE.search(text)
    if int(rc) == 0 and found:
        number, old, new = (int(found.group(i)) for i in (1, 2, 3))
        size = int(sector_bytes)
        return {"grow": True, "from_bytes": old * size, "to_bytes": new * size, "why": f"partition {number} can grow",
                "rc": 0}  # fmt: skip
    why = text.split("NOCHANGE: ", 1)[1] if "NOCHANGE: " in text else (text or f"growpart exited {rc}")
    return {"grow": False, "from_bytes": None, "to_bytes": None, "why": why.splitlines()[0], "rc": int(rc)}


def partition_room(disk: str, partition: str, sysfs: str = SYSFS_BLOCK, fudge: int = GROWPART_FUDGE_BYTES) -> dict:
    """growpart's answer, estimated from sysfs where growpart is not installed: the same keys as growpart_plan.

    The partition may grow up to the next partition, or up to the disk's end
    less the backup GPT; less than ``fudge`` is not worth it. It errs toward
    "grow": growpart's dry run has the last word once it is installed.
    """
    where = os.path.join(sysfs, os.path.basename(disk))
    name = os.path.basename(partition)

    def sectors(*path: str) -> int:
        with open(os.path.join(where, *path)) as handle:
            return int(handle.read().strip())

    start, size = sectors(name, "start"), sectors(name, "size")
    limit = sectors("size") - GPT_BACKUP_SECTORS
    for other in os.listdir(where):  # a partition after this one stops it
        if other != name and os.path.exists(os.path.join(where, other, "partition")):
            other_start = sectors(other, "start")
            limit = min(limit, other_start) if other_start > start else limit
    room = (limit - start - size) * SECTOR
    if room < fudge:
        why = f"partition {name} fills its disk (sysfs: {max(room, 0)} bytes after it)"
        return {"grow": False, "from_bytes": None, "to_bytes": None, "why": why}
    return {"grow": True, "from_bytes": size * SECTOR, "to_bytes": (limit - start) * SECTOR,
            "why": f"partition {name} can grow (sysfs)"}  # fmt: skip


def filesystem_room(info, fstype, device_bytes, min_room_mb=16) -> dict:
    """Whether the filesystem is smaller than its device by at least min_room_mb (from dumpe2fs -h / xfs_info).

    A grown filesystem can end a few blocks short of its device (resize2fs
    rounds), so "room" means more than a rounding: min_room_mb.
    """
    text = info or ""
    if str(fstype).startswith("ext"):
        count, size = _EXT_COUNT.search(text), _EXT_SIZE.search(text)
        fs_bytes = int(count.group(1)) * int(size.group(1)) if count and size else None
    elif fstype == "xfs":
        data = _XFS_DATA.search(text)
        fs_bytes = int(data.group(1)) * int(data.group(2)) if data else None
    else:
        raise ValueError(f"filesystem_room knows ext2/3/4 and xfs, not {fstype!r:.40}")
    if fs_bytes is None:
        raise ValueError(f"no block count and size in what was read for {fstype}: {text[:160]!r}")
    device = int(device_bytes)
    room = device - fs_bytes
    grow = room >= float(min_room_mb) * 2**20
    return {"grow": grow, "fs_bytes": fs_bytes, "device_bytes": device, "room_bytes": max(room, 0)}


def df(path: str, statvfs=os.statvfs) -> dict:
    """Size and free bytes of the filesystem at path, as `df --block-size=1 --output=size,avail` shows them."""
    st = statvfs(path)
    return {"size_bytes": st.f_blocks * st.f_frsize, "free_bytes": st.f_bavail * st.f_frsize}


def human(size) -> str:
    return bytes_to_human(int(size))


# ----------------------------------------------------------------- the run
class RootFs:
    """One look at a mount point and, when there is room, one grow: partition first, then filesystem.

    ``run(argv) -> (rc, stdout, stderr)`` runs a command (no shell); ``which``
    finds a tool (None when it is not installed). ``disk_grew``: the disk
    grew in this run (in check mode: would grow), so a partition or device
    that shows no room yet is looked at again for up to ``settle_timeout``
    seconds, and check mode says what would grow once it has.
    """

    def __init__(self, run, which, mount="/", min_room_mb=16, disk_grew=False, settle_timeout=10,
                 check_mode=False, diff=False, statvfs=os.statvfs, sysfs=SYSFS_BLOCK,
                 sleep=time.sleep, clock=time.monotonic):  # fmt: skip
        self._run, self.which, self.mount, self.min_room_mb = run, which, mount, min_room_mb
        self.disk_grew, self.settle_timeout, self.check_mode, self.diff = disk_grew, settle_timeout, check_mode, diff
        self.statvfs, self.sysfs, self.sleep, self.clock = statvfs, sysfs, sleep, clock
        self.commands: list[str] = []
        self.result: dict = {}
        self.what = mount  # "/ (ext4 on /dev/sda1)" once the layout is known

    def run(self, *argv) -> tuple[int, str, str]:
        self.commands.append(str(argv[0]))
        return self._run([str(a) for a in argv])

    # ------------------------------------------------------------- reads
    def layout(self) -> dict:
        rc, out, err = self.run("findmnt", "--json", "--output", "SOURCE,FSTYPE,TARGET", "--mountpoint", self.mount)
        if rc != 0:
            why = err.strip() or out.strip() or f"exit code {rc}"
            msg = f"findmnt finds no filesystem mounted at {self.mount} ({why}): give the mount point of one"
            raise GrowError(msg, self.result)
        source = re.sub(r"\[.*\]$", "", (_json(out, "findmnt").get("filesystems") or [{}])[0].get("source") or "")
        device = ""
        if source.startswith("/dev/"):
            rc, device, _err = self.run(
                "lsblk", "--json", "--bytes", "--paths", "--output", "NAME,PKNAME,TYPE,SIZE", source
            )
            device = device if rc == 0 else ""  # an unknown device is reported as such
        return root_fs_layout(out, device)

    def device_bytes(self, source: str) -> int:
        rc, out, err = self.run("lsblk", "--bytes", "--nodeps", "--noheadings", "--output", "SIZE", source)
        if rc != 0 or not out.strip().isdigit():
            raise GrowError(f"lsblk could not measure {source}: {err.strip() or out.strip()}", self.result)
        return int(out.strip())

    def partition_plan(self, layout: dict) -> dict:
        disk, number = layout["disk"], layout["partition"]
        if not self.which("growpart"):
            return {**partition_room(disk, layout["source"], self.sysfs), "needs_growpart": True}
        rc, out, err = self.run("growpart", "--dry-run", disk, number)
        plan = growpart_plan(out, rc)
        if plan["rc"] not in (0, 1) and not self.check_mode:
            raise GrowError(f"growpart --dry-run {disk} {number} failed (exit {rc}): {(out + err).strip()[:300]}; "
                            "nothing was changed", self.result)  # fmt: skip
        return plan

    def fs_info(self, layout: dict) -> tuple[str, str | None]:
        """What dumpe2fs -h / xfs_info printed, or ("", why) when it could not read the filesystem."""
        argv = ("xfs_info", self.mount) if layout["fstype"] == "xfs" else ("dumpe2fs", "-h", layout["source"])
        rc, out, err = self.run(*argv)
        if rc != 0:
            last = (err.strip().splitlines() or [f"exit code {rc}"])[-1]
            return "", f"{argv[0]} could not read its size ({last})"
        return out, None

    def disk_bytes(self, layout: dict, room: dict) -> int | None:
        """The disk under the filesystem as the kernel sees it now: sysfs for a partition's disk, else the device."""
        if layout["partition"] is None:
            return room["device_bytes"]
        try:
            with open(os.path.join(self.sysfs, os.path.basename(layout["disk"]), "size")) as handle:
                return int(handle.read().strip()) * SECTOR
        except (OSError, ValueError):
            return None

    def settled(self, found: dict, measure, done) -> dict:
        """measure() again until done(answer), for up to settle_timeout s: after a grow the kernel can be late."""
        deadline = self.clock() + self.settle_timeout
        while not done(found) and self.clock() + POLL_S <= deadline:
            self.sleep(POLL_S)
            found = measure()
        return found

    # ------------------------------------------------------------- the run
    def grow(self) -> dict:
        """Look, grow what has room (unless in check mode), and say what happened in one message."""
        before = df(self.mount, self.statvfs)
        r = self.result
        r.update(changed=False, mount=self.mount, source="", fstype="", disk=None, partition=None,
                 partition_grown=False, filesystem_grown=False, growpart_needed=False, nothing_to_grow=False,
                 settled="", disk_bytes=None, df_before=before, df_after=before, commands=self.commands)  # fmt: skip
        layout = self.layout()
        r.update({k: layout[k] for k in ("source", "fstype", "disk", "partition")})
        if not layout["grow"]:
            r.update(nothing_to_grow=True, settled=f"{self.mount} is left as it is: {layout['why']}")
            return self.done(r["settled"])
        self.what = f"{self.mount} ({layout['fstype']} on {layout['source']})"
        plan = self.grow_partition(layout) if layout["partition"] is not None else {"grow": False}
        if r["growpart_needed"] and not self.check_mode:
            return self.done(
                f"{self.what} needs growpart to grow partition {layout['partition']} of {layout['disk']} "
                f"({human(plan['from_bytes'])} → about {human(plan['to_bytes'])}): install {GROWPART_PACKAGE} "
                "and run this again"
            )
        room, error = self.grow_filesystem(layout, plan)
        r["changed"] = r["partition_grown"] or r["filesystem_grown"]
        r["disk_bytes"] = self.disk_bytes(layout, room)
        # Settled: it fills a disk whose size the kernel shows, and nothing would grow or is pending.
        r["nothing_to_grow"] = (error is None and r["disk_bytes"] is not None and not r["growpart_needed"]
                                and not (self.check_mode and (r["changed"] or self.disk_grew)))  # fmt: skip
        if r["nothing_to_grow"]:
            r["settled"] = f"{self.what} fills its disk"
        if r["changed"] and not self.check_mode:
            r["df_after"] = df(self.mount, self.statvfs)
        if r["changed"] and self.diff:
            r["diff"] = self.size_diff(layout, plan, room)
        return self.done(self.message(layout, plan, error))

    def grow_partition(self, layout: dict) -> dict:
        """growpart's dry run (or sysfs's estimate without growpart), then growpart when there is room."""
        r, disk, number = self.result, layout["disk"], layout["partition"]
        plan = self.partition_plan(layout)
        if not plan["grow"] and plan.get("rc", 1) == 1 and self.disk_grew and not self.check_mode:
            plan = self.settled(plan, lambda: self.partition_plan(layout), lambda p: p["grow"] or p.get("rc", 1) != 1)
        r["partition_grown"] = plan["grow"]
        r["growpart_needed"] = plan["grow"] and bool(plan.get("needs_growpart"))
        if plan["grow"] and not r["growpart_needed"] and not self.check_mode:  # change point 1
            rc, out, err = self.run("growpart", disk, number)
            if rc != 0:
                r["partition_grown"] = False
                raise GrowError(f"growpart {disk} {number} failed (exit {rc}): {(out + err).strip()[:300]}; "
                                f"look at the partition table with `lsblk {disk}`", r)  # fmt: skip
            r["changed"] = True
        return plan

    def grow_filesystem(self, layout: dict, plan: dict) -> tuple[dict, str | None]:
        """The filesystem's own size against its device's; resize2fs or xfs_growfs when there is room."""
        r, source, fstype = self.result, layout["source"], layout["fstype"]
        info, error = self.fs_info(layout)
        if error:
            return {"grow": False, "fs_bytes": None, "device_bytes": layout["size_bytes"]}, error
        device = layout["size_bytes"]
        if device is None or (r["partition_grown"] and not self.check_mode):
            device = self.device_bytes(source)
        room = filesystem_room(info, fstype, device, self.min_room_mb)
        if layout["partition"] is None and not room["grow"] and self.disk_grew and not self.check_mode:
            # a filesystem on a whole disk: the disk itself shows its new size, maybe a moment late
            def measure() -> dict:
                return filesystem_room(info, fstype, self.device_bytes(source), self.min_room_mb)

            room = self.settled(room, measure, lambda found: found["grow"])
        r["filesystem_grown"] = room["grow"] or (self.check_mode and plan["grow"])
        if room["grow"] and not self.check_mode:  # change point 2
            argv = self.fs_grow_argv(layout)
            rc, out, err = self.run(*argv)
            if rc != 0:
                r.update(filesystem_grown=False, changed=r["partition_grown"])
                r["df_after"] = df(self.mount, self.statvfs)
                grew = f"partition {layout['partition']} of {layout['disk']} grew; " if r["partition_grown"] else ""
                command = " ".join(argv)
                msg = f"{command} failed (exit {rc}): {(out + err).strip()[:300]}; {grew}the filesystem is its old size"
                raise GrowError(f"{msg}: run `{command}` by hand to see why", r)
        return room, None

    def fs_grow_argv(self, layout: dict) -> tuple[str, ...]:
        return ("xfs_growfs", self.mount) if layout["fstype"] == "xfs" else ("resize2fs", layout["source"])

    def message(self, layout: dict, plan: dict, error: str | None) -> str:
        """The one line: what grew, would grow, or why nothing does (the first case that applies)."""
        r, what, number, disk = self.result, self.what, layout["partition"], layout["disk"]
        if self.check_mode and r["changed"]:
            planned = []
            if plan["grow"]:
                note = f" (growpart, once {GROWPART_PACKAGE} is installed)" if r["growpart_needed"] else ""
                planned.append(f"partition {number} {human(plan['from_bytes'])} → {human(plan['to_bytes'])}{note}")
            return f"would grow {what}: {', then '.join([*planned, 'the filesystem'])}"
        if error:
            grew = f" (partition {number} of {disk} grew, with growpart)" if r["partition_grown"] else ""
            return (f"{what} was not checked{grew}: {error}; if it is smaller than its device, grow it by hand "
                    f"with {' '.join(self.fs_grow_argv(layout))}")  # fmt: skip
        if self.check_mode and self.disk_grew:
            return f"{what} would grow into the disk once it has grown"
        if r["changed"]:
            steps = [f"partition {number} of {disk} (growpart)"] if r["partition_grown"] else []
            steps += [f"filesystem ({self.fs_grow_argv(layout)[0]})"] if r["filesystem_grown"] else []
            return f"{what} grew: {', '.join(steps)}"
        return f"{what} already fills its disk"

    def size_diff(self, layout: dict, plan: dict, room: dict) -> dict:
        """Partition and filesystem sizes before and after (in check mode: what they would become)."""
        number = layout["partition"]
        before = {"partition": layout["size_bytes"]} if number is not None else {}
        before["filesystem"] = room["fs_bytes"]
        after = dict(before)
        if self.check_mode:
            if plan["grow"]:
                after["partition"] = plan["to_bytes"]
            if self.result["filesystem_grown"]:  # it grows into its partition or disk
                after["filesystem"] = after["partition"] if number is not None else room["device_bytes"]
        else:
            if number is not None:
                after["partition"] = room["device_bytes"]
            info, error = self.fs_info(layout)
            after["filesystem"] = None if error else filesystem_room(info, layout["fstype"], 0)["fs_bytes"]
        names = {"partition": f"partition {number} of {layout['disk']}",
                 "filesystem": f"{layout['fstype']} filesystem on {layout['source']}"}  # fmt: skip

        def text(sizes: dict) -> str:
            return "".join(f"{names[k]}: {'unknown' if v is None else human(v)}\n" for k, v in sizes.items())

        return {"before_header": self.mount, "after_header": self.mount, "before": text(before), "after": text(after)}

    def done(self, message: str) -> dict:
        before, after = self.result["df_before"], self.result["df_after"]
        grew = f"{human(before['size_bytes'])} → " if before["size_bytes"] != after["size_bytes"] else ""
        self.result["msg"] = f"{message} (df: {grew}{human(after['size_bytes'])}, {human(after['free_bytes'])} free)"
        return self.result
