# SPDX-License-Identifier: Apache-2.0
"""Disk sizing, disk cost and the room for new agents, driven by case tables (one line per case).

The guest's grow decisions (the module grow_root_fs) are tested in test_grow_root_fs.py.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.central_mcp.agents.plugins.filter import disk_sizing as d

GIB = 2**30


# ----------------------------------------------------------------- size
@pytest.mark.parametrize(
    ("count", "args", "expected"),
    [
        (0, (), 20),
        (4, (), 28),
        (8, (), 36),
        (16, (), 52),
        ("6", (), 32),  # extra vars arrive as strings
        (4, (10, 0.1), 11),  # the seed's ~100 MB per agent: rounded up to whole GB
        (0, (0, 0), 10),  # never below the smallest boot disk
        (3, (20, 2.5), 28),  # 27.5 rounds up
        (8, (20, 2, 5.0), 41),  # a repository's mirror (1 GB) and 8 worktrees (0.5 GB each)
        (8, (20, 2, "2.5"), 39),
    ],
)
def test_disk_size_for_agents(count, args, expected):
    assert d.disk_size_for_agents(count, *args) == expected


def test_default_is_roomier_than_the_seed():
    """The per-agent allowance is the documented 20x of the ~100 MB per agent the seed measured."""
    assert d.DISK_PER_AGENT_GB * 1024 >= 20 * 100


@pytest.mark.parametrize(
    ("count", "args", "message"),
    [
        (-1, (), "must be 0 or more, got -1"),
        ("four", (), "whole number of agents, got 'four'"),
        (4, ("big",), "base_gb must be a number, got 'big'"),
        (4, (20, -2), "per_agent_gb must be 0 or more"),
        (4, (20, None), "per_agent_gb must be a number, got None"),
        (4, (20, 2, -1), "repos_gb must be 0 or more"),
    ],
)
def test_disk_size_errors_name_the_value(count, args, message):
    with pytest.raises(AnsibleFilterError, match=message):
        d.disk_size_for_agents(count, *args)


# ----------------------------------------------------------------- cost
@pytest.mark.parametrize(
    ("size", "disk_type", "prices", "expected"),
    [
        (50, "pd-balanced", None, 5.0),
        (50, "pd-standard", None, 2.0),
        (50, "pd-ssd", None, 8.5),
        (28, "pd-balanced", None, 2.8),
        ("40", "pd-balanced", None, 4.0),
        (100, "hyperdisk-balanced", {"hyperdisk-balanced": 0.06}, 6.0),
    ],
)
def test_disk_monthly_cost(size, disk_type, prices, expected):
    assert d.disk_monthly_cost(size, disk_type, prices) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((50, "pd-extreme"), "'pd-extreme': known types are pd-balanced, pd-ssd, pd-standard"),
        ((50, "pd-ssd", {"pd-x": 0.1}), "known types are pd-x"),
        ((50, "pd-ssd", ["pd-ssd"]), "central_mcp_prices must be a mapping"),
        ((50, "pd-ssd", {"disks": {"pd-ssd": -1}}), "central_mcp_prices.disks.pd-ssd must be a price of 0 or more"),
        ((-5, "pd-ssd"), "size_gb must be 0 or more"),
    ],
)
def test_disk_monthly_cost_errors_name_the_value(args, message):
    with pytest.raises(AnsibleFilterError, match=message):
        d.disk_monthly_cost(*args)


@pytest.mark.parametrize(
    ("args", "kwargs", "expected"),
    [
        ((10, 50), {}, "boot disk 10 GB → 50 GB, +$4.00/month, online, no restart"),
        ((10, 50, "pd-ssd"), {}, "boot disk 10 GB → 50 GB, +$6.80/month, online, no restart"),
        ((28, 36, "pd-standard"), {}, "boot disk 28 GB → 36 GB, +$0.32/month, online, no restart"),
        ((10, 50, "pd-extreme"), {}, "boot disk 10 GB → 50 GB, +$?/month, online, no restart"),
        ((50, 50), {}, "boot disk 50 GB pd-balanced (unchanged, $5.00/month)"),
        ((60, 60), {"wanted_gb": 36}, "(unchanged, $6.00/month; 36 GB asked, and a disk never shrinks)"),
        ((48, 48), {"wanted_gb": 50}, "(unchanged, $4.80/month; 50 GB asked, less than the growth threshold above it)"),
        ((50, 50), {"wanted_gb": 50}, "boot disk 50 GB pd-balanced (unchanged, $5.00/month)"),
        ((50, 50, "pd-x"), {}, "boot disk 50 GB pd-x (unchanged, $?/month)"),
    ],
)
def test_disk_size_change(args, kwargs, expected):
    assert expected in d.disk_size_change(*args, **kwargs)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("e2-standard-4", 50), "e2-standard-4 $97.83 + boot disk 50 GB pd-balanced $5.00 = $102.83/month"),
        (("e2-micro", 10, "pd-standard"), "e2-micro $6.11 + boot disk 10 GB pd-standard $0.40 = $6.51/month"),
        (("c3-standard-4", 50), "c3-standard-4 $? + boot disk 50 GB pd-balanced $5.00 = $?/month"),
        (("e2-standard-4", 50, "pd-balanced", None, None, "spot"), "e2-standard-4 Spot $29.35 + boot disk 50 GB"),
        (
            ("e2-standard-4", 50, "pd-balanced", {"machine_types": {"e2-standard-4": {"on_demand": 0.1}}}),
            "e2-standard-4 $73.00 + boot disk 50 GB pd-balanced $5.00 = $78.00/month",
        ),
        (("n2-standard-4", 50, "pd-ssd", {"n2-standard-4": 141.5}), "$141.50 + boot disk 50 GB pd-ssd $8.50 = $150.00"),
        (("", 36), "boot disk 36 GB pd-balanced $3.60/month (the machine type is not managed here)"),
    ],
)
def test_vm_monthly_cost(args, expected):
    assert expected in d.vm_monthly_cost(*args)


# ----------------------------------------------------------------- the vm_upgrade role's report
RESIZED = {"changed": True, "previous_machine_type": "e2-micro", "machine_type": "e2-standard-4", "status": "RUNNING",
           "downtime_s": 94.2}  # fmt: skip
SAME_TYPE = {"changed": False, "previous_machine_type": "e2-standard-4", "machine_type": "e2-standard-4",
             "status": "RUNNING", "downtime_s": 0.0}  # fmt: skip
GREW = {"changed": True, "previous_size_gb": 10, "size_gb": 36, "disk_type": "pd-balanced"}
SAME_DISK = {"changed": False, "previous_size_gb": 36, "size_gb": 36, "disk_type": "pd-balanced"}
FS = {"changed": False, "msg": "/ (ext4 on /dev/sda1) fills its disk (found so on 2026-12-06 10:31 UTC; ...)"}
SKIPPED = {"changed": False, "skipped": True, "skip_reason": "Conditional result was False"}
COST_36 = "e2-standard-4 $97.83 + boot disk 36 GB pd-balanced $3.60 = $101.43/month"

# (results, options) -> the lines, without the host's name
REPORTS = {
    "a no-op": (
        {"machine_type": SAME_TYPE, "disk": SAME_DISK, "filesystem": [FS, SKIPPED]}, {},
        ["e2-standard-4 (unchanged, $97.83/month)", "boot disk 36 GB pd-balanced (unchanged, $3.60/month)", COST_36,
         FS["msg"]],
    ),
    "a resize and a grow": (
        {"machine_type": RESIZED, "disk": GREW, "filesystem": [{**FS, "msg": "/ grew"}, {**FS, "msg": "/ grew now"}]},
        {"vcpus": 4, "memory_mb": 16008},
        ["e2-micro → e2-standard-4, $6.11 → $97.83/month, the VM was down for 94.2 s (now 4 vCPUs, 16008 MB)",
         "boot disk 10 GB → 36 GB, +$2.60/month, online, no restart", COST_36, "/ grew now"],
    ),
    "check mode": (
        {"machine_type": {**RESIZED, "downtime_s": 0.0}, "disk": SAME_DISK, "filesystem": None},
        {"check_mode": True, "vcpus": 2, "memory_mb": 1000},
        ["would change: e2-micro → e2-standard-4, $6.11 → $97.83/month, the VM stops for ~2–3 minutes",
         "boot disk 36 GB pd-balanced (unchanged, $3.60/month)", f"once changed, {COST_36}"],
    ),
    "Spot in the same stop": (
        {"machine_type": {**RESIZED, "previous_provisioning_model": "STANDARD", "provisioning_model": "SPOT"},
         "disk": SAME_DISK}, {},
        ["e2-micro on-demand → e2-standard-4 Spot, $6.11 → $29.35/month, the VM was down for 94.2 s",
         "boot disk 36 GB pd-balanced (unchanged, $3.60/month)",
         "e2-standard-4 Spot $29.35 + boot disk 36 GB pd-balanced $3.60 = $32.95/month"],
    ),
    "the disk only": (
        {"machine_type": SKIPPED, "disk": {**SAME_DISK, "size_gb": 40, "previous_size_gb": 40}}, {"wanted_gb": 28},
        ["boot disk 40 GB pd-balanced (unchanged, $4.00/month; 28 GB asked, and a disk never shrinks)",
         "boot disk 40 GB pd-balanced $4.00/month (the machine type is not managed here)"],
    ),
    "the machine type only, a type without a price": (
        {"machine_type": {**SAME_TYPE, "previous_machine_type": "n2-x", "machine_type": "n2-x"}, "disk": None}, {},
        ["n2-x (unchanged, $?/month)"],
    ),
    "nothing ran (--tags filesystem on a host without a disk)": ({"filesystem": SKIPPED}, {}, []),
}  # fmt: skip


@pytest.mark.parametrize("case", REPORTS)
def test_vm_upgrade_report(case):
    results, options, lines = REPORTS[case]
    assert d.vm_upgrade_report(results, "vm1", **options) == [f"vm1: {line}" for line in lines]


def test_vm_upgrade_report_notes_an_unmanaged_machine_type():
    lines = d.vm_upgrade_report({"disk": SAME_DISK}, "vm1", machine_type_note=True)
    assert lines[-1] == "vm_upgrade_machine_type is empty, so the machine type of vm1 is left alone."


def test_root_fs_remembered_reads_what_grow_root_fs_wrote(tmp_path):
    from ansible_collections.central_mcp.agents.plugins.plugin_utils import root_fs_memo

    known = {"id": "p/z/vm1#4711", "size_gb": 28}
    filled = {"settled": "/ (ext4 on /dev/sda1) fills its disk", "disk_bytes": 28 * GIB}
    root_fs_memo.remember(str(tmp_path / "vm1.json"), known, "/", 16, filled)
    text = (tmp_path / "vm1.json").read_text()
    assert d.root_fs_remembered(text, known)["msg"].startswith("/ (ext4 on /dev/sda1) fills its disk (found so on ")
    assert d.root_fs_remembered(text, {**known, "size_gb": 40}) is None
    assert d.root_fs_remembered(text, known, "/", 8) is None
    assert d.root_fs_remembered("", known) is None and d.root_fs_remembered(text, None) is None
    with pytest.raises(AnsibleFilterError, match="known_disk must be"):
        d.root_fs_remembered(text, {"id": "p/z/vm1#4711"})


def test_filters_are_registered_under_their_documented_names():
    names = set(d.FilterModule().filters())
    docs = {p.stem for p in Path(d.__file__).parent.glob("*.yml")}
    assert names <= docs, f"filters without a documentation file: {sorted(names - docs)}"
    moved = {"root_fs_layout", "growpart_plan", "filesystem_room"}  # into module_utils/root_fs.py (grow_root_fs)
    assert not moved & (names | docs), "a parser of grow_root_fs is still a filter or documented as one"


# ----------------------------------------------------------------- room for new agents
# What `LC_ALL=C df --block-size=1 --output=avail,file` printed on Debian 12 for
# the paths of disk_paths_for_agents: one line per path that exists.
DF_FRESH = "      Avail File\n7516192768 /home\n7516192768 /\n"  # before the first run: 7 GB free
DF_AB = (
    "      Avail File\n1288490188 /home/agent/workspaces\n1288490188 /home/agent\n1288490188 /home\n"
    "1288490188 /\n1288490188 /home/agent/workspaces/A\n1288490188 /home/agent/workspaces/B\n"
)  # A and B are here; 1.2 GB free
ROOT = "/home/agent/workspaces"
FLEET = [{"name": n, "role": "x"} for n in "ABCD"]


def test_disk_paths_for_agents():
    fleet = [{"name": "A"}, {"name": "B", "workdir": "/srv/b"}]
    assert d.disk_paths_for_agents(fleet, ROOT + "/") == [ROOT, "/home/agent", "/home", "/", f"{ROOT}/A", "/srv/b"]
    assert d.disk_paths_for_agents([], "/") == ["/"]


@pytest.mark.parametrize(
    ("df", "fleet", "args", "ok", "new", "need_gb", "free_gb", "path"),
    [
        (DF_FRESH, FLEET[:2], (), True, ["A", "B"], 4, 7, "/home"),  # first run: measured on the nearest parent
        (DF_FRESH, FLEET, (), False, list("ABCD"), 8, 7, "/home"),  # 4 x 2 GB do not fit in 7 GB
        (DF_AB, FLEET[:2], (), True, [], 0, 1.2, ROOT),  # nothing new: nothing needed, even on a full disk
        (DF_AB, FLEET[:3], (), False, ["C"], 2, 1.2, ROOT),  # one agent more, 1.2 GB free
        (DF_AB, FLEET[:3], (1,), True, ["C"], 1, 1.2, ROOT),  # vm_upgrade_disk_per_agent_gb of one's own
        (DF_AB, FLEET[:3], ("",), False, ["C"], 2, 1.2, ROOT),  # unset in the inventory: the sizing default
        (DF_AB, FLEET, (None, 10), True, ["C", "D"], 4, 11.2, ROOT),  # check mode: the disk grows 10 GB first
        (DF_AB, [*FLEET[:2], {"name": "E", "workdir": ROOT + "/A"}], (), True, [], 0, 1.2, ROOT),  # own workdir
    ],
)
def test_agents_disk_room(df, fleet, args, ok, new, need_gb, free_gb, path):
    room = d.agents_disk_room(df, fleet, ROOT, *args)
    assert (room["ok"], room["new"], room["path"]) == (ok, new, path)
    assert room["need_bytes"] == need_gb * GIB and abs(room["free_bytes"] - free_gb * GIB) < 0.01 * GIB
    assert room["missing_bytes"] == max(room["need_bytes"] - room["free_bytes"], 0)
    assert ("vm_upgrade_disk_size_gb" in room["message"]) is not ok
    if not ok:
        missing = f"{room['missing_bytes'] / GIB:.1f} GB is missing"
        assert missing in room["message"] and f"({', '.join(new)})" in room["message"]


def free_bytes(df: str) -> dict:
    """The same measure as host_info returns it (its free_bytes): {path: free bytes}."""
    return {line.split()[1]: int(line.split()[0]) for line in df.splitlines()[1:]}


@pytest.mark.parametrize("df", [DF_FRESH, DF_AB])
@pytest.mark.parametrize("fleet", [FLEET[:2], FLEET])
def test_agents_disk_room_reads_host_info_as_df(df, fleet):
    assert d.agents_disk_room(free_bytes(df), fleet, ROOT) == d.agents_disk_room(df, fleet, ROOT)


def test_agents_disk_room_message():
    room = d.agents_disk_room(DF_AB, FLEET, ROOT)
    assert room["message"] == (
        "2 new agents on this host (C, D) need 4.0 GB (2 GB each, vm_upgrade_disk_per_agent_gb) on the filesystem "
        "of /home/agent/workspaces, which has 1.2 GB free: 2.8 GB is missing. Raise vm_upgrade_disk_size_gb in the "
        "inventory (or set it to auto, sized for the fleet) so that the boot disk grows online, or free space on "
        "the VM, then run site.yml again. Nothing was changed."
    )


def test_agents_disk_room_one_agent_and_growth():
    room = d.agents_disk_room(DF_AB, FLEET[:3], ROOT, None, 480)
    assert room["ok"] and room["message"] == (
        "1 new agent on this host (C) needs 2.0 GB (2 GB each, vm_upgrade_disk_per_agent_gb) on the filesystem of "
        "/home/agent/workspaces, which has 481.2 GB free (counting the 480 GB the boot disk grows by in this run)"
    )


def test_agents_disk_room_reads_real_df(tmp_path):
    """The real df on this machine, with one workspace present and one not."""
    (tmp_path / "A").mkdir()
    fleet = FLEET[:2]
    paths = d.disk_paths_for_agents(fleet, str(tmp_path))
    df = subprocess.run(["df", "--block-size=1", "--output=avail,file", *paths], capture_output=True, text=True,
                        env={**os.environ, "LC_ALL": "C"}, check=False)  # fmt: skip
    assert df.returncode == 1 and str(tmp_path / "B") in df.stderr  # B's workspace does not exist yet
    room = d.agents_disk_room(df.stdout, fleet, str(tmp_path))
    assert room["new"] == ["B"] and room["path"] == str(tmp_path) and room["need_bytes"] == 2 * GIB
    assert abs(room["free_bytes"] - shutil.disk_usage(tmp_path).free) < 64 * 2**20
    huge = d.agents_disk_room(df.stdout, fleet, str(tmp_path), room["free_bytes"] / GIB + 1)
    assert not huge["ok"] and 0 < huge["missing_bytes"] <= 1.01 * GIB


@pytest.mark.parametrize(
    ("df", "args", "message"),
    [
        ("df: /x: No such file or directory", (FLEET, ROOT), "no free space was measured for /home/agent/workspaces"),
        (DF_AB, (FLEET, "relative"), "workspace root 'relative' must be an absolute path"),
        (DF_AB, ("A,B", ROOT), "agents must be a list of dicts with a name"),
        (DF_AB, (FLEET, ROOT, -1), "vm_upgrade_disk_per_agent_gb must be 0 or more, got -1"),
        (DF_AB, (FLEET, ROOT, "lots"), "vm_upgrade_disk_per_agent_gb must be a number, got 'lots'"),
    ],
)
def test_agents_disk_room_errors_name_the_value(df, args, message):
    with pytest.raises(AnsibleFilterError, match=re.escape(message)):
        d.agents_disk_room(df, *args)
