# SPDX-License-Identifier: Apache-2.0
"""grow_root_fs's parsers and its one run, driven by case tables (one line per case).

The parser cases are fed what the real tools print: the growpart, dumpe2fs
and xfs_info texts below were captured on Debian 12 from an image file and
loop devices (test_vm_upgrade_guest_grow.py produces the same output live).
The run (module_utils/root_fs.py's RootFs) is driven against a stand-in
host that answers findmnt, lsblk, growpart, dumpe2fs, xfs_info, resize2fs
and xfs_growfs as the real ones do, from a disk, a partition and a
filesystem whose sizes the case sets, so that every branch of the message
and every command on the way is checked; the real tools on loop devices are
in test_vm_upgrade_guest_grow.py.
"""

from __future__ import annotations

import datetime
import json
import os
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest
import yaml
from ansible_collections.central_mcp.agents.plugins.module_utils import root_fs as r
from ansible_collections.central_mcp.agents.plugins.module_utils.root_fs import GrowError, RootFs, human
from ansible_collections.central_mcp.agents.plugins.plugin_utils import root_fs_memo as memo

GIB = 2**30
SECTORS_PER_GIB = GIB // 512


# ----------------------------------------------------------------- where / lives
def findmnt(source: str, fstype: str, target: str = "/") -> str:
    return json.dumps({"filesystems": [{"source": source, "fstype": fstype, "target": target}]})


def lsblk(name: str, kind: str, parent: str | None = None, size: int = 50 * GIB) -> str:
    return json.dumps({"blockdevices": [{"name": name, "pkname": parent, "type": kind, "size": size}]})


@pytest.mark.parametrize(
    ("mounted", "device", "expected"),
    [
        # a GCE Debian image: SCSI disk, partition 1
        (findmnt("/dev/sda1", "ext4"), lsblk("/dev/sda1", "part", "/dev/sda"), ("/dev/sda", 1, True)),
        # NVMe (C3 and newer machine types): the partition suffix is p1
        (findmnt("/dev/nvme0n1p1", "ext4"), lsblk("/dev/nvme0n1p1", "part", "/dev/nvme0n1"), ("/dev/nvme0n1", 1, True)),
        (findmnt("/dev/sda2", "xfs"), lsblk("/dev/sda2", "part", "/dev/sda"), ("/dev/sda", 2, True)),
        (findmnt("/dev/sda15", "ext4"), lsblk("/dev/sda15", "part", "/dev/sda"), ("/dev/sda", 15, True)),
        # this test bed: ext4 on the whole disk, only the filesystem grows
        (findmnt("/dev/vda", "ext4"), lsblk("/dev/vda", "disk"), (None, None, True)),
        (findmnt("/dev/loop0", "xfs", "/mnt/x"), lsblk("/dev/loop0", "loop"), (None, None, True)),
    ],
    ids=["scsi", "nvme", "xfs-part2", "part15", "whole-disk", "loop"],
)
def test_root_fs_layout_finds_disk_and_partition(mounted, device, expected):
    layout = r.root_fs_layout(mounted, device)
    assert (layout["disk"], layout["partition"], layout["grow"]) == expected and layout["why"] == ""
    assert layout["size_bytes"] == 50 * GIB


@pytest.mark.parametrize(
    ("mounted", "device", "why"),
    [
        (findmnt("overlay", "overlay"), "", "overlay filesystem (a container)"),
        (findmnt("/dev/sda1[/@]", "btrfs"), "", "it is btrfs: only ext2/3/4 and XFS are grown"),
        (findmnt("/dev/mapper/vg-root", "ext4"), lsblk("/dev/mapper/vg-root", "lvm"), "on a lvm device"),
        (findmnt("/dev/md0", "ext4"), lsblk("/dev/md0", "raid1"), "on a raid1 device (/dev/md0)"),
        (findmnt("/dev/root", "ext4"), "", "its source /dev/root is not a block device lsblk knows"),
        (findmnt("rootfs", "ext4"), "", "its source rootfs is not a block device"),
    ],
    ids=["overlay", "btrfs", "lvm", "raid", "dev-root", "not-dev"],
)
def test_root_fs_layout_says_why_it_will_not_grow(mounted, device, why):
    layout = r.root_fs_layout(mounted, device)
    assert layout["grow"] is False and why in layout["why"], layout


def test_root_fs_layout_refuses_garbage():
    with pytest.raises(ValueError, match="findmnt printed something that is not JSON"):
        r.root_fs_layout("TARGET SOURCE\n/ /dev/sda1")


# ----------------------------------------------------------------- growpart --dry-run
GROWPART = {  # (stdout, rc) as growpart 0.33 prints them
    "change": ("CHANGE: partition=1 start=2048 old: size=40960 end=43007 new: size=128991 end=131038\n", 0),
    "changed": ("CHANGED: partition=1 start=2048 old: size=40960 end=43007 new: size=260063 end=262110\n", 0),
    "full": ("NOCHANGE: partition 1 is size 260063. it cannot be grown\n", 1),
    "fudge": ("NOCHANGE: partition 1 could only be grown by 2015 [fudge=20480]\n", 1),
    "failed": ("FAILED: failed to get start and end for disk.img3 in disk.img\n", 2),
}


@pytest.mark.parametrize(
    ("case", "grow", "sizes", "why"),
    [
        ("change", True, (40960 * 512, 128991 * 512), "partition 1 can grow"),
        ("changed", True, (40960 * 512, 260063 * 512), "partition 1 can grow"),
        ("full", False, (None, None), "partition 1 is size 260063. it cannot be grown"),
        ("fudge", False, (None, None), "could only be grown by 2015 [fudge=20480]"),
        ("failed", False, (None, None), "FAILED: failed to get start and end"),
    ],
)
def test_growpart_plan(case, grow, sizes, why):
    plan = r.growpart_plan(*GROWPART[case])
    assert (plan["grow"], (plan["from_bytes"], plan["to_bytes"])) == (grow, sizes) and why in plan["why"]
    assert plan["rc"] == GROWPART[case][1]


def test_growpart_plan_without_output():
    assert r.growpart_plan("", 2)["why"] == "growpart exited 2"


# ----------------------------------------------------------------- filesystem vs device
DUMPE2FS = "Filesystem volume name:   <none>\nBlock count:              20480\nBlock size:               1024\n"
XFS_SAMPLE = """meta-data=/dev/loop0             isize=512    agcount=4, agsize=20480 blks
         =                       sectsz=512   attr=2, projid32bit=1
         =                       crc=1        finobt=1, sparse=1, rmapbt=0
data     =                       bsize=4096   blocks={blocks}, imaxpct=25
         =                       sunit=0      swidth=0 blks
naming   =version 2              bsize=4096   ascii-ci=0, ftype=1
log      =internal log           bsize=4096   blocks=16384, version=2
realtime =none                   extsz=4096   blocks=0, rtextents=0
"""


@pytest.mark.parametrize(
    ("info", "fstype", "device", "grow", "fs_bytes"),
    [
        (DUMPE2FS, "ext4", 20480 * 1024, False, 20480 * 1024),  # fills its partition
        (DUMPE2FS, "ext4", 20480 * 1024 + 3584, False, 20480 * 1024),  # resize2fs rounding, not room
        (DUMPE2FS, "ext4", 128991 * 512, True, 20480 * 1024),  # the partition grew
        (XFS_SAMPLE.format(blocks=81920), "xfs", 320 * 2**20, False, 81920 * 4096),
        (XFS_SAMPLE.format(blocks=81920), "xfs", 400 * 2**20, True, 81920 * 4096),
    ],
)
def test_filesystem_room(info, fstype, device, grow, fs_bytes):
    room = r.filesystem_room(info, fstype, device)
    assert (room["grow"], room["fs_bytes"], room["device_bytes"]) == (grow, fs_bytes, device)
    assert room["room_bytes"] == max(device - fs_bytes, 0)


@pytest.mark.parametrize(
    ("info", "fstype", "message"),
    [
        ("", "ext4", "no block count and size in what was read for ext4"),
        ("garbage", "xfs", "no block count and size in what was read for xfs"),
        (DUMPE2FS, "btrfs", "knows ext2/3/4 and xfs, not 'btrfs'"),
    ],
)
def test_filesystem_room_errors(info, fstype, message):
    with pytest.raises(ValueError, match=message):
        r.filesystem_room(info, fstype, GIB)


# ----------------------------------------------------------------- a stand-in host
@dataclass
class Host:
    """A disk, maybe a partition on it, and a filesystem, answering the tools as they answer on Debian 12."""

    fstype: str = "ext4"
    kind: str = "part"  # or "disk"
    disk_gib: int = 10  # what the kernel sees once it has caught up
    old_disk_gib: int | None = None  # what it saw before the disk grew; None: the disk did not grow
    late: int = 0  # looks at the disk that still see the old size
    fs_short: int = 0  # bytes the filesystem is smaller than its device (grown by hand: the partition only)
    growpart: bool = True  # cloud-guest-utils installed
    fail: tuple = ()  # tools that fail
    sysfs: str = ""
    start: int = 2048
    log: list = field(default_factory=list)

    def __post_init__(self):
        old = self.old_disk_gib or self.disk_gib
        self.part_sectors = old * SECTORS_PER_GIB - r.GPT_BACKUP_SECTORS - self.start  # fills the disk it was on
        self.fs_bytes = (self.device_bytes(old * SECTORS_PER_GIB) - self.fs_short) // 4096 * 4096
        self.write_sysfs()

    @property
    def disk(self) -> str:
        return "/dev/sda"

    @property
    def source(self) -> str:
        return "/dev/sda1" if self.kind == "part" else "/dev/sda"

    def disk_sectors(self) -> int:
        """What the kernel sees now: the old size for the first `late` looks."""
        if self.late:
            self.late -= 1
            return (self.old_disk_gib or self.disk_gib) * SECTORS_PER_GIB
        return self.disk_gib * SECTORS_PER_GIB

    def device_bytes(self, disk_sectors: int | None = None) -> int:
        if self.kind == "part":
            return self.part_sectors * 512
        return (disk_sectors or self.disk_sectors()) * 512

    def write_sysfs(self):
        if not self.sysfs:
            return
        for path, value in {
            "sda/size": self.disk_gib * SECTORS_PER_GIB,
            "sda/sda1/start": self.start,
            "sda/sda1/size": self.part_sectors,
            "sda/sda1/partition": 1,
        }.items():
            os.makedirs(os.path.dirname(os.path.join(self.sysfs, path)), exist_ok=True)
            with open(os.path.join(self.sysfs, path), "w") as handle:
                handle.write(f"{value}\n")

    def which(self, tool: str) -> str | None:
        return None if tool == "growpart" and not self.growpart else f"/usr/sbin/{tool}"

    def statvfs(self, path: str):
        return SimpleNamespace(f_blocks=self.fs_bytes // 4096, f_frsize=4096, f_bavail=(self.fs_bytes - GIB) // 4096)

    def run(self, argv: list) -> tuple[int, str, str]:
        self.log.append(argv)
        tool = argv[0]
        if tool in self.fail:
            return 2, "", f"{tool}: Bad magic number in super-block\n{tool}: it failed"
        if tool == "findmnt":
            return 0, findmnt(self.source, self.fstype, argv[-1]), ""
        if tool == "lsblk" and "--json" in argv:
            return 0, lsblk(self.source, self.kind, self.disk if self.kind == "part" else None, self.device_bytes()), ""
        if tool == "lsblk":
            return 0, f"{self.device_bytes()}\n", ""
        if tool == "growpart":
            return self.growpart_run(dry="--dry-run" in argv)
        if tool == "dumpe2fs":
            return 0, f"Block count:              {self.fs_bytes // 4096}\nBlock size:               4096\n", ""
        if tool == "xfs_info":
            return 0, XFS_SAMPLE.format(blocks=self.fs_bytes // 4096), ""
        if tool in ("resize2fs", "xfs_growfs"):
            self.fs_bytes = self.device_bytes() // 4096 * 4096
            return 0, "", ""
        raise AssertionError(f"unexpected command {argv}")

    def growpart_run(self, dry: bool) -> tuple[int, str, str]:
        """growpart 0.33's arithmetic: up to the backup GPT, NOCHANGE within its 1 MiB fudge."""
        max_end, pt_end = self.disk_sectors() - r.GPT_BACKUP_SECTORS - 1, self.start + self.part_sectors - 1
        if max_end - pt_end < 2048:
            return 1, f"NOCHANGE: partition 1 is size {self.part_sectors}. it cannot be grown\n", ""
        new = max_end - self.start + 1
        word = "CHANGE" if dry else "CHANGED"
        out = f"{word}: partition=1 start={self.start} old: size={self.part_sectors} end={pt_end} new: size={new} end={max_end}\n"  # noqa: E501
        if not dry:
            self.part_sectors = new
            self.write_sysfs()
        return 0, out, ""

    def tools(self) -> list[str]:
        return [argv[0] + (" --dry-run" if "--dry-run" in argv else "") for argv in self.log]


def grow(host: Host, check: bool = False, diff: bool = False, **options):
    sleeps, now = [], [0.0]

    def sleep(seconds):
        sleeps.append(seconds)
        now[0] += seconds

    root = RootFs(host.run, host.which, check_mode=check, diff=diff, statvfs=host.statvfs, sysfs=host.sysfs,
                  sleep=sleep, clock=lambda: now[0], **options)  # fmt: skip
    return root.grow(), sleeps


def df_text(before: int, after: int, free: int) -> str:
    grew = f"{human(before)} → " if before != after else ""
    return f"(df: {grew}{human(after)}, {human(free)} free)"


EXT = "/ (ext4 on /dev/sda1)"
READS = ["findmnt", "lsblk", "growpart --dry-run", "dumpe2fs"]  # a partition that fills its disk: 4 reads, no write

# What one run does: (host, options) -> changed, partition_grown, filesystem_grown, growpart_needed, message, commands
CASES = {
    "full partition": (
        {}, {},
        (False, False, False, False), f"{EXT} already fills its disk", READS,
    ),
    "disk grew, growpart installed": (
        {"disk_gib": 30, "old_disk_gib": 10}, {},
        (True, True, True, False), f"{EXT} grew: partition 1 of /dev/sda (growpart), filesystem (resize2fs)",
        [*READS[:3], "growpart", "dumpe2fs", "lsblk", "resize2fs"],
    ),
    "disk grew, check mode": (
        {"disk_gib": 30, "old_disk_gib": 10}, {"check": True},
        (True, True, True, False), f"would grow {EXT}: partition 1 10.00 GB → 30.00 GB, then the filesystem", READS,
    ),
    "disk grew, no growpart": (
        {"disk_gib": 30, "old_disk_gib": 10, "growpart": False}, {},
        (False, True, False, True),
        f"{EXT} needs growpart to grow partition 1 of /dev/sda (10.00 GB → about 30.00 GB): install "
        "cloud-guest-utils and run this again", ["findmnt", "lsblk"],
    ),
    "disk grew, no growpart, check mode": (
        {"disk_gib": 30, "old_disk_gib": 10, "growpart": False}, {"check": True},
        (True, True, True, True),
        f"would grow {EXT}: partition 1 10.00 GB → 30.00 GB (growpart, once cloud-guest-utils is installed), "
        "then the filesystem", ["findmnt", "lsblk", "dumpe2fs"],
    ),
    "full partition, no growpart": (
        {"growpart": False}, {},
        (False, False, False, False), f"{EXT} already fills its disk", ["findmnt", "lsblk", "dumpe2fs"],
    ),
    "partition grown by hand, filesystem not": (
        {"fs_short": GIB}, {},
        (True, False, True, False), f"{EXT} grew: filesystem (resize2fs)", [*READS, "resize2fs"],
    ),
    "partition grown by hand, check mode": (
        {"fs_short": GIB}, {"check": True},
        (True, False, True, False), f"would grow {EXT}: the filesystem", READS,
    ),
    "less than min_room_mb short": (
        {"fs_short": 15 * 2**20}, {},
        (False, False, False, False), f"{EXT} already fills its disk", READS,
    ),
    "min_room_mb of one's own": (
        {"fs_short": 15 * 2**20}, {"min_room_mb": 8},
        (True, False, True, False), f"{EXT} grew: filesystem (resize2fs)", [*READS, "resize2fs"],
    ),
    "xfs on a whole disk that grew": (
        {"fstype": "xfs", "kind": "disk", "disk_gib": 30, "old_disk_gib": 10}, {"disk_grew": True},
        (True, False, True, False), "/ (xfs on /dev/sda) grew: filesystem (xfs_growfs)",
        ["findmnt", "lsblk", "xfs_info", "xfs_growfs"],
    ),
    "xfs on a whole disk, full": (
        {"fstype": "xfs", "kind": "disk"}, {},
        (False, False, False, False), "/ (xfs on /dev/sda) already fills its disk", ["findmnt", "lsblk", "xfs_info"],
    ),
    "btrfs": (
        {"fstype": "btrfs"}, {},
        (False, False, False, False), "/ is left as it is: it is btrfs: only ext2/3/4 and XFS are grown",
        ["findmnt", "lsblk"],
    ),
    "superblock unreadable": (
        {"fail": ("dumpe2fs",)}, {},
        (False, False, False, False),
        f"{EXT} was not checked: dumpe2fs could not read its size (dumpe2fs: it failed); if it is smaller than "
        "its device, grow it by hand with resize2fs /dev/sda1", READS,
    ),
    "superblock unreadable after growpart": (
        {"disk_gib": 30, "old_disk_gib": 10, "fail": ("dumpe2fs",)}, {},
        (True, True, False, False),
        f"{EXT} was not checked (partition 1 of /dev/sda grew, with growpart): dumpe2fs could not read its size",
        [*READS[:3], "growpart", "dumpe2fs"],
    ),
    "check mode, the disk would grow first": (
        {}, {"check": True, "disk_grew": True},
        (False, False, False, False), f"{EXT} would grow into the disk once it has grown", READS,
    ),
    "the kernel sees the grown disk late": (
        {"disk_gib": 30, "old_disk_gib": 10, "late": 3}, {"disk_grew": True},
        (True, True, True, False), f"{EXT} grew: partition 1 of /dev/sda (growpart)",
        ["findmnt", "lsblk", *["growpart --dry-run"] * 4, "growpart", "dumpe2fs", "lsblk", "resize2fs"],
    ),
    "late, without growpart": (
        {"disk_gib": 30, "old_disk_gib": 10, "late": 2, "growpart": False}, {"disk_grew": True},
        (False, True, False, True), f"{EXT} needs growpart", ["findmnt", "lsblk"],
    ),
    "late, but the disk was not said to grow": (
        {"disk_gib": 30, "old_disk_gib": 10, "late": 3}, {},
        (False, False, False, False), f"{EXT} already fills its disk", READS,
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_one_run(case, tmp_path):
    host_args, options, flags, message, commands = CASES[case]
    if not host_args.get("growpart", True):
        host_args = {**host_args, "sysfs": str(tmp_path / "sys")}
    host = Host(**host_args)
    before = (host.fs_bytes, host.part_sectors)
    result, _ = grow(host, **options)
    got = (result["changed"], result["partition_grown"], result["filesystem_grown"], result["growpart_needed"])
    assert got == flags, result["msg"]
    assert result["msg"].startswith(message), result["msg"]
    assert host.tools() == commands and result["commands"] == [c.split()[0] for c in commands]
    if options.get("check") or not result["changed"]:
        assert (host.fs_bytes, host.part_sectors) == before  # nothing written
    if result["filesystem_grown"] and not options.get("check"):
        assert host.fs_bytes == host.device_bytes() // 4096 * 4096
    df_before, df_after = result["df_before"]["size_bytes"], result["df_after"]["size_bytes"]
    assert df_before == before[0] and df_after == host.fs_bytes
    assert result["msg"].endswith(df_text(df_before, df_after, host.fs_bytes - GIB)), result["msg"]
    assert "diff" not in result


def test_a_second_run_changes_nothing():
    host = Host(disk_gib=30, old_disk_gib=10)
    assert grow(host)[0]["changed"]
    host.log.clear()
    result, _ = grow(host)
    assert not result["changed"] and result["msg"].startswith(f"{EXT} already fills its disk") and host.tools() == READS


@pytest.mark.parametrize(
    ("late", "timeout", "sleeps", "grew"),
    [
        (3, 10, [2.0] * 3, True),  # seen on the fourth look, 6 s later
        (5, 10, [2.0] * 5, True),  # the last look (today's 5 retries x 2 s)
        (6, 10, [2.0] * 5, False),  # later than settle_timeout: left for the next run
        (3, 0, [], False),
    ],
)
def test_settle_timeout_bounds_the_wait(late, timeout, sleeps, grew):
    host = Host(disk_gib=30, old_disk_gib=10, late=late)
    result, slept = grow(host, disk_grew=True, settle_timeout=timeout)
    assert slept == sleeps and result["partition_grown"] is grew and result["changed"] is grew


def test_a_whole_disk_seen_late_is_looked_at_again():
    host = Host(fstype="xfs", kind="disk", disk_gib=30, old_disk_gib=10, late=3)  # lsblk --json is the first look
    result, slept = grow(host, disk_grew=True)
    assert result["filesystem_grown"] and slept == [2.0, 2.0, 2.0]
    assert host.tools() == ["findmnt", "lsblk", "xfs_info", "lsblk", "lsblk", "lsblk", "xfs_growfs"]


def test_a_partition_followed_by_another_grows_only_up_to_it(tmp_path):
    Host(disk_gib=30, old_disk_gib=10, growpart=False, sysfs=str(tmp_path))  # sda1 fills the first 10 GiB
    (tmp_path / "sda" / "sda2").mkdir()
    for name, value in {"start": 10 * SECTORS_PER_GIB, "size": 2048, "partition": 2}.items():
        (tmp_path / "sda" / "sda2" / name).write_text(f"{value}\n")
    assert r.partition_room("/dev/sda", "/dev/sda1", str(tmp_path))["grow"] is False
    (tmp_path / "sda" / "sda2" / "start").write_text(f"{20 * SECTORS_PER_GIB}\n")
    room = r.partition_room("/dev/sda", "/dev/sda1", str(tmp_path))
    assert room["grow"] and room["to_bytes"] == (20 * SECTORS_PER_GIB - 2048) * 512


@pytest.mark.parametrize(
    ("host_args", "check", "before", "after"),
    [
        ({"disk_gib": 30, "old_disk_gib": 10}, True, ("10.00 GB", "10.00 GB"), ("30.00 GB", "30.00 GB")),
        ({"disk_gib": 30, "old_disk_gib": 10}, False, ("10.00 GB", "10.00 GB"), ("30.00 GB", "30.00 GB")),
        ({"fs_short": GIB}, True, ("10.00 GB", "9.00 GB"), ("10.00 GB", "10.00 GB")),
    ],
)
def test_diff_shows_partition_and_filesystem_sizes(host_args, check, before, after):
    result, _ = grow(Host(**host_args), check=check, diff=True)
    lines = ("partition 1 of /dev/sda: {}\next4 filesystem on /dev/sda1: {}\n").format
    assert result["diff"]["before"] == lines(*before) and result["diff"]["after"] == lines(*after)
    assert result["diff"]["before_header"] == "/"


def test_no_diff_when_nothing_grows():
    assert "diff" not in grow(Host(), diff=True)[0]


@pytest.mark.parametrize(
    ("host_args", "message", "partial"),
    [
        ({"fail": ("findmnt",)}, "findmnt finds no filesystem mounted at /", {"changed": False}),
        ({"disk_gib": 30, "old_disk_gib": 10, "fail": ("growpart",)}, "growpart --dry-run /dev/sda 1 failed (exit 2)",
         {"changed": False}),
        ({"disk_gib": 30, "old_disk_gib": 10, "fail": ("resize2fs",)},
         "resize2fs /dev/sda1 failed (exit 2): resize2fs: Bad magic number in super-block\nresize2fs: it failed; "
         "partition 1 of /dev/sda grew; the filesystem is its old size: run `resize2fs /dev/sda1` by hand",
         {"changed": True, "partition_grown": True, "filesystem_grown": False}),
    ],
)  # fmt: skip
def test_failures_say_what_and_what_was_done(host_args, message, partial):
    with pytest.raises(GrowError) as failed:
        grow(Host(**host_args))
    assert failed.value.msg.startswith(message), failed.value.msg
    assert partial.items() <= failed.value.result.items()


def test_growpart_failing_for_real_after_its_dry_run():
    class Flaky(Host):
        def run(self, argv):
            if argv[0] == "growpart" and "--dry-run" not in argv:
                self.log.append(argv)
                return 2, "FAILED: sfdisk: busy\n", ""
            return super().run(argv)

    with pytest.raises(GrowError, match=r"growpart /dev/sda 1 failed \(exit 2\): FAILED: sfdisk: busy"):
        grow(Flaky(disk_gib=30, old_disk_gib=10))


# ----------------------------------------------------------------- the manual, and what the results say
def test_documentation_matches_the_argument_spec():
    """ansible-doc is the manual: every option it shows is one the module (and its action plugin) takes."""
    from ansible_collections.central_mcp.agents.plugins.modules import grow_root_fs
    from gce_harness import assert_doc_matches_spec

    assert_doc_matches_spec("grow_root_fs", r.ARGUMENT_SPEC)
    returned = yaml.safe_load(grow_root_fs.RETURN)
    assert {"nothing_to_grow", "settled", "disk_bytes", "cached", "msg", "commands"} <= set(returned)
    yaml.safe_load(grow_root_fs.EXAMPLES)


# What one run leaves, for the action plugin to remember: (host, options) -> nothing_to_grow, settled, disk_bytes
SETTLED = {
    "full partition": ({}, {}, (True, f"{EXT} fills its disk", 10 * GIB)),
    "grown now": ({"disk_gib": 30, "old_disk_gib": 10}, {}, (True, f"{EXT} fills its disk", 30 * GIB)),
    "would grow (check mode)": ({"disk_gib": 30, "old_disk_gib": 10}, {"check": True}, (False, "", 30 * GIB)),
    "growpart missing": ({"disk_gib": 30, "old_disk_gib": 10, "growpart": False}, {}, (False, "", None)),
    "superblock unreadable": ({"fail": ("dumpe2fs",)}, {}, (False, "", 10 * GIB)),
    "whole disk seen late": (
        {"fstype": "xfs", "kind": "disk", "disk_gib": 30, "old_disk_gib": 10, "late": 9}, {"disk_grew": True},
        (True, "/ (xfs on /dev/sda) fills its disk", 10 * GIB),  # the kernel's size: too small to be remembered
    ),
    "btrfs, left alone": ({"fstype": "btrfs"}, {}, (True, "/ is left as it is: it is btrfs: only ext2/3/4", None)),
}  # fmt: skip


@pytest.mark.parametrize("case", SETTLED)
def test_what_a_run_leaves(case, tmp_path):
    host_args, options, (nothing, settled, disk_bytes) = SETTLED[case]
    result, _ = grow(Host(**host_args, sysfs=str(tmp_path / "sys")), **options)
    assert result["nothing_to_grow"] is nothing, result["msg"]
    assert result["settled"].startswith(settled) and bool(result["settled"]) is nothing
    assert result["disk_bytes"] == disk_bytes


# ----------------------------------------------------------------- the controller's memory of a look
KNOWN = {"id": "demo-project/us-central1-a/vm1#4711", "size_gb": 28}
LOOK = (KNOWN, "/", 16)
FILLED = {"nothing_to_grow": True, "settled": f"{EXT} fills its disk", "disk_bytes": 28 * GIB, "mount": "/",
          "source": "/dev/sda1", "fstype": "ext4", "disk": "/dev/sda", "partition": 1}  # fmt: skip


@pytest.mark.parametrize(
    ("result", "worth"),
    [
        (FILLED, True),
        ({**FILLED, "disk_bytes": 30 * GIB}, True),  # the disk is larger than the API said a moment ago
        ({**FILLED, "disk_bytes": 10 * GIB}, False),  # the kernel still shows the disk smaller than the API
        ({**FILLED, "disk_bytes": None, "settled": "/ is left as it is: it is an overlay filesystem"}, True),
        ({**FILLED, "nothing_to_grow": False, "settled": ""}, False),  # growpart missing, a size unread
        ({**FILLED, "failed": True}, False),
    ],
    ids=["fills", "larger", "kernel-behind", "left-alone", "not-settled", "failed"],
)
def test_only_a_settled_look_at_the_full_disk_is_remembered(result, worth):
    assert memo.worth_remembering(result, KNOWN) is worth


@pytest.mark.parametrize(
    ("later", "recalled"),
    [
        (LOOK, True),
        (({**KNOWN, "size_gb": 40}, "/", 16), False),  # grown since, by the play or by hand
        (({**KNOWN, "id": "demo-project/us-central1-a/vm1#4712"}, "/", 16), False),  # made again
        ((KNOWN, "/srv", 16), False),
        ((KNOWN, "/", 8), False),
    ],
    ids=["same-disk", "disk-grew", "disk-made-again", "other-mount", "other-min-room"],
)
def test_a_remembered_look_stands_for_the_same_disk_at_the_same_size(tmp_path, later, recalled):
    cache = tmp_path / "cache" / "demo-project" / "us-central1-a" / "vm1.json"
    when = datetime.datetime(2026, 12, 6, 10, 31, tzinfo=datetime.UTC)
    memo.remember(str(cache), *LOOK, FILLED, now=when)
    assert oct(cache.parent.stat().st_mode)[-3:] == "700" and [p.name for p in cache.parent.iterdir()] == ["vm1.json"]
    answer = memo.recall(memo.read(str(cache)), *later)
    assert (answer is not None) is recalled
    if recalled:
        assert (
            answer["msg"]
            == f"{EXT} fills its disk (found so on 2026-12-06 10:31 UTC; its 28 GB disk has not changed since)"
        )
        assert answer["cached"] and not answer["changed"] and answer["commands"] == []
        assert (answer["source"], answer["partition"], answer["disk_bytes"]) == ("/dev/sda1", 1, 28 * GIB)


@pytest.mark.parametrize(
    "content", [None, "", "{not json", "[]", '{"key": "old"}'], ids=["none", "empty", "garbage", "list", "other"]
)
def test_no_memory_is_no_answer(tmp_path, content):
    cache = tmp_path / "vm1.json"
    if content is not None:
        cache.write_text(content)
    assert memo.read(str(cache)) == (content or "")
    assert memo.recall(memo.read(str(cache)), *LOOK) is None
