# SPDX-License-Identifier: Apache-2.0
"""Settings from the environment: defaults, and bad values named in the error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from central_mcp.settings import ConfigError, Settings


def test_defaults() -> None:
    s = Settings.from_env({})
    assert s.db_path == Path("/var/lib/central-mcp/central-mcp.db")
    assert s.backup_dir == Path("/var/lib/central-mcp/backups")
    assert (s.host, s.port, s.public_url, s.mcp_url) == (
        "127.0.0.1",
        3000,
        "http://127.0.0.1:3000",
        "http://127.0.0.1:3000/mcp",
    )
    assert (s.liveness_s, s.assign_s, s.health_s, s.upkeep_s) == (5, 30, 10, 300)
    assert (s.stale_s, s.offline_s, s.backups_keep) == (120, 600, 7)
    assert (s.heartbeat_s, s.runtime_offline_s, s.quiet_s, s.task_max_attempts, s.notify_url) == (5, 15, 900, 3, "")
    assert s.agents_file is None and s.api_token == "" and s.loopback
    assert s.disk_warn_percent == 85
    assert (s.agent_writes_per_minute, s.agent_writes_burst, s.retention_days) == (30, 10, 30)
    limits = Settings.from_env(
        {
            "CENTRAL_MCP_AGENT_WRITES_PER_MINUTE": "0",
            "CENTRAL_MCP_AGENT_WRITES_BURST": "5",
            "CENTRAL_MCP_RETENTION_DAYS": "0",
        }
    )
    assert (limits.agent_writes_per_minute, limits.agent_writes_burst, limits.retention_days) == (0, 5, 0)
    assert Settings.from_env({"CENTRAL_MCP_DISK_WARN_PERCENT": "92.5"}).disk_warn_percent == 92.5
    s.check_exposure()


def test_values_from_environment() -> None:
    s = Settings.from_env(
        {
            "CENTRAL_MCP_DB": "/srv/c/db.sqlite",
            "CENTRAL_MCP_HOST": "::1",
            "CENTRAL_MCP_PORT": "3100",
            "CENTRAL_MCP_AGENTS_FILE": "/etc/central-mcp/agents.json",
            "CENTRAL_MCP_API_TOKEN": " secret ",
            "CENTRAL_MCP_STALE_S": "1.5",
            "CENTRAL_MCP_OFFLINE_S": "3",
        }
    )
    assert s.backup_dir == Path("/srv/c/backups")
    assert s.public_url == "http://[::1]:3100" and s.loopback
    assert s.agents_file == Path("/etc/central-mcp/agents.json")
    assert s.api_token == "secret" and "secret" not in repr(s)
    assert (s.stale_s, s.offline_s) == (1.5, 3.0)


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"CENTRAL_MCP_PORT": "http"}, "CENTRAL_MCP_PORT='http'"),
        ({"CENTRAL_MCP_PORT": "70000"}, "CENTRAL_MCP_PORT='70000'"),
        ({"CENTRAL_MCP_LIVENESS_S": "-1"}, "CENTRAL_MCP_LIVENESS_S='-1'"),
        ({"CENTRAL_MCP_ASSIGN_S": "soon"}, "CENTRAL_MCP_ASSIGN_S='soon'"),
        ({"CENTRAL_MCP_BACKUPS_KEEP": "0"}, "CENTRAL_MCP_BACKUPS_KEEP='0'"),
        ({"CENTRAL_MCP_DB": "relative.db"}, "CENTRAL_MCP_DB='relative.db'"),
        ({"CENTRAL_MCP_PUBLIC_URL": "ftp://x"}, "CENTRAL_MCP_PUBLIC_URL"),
        ({"CENTRAL_MCP_STALE_S": "600", "CENTRAL_MCP_OFFLINE_S": "60"}, "CENTRAL_MCP_OFFLINE_S=60"),
        ({"CENTRAL_MCP_LOG_LEVEL": "loud"}, "CENTRAL_MCP_LOG_LEVEL='loud'"),
        ({"CENTRAL_MCP_DISK_WARN_PERCENT": "0"}, "CENTRAL_MCP_DISK_WARN_PERCENT='0'"),
        ({"CENTRAL_MCP_DISK_WARN_PERCENT": "101"}, "CENTRAL_MCP_DISK_WARN_PERCENT='101'"),
        ({"CENTRAL_MCP_DISK_WARN_PERCENT": "85%"}, "CENTRAL_MCP_DISK_WARN_PERCENT='85%'"),
        ({"CENTRAL_MCP_DISK_WARN_PERCENT": "nan"}, "CENTRAL_MCP_DISK_WARN_PERCENT='nan'"),
        ({"CENTRAL_MCP_TASK_MAX_ATTEMPTS": "0"}, "CENTRAL_MCP_TASK_MAX_ATTEMPTS='0'"),
        ({"CENTRAL_MCP_QUIET_S": "never"}, "CENTRAL_MCP_QUIET_S='never'"),
        ({"CENTRAL_MCP_NOTIFY_URL": "hooks.example/x"}, "CENTRAL_MCP_NOTIFY_URL: expected an http:// or https://"),
        ({"CENTRAL_MCP_AGENT_WRITES_PER_MINUTE": "-1"}, "CENTRAL_MCP_AGENT_WRITES_PER_MINUTE='-1'"),
        ({"CENTRAL_MCP_AGENT_WRITES_BURST": "0"}, "CENTRAL_MCP_AGENT_WRITES_BURST='0'"),
        ({"CENTRAL_MCP_RETENTION_DAYS": "a month"}, "CENTRAL_MCP_RETENTION_DAYS='a month'"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError, match=None) as info:
        Settings.from_env(env)
    assert needle in str(info.value)


def test_a_bad_notify_url_is_not_shown_it_is_a_secret() -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"CENTRAL_MCP_NOTIFY_URL": "hooks.example/T000/B000/s3cr3t"})
    assert "CENTRAL_MCP_NOTIFY_URL" in str(info.value) and "s3cr3t" not in str(info.value)


@pytest.mark.parametrize(
    ("host", "exposed"), [("0.0.0.0", True), ("10.0.0.5", True), ("vm1", True), ("localhost", False)]
)
def test_exposed_host_needs_api_token(host: str, exposed: bool) -> None:
    s = Settings.from_env({"CENTRAL_MCP_HOST": host})
    if exposed:
        with pytest.raises(ConfigError, match="CENTRAL_MCP_API_TOKEN"):
            s.check_exposure()
        Settings.from_env({"CENTRAL_MCP_HOST": host, "CENTRAL_MCP_API_TOKEN": "t"}).check_exposure()
    else:
        s.check_exposure()


def test_api_token_from_file(tmp_path: Path) -> None:
    secret = tmp_path / "api_token"
    secret.write_text("s3cret\n")
    assert Settings.from_env({"CENTRAL_MCP_API_TOKEN_FILE": str(secret)}).api_token == "s3cret"
    with pytest.raises(ConfigError, match="both set"):
        Settings.from_env({"CENTRAL_MCP_API_TOKEN_FILE": str(secret), "CENTRAL_MCP_API_TOKEN": "x"})
    with pytest.raises(ConfigError, match="CENTRAL_MCP_API_TOKEN_FILE=.*cannot read"):
        Settings.from_env({"CENTRAL_MCP_API_TOKEN_FILE": str(tmp_path / "missing")})
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError, match="empty"):
        Settings.from_env({"CENTRAL_MCP_API_TOKEN_FILE": str(tmp_path / "empty")})


def test_transport_security_stays_on_with_the_fleets_names() -> None:
    from central_mcp.app import transport_security

    loop = transport_security(Settings.from_env({"CENTRAL_MCP_PUBLIC_URL": "https://coord.internal"}))
    assert loop.enable_dns_rebinding_protection
    assert {"127.0.0.1:*", "[::1]:*", "coord.internal:*", "coord.internal"} <= set(loop.allowed_hosts)
    assert {"https://coord.internal", "http://localhost:*", "https://127.0.0.1:*"} <= set(loop.allowed_origins)
    exposed = transport_security(
        Settings.from_env(
            {"CENTRAL_MCP_HOST": "0.0.0.0", "CENTRAL_MCP_API_TOKEN": "t", "CENTRAL_MCP_ALLOWED_HOSTS": "VM1, fd00::2"}
        )
    )
    assert exposed.enable_dns_rebinding_protection  # beyond loopback too: with the fleet's names
    assert {"VM1:*", "vm1:*", "[fd00::2]:*", "[fd00::2]"} <= set(exposed.allowed_hosts)
    assert {"https://vm1:*", "http://[fd00::2]:*"} <= set(exposed.allowed_origins)


def forge_file(tmp_path: Path, **changes: object) -> dict[str, str]:
    doc = {"kind": "github", "api_url": "https://api.github.com", "token": "ghp_0123456789abcdef",
           "projects": {"app": "org/app"}, **changes}  # fmt: skip
    path = tmp_path / "forge.json"
    path.write_text(json.dumps(doc))
    return {"CENTRAL_MCP_FORGE_FILE": str(path)}


def test_the_forge_file_names_the_forge_and_each_repositorys_project(tmp_path: Path) -> None:
    forge = Settings.from_env(forge_file(tmp_path)).forge
    assert forge is not None and (forge.kind, forge.api_url, forge.project("app"), forge.project("x")) == (
        "github", "https://api.github.com", "org/app", None,
    )  # fmt: skip
    assert "ghp_" not in repr(forge)  # the token never shows in a log line or a traceback
    gitlab = forge_file(tmp_path, kind="gitlab", api_url="http://127.0.0.1:8080/api/v4", projects={"app": "a/b/c"})
    assert Settings.from_env(gitlab).forge.project("app") == "a/b/c"  # plain HTTP on loopback only
    assert Settings.from_env({}).forge is None


@pytest.mark.parametrize(
    ("changes", "said"),
    [
        ({"kind": "bitbucket"}, "kind 'bitbucket' is not one of github, gitlab"),
        ({"api_url": "ftp://x"}, "api_url 'ftp://x' is not an http(s) URL"),
        ({"api_url": "http://forge.example/api"}, "plain HTTP beyond this machine"),
        ({"token": ""}, "token must be the forge's API token"),
        ({"token": "two words here"}, "token must be the forge's API token"),
        ({"projects": {}}, "projects must map each repository"),
        ({"projects": {"app": "../etc"}}, "the project of repository 'app' is '../etc'; expected owner/name"),
        ({"projects": {"app": "org"}}, "expected owner/name"),
    ],
)
def test_a_bad_forge_file_is_refused_naming_the_value(tmp_path: Path, changes: dict, said: str) -> None:
    with pytest.raises(ConfigError, match="CENTRAL_MCP_FORGE_FILE") as caught:
        Settings.from_env(forge_file(tmp_path, **changes))
    assert said in str(caught.value)
