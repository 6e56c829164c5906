# SPDX-License-Identifier: Apache-2.0
"""What the roles' own defaults make of an inventory with several VMs (no VM is touched).

One ansible-playbook run per inventory of a table templates the
coordinator's and the launcher's defaults and internal vars for every host,
with the precedence the roles give them (defaults below the inventory):
where the coordinator listens, which URL each VM's agents get, where each
pane relay listens and which journal the Logs window follows.
Adding a case is one row.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

# Inventory groups and host vars -> what each host should get.
CASES = {
    "one VM": (
        {"coordinator": {"vm1": {}}, "agents": {"vm1": {}}},
        {"vm1": {"bind": "127.0.0.1", "url": "http://127.0.0.1:3000/mcp", "logs": "central-mcp.service"}},
    ),
    "two VMs by private address": (
        {
            "coordinator": {"vm1": {"central_mcp_private_address": "10.0.0.5", "coordinator_port": 3100}},
            "agents": {"vm1": {}, "vm2": {"central_mcp_private_address": "10.0.0.6"}},
        },
        {
            "vm1": {"bind": "0.0.0.0", "url": "http://127.0.0.1:3100/mcp", "logs": "central-mcp.service"},
            "vm2": {"url": "http://10.0.0.5:3100/mcp", "relay": "0.0.0.0:8765", "logs": "central-mcp-relay.service"},
        },
    ),
    "ansible_host, else the name; an explicit URL wins; IPv6": (
        {
            "coordinator": {"vm1": {"ansible_host": "192.168.1.10"}},
            "agents": {
                "vm2": {},
                "vm3": {"launcher_coordinator_url": "http://coord.example:3000/mcp"},
                "vm4": {"launcher_relay_bind_host": "fd00::4", "launcher_relay_port": 9000},
            },
        },
        {
            "vm1": {"bind": "0.0.0.0"},  # not an agents host itself: the others are all remote
            "vm2": {"url": "http://192.168.1.10:3000/mcp"},
            "vm3": {"url": "http://coord.example:3000/mcp"},
            "vm4": {"url": "http://192.168.1.10:3000/mcp", "relay": "[fd00::4]:9000"},
        },
    ),
    "the coordinator named by host name": (
        {"coordinator": {"coord": {}}, "agents": {"coord": {}, "vm2": {}}},
        {"vm2": {"url": "http://coord:3000/mcp"}},
    ),
}

PLAY = """
- name: Template the roles' multi-VM defaults
  hosts: all
  gather_facts: false
  vars_files: {vars_files}
  tasks:
    - name: Show them
      ansible.builtin.debug:
        msg:
          bind: "{{{{ coordinator_bind_host if inventory_hostname in groups['coordinator'] else '' }}}}"
          url: "{{{{ launcher_coordinator_url }}}}"
          relay: "{{{{ _launcher_relay_listen if _launcher_remote else '' }}}}"
          logs: "{{{{ launcher_logs_unit }}}}"
"""


@pytest.fixture(scope="module")
def templated(tmp_path_factory):
    """{case: {host: {bind, url, relay, logs}}} from one ansible-playbook run per case (json callback)."""
    tmp = tmp_path_factory.mktemp("multi")
    # Internal vars as the roles have them (above the inventory); the public
    # defaults as group_vars of `all`, below the host vars, as role defaults are.
    vars_files = [str(REPO / "roles" / role / "vars" / "main.yml") for role in ("coordinator", "launcher")]
    playbook = tmp / "probe.yml"
    playbook.write_text(PLAY.format(vars_files=json.dumps(vars_files)), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="json",
               PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}")  # fmt: skip
    seen = {}
    for number, (case, (groups, _)) in enumerate(CASES.items()):
        inventory = tmp / f"inventory-{number}"
        (inventory / "group_vars" / "all").mkdir(parents=True)
        for role in ("coordinator", "launcher"):
            defaults = (REPO / "roles" / role / "defaults" / "main.yml").read_text(encoding="utf-8")
            (inventory / "group_vars" / "all" / f"{role}.yml").write_text(defaults, encoding="utf-8")
        children = {name: {"hosts": hosts} for name, hosts in groups.items()}
        hosts_file = inventory / "hosts.yml"
        hosts_file.write_text(yaml.safe_dump({"all": {"children": children, "vars": {"ansible_connection": "local"}}}))
        done = subprocess.run(
            [str(BIN / "ansible-playbook"), "-i", str(inventory), str(playbook)],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        hosts = json.loads(done.stdout)["plays"][0]["tasks"][0]["hosts"]
        seen[case] = {name: result["msg"] for name, result in hosts.items()}
    return seen


@pytest.mark.parametrize(
    ("case", "host", "key"),
    [(case, host, key) for case, (_, wanted) in CASES.items() for host, keys in wanted.items() for key in keys],
)
def test_multi_vm_defaults(templated, case, host, key):
    assert templated[case][host][key] == CASES[case][1][host][key]
