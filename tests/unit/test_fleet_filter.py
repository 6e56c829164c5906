# SPDX-License-Identifier: Apache-2.0
"""The fleet filters: validation of inventory values and what each agent gets.

`fleet_errors` is the launcher's preflight: every hostile or wrong value must
produce a message that names it, before any task changes the host.
"""

import shlex

import pytest
from ansible_collections.central_mcp.agents.plugins.filter.fleet import (
    agent_user_errors,
    agent_users,
    fleet_errors,
    launcher_fleet,
)
from launcher_settings import SETTINGS as BASE_SETTINGS
from launcher_settings import kinds

KINDS = kinds("claude")
SETTINGS = {
    **BASE_SETTINGS,
    "prompt": "You are {name} ({role}); {braces} stay",
    "agent_env": {"SHARED": "1", "ANTHROPIC_BASE_URL": "http://shared.invalid"},
}
SECRETS = {"tokens": {"A": "tok-A-secret", "B": "tok-B-secret"}, "api_key": "sk-test-0123456789abcdefghijKLMN"}


def agent(**extra):
    return {"name": "A", "role": "backend", **extra}


BAD = [
    # (fleet, text the message must contain)
    ([agent(name="A; rm -rf /")], "'A; rm -rf /'"),
    ([agent(name="$(id)")], "'$(id)'"),
    ([agent(name="a'b")], '"a\'b"'),
    ([agent(name='a"b')], "'a\"b'"),
    ([agent(name="A\nB")], "'A\\nB'"),
    ([agent(name="")], "''"),
    ([agent(name="A" * 33)], "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
    ([agent(name="Аgent")], "'Аgent'"),  # Cyrillic A: a look-alike
    ([agent(name=7)], "7"),
    ([agent(name="Control")], "reserved"),
    ([agent(name="logs")], "reserved"),
    ([agent(), agent(name="a")], "used twice"),
    ([agent() for _ in range(40)], "used twice"),
    ([agent(model="$(curl x)")], "'$(curl x)'"),
    ([agent(model="m" * 200)], "is not a model name"),
    ([agent(kind="codex")], "kind 'codex' is unknown"),
    ([agent(env={"BAD-KEY": "x"})], "'BAD-KEY'"),
    ([agent(env={"K": "line1\nline2"})], "env K contains a newline"),
    ([agent(env={"K": True})], "env K must be a string"),
    ([agent(env={"K": ["x"]})], "env K must be a string"),
    ([agent(unknown_key=1)], "unknown key(s) unknown_key"),
    ([agent(permission_mode="default")], "would stop the agent at an approval prompt"),
    ([agent(permission_mode="acceptEdits")], "'acceptEdits' would stop"),
    ([agent(allowed_tools="Bash")], "allowed_tools must be a list"),
    ([agent(allowed_tools=["Bash\nrm"])], "is not a tool rule"),
    ([agent(allowed_tools=["$(id)"])], "'$(id)' is not a tool rule"),
    ([agent(prompt="x" * 4001)], "prompt must be text of at most 4000 characters"),
    ([{"name": "A"}], "role None is not a role"),
    ([agent(role="")], "role '' is not a role"),
    ([agent(role="r" * 102400)], "is not a role"),
    ([agent(name="A\n")], "'A\\n'"),  # "$" alone would let a trailing newline through
    ([agent(model="glm-4.6\n")], "is not a model name"),
    ([agent(env=["K=V"])], "env must be a mapping"),
    ([agent(workdir="/etc")], "workdir '/etc' must be a path below"),
    ([agent(workdir="/home/agent/../../etc")], "must be a path below"),
    ([agent(command="claude 'oops")], "is not a command line"),
    ([agent(name=f"A{i}") for i in range(17)], "has 17 agents: one VM runs at most 16"),
    ([], "central_mcp_agents is empty"),
    (["A"], "must be a dict"),
    ("A,B", "must be a list"),
]


@pytest.mark.parametrize(("fleet", "needle"), BAD, ids=[repr(case[0])[:40] for case in BAD])
def test_bad_values_are_named(fleet, needle):
    errors = fleet_errors(fleet, KINDS)
    assert errors, "expected an error"
    assert any(needle in message for message in errors), errors


def test_forty_agents_with_one_name_report_each_duplicate():
    errors = fleet_errors([agent() for _ in range(40)], KINDS)
    assert len([e for e in errors if "used twice" in e]) == 39 and "has 40 agents" in errors[0]


@pytest.mark.parametrize(
    "fleet",
    [
        [agent(), agent(name="B"), agent(name="c_3-x", model="glm-4.6", workdir="/srv/repo")],
        [agent(model="org/model:tag", env={"ANTHROPIC_BASE_URL": "https://x.invalid/api", "N": 3})],
    ],
)
def test_good_fleets_pass(fleet):
    assert fleet_errors(fleet, KINDS) == []


def test_launcher_fleet_refuses_a_bad_fleet():
    with pytest.raises(ValueError, match="used twice"):
        launcher_fleet([agent(), agent()], KINDS, SETTINGS, SECRETS)


def test_each_agent_gets_its_command_env_file_and_claude_settings():
    fleet = [agent(model="glm-4.6", env={"ANTHROPIC_BASE_URL": "http://glm.invalid"}), agent(name="B")]
    a, b = launcher_fleet(fleet, KINDS, SETTINGS, SECRETS)
    argv = shlex.split(a["command"])
    assert argv[0] == "/usr/local/libexec/central-mcp/agent-run"
    assert argv[argv.index("--") + 1 :] == [
        "/usr/local/bin/claude",
        "--model",
        "glm-4.6",
        "You are A (backend); {braces} stay",
    ]
    assert "/etc/central-mcp/agents/A.env" in argv
    env = dict(line.split("=", 1) for line in a["env_file"].splitlines())
    assert env["AGENT_NAME"] == "A" and env["AGENT_ROLE"] == "backend" and env["AGENT_MODEL"] == "glm-4.6"
    assert env["CENTRAL_MCP_URL"] == SETTINGS["coordinator_url"]
    assert env["ANTHROPIC_BASE_URL"] == "http://glm.invalid"  # the agent's own env wins over the fleet's
    assert env["SHARED"] == "1" and "SHARED=1\nANTHROPIC_BASE_URL=http://shared.invalid\n" in b["env_file"]
    assert env["ANTHROPIC_API_KEY"] == SECRETS["api_key"]
    assert env["CLAUDE_CONFIG_DIR"] == "/home/agent/.central-mcp/A"
    assert a["workdir"] == "/home/agent/workspaces/A"
    claude_a, settings_a = (doc["content"] for doc in a["configs"])
    assert [doc["path"] for doc in a["configs"]] == [
        "/etc/central-mcp/agents/A.claude.json",
        "/etc/central-mcp/agents/A.settings.json",
    ]
    assert f"{a['configs'][1]['path']}:/home/agent/.central-mcp/A/settings.json" in argv
    assert claude_a["mcpServers"]["central-mcp"]["headers"]["Authorization"] == "Bearer tok-A-secret"
    assert b["configs"][0]["content"]["mcpServers"]["central-mcp"]["headers"]["Authorization"] == "Bearer tok-B-secret"
    assert claude_a["projects"] == {"/home/agent/workspaces/A": {"hasTrustDialogAccepted": True}}
    assert claude_a["customApiKeyResponses"]["approved"] == [SECRETS["api_key"][-20:]]
    assert settings_a["permissions"] == {"defaultMode": "dontAsk", "allow": ["mcp__central-mcp", "Read", "Edit"]}
    assert env["AGENT_MODEL"] != b["env_file"]


def test_no_secret_in_the_window_command():
    for item in launcher_fleet([agent(env={"ANTHROPIC_AUTH_TOKEN": "glm-secret"})], KINDS, SETTINGS, SECRETS):
        for secret in ("glm-secret", SECRETS["api_key"], SECRETS["tokens"]["A"]):
            assert secret not in item["command"]
            assert secret not in item["revision"]


def test_without_an_api_key_nothing_is_approved():
    (a,) = launcher_fleet([agent()], KINDS, SETTINGS, {"tokens": {"A": "t"}, "api_key": ""})
    assert "ANTHROPIC_API_KEY" not in a["env_file"]
    assert a["configs"][0]["content"]["customApiKeyResponses"]["approved"] == []


@pytest.mark.parametrize(
    "change",
    [
        {"model": "glm-4.6"},
        {"env": {"X": "1"}},
        {"role": "review"},
        {"command": "/bin/sleep 1000"},
        {"workdir": "/srv/work"},
        {"permission_mode": "bypassPermissions"},
        {"allowed_tools": ["Read"]},
        {"prompt": "another first instruction"},
    ],
)
def test_revision_changes_with_the_agent_and_only_that_agent(change):
    base = [agent(), agent(name="B")]
    before = launcher_fleet(base, KINDS, SETTINGS, SECRETS)
    after = launcher_fleet([agent(**change), agent(name="B")], KINDS, SETTINGS, SECRETS)
    assert before[0]["revision"] != after[0]["revision"]
    assert before[1]["revision"] == after[1]["revision"]


def test_a_new_token_or_key_restarts_the_agent():
    before = launcher_fleet([agent()], KINDS, SETTINGS, SECRETS)[0]["revision"]
    token = launcher_fleet([agent()], KINDS, SETTINGS, {**SECRETS, "tokens": {"A": "other"}})[0]["revision"]
    key = launcher_fleet([agent()], KINDS, SETTINGS, {**SECRETS, "api_key": "another-key-0123456789"})[0]["revision"]
    assert len({before, token, key}) == 3


def test_agent_permissions_override_the_defaults():
    (a,) = launcher_fleet(
        [agent(permission_mode="bypassPermissions", allowed_tools=["Bash(git:*)"], prompt="")],
        KINDS, SETTINGS, SECRETS,
    )  # fmt: skip
    assert a["configs"][1]["content"]["permissions"] == {
        "defaultMode": "bypassPermissions",
        "allow": ["mcp__central-mcp", "Bash(git:*)"],
    }
    argv = shlex.split(a["command"])
    assert argv[-3:] == ["/usr/local/bin/claude", "--model", "claude-sonnet-5-5"]  # no prompt


def test_command_override_is_split_never_shell_run():
    (a,) = launcher_fleet([agent(command="/bin/echo '$(id)' ; rm -rf /")], KINDS, SETTINGS, SECRETS)
    argv = shlex.split(a["command"])
    assert argv[argv.index("--") + 1 :] == ["/bin/echo", "$(id)", ";", "rm", "-rf", "/"]


# ------------------------------------------------------------------ one user per agent
def test_an_agent_of_its_own_user_starts_through_agent_run_as_that_user_in_its_workspace():
    (agent,) = launcher_fleet([{"name": "Ab_1", "role": "dev"}], KINDS, {**SETTINGS, "user_prefix": "agent-"}, SECRETS)
    assert agent["user"] == "agent-ab_1"
    argv = shlex.split(agent["command"])
    assert argv[argv.index("--user") + 1] == "agent-ab_1"
    assert argv[argv.index("--workdir") + 1] == agent["workdir"]
    assert argv[argv.index("--kind") + 1] == "claude" and argv[argv.index("--process") + 1] == "claude"
    assert agent_users([{"name": "Ab_1"}], "agent-", "/home/agent") == [
        {"name": "agent-ab_1", "home": "/home/agent/.central-mcp/Ab_1", "shell": "/bin/bash", "groups": []}
    ]


def test_without_a_user_prefix_the_agent_runs_as_the_windows_user():
    (agent,) = launcher_fleet([{"name": "A", "role": "dev"}], KINDS, SETTINGS, SECRETS)
    assert agent["user"] is None and "--user" not in shlex.split(agent["command"])


@pytest.mark.parametrize(
    ("agents", "prefix", "message"),
    [
        ([{"name": "A"}], "Agent-", "launcher_agent_user_prefix 'Agent-' is not a user name prefix"),
        ([{"name": "A"}], "", "launcher_agent_user_prefix '' is not a user name prefix"),
        ([{"name": "a" * 30}], "agent-", "longer than 32 characters: shorten the agent's name to 26 characters"),
        ([{"name": "Nt"}], "age", "its Unix user 'agent' is launcher_user, the console user"),
    ],
)
def test_agent_user_errors_name_the_bad_value_and_what_to_do(agents, prefix, message):
    errors = agent_user_errors(agents, prefix, "agent")
    assert len(errors) == 1 and message in errors[0], errors


def test_agent_user_errors_leave_bad_names_to_fleet_errors():
    assert agent_user_errors([{"name": "1bad"}, "not a dict", {"name": "ok"}], "agent-", "agent") == []
