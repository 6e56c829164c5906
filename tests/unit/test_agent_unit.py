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
    monkeypatch.setattr(module, "SYSTEMD_RUNTIME", str(tmp_path))  # booted with systemd (a VM)
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


def test_without_systemd_the_agent_runs_as_its_own_user_with_its_credentials(switch, tmp_path, monkeypatch):
    """A pod: no unit, but the same file, the same agent-run and the same credentials, as the agent's user."""
    import pwd

    monkeypatch.setattr(switch, "SYSTEMD_RUNTIME", str(tmp_path / "absent"))
    monkeypatch.setattr(switch, "CREDENTIALS", str(tmp_path / "credentials"))
    env_file = tmp_path / "A.env"
    env_file.write_text("CENTRAL_MCP_AGENT_TOKEN=secret\n")
    units = json.loads(Path(switch.UNITS).read_text())
    units["agents"]["A"]["properties"] = [
        f"LoadCredential=env:{env_file}",
        f"WorkingDirectory={tmp_path}",
        "UMask=0027",
        "MemoryMax=2G",
    ]
    Path(switch.UNITS).write_text(json.dumps(units))
    me = pwd.getpwuid(os.getuid())
    monkeypatch.setattr(switch.pwd, "getpwnam", lambda name: me if name == "agent-a" else pwd.getpwnam(name))
    became = {}

    def execvpe(file, argv, env):
        became.update(file=file, argv=argv, env=env, cwd=os.getcwd(), umask=os.umask(0o022))
        raise SystemExit(0)

    monkeypatch.setattr(switch.os, "execvpe", execvpe)
    here = os.getcwd()
    try:
        with pytest.raises(SystemExit):
            switch.main(["A", "--setenv", "TERM=tmux-256color", "--", "--name", "A", "--", "claude"])
    finally:
        os.chdir(here)
    assert calls(switch) == []  # no systemctl, no systemd-run
    assert became["argv"] == [
        "setpriv", f"--reuid={me.pw_uid}", f"--regid={me.pw_gid}", "--init-groups", "--no-new-privs",
        "--inh-caps=-all", "--", "/usr/local/libexec/central-mcp/agent-run", "--exec", "--name", "A", "--", "claude",
    ]  # fmt: skip
    where = tmp_path / "credentials" / "central-mcp-agent-a.service"
    assert became["env"]["CREDENTIALS_DIRECTORY"] == str(where) and became["env"]["TERM"] == "tmux-256color"
    assert became["env"]["HOME"] == me.pw_dir and "CENTRAL_MCP_AGENT_TOKEN" not in became["env"]
    assert (where / "env").read_text() == "CENTRAL_MCP_AGENT_TOKEN=secret\n"
    assert (where.stat().st_mode & 0o777, (where / "env").stat().st_mode & 0o777) == (0o500, 0o400)
    assert (became["cwd"], became["umask"]) == (str(tmp_path), 0o027)
