# SPDX-License-Identifier: Apache-2.0
"""launcher_files: what the launcher writes on one host, from launcher_fleet's real output."""

import json

from ansible_collections.central_mcp.agents.plugins.filter.fleet import launcher_fleet
from ansible_collections.central_mcp.agents.plugins.filter.launcher_files import launcher_files
from test_fleet_filter import KINDS, SECRETS, SETTINGS

LAYOUT = {
    "user": "agent",
    "home": "/home/agent",
    "workspace_root": "/home/agent/workspaces",
    "libexec_dir": "/usr/local/libexec/central-mcp",
    "config_dir": "/etc/central-mcp/agents",
    "scripts": [{"name": "agent-run", "mode": "0755", "content": "#!/usr/bin/python3\n"}],
    "spec": '{"session": "central-mcp-agents"}\n',
    "session": "central-mcp-agents",
    "session_unit": "central-mcp-agents.service",
    "firewall_unit": "central-mcp-agents-firewall.service",
    "agent_memory_max": "6000M",
    "agent_tasks_max": 1024,
}


def files_for(names=("A", "B")) -> dict:
    fleet = launcher_fleet([{"name": n, "role": "dev"} for n in names], KINDS, SETTINGS, SECRETS)
    return launcher_files(fleet, LAYOUT)


def test_every_agent_gets_its_directories_env_file_and_settings():
    result = files_for()
    by_path = {f["path"]: f for f in result["files"]}
    dirs = {d["path"]: d for d in result["directories"]}
    for name in "AB":
        assert dirs[f"/home/agent/workspaces/{name}"]["mode"] == "0750"
        assert dirs[f"/home/agent/.central-mcp/{name}"]["mode"] == "0700"
        env = by_path[f"/etc/central-mcp/agents/{name}.env"]
        assert (env["owner"], env["group"], env["mode"]) == ("agent", "agent", "0600")
        assert SECRETS["api_key"] in env["content"]
        claude = json.loads(by_path[f"/etc/central-mcp/agents/{name}.claude.json"]["content"])
        assert claude["mcpServers"]["central-mcp"]["headers"]["Authorization"] == f"Bearer {SECRETS['tokens'][name]}"
        assert by_path[f"/etc/central-mcp/agents/{name}.settings.json"]["mode"] == "0600"


def test_secrets_are_only_in_files_of_mode_0600():
    secrets = [*SECRETS["tokens"].values(), SECRETS["api_key"]]
    for entry in files_for()["files"]:
        if any(secret in entry["content"] for secret in secrets):
            assert (entry["owner"], entry["mode"]) == ("agent", "0600"), entry["path"]


def test_directories_come_before_what_is_in_them():
    result = files_for()
    order = [d["path"] for d in result["directories"]]
    assert order.index("/etc/central-mcp") < order.index("/etc/central-mcp/agents")
    assert order.index("/home/agent/workspaces") < order.index("/home/agent/workspaces/A")
    assert order.index("/home/agent/.central-mcp") < order.index("/home/agent/.central-mcp/A")


def test_scripts_and_the_spec_are_root_owned_and_readable_by_the_agent_group():
    by_path = {f["path"]: f for f in files_for()["files"]}
    run = by_path["/usr/local/libexec/central-mcp/agent-run"]
    assert (run["owner"], run["mode"], run["content"]) == ("root", "0755", "#!/usr/bin/python3\n")
    spec = by_path["/etc/central-mcp/agents/fleet.json"]
    assert (spec["owner"], spec["group"], spec["mode"]) == ("root", "agent", "0640")


def test_one_path_each():
    paths = [f["path"] for f in files_for(names="ABCDEFGH")["files"]]
    assert len(paths) == len(set(paths)) == 1 + 8 * 3 + 2  # agent-run, 3 per agent, fleet.json, runtime.json


def test_the_runtime_spec_lists_the_workers_only_and_holds_no_secret():
    agents = [{"name": "A", "role": "dev"}, {"name": "W", "role": "dev", "mode": "worker"}]
    fleet = launcher_fleet(agents, KINDS, SETTINGS, SECRETS)
    by_path = {f["path"]: f for f in launcher_files(fleet, LAYOUT)["files"]}
    spec = by_path["/etc/central-mcp/agents/runtime.json"]
    assert (spec["owner"], spec["group"], spec["mode"]) == ("root", "agent", "0640")
    doc = json.loads(spec["content"])
    assert doc["session"] == "central-mcp-agents" and doc["fleet_spec"] == "/etc/central-mcp/agents/fleet.json"
    [worker] = doc["workers"]
    assert worker["name"] == "W" and worker["env_files"] == ["/etc/central-mcp/agents/W.env"]
    assert worker["worker"] == "/etc/central-mcp/agents/W.worker.json" in by_path
    assert worker["run"][:3] == ["/usr/local/libexec/central-mcp/agent-run", "--name", "W"]
    assert worker["task_file"] == "/home/agent/.central-mcp/W.task.json"
    assert not any(token in spec["content"] for token in SECRETS["tokens"].values())


# ------------------------------------------------------------------ one user per agent
def own_users_files(names=("A", "W"), modes=("interactive", "worker")) -> dict:
    agents = [{"name": n, "role": "dev", "mode": m} for n, m in zip(names, modes, strict=True)]
    fleet = launcher_fleet(agents, KINDS, {**SETTINGS, "user_prefix": "agent-"}, SECRETS)
    return launcher_files(fleet, LAYOUT)


def test_each_agent_of_its_own_user_owns_its_workspace_and_cli_home_and_reads_only_its_settings():
    result = own_users_files()
    dirs = {d["path"]: d for d in result["directories"]}
    by_path = {f["path"]: f for f in result["files"]}
    for name, user in (("A", "agent-a"), ("W", "agent-w")):
        for path in (f"/home/agent/workspaces/{name}", f"/home/agent/.central-mcp/{name}"):
            entry = dirs[path]
            assert (entry["owner"], entry["group"], entry["mode"], entry["recurse"]) == (user, user, "0700", True)
        settings = by_path[f"/etc/central-mcp/agents/{name}.settings.json"]
        assert (settings["owner"], settings["group"], settings["mode"]) == ("root", user, "0640")
        env = by_path[f"/etc/central-mcp/agents/{name}.env"]  # read by the console user; systemd hands it over
        assert (env["owner"], env["group"], env["mode"]) == ("agent", "agent", "0600")
    # The worker's end-of-turn hook (its user) and the runtime (the console user) share one directory.
    turn = dirs["/home/agent/.central-mcp/W.turn"]
    assert (turn["owner"], turn["group"], turn["mode"]) == ("agent", "agent-w", "0770")
    worker = by_path["/etc/central-mcp/agents/W.worker.json"]
    assert (worker["owner"], worker["mode"]) == ("agent", "0600")
    # Agents pass through the console user's directories to their own, and list none of them.
    for path in ("/home/agent", "/home/agent/workspaces", "/home/agent/.central-mcp"):
        assert dirs[path]["owner"] == "agent" and dirs[path]["mode"] in ("0711", "0751"), path
    assert dirs["/etc/central-mcp/agents"]["mode"] == "0751"


def test_the_sudo_rule_allows_agent_unit_only_as_root_without_setenv():
    rule = {f["path"]: f for f in own_users_files()["files"]}["/etc/sudoers.d/central-mcp-agents"]
    assert (rule["owner"], rule["group"], rule["mode"]) == ("root", "root", "0440")
    assert rule["validate"] == "/usr/sbin/visudo -cqf %s"
    lines = [line for line in rule["content"].splitlines() if not line.startswith("#")]
    assert lines == [
        "Defaults!/usr/local/libexec/central-mcp/agent-unit !syslog, !use_pty",
        "agent ALL=(root) NOPASSWD: /usr/local/libexec/central-mcp/agent-unit",
    ]


def test_each_agent_unit_names_its_user_sandbox_limits_and_only_its_own_paths():
    entry = {f["path"]: f for f in own_users_files()["files"]}["/etc/central-mcp/agent-units.json"]
    assert (entry["owner"], entry["group"], entry["mode"]) == ("root", "root", "0600")
    units = json.loads(entry["content"])["agents"]
    assert set(units) == {"A", "W"}
    a, w = units["A"], units["W"]
    assert (a["unit"], a["user"]) == ("central-mcp-agent-a.service", "agent-a")
    assert a["agent_run"] == "/usr/local/libexec/central-mcp/agent-run"
    props = dict(p.split("=", 1) for p in a["properties"])
    assert props["LoadCredential"] == "env:/etc/central-mcp/agents/A.env"  # root reads it: no secret in the file
    assert (props["MemoryMax"], props["TasksMax"]) == ("6000M", "1024")
    assert (props["Slice"], props["PartOf"]) == ("central-mcp-agents.slice", "central-mcp-agents.service")
    assert props["Requires"] == props["After"] == "central-mcp-agents-firewall.service"
    assert props["NoNewPrivileges"] == "yes" and props["CapabilityBoundingSet"] == ""
    assert (props["ProtectSystem"], props["ProtectHome"]) == ("strict", "tmpfs")
    assert props["BindPaths"].split() == ["/home/agent/.central-mcp/A", "/home/agent/workspaces/A"]
    assert "ReadWritePaths" not in props
    # A worker's end-of-turn hook writes the turn file: that directory too, and no other agent's.
    assert "/home/agent/.central-mcp/W.turn" in dict(p.split("=", 1) for p in w["properties"])["BindPaths"].split()
    assert not any("/A" in p for p in w["properties"] if p.startswith(("BindPaths", "ReadWritePaths")))
    assert not any(secret in entry["content"] for secret in SECRETS["tokens"].values())


def test_a_workspace_outside_home_is_made_writable_not_bound():
    fleet = launcher_fleet(
        [{"name": "A", "role": "dev", "workdir": "/srv/work/a"}], KINDS, {**SETTINGS, "user_prefix": "agent-"}, SECRETS
    )
    entry = {f["path"]: f for f in launcher_files(fleet, {**LAYOUT, "firewall_unit": None})["files"]}
    props = dict(
        p.split("=", 1)
        for p in json.loads(entry["/etc/central-mcp/agent-units.json"]["content"])["agents"]["A"]["properties"]
    )
    assert (props["BindPaths"], props["ReadWritePaths"]) == ("/home/agent/.central-mcp/A", "/srv/work/a")
    assert "Requires" not in props


def test_secrets_of_an_agent_of_its_own_user_are_readable_by_it_or_the_console_user_only():
    secrets = [*SECRETS["tokens"].values(), SECRETS["api_key"]]
    for entry in own_users_files()["files"]:
        if any(secret in entry["content"] for secret in secrets):
            allowed = {("agent", "agent", "0600"), ("root", "agent-a", "0640"), ("root", "agent-w", "0640")}
            assert (entry["owner"], entry["group"], entry["mode"]) in allowed, entry["path"]


def repo_fleet_files(repos: dict) -> tuple[dict, dict]:
    """launcher_files of agents A (on the first repository) and B (repo: none), and its files by path."""
    from ansible_collections.central_mcp.agents.plugins.filter.repos import repo_plan

    agents = [{"name": "A", "role": "dev"}, {"name": "B", "role": "dev", "repo": "none"}]
    plan = repo_plan(repos, agents, {"dir": "/etc/central-mcp/repos", "mirror_dir": "/var/lib/central-mcp/repos",
                                     "author": "Agent {name} <agent-{lower}@central-mcp.invalid>"})  # fmt: skip
    fleet = launcher_fleet(agents, KINDS, {**SETTINGS, "user_prefix": "agent-", "mode": "worker"}, SECRETS)
    result = launcher_files(fleet, {**LAYOUT, "repos": plan})
    return result, {f["path"]: f for f in result["files"]}


def test_agents_with_a_repository_are_told_it_and_only_their_units_load_its_key():
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
    repos = {"app": {"url": "git@github.com:org/app.git", "host_keys": ["ssh-ed25519 AAAAC3Nz"], "key": key}}
    result, by_path = repo_fleet_files(repos)
    workers = {w["name"]: w for w in json.loads(by_path["/etc/central-mcp/agents/runtime.json"]["content"])["workers"]}
    assert workers["A"]["repo"]["url"] == "git@github.com:org/app.git" and "repo" not in workers["B"]
    assert workers["A"]["repo"]["author"] == "Agent A <agent-a@central-mcp.invalid>"
    assert all(key not in json.dumps(w) for w in workers.values())  # the key itself is never in the spec
    units = json.loads(by_path["/etc/central-mcp/agent-units.json"]["content"])["agents"]
    assert "LoadCredential=repo_key:/etc/central-mcp/repos/app.key" in units["A"]["properties"]
    assert not any("repo_key" in p for p in units["B"]["properties"])
    secret = by_path["/etc/central-mcp/repos/app.key"]
    assert (secret["owner"], secret["mode"], secret["content"]) == ("root", "0600", key)
    pinned = by_path["/etc/central-mcp/repos/app.known_hosts"]
    assert (pinned["mode"], pinned["content"]) == ("0644", "github.com ssh-ed25519 AAAAC3Nz\n")
    dirs = [d["path"] for d in result["directories"]]
    assert "/etc/central-mcp/repos" in dirs and "/var/lib/central-mcp/repos" in dirs


def test_an_https_repositorys_token_reaches_only_its_agents_units_as_a_credential():
    token = "glpat-pushes-to-app-0123456789"
    repos = {"app": {"url": "https://git.example.com/org/app.git", "token": token, "username": "deploy"}}
    result, by_path = repo_fleet_files(repos)
    units = json.loads(by_path["/etc/central-mcp/agent-units.json"]["content"])["agents"]
    assert "LoadCredential=repo_token:/etc/central-mcp/repos/app.token" in units["A"]["properties"]
    assert not any("repo_key" in p for p in units["A"]["properties"] + units["B"]["properties"])
    assert not any("repo_token" in p for p in units["B"]["properties"])
    secret = by_path["/etc/central-mcp/repos/app.token"]
    assert (secret["owner"], secret["mode"], secret["content"]) == ("root", "0600", token + "\n")
    assert [f["path"] for f in result["files"] if token in f["content"]] == ["/etc/central-mcp/repos/app.token"]
