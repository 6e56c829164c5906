# SPDX-License-Identifier: Apache-2.0
"""The roles' preflight filters: good settings pass, each bad value is named, all at once.

The whole-site checks with hostile values run against a real VM in the
reliability suite (tests/reliability/bad_inputs.yml); these pin each
message and the types an inventory can give.
"""

from __future__ import annotations

import hashlib

import pytest
import yaml
from ansible_collections.central_mcp.agents.plugins.filter import fleet
from ansible_collections.central_mcp.agents.plugins.filter.fleet_plan import fleet_plan
from ansible_collections.central_mcp.agents.plugins.filter.preflight import (
    coordinator_errors,
    coordinator_fleet_errors,
    launcher_errors,
    vm_upgrade_errors,
)
from launcher_settings import REPO, kinds

COORDINATOR = {
    "coordinator_port": 3000,
    "coordinator_bind_host": "127.0.0.1",
    "private_address": "10.128.0.2",
    "coordinator_disk_warn_percent": 85,
    "coordinator_api_token": "",
    "coordinator_dashboard_token": "",
    "coordinator_extra_env": {},
    "coordinator_data_dir": "/var/lib/central-mcp",
    "coordinator_task_max_attempts": 3,
    "coordinator_quiet_s": 900,
    "coordinator_notify_url": "",
    "coordinator_agent_writes_per_minute": 30,
    "coordinator_agent_writes_burst": 10,
    "coordinator_retention_days": 30,
    "coordinator_memory_max": "1G",
    "coordinator_tasks_max": 256,
}
TOKEN = "tok-0123456789abcdef"
LAUNCHER = {
    "central_mcp_agents": [{"name": "A", "role": "backend"}, {"name": "B", "role": "frontend"}],
    "launcher_agent_env": {"HTTP_PROXY": "http://proxy:3128"},
    "launcher_api_keys": {"claude": "key-a", "codex": "key-b"},
    "launcher_session": "central-mcp-agents",
    "launcher_restart_backoff_s": 5,
    "launcher_restart_backoff_max_s": 300,
    "launcher_user": "agent",
    "launcher_coordinator_url": "http://127.0.0.1:3000/mcp",
    "launcher_agent_tokens": {"A": TOKEN, "B": TOKEN + "-b"},
    "launcher_cli_versions": {"claude": "2.1.340"},
}
KINDS = sorted(kinds())


def test_the_role_defaults_pass():
    coordinator = yaml.safe_load((REPO / "roles/coordinator/defaults/main.yml").read_text())
    settings = {key: coordinator[key] for key in COORDINATOR if key in coordinator}
    assert "{{" in settings.pop("coordinator_bind_host")  # the private address with agents on other VMs, else 127.0.0.1
    assert coordinator_errors({**settings, "coordinator_bind_host": "10.0.0.5", "private_address": "vm-a"}) == []
    launcher = yaml.safe_load((REPO / "roles/launcher/defaults/main.yml").read_text())
    settings = {key: launcher[key] for key in LAUNCHER if key in launcher and key != "launcher_coordinator_url"}
    assert launcher_errors({**LAUNCHER, **settings}, KINDS, "vm-a") == []


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [
        ("coordinator_port", 0, 'coordinator_port "0"'),
        ("coordinator_port", "70000", 'coordinator_port "70000"'),
        ("coordinator_port", "-1", 'coordinator_port "-1"'),
        ("coordinator_port", True, "coordinator_port"),
        ("coordinator_port", {"a": 1}, "coordinator_port"),
        ("coordinator_bind_host", "127.0.0.1; rm -rf /", '"127.0.0.1; rm -rf /"'),
        ("coordinator_bind_host", "a\nb", r'coordinator_bind_host "a\nb"'),
        ("coordinator_bind_host", ["x"], "coordinator_bind_host"),
        ("coordinator_bind_host", "0.0.0.0", "Leave coordinator_bind_host unset"),
        ("private_address", "", "central_mcp_private_address"),
        ("coordinator_disk_warn_percent", 0, "coordinator_disk_warn_percent"),
        ("coordinator_disk_warn_percent", "101", "coordinator_disk_warn_percent"),
        ("coordinator_disk_warn_percent", "85%", "coordinator_disk_warn_percent"),
        ("coordinator_api_token", "short", "coordinator_api_token"),
        ("coordinator_api_token", TOKEN + "\n", "coordinator_api_token"),
        ("coordinator_dashboard_token", ["x" * 20], "coordinator_dashboard_token"),
        ("coordinator_extra_env", "CENTRAL_MCP_X=1", "coordinator_extra_env must be a mapping"),
        ("coordinator_extra_env", {"PATH": "/tmp"}, '"PATH" must be CENTRAL_MCP_* names'),
        ("coordinator_extra_env", {"CENTRAL_MCP_X": "1\nExecStart=/bin/sh"}, '"CENTRAL_MCP_X"'),
        ("coordinator_data_dir", "/", 'coordinator_data_dir "/"'),
        ("coordinator_data_dir", "/var/lib/../etc", "coordinator_data_dir"),
        ("coordinator_data_dir", None, "coordinator_data_dir"),
        ("coordinator_task_max_attempts", 0, 'coordinator_task_max_attempts "0"'),
        ("coordinator_task_max_attempts", "3", 'coordinator_task_max_attempts "3"'),
        ("coordinator_quiet_s", 1, 'coordinator_quiet_s "1"'),
        ("coordinator_notify_url", "hooks.example/T/B", "coordinator_notify_url must be an http"),
        ("coordinator_notify_url", "https://hooks.example/T B", "coordinator_notify_url must be an http"),
        ("coordinator_api_token", "replace-with-a-random-token", "coordinator_api_token still holds the placeholder"),
        ("coordinator_dashboard_token", "CHANGEME", "coordinator_dashboard_token still holds the placeholder"),
        ("coordinator_agent_writes_per_minute", -1, 'coordinator_agent_writes_per_minute "-1" must be'),
        ("coordinator_agent_writes_burst", 0, 'coordinator_agent_writes_burst "0" must be a whole number from 1'),
        ("coordinator_retention_days", "30", 'coordinator_retention_days "30" must be a whole number'),
        ("coordinator_retention_days", 99999, 'coordinator_retention_days "99999"'),
        ("coordinator_tasks_max", 10, 'coordinator_tasks_max "10" must be a whole number from 64'),
        ("coordinator_memory_max", "1 GB", 'coordinator_memory_max "1 GB" must be a size systemd'),
        ("coordinator_memory_max", "1G\nExecStartPre=/bin/sh", "coordinator_memory_max"),
        ("coordinator_memory_max", "100M", 'coordinator_memory_max "100M"'),
        ("coordinator_memory_max", "0%", 'coordinator_memory_max "0%"'),
        ("coordinator_memory_max", True, "coordinator_memory_max"),
    ],
)
def test_coordinator_names_the_bad_value(key, value, named):
    errors = coordinator_errors({**COORDINATOR, key: value})
    assert len(errors) == 1 and named in errors[0], errors


@pytest.mark.parametrize("memory", ["1G", "768M", "262144K", 2**30, "10%", "100%", "1T"])
def test_coordinator_takes_the_sizes_systemd_takes(memory):
    assert coordinator_errors({**COORDINATOR, "coordinator_memory_max": memory}) == []


def vault_examples():
    """Every secret of every vault.yml.example, with its inventory, name and value."""
    for path in sorted(REPO.glob("inventories/*/group_vars/*/vault.yml.example")):
        for name, value in yaml.safe_load(path.read_text()).items():
            for key, secret in value.items() if isinstance(value, dict) else [(None, value)]:
                yield pytest.param(name, key, secret, id=f"{path.parts[-4]}-{name}{'.' + key if key else ''}")


@pytest.mark.parametrize(("name", "key", "placeholder"), list(vault_examples()))
def test_every_placeholder_of_the_vault_examples_is_refused(name, key, placeholder):
    """Copied unchanged, vault.yml.example gives every secret a value anyone can read: each one is refused."""
    if name == "vault_central_mcp_api_token":
        (error,) = coordinator_errors({**COORDINATOR, "coordinator_api_token": placeholder})
        assert error.startswith("coordinator_api_token still holds the placeholder from vault.yml.example")
        assert "`openssl rand -hex 32`" in error and "ansible-vault" in error
        return
    settings = {
        "vault_central_mcp_agent_tokens": {"launcher_agent_tokens": {"A": TOKEN, key: placeholder}},
        "vault_anthropic_api_key": {"launcher_anthropic_api_key": placeholder},
    }[name]
    errors = launcher_errors({**LAUNCHER, **settings}, KINDS, "vm-a")
    assert [e.split(" still holds the placeholder")[0] for e in errors] == [
        f"launcher_agent_tokens.{key}" if key else "launcher_anthropic_api_key"
    ], errors


def test_the_fleet_check_names_placeholders_on_every_host_once():
    agents = [{"name": "A", "role": "r"}]
    secrets = {"launcher_agent_tokens": {"A": "replace-with-a-random-token-for-A"}}
    hostvars = HostVars(
        {
            "vm-a": {"central_mcp_agents": agents, **secrets, "launcher_anthropic_api_key": "your-model-api-key"},
            "vm-b": {
                "central_mcp_agents": [{"name": "B", "role": "r"}],
                "launcher_api_keys": {"codex": "key-b", "gemini": "<your key>"},
            },
        }
    )
    errors = coordinator_fleet_errors(hostvars, plan_of(hostvars))
    assert [e.split(" still hold")[0] for e in errors] == [
        "launcher_agent_tokens.A, launcher_anthropic_api_key (host vm-a)",
        "launcher_api_keys.gemini (host vm-b)",
    ], errors
    shared = HostVars({host: {**vars_, **secrets} for host, vars_ in hostvars.items()})
    shared["vm-b"]["launcher_agent_tokens"] = {"B": TOKEN}
    shared["vm-a"]["central_mcp_api_token"] = shared["vm-b"]["central_mcp_api_token"] = "replace-with-a-random-token"
    errors = coordinator_fleet_errors(shared, plan_of(shared))
    assert "central_mcp_api_token (all hosts vm-a, vm-b) still holds the placeholder" in " | ".join(errors), errors


def test_coordinator_runs_only_on_the_fleets_coordinator():
    assert coordinator_errors({**COORDINATOR, "host": "vm-a", "coordinator_host": "vm-a"}) == []
    (error,) = coordinator_errors({**COORDINATOR, "host": "vm-b", "coordinator_host": "vm-a"})
    assert error.startswith("vm-b runs the coordinator role but the fleet's coordinator is the first host of group")
    (error,) = coordinator_errors({**COORDINATOR, "host": "vm-b", "coordinator_host": None})
    assert "(none: the group is empty)" in error


def test_coordinator_tells_every_mistake_at_once():
    errors = coordinator_errors({**COORDINATOR, "coordinator_port": "x", "coordinator_data_dir": "/etc"})
    assert [e.split()[0] for e in errors] == ["coordinator_port", "coordinator_data_dir"]


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [
        ("central_mcp_agents", None, "Fix central_mcp_agents of vm-a"),
        ("central_mcp_agents", [{"name": "E; rm -rf /", "role": "x"}], "'E; rm -rf /'"),
        ("launcher_agent_env", {"BAD-KEY": "1"}, 'launcher_agent_env: "BAD-KEY"'),
        ("launcher_agent_env", {"X": "1\n2"}, 'launcher_agent_env: "X"'),
        ("launcher_agent_env", ["X=1"], "launcher_agent_env must be a mapping"),
        ("launcher_api_keys", {"cursor": "k"}, '"cursor"'),
        ("launcher_api_keys", {"codex": "k\nx"}, '"codex"'),
        ("launcher_api_keys", {"claude": {"k": 1}}, '"claude"'),
        ("launcher_session", "s;reboot", '"s;reboot"'),
        ("launcher_session", "", "launcher_session"),
        ("launcher_restart_backoff_s", -1, "launcher_restart_backoff_s (-1"),
        ("launcher_restart_backoff_s", "soon", "launcher_restart_backoff_s (soon"),
        ("launcher_restart_backoff_max_s", 2, "launcher_restart_backoff_max_s (2"),
        ("launcher_user", "root", 'launcher_user "root"'),
        ("launcher_user", "Agent", 'launcher_user "Agent"'),
        ("launcher_coordinator_url", "javascript:alert(1)", "launcher_coordinator_url"),
        ("launcher_agent_tokens", {"A": "short"}, "agents A have a bad one"),
        ("launcher_agent_tokens", {"A": TOKEN, "B": TOKEN}, "one token per agent"),
        ("launcher_agent_tokens", "x", "launcher_agent_tokens must be a mapping"),
        ("launcher_cli_versions", {"cursor": "1.0.0"}, "launcher_cli_versions"),
        ("launcher_cli_versions", {"claude": "latest; rm -rf /"}, "must map agent kinds"),
        ("launcher_cli_versions", ["2.1.340"], "launcher_cli_versions"),
        ("launcher_claude_code_version", "2.1.340", "set launcher_cli_versions: {claude:"),
        ("launcher_claude_code_platform", "linux-arm64", "set launcher_cli_platform"),
        ("launcher_agents_memory_max", "lots", 'launcher_agents_memory_max "lots" must be a size'),
        ("launcher_agents_memory_max", "32M", "is below 64M"),
        ("launcher_relay_memory_max", "1.5G", 'launcher_relay_memory_max "1.5G" must be a size'),
        ("launcher_runtime_memory_max", "0%", 'launcher_runtime_memory_max "0%" must be a size'),
        ("launcher_agents_tasks_max", 10, 'launcher_agents_tasks_max "10" must be a whole number'),
    ],
)
def test_launcher_names_the_bad_value(key, value, named):
    errors = launcher_errors({**LAUNCHER, key: value}, KINDS, "vm-a")
    assert len(errors) == 1 and named in errors[0], errors


class HostVars(dict):
    """hostvars as a filter sees them: a mapping of hosts to their variables."""


def plan_of(hostvars, coordinator="vm-a"):
    return fleet_plan(hostvars, {"coordinator": [coordinator], "agents": list(hostvars)})


def test_fleet_checks_every_host_names_and_tokens_across_hosts_and_relays():
    hostvars = HostVars(
        {
            "vm-a": {"central_mcp_agents": [{"name": "A", "role": "r"}], "launcher_agent_tokens": {"A": TOKEN}},
            "vm-b": {
                "central_mcp_agents": [{"name": "a", "role": "r"}, {"name": "B", "role": "r"}],
                "launcher_agent_tokens": {"B": TOKEN},
                "launcher_relay_port": 70000,
            },
            "vm-c": {"central_mcp_agents": "not a list"},
        }
    )
    errors = coordinator_fleet_errors(hostvars, plan_of(hostvars))
    assert any(e.startswith("Fix central_mcp_agents of vm-c") for e in errors), errors
    assert any("Fix the inventory of vm-b" in e and 'launcher_relay_port "70000"' in e for e in errors), errors
    assert any("used more than once: a" in e for e in errors), errors
    assert any("vm-a/A and vm-b/B" in e for e in errors), errors
    assert not any("inventory of vm-a" in e for e in errors)  # the coordinator's own VM has no TCP relay
    good = HostVars({"vm-a": hostvars["vm-a"], "vm-b": {"central_mcp_agents": [{"name": "B", "role": "r"}]}})
    assert coordinator_fleet_errors(good, plan_of(good)) == []


def test_coordinator_records_hash_tokens_and_fall_back_for_models():
    hostvars = HostVars(
        {
            "vm-a": {
                "central_mcp_agents": [{"name": "A", "role": "backend"}],
                "launcher_agent_tokens": {"A": TOKEN},
                "launcher_default_model": "glm-4.6",
            },
            "vm-b": {
                "central_mcp_agents": [{"name": "E", "role": "qa", "model": "m", "kind": "codex", "tools": ["x"]}]
            },
        }
    )
    records = fleet.coordinator_agents(plan_of(hostvars)["agents"], hostvars, ["generated-a", "generated-e"])
    assert records == [
        {
            "name": "A",
            "role": "backend",
            "model": "glm-4.6",
            "kind": "claude",
            "tools": None,
            "host": "vm-a",
            "token_sha256": hashlib.sha256(TOKEN.encode()).hexdigest(),  # Vault's, not the generated one
        },
        {
            "name": "E",
            "role": "qa",
            "model": "m",
            "kind": "codex",
            "tools": ["x"],
            "host": "vm-b",
            "token_sha256": hashlib.sha256(b"generated-e").hexdigest(),
        },
    ]


def test_relays_of_the_other_vms():
    hostvars = HostVars(
        {
            "vm-a": {},
            "vm-b": {"central_mcp_private_address": "10.0.0.3", "launcher_relay_token": TOKEN},
            "vm-c": {"ansible_host": "fd00::4", "launcher_relay_port": 9000},
        }
    )
    relays = fleet.coordinator_relays(plan_of(hostvars), hostvars, ["gen-b", "gen-c"])
    assert relays == [
        {"host": "vm-b", "address": "tcp:10.0.0.3:8765", "token": TOKEN},
        {"host": "vm-c", "address": "tcp:[fd00::4]:9000", "token": "gen-c"},
    ]


VM = {
    "vm_upgrade_project": "demo-project",
    "vm_upgrade_zone": "us-central1-a",
    "vm_upgrade_instance": "agents-1",
    "vm_upgrade_machine_type": "auto",
    "known_types": ["e2-micro", "e2-standard-2"],
    "machine_type_managed": True,
    "disk_managed": True,
    "vm_upgrade_disk_size_gb": "auto",
    "has_agents": True,
    "vm_upgrade_auth_kind": "application",
    "vm_upgrade_access_token": "",
    "vm_upgrade_service_account_file": "",
}


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"vm_upgrade_zone": "us central"}, 'vm_upgrade_zone "us central" and vm_upgrade_instance "agents-1" must be'),
        ({"vm_upgrade_project": "P"}, 'vm_upgrade_project "P", vm_upgrade_zone'),
        ({"vm_upgrade_machine_type": "E2 Huge"}, '"E2 Huge" is not a machine type: use auto, one of e2-micro'),
        ({"has_agents": False, "disk_managed": False}, "vm_upgrade_machine_type is auto but vm-a has no"),
        ({"vm_upgrade_disk_size_gb": "50GB"}, 'vm_upgrade_disk_size_gb "50GB" is not a disk size'),
        ({"vm_upgrade_disk_size_gb": 9}, 'vm_upgrade_disk_size_gb "9" is not a disk size'),
        ({"has_agents": False, "vm_upgrade_machine_type": "e2-micro"}, "vm_upgrade_disk_size_gb is auto but vm-a"),
        ({"vm_upgrade_auth_kind": "accesstoken"}, "vm_upgrade_auth_kind is accesstoken: set vm_upgrade_access_token"),
        ({"vm_upgrade_auth_kind": "serviceaccount"}, "vm_upgrade_auth_kind is serviceaccount"),
        ({"vm_upgrade_provisioning_model": "preemptible"}, '"preemptible" is not a provisioning model: use spot'),
        (
            {"vm_upgrade_provisioning_model": "spot", "coordinator_here": True},
            "vm_upgrade_provisioning_model is spot on vm-a, the coordinator's VM: a preemption there stops",
        ),
        ({"central_mcp_prices": {"disks": {"pd-ssd": "cheap"}}}, "central_mcp_prices.disks.pd-ssd must be a price"),
        ({"replaced": ["vm_upgrade_prices"]}, "vm_upgrade_prices is no longer read: prices come from one table"),
    ],
)
def test_vm_upgrade_names_the_bad_value(changes, named):
    errors = vm_upgrade_errors({**VM, **changes}, "vm-a")
    assert len(errors) == 1 and named in errors[0], errors


def test_vm_upgrade_checks_only_what_it_manages():
    assert vm_upgrade_errors(VM, "vm-a") == []
    spot = {"vm_upgrade_provisioning_model": "spot"}
    assert vm_upgrade_errors({**VM, **spot}, "vm-a") == []  # an agents VM
    insists = {**spot, "coordinator_here": True, "vm_upgrade_spot_coordinator": True}
    assert vm_upgrade_errors({**VM, **insists}, "vm-a") == []  # the inventory insists
    assert vm_upgrade_errors({**VM, "vm_upgrade_disk_size_gb": 65536, "vm_upgrade_machine_type": "n2-standard-4"},
                             "vm-a") == []  # fmt: skip
    unmanaged = {**VM, "machine_type_managed": False, "disk_managed": False, "has_agents": False}
    assert vm_upgrade_errors({**unmanaged, "vm_upgrade_machine_type": "E2", "vm_upgrade_disk_size_gb": "x"}, "a") == []
