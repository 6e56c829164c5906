# SPDX-License-Identifier: Apache-2.0
"""The sizing rule, /proc readers (including a /proc the hardened unit hides) and the disk early warning."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from central_mcp import sysinfo
from central_mcp.settings import ConfigError, Settings


@pytest.mark.parametrize(
    ("cpus", "gib", "agents", "fits", "warn"),
    [
        (4, 16, 8, 8, False),  # e2-standard-4: CPU-bound at 8
        (4, 16, 9, 8, True),
        (2, 4, 4, 4, False),  # 2 vCPU / 4 GiB: 4 by CPU, 7 by RAM
        (8, 4, 10, 7, True),  # RAM is the limit
    ],
)
def test_capacity(cpus: int, gib: int, agents: int, fits: int, warn: bool) -> None:
    cap = sysinfo.capacity(cpus, gib * 2**30, agents)
    assert cap["fits"] == fits
    assert bool(cap["warnings"]) is warn


def test_hidden_proc_gives_no_figures_and_no_error(tmp_path: Path) -> None:
    meter = sysinfo.CpuMeter(tmp_path)
    assert meter.percent() is None
    assert sysinfo.meminfo(tmp_path) == {"total_bytes": 0, "available_bytes": 0}
    assert sysinfo.agent_processes(("claude",), tmp_path / "none") == {"count": 0, "rss_bytes": 0}


def test_real_proc() -> None:
    meter = sysinfo.CpuMeter()
    meter.percent()
    snap = sysinfo.snapshot(meter, Path("/"), agents=1)
    assert snap["memory"]["total_bytes"] > 0 and snap["coordinator_rss_bytes"] > 0
    assert snap["capacity"]["fits"] >= 1


def _statvfs(blocks: int, free: int, avail: int, frsize: int = 4096):
    """A fake os.statvfs result: only the fields disk() reads."""
    return lambda path: SimpleNamespace(f_blocks=blocks, f_bfree=free, f_bavail=avail, f_frsize=frsize)


@pytest.mark.parametrize(
    ("blocks", "free", "avail", "warn_percent", "percent", "warns"),
    [
        (1000, 500, 450, 85, 52.6, False),  # df: used 500 / (500 + 450 available to users)
        (1000, 160, 110, 85, 88.4, True),  # ext4's reserved blocks count as unavailable, as in df
        (1000, 150, 150, 85, 85.0, True),  # at the threshold: warn
        (1000, 151, 151, 85, 84.9, False),
        (1000, 400, 400, 50, 60.0, True),  # a threshold of one's own
        (1000, 0, 0, 85, 100.0, True),
        (0, 0, 0, 85, None, False),  # a filesystem that reports no size: no figure, no warning
    ],
)
def test_disk_use_and_warning(
    blocks: int, free: int, avail: int, warn_percent: float, percent: float | None, warns: bool
) -> None:
    dsk = sysinfo.disk(Path("/var/lib/central-mcp"), statvfs=_statvfs(blocks, free, avail))
    assert dsk["used_percent"] == percent
    assert dsk["total_bytes"] == blocks * 4096 and dsk["free_bytes"] == avail * 4096
    warning = sysinfo.disk_warning(dsk, warn_percent)
    assert bool(warning) is warns
    if warns:
        assert f"{percent:g} % used" in warning and f"{warn_percent:g} % warning threshold" in warning
        assert "vm_upgrade_disk_size_gb" in warning and "/var/lib/central-mcp" in warning


def test_snapshot_warns_about_the_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sysinfo.os, "statvfs", _statvfs(2**20, 2**16, 2**16))  # 4 GiB, 93.8 % used
    snap = sysinfo.snapshot(sysinfo.CpuMeter(), Path("/data"), agents=0)
    assert snap["disk"]["warn_percent"] == 85 and snap["disk"]["used_percent"] == 93.8
    assert snap["disk"]["warning"] in snap["warnings"]
    higher = sysinfo.snapshot(sysinfo.CpuMeter(), Path("/data"), agents=0, disk_warn_percent=95)
    assert higher["disk"]["warning"] is None and not [w for w in higher["warnings"] if w.startswith("disk")]


def test_disk_of_the_real_filesystem(tmp_path: Path) -> None:
    """The figures agree with the kernel's own (os.statvfs and shutil.disk_usage)."""
    dsk = sysinfo.disk(tmp_path)
    usage = shutil.disk_usage(tmp_path)
    assert dsk["total_bytes"] == usage.total and dsk["used_bytes"] == usage.used
    assert abs(dsk["free_bytes"] - usage.free) < 64 * 2**20  # others write to this disk meanwhile
    assert 0 < dsk["used_percent"] < 100
    assert sysinfo.disk_warning(dsk, 100) is None
    assert "vm_upgrade_disk_size_gb" in sysinfo.disk_warning(dsk, dsk["used_percent"])


def test_small_volume_reads_in_mib() -> None:
    dsk = sysinfo.disk(Path("/var/lib/central-mcp"), statvfs=_statvfs(12288, 1244, 1244))  # 48 MiB, 89.9 % used
    assert "(5 MiB free of 48 MiB)" in sysinfo.disk_warning(dsk, 85)


def test_agent_processes_are_the_commands_the_launcher_names(tmp_path: Path) -> None:
    """A process counts when a basename of its first words is one of the commands (a kind file's `process`)."""
    cli = tmp_path / "gemini.js"
    cli.write_text("#!/bin/sh\nsleep 30\n")  # no exec: the script stays the process
    cli.chmod(0o755)
    running = subprocess.Popen(["/bin/sh", str(cli)])
    try:
        time.sleep(0.2)
        assert sysinfo.agent_processes(("gemini.js",))["count"] >= 1
        assert sysinfo.agent_processes(("gemini.js",))["rss_bytes"] > 0
        assert sysinfo.agent_processes(()) == {"count": 0, "rss_bytes": 0}
    finally:
        running.kill()
        running.wait()


def test_agent_processes_setting() -> None:
    env = {"CENTRAL_MCP_AGENT_PROCESSES": "claude, codex,gemini.js"}
    assert Settings.from_env(env).agent_processes == ("claude", "codex", "gemini.js")
    assert Settings.from_env({}).agent_processes == ()
    with pytest.raises(ConfigError, match="'rm -rf' is not a command name"):
        Settings.from_env({"CENTRAL_MCP_AGENT_PROCESSES": "claude,rm -rf"})
