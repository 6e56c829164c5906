# SPDX-License-Identifier: Apache-2.0
"""disk_use: df's figures, the early warning that names vm_upgrade_disk_size_gb, one entry per filesystem."""

from __future__ import annotations

import os
import shutil
from types import SimpleNamespace

import pytest
from ansible_collections.central_mcp.agents.plugins.module_utils import disk_use


def fake_statvfs(blocks: int, free: int, avail: int, frsize: int = 4096):
    """A stand-in for os.statvfs with only the fields disk_use reads."""
    return lambda path: SimpleNamespace(f_blocks=blocks, f_bfree=free, f_bavail=avail, f_frsize=frsize)


# blocks, free (root too), available (to users), threshold -> used %, warns
CASES = [
    (1000, 500, 450, 85, 52.6, False),  # df: used 500 / (500 used + 450 available)
    (1000, 160, 110, 85, 88.4, True),  # ext4's blocks reserved for root count as unavailable
    (1000, 150, 150, 85, 85.0, True),  # at the threshold: warn
    (1000, 151, 151, 85, 84.9, False),
    (1000, 400, 400, 50, 60.0, True),  # a threshold of one's own
    (1000, 0, 0, 85, 100.0, True),
    (0, 0, 0, 85, None, False),  # no size (a pseudo filesystem): no figure, no warning
]


@pytest.mark.parametrize(("blocks", "free", "avail", "threshold", "percent", "warns"), CASES)
def test_use_and_warning(blocks, free, avail, threshold, percent, warns):
    entry = {"mount": "/", **disk_use.measure("/", fake_statvfs(blocks, free, avail))}
    assert entry["used_percent"] == percent
    assert (entry["total_bytes"], entry["free_bytes"]) == (blocks * 4096, avail * 4096)
    text = disk_use.warning(entry, threshold)
    assert bool(text) is warns
    if warns:
        assert text.startswith(f"disk / is {percent:g} % used") and f"the {threshold:g} % warning threshold" in text
        assert "raise vm_upgrade_disk_size_gb in the inventory" in text


def test_real_filesystem_one_entry_per_filesystem(tmp_path):
    """/ and a path that does not exist yet: measured where it will live, and not twice when that is /."""
    missing = tmp_path / "workspaces" / "A"
    disks = disk_use.report([str(tmp_path), str(missing)], warn_percent=100)
    assert len(disks) == 1 and disks[0]["paths"] == [str(tmp_path), str(missing)]
    usage = shutil.disk_usage(tmp_path)
    assert disks[0]["total_bytes"] == usage.total and abs(disks[0]["free_bytes"] - usage.free) < 64 * 2**20
    assert os.path.ismount(disks[0]["mount"]) and str(tmp_path).startswith(disks[0]["mount"])
    assert disks[0]["warning"] is None and disks[0]["warn_percent"] == 100
    low = disk_use.report([str(missing)], warn_percent=disks[0]["used_percent"])
    assert "vm_upgrade_disk_size_gb" in low[0]["warning"]


def test_two_filesystems_two_entries():
    """/proc is another filesystem than /: two entries, each with the paths it holds."""
    disks = disk_use.report(["/", "/proc/self", "/"], warn_percent=85)
    assert [d["mount"] for d in disks] == ["/", "/proc"] and disks[0]["paths"] == ["/"]
    assert disks[1]["used_percent"] is None and disks[1]["warning"] is None


def test_render_lines():
    full = {"host": "vm1", "mount": "/", "paths": ["/", "/home/agent/workspaces"], "total_bytes": 10 * 2**30,
            "free_bytes": 2**30, "used_percent": 89.5, "warning": "disk / is 89.5 % used (...)"}  # fmt: skip
    fine = {"host": "vm2", "mount": "/", "paths": ["/"], "total_bytes": 50 * 2**30, "free_bytes": 40 * 2**30,
            "used_percent": 19.6, "warning": None}  # fmt: skip
    assert disk_use.render_lines([full, fine]) == [
        "DISK vm1 / (holds /home/agent/workspaces): 89.5 % used, 1.0 GiB free of 10.0 GiB",
        "DISK vm2 /: 19.6 % used, 40.0 GiB free of 50.0 GiB",
        "! vm1: disk / is 89.5 % used (...)",
    ]


def test_small_filesystem_reads_in_mib():
    """A 48 MiB volume nearly full: the warning must not say '0.0 GiB free of 0.0 GiB'."""
    entry = {"mount": "/var/lib/central-mcp", **disk_use.measure("/", fake_statvfs(12288, 1244, 1244))}
    assert "(5 MiB free of 48 MiB)" in disk_use.warning(entry)
