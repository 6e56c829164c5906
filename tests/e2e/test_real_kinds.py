# SPDX-License-Identifier: Apache-2.0
"""One real agent of each kind (Claude Code, Codex, Gemini) on one coordinator over TLS, started as the launcher does.

Each CLI is the npm package pinned in its kind file, configured only by what
the launcher renders (env file, config.toml / settings.json / policy file
merged by agent-run) and driven by the scripted model in that CLI's own wire
format. Both must register with their own token, claim and complete tasks
through the coordinator's tools with no approval prompt, and have a tool
outside their grant refused by the coordinator itself.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from plugins.module_utils.agent_probe import Options, probe
from tests.e2e.fleet import claude_binary, cli_tree, wait_for
from tests.e2e.kinds import GRANT, UNGRANTED, KindFleet, Unavailable, kind_files
from tests.e2e.prompt_markers import PROMPT_MARKERS
from tests.model_api import ModelApi, ModelApiServer, Policy

pytestmark = pytest.mark.e2e
AGENTS = [
    {"name": "A", "role": "backend", "model": "claude-sonnet-5-5", "tools": GRANT},
    {"name": "E", "role": "review", "kind": "codex", "model": "gpt-5-codex", "tools": GRANT},
    {"name": "F", "role": "docs", "kind": "gemini", "model": "gemini-2.5-pro", "tools": GRANT},
]
PROMPT = "You are agent {name} ({role}). Work the coordinator's task board until no task is left."
# Agents poll an empty board (every 0.5 s) until the tasks come, and a while after.
POLICY = Policy(idle_polls=120, poll_s=0.5, think_s=0.1, probe_tool=UNGRANTED)
TASKS_PER_AGENT = 2


@pytest.fixture(scope="module")
def kinds_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[KindFleet, ModelApi]]:
    root = tmp_path_factory.mktemp("kinds")
    try:
        kinds = kind_files()
        trees = {k: cli_tree(k, kinds[k]["install"]) for k in ("codex", "gemini")}
        claude = claude_binary(tmp_path_factory.mktemp("claude-code"))
    except Unavailable as exc:
        pytest.skip(str(exc))
    model = ModelApi("worker", log_path=root / "model-requests.jsonl", default=POLICY)
    server = ModelApiServer(model).start()
    # TLS: the coordinator as agents on another VM reach it (its certificate from the fleet's own CA, which
    # each CLI trusts through its kind's ca_env: NODE_EXTRA_CA_CERTS, CODEX_CA_CERTIFICATE).
    fleet = KindFleet(root, AGENTS, server.url, tls=True, liveness_s=0.5, assign_s=0.5, health_s=5.0)
    try:
        fleet.start_coordinator()
        fleet.render(trees, PROMPT, claude)
        fleet.start_agents()
        yield fleet, model
    finally:
        fleet.close()
        server.stop()


def diagnose(fleet: KindFleet, model: ModelApi) -> str:
    panes = "\n".join(f"--- {n} ---\n{fleet.pane(n)[-2500:]}" for n in fleet.items)
    return f"model errors: {model.errors}\n{panes}\n--- coordinator ---\n{fleet.coordinator.log.read_text()[-2000:]}"


def test_codex_and_gemini_agents_register_and_complete_tasks_with_no_prompt(kinds_fleet) -> None:
    fleet, model = kinds_fleet
    try:
        registered = {name: fleet.wait_registered(name, 90) for name in fleet.items}

        def polled(name: str) -> bool:
            return any(
                e.get("agent") == name and e.get("reply", {}).get("tool", "").endswith("get_available_tasks")
                for e in list(model.requests)
            )

        wait_for(lambda: all(polled(n) for n in fleet.items), 90, "both agents poll their task board")
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n{diagnose(fleet, model)}") from None
    # Tasks for each agent's role, so that every kind gets work however fast the others are.
    ids = [
        fleet.coordinator.create_task(f"kinds task {i} for {a['role']}", "for one agent kind", role=a["role"])["id"]
        for a in AGENTS
        for i in range(TASKS_PER_AGENT)
    ]
    try:
        wait_for(
            lambda: {fleet.coordinator.task(i)["state"] for i in ids} == {"COMPLETE"}, 120, "every task COMPLETE", 0.3
        )
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n{diagnose(fleet, model)}") from None
    tasks = [fleet.coordinator.task(i) for i in ids]
    by = Counter(t["claimed_by"] for t in tasks)
    assert by == {"A": 2, "E": 2, "F": 2}, f"each kind completes its tasks: {by}\n{diagnose(fleet, model)}"
    for task in tasks:
        assert [e["kind"] for e in task["events"]] == ["created", "claimed", "progress", "completed"], task["events"]
        assert f"agent {task['claimed_by']}" in task["result"]

    agents = fleet.coordinator.agents()
    assert {n: (agents[n]["registered"], agents[n]["kind"]) for n in fleet.items} == {
        "A": (True, "claude"),
        "E": (True, "codex"),
        "F": (True, "gemini"),
    }
    assert model.errors == [], model.errors
    # Each CLI spoke its own wire format and used the key from its env file.
    seen = {(e.get("agent"), e["kind"], e.get("api_key_tail")) for e in model.requests if e.get("agent")}
    assert {("A", "messages", "0000"), ("E", "responses", "0000"), ("F", "gemini", "0000")} <= seen, seen
    # No window ever stopped at a question for a person.
    blocked = {n: [m for m in PROMPT_MARKERS if m in fleet.pane(n)] for n in fleet.items}
    assert blocked == {"A": [], "E": [], "F": []}, diagnose(fleet, model)
    print(
        "\nregistered after window start: "
        + ", ".join(f"{n} ({fleet.items[n]['kind']}) {s:.1f}s" for n, s in registered.items())
        + f"; tasks completed: {dict(by)}; prompts that blocked an agent: 0"
    )


def test_a_tool_outside_the_grant_is_refused_by_the_coordinator(kinds_fleet) -> None:
    fleet, model = kinds_fleet

    def callers() -> set[str]:
        entries = list(model.requests)
        return {e.get("agent") for e in entries for r in e.get("tool_results", []) if UNGRANTED in r["tool"]}

    try:
        wait_for(lambda: callers() >= {"A", "E", "F"}, 90, f"every agent called {UNGRANTED}")
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n{diagnose(fleet, model)}") from None
    results = {
        e["agent"]: r for e in model.requests for r in e.get("tool_results", []) if r["tool"].endswith(UNGRANTED)
    }
    for name in ("A", "E", "F"):
        result = results[name]
        # The CLI called it without asking (it allows every coordinator tool); the coordinator said no.
        assert result["is_error"], result
        assert f"tool {UNGRANTED} is not granted to agent {name}" in result["text"], result
    log = fleet.coordinator.log.read_text()
    for name in ("A", "E", "F"):
        assert f"agent {name} called {UNGRANTED}, which its grant does not include" in log


def test_no_secret_in_a_window_command(kinds_fleet) -> None:
    fleet, _ = kinds_fleet
    for name, item in fleet.items.items():
        token = fleet.coordinator.tokens[name]
        assert token not in item["command"]
        if item["kind"] != "claude":  # Claude Code reads its header from its 0600 .claude.json; the others the env
            assert token in Path(fleet.root / "etc" / f"{name}.env").read_text()
            for doc in item["configs"]:
                assert token not in Path(doc["path"]).read_text()


def test_agent_status_reports_kind_and_finds_each_cli(kinds_fleet) -> None:
    """agent_status's engine on this fleet: the kind, and the CLI process under its Node wrapper."""
    fleet, _ = kinds_fleet
    coordinator = fleet.coordinator
    opts = Options("kinds", fleet.socket_name, coordinator.url, coordinator.api_token, ca_file=str(coordinator.ca_file))
    rows = {r["name"]: r for r in probe(opts)["agents"]}
    assert {n: rows[n]["kind"] for n in fleet.items} == {"A": "claude", "E": "codex", "F": "gemini"}
    for name, marker in (("E", "codex"), ("F", "gemini.js")):
        row = rows[name]
        assert row["alive"] and row["registered"], row
        assert row["cli_pid"] and row["cli_pid"] != row["pid"], row  # the CLI runs under a Node process
        argv = Path(f"/proc/{row['cli_pid']}/cmdline").read_bytes().split(b"\0")
        assert any(Path(a.decode()).name == marker for a in argv[:4]), argv
        print(f"\n{name} ({row['kind']}): RSS {row['rss_bytes'] / 2**20:.0f} MiB (agent and its processes)")
