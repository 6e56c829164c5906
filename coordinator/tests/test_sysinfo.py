# SPDX-License-Identifier: Apache-2.0
"""The sizing rule and /proc readers, including a /proc the hardened unit hides."""

from __future__ import annotations

from pathlib import Path

import pytest

from central_mcp import sysinfo


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
    assert sysinfo.agent_processes(tmp_path / "none") == {"count": 0, "rss_bytes": 0}


def test_real_proc() -> None:
    meter = sysinfo.CpuMeter()
    meter.percent()
    snap = sysinfo.snapshot(meter, Path("/"), agents=1)
    assert snap["memory"]["total_bytes"] > 0 and snap["coordinator_rss_bytes"] > 0
    assert snap["capacity"]["fits"] >= 1
