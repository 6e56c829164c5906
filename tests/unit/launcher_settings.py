# SPDX-License-Identifier: Apache-2.0
"""What the launcher role hands to `launcher_fleet`, for the unit tests of the fleet filters."""

from pathlib import Path

import yaml
from ansible_collections.central_mcp.agents.plugins.filter.fleet_plan import installs

REPO = Path(__file__).resolve().parents[2]
KINDS_DIR = REPO / "roles/launcher/vars/kinds"

# The role's layout and defaults, as tasks/configure.yml passes them.
SETTINGS = {
    "libexec_dir": "/usr/local/libexec/central-mcp",
    "config_dir": "/etc/central-mcp/agents",
    "home": "/home/agent",
    "workspace_root": "/home/agent/workspaces",
    "coordinator_url": "http://127.0.0.1:3000/mcp",
    "default_model": "claude-sonnet-5-5",
    "backoff_s": 5,
    "backoff_max_s": 300,
    "healthy_after_s": 60,
    "permission_mode": "dontAsk",
    "allowed_tools": ["Read", "Edit"],
    "prompt": "You are {name} ({role}).",
    "agent_env": {},
    # The role's default is worker; most filter tests look at an interactive agent's window command.
    "mode": "interactive",
    # The fleet plan's, for a host with agents of every kind.
    "install_dirs": {i["kind"]: i["path"] for i in installs(["claude", "codex", "gemini"], {}, "linux-x64")},
    "platform": "linux-x64",
}


def kinds(*names: str) -> dict:
    """The role's kind files by name (all of them when no name is given)."""
    paths = [KINDS_DIR / f"{name}.yml" for name in names] if names else sorted(KINDS_DIR.glob("*.yml"))
    return {path.stem: yaml.safe_load(path.read_text())[path.stem] for path in paths}
