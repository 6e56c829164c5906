# SPDX-License-Identifier: Apache-2.0
"""inventories/gcp: the google.cloud.gcp_compute example parses, and lists the right VMs into site.yml's groups.

Two depths. Offline, the plugin's own loader and option spec judge the
configuration file: Ansible picks the plugin for that file name, every key is
an option the plugin documents, and types and choices pass its validation
(broken copies of the file are shown to fail the same checks). Then the real
``ansible-inventory`` and ``ansible`` commands run the unmodified plugin
against the Compute API emulator (gcp_inventory_stand_in.py routes its
HTTPS calls for Google there): labelled VMs land in the groups site.yml's
plays name, unlabelled ones and other zones stay out, each VM gets the
variables vm_upgrade reads, and the IAP ProxyCommand and the coordinator's
address come out of Ansible's own templating.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from gcp_inventory_stand_in import GOOGLE_HOSTS, GoogleStandIn, private_ip
from inventory_listing import unwrap

REPO = Path(__file__).resolve().parents[2]
INVENTORY = REPO / "inventories" / "gcp"
CONFIG = INVENTORY / "gcp_compute.yml"
BIN = Path(sys.executable).parent
PLAYBOOKS = [REPO / "site.yml", *sorted((REPO / "playbooks").glob("*.yml"))]
ROLE_PREFIXES = {"vm_upgrade_": "vm_upgrade", "coordinator_": "coordinator", "launcher_": "launcher"}

# Loads the plugin the way ansible-inventory does (collection loader, plugin loader) in a
# process of its own, so this test session's imports are left alone. For each file: does the
# plugin claim it, which options does it document (DOCUMENTATION plus its fragments), and
# what do the file's options become under the plugin's own validation.
PROBE = r"""
import json, sys
from ansible import constants as C
from ansible.inventory.data import InventoryData
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import init_plugin_loader, inventory_loader
init_plugin_loader()
results = {}
for path in sys.argv[1:]:
    plugin = inventory_loader.get("google.cloud.gcp_compute")
    result = {"verify_file": bool(plugin.verify_file(path)),
              "documented": sorted(C.config.get_configuration_definitions("inventory", plugin._load_name))}
    plugin.loader, plugin.inventory = DataLoader(), InventoryData()
    try:
        config = plugin._read_config_data(path)
        result["options"] = {key: plugin.get_option(key) for key in config if key != "plugin"}
    except Exception as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
    results[path] = result
print(json.dumps(results, default=str))
"""


def load(path: Path):
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def ansible_env(extra: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("https_proxy", "http_proxy", "no_proxy")}
    env.update(ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}")
    env.update(extra or {})
    return env


def probe(*paths: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *map(str, paths)],
        cwd=REPO,
        env=ansible_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def problems(result: dict, config: dict) -> list[str]:
    """What is wrong with one configuration file, by the plugin's own judgement."""
    found = []
    if not result["verify_file"]:
        found.append("google.cloud.gcp_compute does not take this file (its name must end in gcp_compute.yml)")
    unknown = sorted(set(config) - {"plugin"} - set(result["documented"]))
    if unknown:
        found.append(f"options the plugin does not document: {unknown}")
    if "error" in result:
        found.append(result["error"])
    return found


def groups_named_by(playbook: Path) -> set[str]:
    """Group names in the `hosts:` patterns of a playbook's plays (all and localhost aside)."""
    names = set()
    for play in load(playbook) or []:
        pattern = play.get("hosts") if isinstance(play, dict) else None
        if not isinstance(pattern, str) or "{{" in pattern:
            continue
        for part in re.split(r"[:,]", pattern):
            part = part.strip().lstrip("&!")
            if part and part not in ("all", "localhost", "*"):
                names.add(part)
    return names


# ----------------------------------------------------------------- offline: the plugin's judgement
BROKEN = {
    # a copy of the file with one mistake -> the words the check must report
    "unknown auth kind": (lambda c: {**c, "auth_kind": "apikey"}, "auth_kind"),
    "zones not a list": (lambda c: {**c, "zones": 3}, "zones"),
    "misspelt option": (lambda c: {**c, "zonez": ["us-central1-a"]}, "zonez"),
    "compose not a mapping": (lambda c: {**c, "compose": ["gce_instance"]}, "compose"),
}


@pytest.fixture(scope="module")
def judged(tmp_path_factory):
    """The plugin's verdict on the real file and on each broken copy, from one process."""
    config = load(CONFIG)
    folder = tmp_path_factory.mktemp("broken")
    copies = {}
    for case, (mutate, _) in BROKEN.items():
        path = folder / f"{case.replace(' ', '-')}.gcp_compute.yml"
        path.write_text(yaml.safe_dump(mutate(dict(config))), encoding="utf-8")
        copies[case] = path
    results = probe(CONFIG, *copies.values())
    return config, results[str(CONFIG)], {case: results[str(path)] for case, path in copies.items()}


def test_plugin_accepts_the_example(judged):
    config, result, _ = judged
    assert config.get("plugin") == "google.cloud.gcp_compute"
    assert problems(result, config) == []


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_plugin_rejects_a_broken_copy(judged, case):
    """The checks above can fail: each broken copy is caught, naming the bad option."""
    config, _, broken = judged
    found = problems(broken[case], BROKEN[case][0](dict(config)))
    assert found, f"{case}: a broken copy passed the plugin's checks"
    assert BROKEN[case][1] in " ".join(found)


def test_example_uses_the_documented_auth_kinds(judged):
    """The inventory and vm_upgrade log in the same ways: both must know the kind the example uses."""
    config, result, _ = judged
    vm_upgrade = load(REPO / "roles/vm_upgrade/meta/argument_specs.yml")["argument_specs"]["main"]["options"]
    assert result["options"]["auth_kind"] in vm_upgrade["vm_upgrade_auth_kind"]["choices"]
    gce = load(INVENTORY / "group_vars/all/gce.yml")
    assert gce["vm_upgrade_auth_kind"] == config["auth_kind"], "the inventory and vm_upgrade should log in alike"


@pytest.mark.parametrize("playbook", PLAYBOOKS, ids=lambda p: p.name)
def test_groups_are_the_ones_the_playbooks_run_on(playbook):
    """Every group a play of site.yml (or another playbook) runs on is one the inventory builds."""
    built = set(load(CONFIG).get("groups") or {})
    assert groups_named_by(playbook) <= built, (
        f"{playbook.name} runs on {sorted(groups_named_by(playbook))}; inventories/gcp builds {sorted(built)}"
    )


def inventory_files():
    return sorted(p for p in INVENTORY.rglob("*.yml") if p != CONFIG)


def test_inventory_has_variable_files():
    assert len(inventory_files()) >= 4, "group_vars/host_vars of inventories/gcp not found"


@pytest.mark.parametrize("path", inventory_files(), ids=lambda p: str(p.relative_to(INVENTORY)))
def test_role_variables_exist(path):
    """A misspelt role variable in group_vars is silently ignored by Ansible: the specs catch it here."""
    unknown = []
    for name, value in (load(path) or {}).items():
        role = next((r for prefix, r in ROLE_PREFIXES.items() if name.startswith(prefix)), None)
        if role is None:
            continue
        spec = load(REPO / "roles" / role / "meta/argument_specs.yml")["argument_specs"]["main"]["options"]
        if name not in spec:
            unknown.append(f"{name} (not an option of role {role})")
        elif "choices" in spec[name] and isinstance(value, str) and "{{" not in value:
            if value not in spec[name]["choices"]:
                unknown.append(f"{name}: {value!r} is not one of {spec[name]['choices']}")
    assert not unknown, f"{path.relative_to(REPO)}: " + "; ".join(unknown)


def test_vault_example_has_every_secret():
    """Each vault_* the inventory reads is in vault.yml.example, and so is a token for every agent."""
    text = "\n".join(p.read_text(encoding="utf-8") for p in inventory_files())
    example = load(INVENTORY / "group_vars/all/vault.yml.example")
    missing = sorted(set(re.findall(r"\b(vault_[a-z0-9_]+)", text)) - set(example))
    assert not missing, f"vault.yml.example lacks {missing}"
    agents = [a["name"] for p in sorted((INVENTORY / "host_vars").glob("*.yml")) for a in load(p)["central_mcp_agents"]]
    assert agents and sorted(example["vault_central_mcp_agent_tokens"]) == sorted(agents)


# ----------------------------------------------------------------- the plugin against the emulator
PROJECT, ZONE = "my-project", "us-central1-a"
VMS = {
    # instance -> zone, labels; what the example must make of them is asserted below
    "central-mcp-vm1": (ZONE, {"central-mcp-role": "coordinator-agents"}),
    "central-mcp-vm2": (ZONE, {"central-mcp-role": "agents"}),
    "build-box": (ZONE, {"team": "web"}),  # not labelled for us: never listed
    "far-away": ("us-central1-b", {"central-mcp-role": "agents"}),  # outside the example's zones
}


@pytest.fixture(scope="module")
def google(tmp_path_factory):
    with GoogleStandIn(tmp_path_factory.mktemp("google"), PROJECT) as stand_in:
        for index, (name, (zone, labels)) in enumerate(VMS.items()):
            stand_in.api.add_instance(PROJECT, zone, name, labels, private_ip(index))
        yield stand_in


@pytest.fixture(scope="module")
def listed(google):
    done = subprocess.run(
        [str(BIN / "ansible-inventory"), "-i", str(INVENTORY), "--list"],
        cwd=REPO,
        env=ansible_env(google.env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "[WARNING]" not in done.stderr, done.stderr[-3000:]
    return unwrap(json.loads(done.stdout))


def members(inventory: dict, group: str) -> list[str]:
    """Hosts of a group, its children's included."""
    entry = inventory.get(group, {})
    hosts = list(entry.get("hosts", []))
    for child in entry.get("children", []):
        hosts += members(inventory, child)
    return sorted(set(hosts))


def test_labels_make_the_groups(listed):
    assert members(listed, "coordinator") == ["central-mcp-vm1"]
    assert members(listed, "agents") == ["central-mcp-vm1", "central-mcp-vm2"]
    assert members(listed, "all") == ["central-mcp-vm1", "central-mcp-vm2"], "unlabelled or other-zone VMs listed"
    assert members(listed, "zone_us_central1_a") == ["central-mcp-vm1", "central-mcp-vm2"]


def test_every_playbook_group_has_hosts(listed):
    for playbook in PLAYBOOKS:
        for group in groups_named_by(playbook):
            assert members(listed, group), f"{playbook.name} runs on {group}, which the GCP inventory leaves empty"


@pytest.mark.parametrize("index", [0, 1])
def test_vm_upgrade_finds_each_vm(listed, index):
    name = list(VMS)[index]
    host = listed["_meta"]["hostvars"][name]
    assert (host["gce_project"], host["gce_zone"], host["gce_instance"]) == (PROJECT, ZONE, name)
    assert host["central_mcp_private_address"] == private_ip(index)
    assert host["gce_machineType"] == "e2-micro"
    assert host.get("ansible_host", name) == name, "the IAP tunnel is opened to the instance name (%h)"


def test_the_plugin_talked_to_google_only_through_the_stand_in(google, listed):
    """Logged in with the service account key, listed with the label filter, within the API's contract."""
    assert google.proxy.connects and {c.rsplit(":", 1)[0] for c in google.proxy.connects} <= set(GOOGLE_HOSTS)
    methods = [entry["method"] for entry in google.api.log]
    assert methods[:2] == ["oauth2.token", "compute.instances.aggregatedList"]
    listing = next(e for e in google.api.log if e["method"] == "compute.instances.aggregatedList")
    assert listing["path"] == f"/compute/v1/projects/{PROJECT}/aggregated/instances"
    assert "labels.central-mcp-role" in listing["query"].replace("%2D", "-")
    assert google.api.violations == []


PROBE_PLAY = """
- name: What the roles make of the GCP inventory, without touching a VM
  hosts: coordinator:agents
  gather_facts: false
  vars_files: {vars_files}
  tasks:
    - name: Template the connection and coordinator settings
      ansible.builtin.debug:
        msg: {msg}
"""


@pytest.fixture(scope="module")
def templated(google, listed, tmp_path_factory):
    """What Ansible itself makes of the connection and coordinator settings, per VM (json callback).

    The play reads the coordinator's and the launcher's defaults and internal vars as the roles
    would, so the addresses are the ones site.yml would use; debug runs on the controller only.
    """
    roles = REPO / "roles"
    vars_files = [
        str(roles / role / kind / "main.yml") for role in ("coordinator", "launcher") for kind in ("defaults", "vars")
    ]
    variables = {
        "ssh": "{{ ansible_ssh_common_args }}",
        "user": "{{ ansible_user }}",
        "id": "{{ gce_id }}",
        "coordinator_url": "{{ launcher_coordinator_url }}",
        "status_url": "{{ _launcher_here.api_url }}",
        "bind": "{{ coordinator_bind_host }}",
    }
    playbook = tmp_path_factory.mktemp("play") / "probe.yml"
    playbook.write_text(
        PROBE_PLAY.format(vars_files=json.dumps(vars_files), msg=json.dumps(variables)), encoding="utf-8"
    )
    done = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", str(INVENTORY), str(playbook)],
        cwd=REPO,
        env=ansible_env({**google.env, "ANSIBLE_STDOUT_CALLBACK": "json"}),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    hosts = json.loads(done.stdout)["plays"][0]["tasks"][0]["hosts"]
    return {name: result["msg"] for name, result in hosts.items()}


@pytest.mark.parametrize("name", ["central-mcp-vm1", "central-mcp-vm2"])
def test_ssh_goes_through_iap(templated, name):
    args = shlex.split(templated[name]["ssh"])
    options = dict(args[i + 1].split("=", 1) for i in range(0, len(args), 2) if args[i] == "-o")
    assert args[::2] == ["-o"] * len(options), f"only -o options expected: {args}"
    proxy = shlex.split(options["ProxyCommand"])
    assert proxy[:6] == ["gcloud", "compute", "start-iap-tunnel", "%h", "%p", "--listen-on-stdin"]
    assert f"--project={PROJECT}" in proxy and f"--zone={ZONE}" in proxy
    assert options["HostKeyAlias"] == f"compute.{templated[name]['id']}"
    assert templated[name]["user"], "no SSH user (OS Login name)"


def test_agents_reach_the_coordinator_over_the_private_network(templated):
    """VM 1's agents use loopback (plain HTTP); VM 2's the coordinator VM's private address, where it listens
    with TLS."""
    coordinator_ip = private_ip(0)
    assert templated["central-mcp-vm1"]["coordinator_url"] == "http://127.0.0.1:3000/mcp"
    assert templated["central-mcp-vm2"]["coordinator_url"] == f"https://{coordinator_ip}:3000/mcp"
    assert templated["central-mcp-vm1"]["bind"] == coordinator_ip
    assert templated["central-mcp-vm1"]["status_url"] == "http://127.0.0.1:3000"  # playbooks/status.yml's
    assert templated["central-mcp-vm2"]["status_url"] == f"https://{coordinator_ip}:3000"
