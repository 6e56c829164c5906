# SPDX-License-Identifier: Apache-2.0
"""agent-unit, the root-configured switch: everything about an agent's unit comes from root's file, not the caller."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
from pathlib import Path

import pytest

SWITCH = Path(__file__).resolve().parents[2] / "roles" / "launcher" / "files" / "agent-unit"
FAKE = """#!/bin/sh
printf '%s\\n' "$(basename "$0")" "$@" >> "$FAKE_LOG"
printf '@@\\n' >> "$FAKE_LOG"
[ "$(basename "$0")" = systemd-run ] && exit 3
exit 0
"""


@pytest.fixture
def switch(tmp_path, monkeypatch):
    loader = importlib.machinery.SourceFileLoader("agent_unit", str(SWITCH))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader("agent_unit", loader))
    loader.exec_module(module)
    units = tmp_path / "agent-units.json"
    units.write_text(json.dumps({"agents": {"A": {
        "unit": "central-mcp-agent-a.service", "user": "agent-a",
        "agent_run": "/usr/local/libexec/central-mcp/agent-run",
        "properties": ["MemoryMax=2G", "LoadCredential=env:/etc/central-mcp/agents/A.env"],
    }}}))  # fmt: skip
    monkeypatch.setattr(module, "UNITS", str(units))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("systemd-run", "systemctl"):
        (bin_dir / name).write_text(FAKE)
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_LOG", str(tmp_path / "log"))
    module.log = tmp_path / "log"
    return module


def calls(switch) -> list[list[str]]:
    text = switch.log.read_text() if switch.log.exists() else ""
    return [block.strip("\n").split("\n") for block in text.split("@@\n") if block.strip()]


def test_the_unit_is_roots_choice_and_the_exit_status_the_clis(switch):
    status = switch.main(["A", "--setenv", "TERM=tmux-256color", "--", "--name", "A", "--", "claude", "-p", "hi"])
    assert status == 3  # what systemd-run reported (the CLI's)
    stop, reset, run = calls(switch)
    assert stop == ["systemctl", "--quiet", "stop", "central-mcp-agent-a.service"]  # a leftover of the last start
    assert reset[:3] == ["systemctl", "--quiet", "reset-failed"]
    assert run == [
        "systemd-run", "--pty", "--quiet", "--collect", "--unit=central-mcp-agent-a.service",
        "--uid=agent-a", "--gid=agent-a", "--property=MemoryMax=2G",
        "--property=LoadCredential=env:/etc/central-mcp/agents/A.env", "--setenv=TERM=tmux-256color",
        "--", "/usr/local/libexec/central-mcp/agent-run", "--exec", "--name", "A", "--", "claude", "-p", "hi",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["B", "--", "claude"], "'B' is not one of this host's agents"),
        (["A", "--setenv", "LD_PRELOAD=/tmp/x.so", "--", "claude"], "only --setenv KEY=VALUE for one of TERM"),
        (["A", "--property", "User=root", "--", "claude"], "only --setenv KEY=VALUE"),
        (["A", "--setenv", "TERM=a\nb", "--", "claude"], "only --setenv"),
        (["A", "claude"], "usage: agent-unit NAME"),
        (["--uid=root", "--", "claude"], "usage: agent-unit NAME"),
    ],
)
def test_anything_else_is_refused_before_any_unit_is_touched(switch, capsys, argv, message):
    assert switch.main(argv) == 2
    assert message in capsys.readouterr().err
    assert calls(switch) == []
