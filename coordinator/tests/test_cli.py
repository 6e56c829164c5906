# SPDX-License-Identifier: Apache-2.0
"""The central-mcp CLI against a running coordinator, and its direct database commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import API_TOKEN, Server


def cli(*args: str, token: str | None = API_TOKEN, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CENTRAL_MCP_")}
    if token:
        full_env["CENTRAL_MCP_API_TOKEN"] = token
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "central_mcp", *args], env=full_env, capture_output=True, text=True, timeout=30
    )


def test_cli_talks_to_the_api(server: Server, tmp_path: Path) -> None:
    url = ("--url", server.url)
    added = cli("task", "add", "Write the README", "--role", "backend", "-p", "2", *url)
    assert added.returncode == 0, added.stderr
    assert "created: Write the README" in added.stdout
    listed = cli("tasks", "--state", "AVAILABLE", "--json", *url)
    assert [t["title"] for t in json.loads(listed.stdout)["tasks"]] == ["Write the README"]
    table = cli("tasks", *url).stdout
    assert table.splitlines()[0].split()[:3] == ["ID", "STATE", "PRI"] and "Write the README" in table
    agents = cli("agents", *url).stdout
    assert "NAME" in agents and "starting" in agents
    status = cli("status", *url)
    assert status.returncode == 0 and "database:  ok" in status.stdout
    token_file = tmp_path / "token"
    token_file.write_text(API_TOKEN + "\n")
    backup = cli("backup", "--token-file", str(token_file), *url, token=None)
    assert backup.returncode == 0 and "backup written" in backup.stdout
    refused = cli("tasks", *url, token="wrong")
    assert refused.returncode == 1 and "HTTP 401" in refused.stderr
    shown = cli("task", "show", "1", "--json", *url)
    assert json.loads(shown.stdout)["events"][0]["kind"] == "created"
    assert "CANCELLED" in cli("task", "cancel", "1", *url).stdout


def test_cli_unreachable_and_bad_usage() -> None:
    down = cli("tasks", "--url", "http://127.0.0.1:9")
    assert down.returncode == 3 and "cannot reach the coordinator" in down.stderr
    assert cli("task", "add", "x", "--priority", "9").returncode == 2


def test_db_commands_act_on_the_file(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    migrated = cli("db", "migrate", "--json", CENTRAL_MCP_DB=str(db))
    assert migrated.returncode == 0, migrated.stderr
    assert json.loads(migrated.stdout)["to"] >= 2
    checked = cli("db", "check", CENTRAL_MCP_DB=str(db))
    assert checked.returncode == 0 and "integrity ok" in checked.stdout
    backup = cli("db", "backup", "--db", str(db))
    assert backup.returncode == 0 and (tmp_path / "backups").is_dir()
    missing = cli("db", "check", CENTRAL_MCP_DB=str(tmp_path / "none.db"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_every_command_prints_its_help() -> None:
    """--help of each command and subcommand, as an operator would try them."""
    from central_mcp.cli import parser

    commands = [[], ["serve"], ["relay"], ["task"], ["task", "add"], ["tasks"], ["agents"], ["notes"], ["note"],
                ["status"], ["backup"], ["reload"], ["db"]]  # fmt: skip
    for command in commands:
        proc = subprocess.run([sys.executable, "-m", "central_mcp", *command, "--help"], capture_output=True, text=True)
        assert proc.returncode == 0 and "usage: central-mcp" in proc.stdout, (command, proc.stderr[-300:])
    assert parser().prog == "central-mcp"
