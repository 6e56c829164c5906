# SPDX-License-Identifier: Apache-2.0
"""Pods in the fleet plan: the boot starter's spec, the tunnel's keys on both ends, and the checks before a run."""

from __future__ import annotations

import stat
import subprocess

import pytest
from ansible.errors import AnsibleLookupError
from ansible_collections.central_mcp.agents.plugins.filter.fleet import coordinator_tunnel_keys
from ansible_collections.central_mcp.agents.plugins.filter.fleet_plan import fleet_plan
from ansible_collections.central_mcp.agents.plugins.filter.launcher_boot import launcher_boot
from ansible_collections.central_mcp.agents.plugins.filter.preflight import pod_errors
from ansible_collections.central_mcp.agents.plugins.lookup.ssh_key import _key_file, ssh_key


def plan(**pods) -> dict:
    hostvars = {"vm1": {}, **{name: {"central_mcp_tunnel": True, **vars_} for name, vars_ in pods.items()}}
    return fleet_plan(hostvars, {"coordinator": ["vm1"], "agents": ["vm1", *pods]})


LAYOUT = {
    "user": "agent", "home": "/home/agent", "workspace_root": "/home/agent/workspaces",
    "libexec_dir": "/usr/local/libexec/central-mcp", "config_dir": "/etc/central-mcp/agents",
    "config_parent": "/etc/central-mcp", "state_dirs": ["/opt/central-mcp", "/var/lib/central-mcp"],
    "fleet_spec": "/etc/central-mcp/agents/fleet.json", "runtime_spec": "/etc/central-mcp/agents/runtime.json",
    "session": "central-mcp-agents", "workers": True, "relay": None, "tunnel": None,
    "installs": [{"bin": {"/usr/local/bin/claude": "/opt/central-mcp/claude-code/2.1/claude"}}],
    "agent_users": [{"name": "agent-p", "home": "/home/agent/.central-mcp/P", "shell": "/bin/bash", "groups": []}],
    "persistent_root": "/workspace",
}  # fmt: skip


def test_the_boot_spec_keeps_each_directory_once_and_runs_what_the_units_run():
    spec = launcher_boot(LAYOUT)
    # The workspaces go with the home; each directory once.
    assert spec["links"] == [
        "/etc/central-mcp", "/usr/local/libexec/central-mcp", "/opt/central-mcp", "/var/lib/central-mcp", "/home/agent"
    ]  # fmt: skip
    assert spec["bin_links"] == {"/usr/local/bin/claude": "/opt/central-mcp/claude-code/2.1/claude"}
    assert [u["name"] for u in spec["users"]] == ["agent", "agent-p"] and spec["dir"] == "/workspace/.central-mcp"
    services = {s["name"]: s for s in spec["services"]}
    assert list(services) == ["session", "runtime"]  # no relay on the coordinator's host, no tunnel
    session = services["session"]
    assert session["keep"] and not session["no_new_privileges"]  # never restarted; its windows use sudo
    assert session["command"][1:] == [
        "/usr/local/libexec/central-mcp/tmux_fleet.py", "--spec", "/etc/central-mcp/agents/fleet.json",
        "--pidfile", session["pidfile"],
    ]  # fmt: skip
    assert services["runtime"]["command"][-2:] == ["--spec", "/etc/central-mcp/agents/runtime.json"]
    assert spec["on_stop"] == [
        ["/usr/bin/python3", "/usr/local/libexec/central-mcp/agent-leaving", "--config-dir",
         "/etc/central-mcp/agents", "--now"]
    ]  # fmt: skip
    assert "agent ALL=(root) NOPASSWD: /usr/local/libexec/central-mcp/agent-unit" in spec["files"][0]["content"]


def test_a_pods_tunnel_runs_first_and_its_relay_speaks_tls_with_the_token():
    pod = plan(pod={})["hosts"]["pod"]
    layout = {
        **LAYOUT, "workers": False,
        "relay": {"bin": "/opt/central-mcp/current/bin/central-mcp", "listen": pod["relay"]["listen"],
                  "token_file": "/etc/central-mcp/relay.token", "tls_cert": "c.pem", "tls_key": "k.pem",
                  "allow_input": False},
        "tunnel": {**pod["tunnel"], "key_file": "/etc/central-mcp/tunnel/key",
                   "known_hosts": "/etc/central-mcp/tunnel/known_hosts", "relay_port": pod["relay"]["port"]},
    }  # fmt: skip
    spec = launcher_boot(layout)
    assert [s["name"] for s in spec["services"]] == ["tunnel", "session", "relay"] and "ssh" in spec["needs"]
    tunnel, relay = spec["services"][0], spec["services"][2]
    port = pod["tunnel"]["port"]
    assert tunnel["command"][-5:] == [
        "-L", "127.0.0.1:3000:127.0.0.1:3000", "-R", f"127.0.0.1:{port}:127.0.0.1:8765", "central-mcp-tunnel@vm1"
    ]  # fmt: skip
    assert "StrictHostKeyChecking=yes" in tunnel["command"] and tunnel["credentials"] == {
        "tunnel_key": "/etc/central-mcp/tunnel/key"
    }  # fmt: skip
    assert relay["command"][2:4] == ["--listen", "127.0.0.1:8765"]  # the pod's loopback: the tunnel's end
    assert set(relay["credentials"]) == {"relay_token", "tls_cert", "tls_key"}


def test_the_tunnel_keys_may_forward_the_coordinators_port_and_listen_on_their_own_only():
    fleet = plan(**{"pod-a": {"central_mcp_tunnel_port": 20001}, "pod-b": {"central_mcp_tunnel_port": 20002}})
    keys = [{"public": "ssh-ed25519 AAAA pod-a/tunnel"}, {"public": "ssh-ed25519 BBBB pod-b/tunnel"}]
    lines = [line for line in coordinator_tunnel_keys(fleet, keys).splitlines() if not line.startswith("#")]
    assert lines == [
        'restrict,port-forwarding,command="/usr/sbin/nologin",permitopen="127.0.0.1:3000",'
        f'permitlisten="127.0.0.1:{port}" ssh-ed25519 {key} {pod}/tunnel'
        for port, key, pod in ((20001, "AAAA", "pod-a"), (20002, "BBBB", "pod-b"))
    ]
    with pytest.raises(ValueError):  # one key per tunneled host, or none
        coordinator_tunnel_keys(fleet, keys[:1])


def test_the_tunnel_key_is_made_once_private_and_readable_by_ssh(tmp_path):
    path = _key_file(str(tmp_path), "pod-a/tunnel")
    first = ssh_key(path, "pod-a/tunnel")
    assert ssh_key(path, "pod-a/tunnel") == first  # read back, not made anew
    assert stat.S_IMODE((tmp_path / "pod-a" / "tunnel").stat().st_mode) == 0o600
    assert first["public"].startswith("ssh-ed25519 ") and first["public"].endswith(" pod-a/tunnel")
    derived = subprocess.run(["ssh-keygen", "-y", "-f", path], capture_output=True, text=True, check=True)
    assert derived.stdout.split()[:2] == first["public"].split()[:2]  # OpenSSH reads the private key
    with pytest.raises(AnsibleLookupError, match="is not HOST/NAME"):
        _key_file(str(tmp_path), "../tunnel")


@pytest.mark.parametrize(
    ("hostvars", "settings", "message"),
    [
        ({}, {"launcher_persistent_root": "workspace"}, "must be empty (a VM) or an absolute directory"),
        ({}, {"launcher_persistent_root": "/"}, "must be empty (a VM) or an absolute directory"),
        ({}, {"launcher_persistent_root": "", "central_mcp_tunnel": "yes"}, "central_mcp_tunnel \"yes\" must be"),
        ({"pod": {"central_mcp_tunnel": True}}, {"launcher_persistent_root": "", "central_mcp_tunnel": True},
         "which has no launcher_persistent_root"),
        ({"pod": {"central_mcp_tunnel": True, "central_mcp_tunnel_port": 80}},
         {"launcher_persistent_root": "/workspace", "central_mcp_tunnel": True}, "must be a port from 1024"),
        ({"pod": {"central_mcp_tunnel": True, "central_mcp_tunnel_port": 21000},
          "pod-2": {"central_mcp_tunnel": True, "central_mcp_tunnel_port": 21000}},
         {"launcher_persistent_root": "/workspace", "central_mcp_tunnel": True}, "pod and pod-2 would both reach"),
    ],
)  # fmt: skip
def test_a_pod_that_cannot_work_is_named_before_any_change(hostvars, settings, message):
    fleet = fleet_plan(
        {"vm1": {}, "pod": {}, **hostvars}, {"coordinator": ["vm1"], "agents": ["vm1", "pod", *hostvars]}
    )
    assert any(message in error for error in pod_errors(fleet, "pod", settings)), pod_errors(fleet, "pod", settings)


def test_a_pod_with_its_tunnel_and_root_passes_and_a_tunnel_needs_a_coordinator_elsewhere():
    settings = {"launcher_persistent_root": "/workspace", "central_mcp_tunnel": True}
    assert pod_errors(plan(pod={}), "pod", settings) == []
    alone = fleet_plan({"pod": {"central_mcp_tunnel": True}}, {"agents": ["pod"]})
    assert "the coordinator is not another host" in pod_errors(alone, "pod", settings)[0]
