# SPDX-License-Identifier: Apache-2.0
"""The roles' preflight checks: every inventory value argument specs cannot judge, in one pass.

Each filter takes the role's settings as a dict (named as in the inventory)
and returns a list of messages, one per bad value, each naming the value
and what to do; an empty list means all is well. A role asserts the list is
empty in one task, before it changes anything, so a wrong inventory is told
every mistake at once (and a re-run that changes nothing pays for one task,
not one per setting). The values may be anything an inventory can hold,
hostile ones included: nothing here trusts a type.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from ansible_collections.central_mcp.agents.plugins.filter.fleet import ENV_KEY_RE, fleet_errors, one_line
from ansible_collections.central_mcp.agents.plugins.module_utils.prices import PriceError
from ansible_collections.central_mcp.agents.plugins.module_utils.prices import table as price_table

TOKEN_RE = re.compile(r"[A-Za-z0-9._~+/=-]{16,256}")
ADDRESS_RE = re.compile(r"[A-Za-z0-9.:-]{1,253}")
BIND_HOST_RE = re.compile(r"[A-Za-z0-9.:-]+")
PORT_RE = re.compile(r"[0-9]{1,5}")
PERCENT_RE = re.compile(r"[0-9]+([.][0-9]+)?")
EXTRA_ENV_RE = re.compile(r"CENTRAL_MCP_[A-Z0-9_]+")
DATA_DIR_RE = re.compile(r"/(var/lib|srv|opt|data)(/[A-Za-z0-9._-]+)+")
NOTIFY_URL_RE = re.compile(r"https?://[^\s]{1,2000}")
SESSION_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}")
USER_RE = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
URL_RE = re.compile(r"https?://[A-Za-z0-9.:\[\]_-]+(/[A-Za-z0-9._~/-]*)?")
VERSION_RE = re.compile(r"[0-9][0-9A-Za-z.+-]{0,63}")
# systemd's MemoryMax=: bytes with an optional K, M, G or T suffix (base 1024), or a percentage of the VM's memory.
MEMORY_RE = re.compile(r"([0-9]{1,15})([KMGT]?)|([0-9]{1,2}|100)%")
MEMORY_MIN = 256 * 2**20  # the coordinator alone takes about 80 MB; room for its streams and a burst of requests
# The values vault.yml.example holds for secrets ("replace-with-a-random-token", "your-model-api-key"), and the
# usual "changeme": copied unchanged, they are secrets anyone who reads this repository knows.
PLACEHOLDER_RE = re.compile(r"replace[-_ ]?(me|with\b).*|your[-_ ].*|change[-_ ]?me|<[^>]*>", re.IGNORECASE)
# Settings of earlier releases, and what does their work now: named, never silently ignored.
RENAMED = {
    "launcher_claude_code_version": 'set launcher_cli_versions: {claude: "<version>"} instead',
    "launcher_claude_code_platform": "set launcher_cli_platform instead",
}


def _shown(value, width: int = 80) -> str:
    """A value as a message shows it: as text, cut to width, quoted as JSON (so control characters show)."""
    text = str(value)
    return json.dumps(text if len(text) <= width else text[: width - 3] + "...")


def _text(value) -> str | None:
    """A string value as text (a Vault-encrypted one decrypted); None for anything else."""
    if isinstance(value, str):
        return value
    if type(value).__name__ in ("EncryptedString", "AnsibleVaultEncryptedUnicode"):
        return str(value)
    return None


def _matches(pattern: re.Pattern, value) -> bool:
    text = _text(value)
    return text is not None and pattern.fullmatch(text) is not None


def _port(value) -> bool:
    text = str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    return PORT_RE.fullmatch(text) is not None and 1 <= int(text) <= 65535


def _number(value) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _placeholder(value) -> bool:
    """A secret left as vault.yml.example has it."""
    text = _text(value)
    return text is not None and PLACEHOLDER_RE.fullmatch(text.strip()) is not None


def _placeholders(settings: Mapping, names) -> list:
    """The settings among ``names`` (each a secret or a mapping of secrets) that hold a placeholder, as name or
    name.key."""
    found = []
    for name in names:
        try:
            value = settings.get(name)
        except Exception:  # noqa: BLE001 - an undefined Vault variable is reported where it is used, not here
            continue
        if isinstance(value, Mapping):
            found += [f"{name}.{key}" for key, secret in value.items() if _placeholder(secret)]
        elif _placeholder(value):
            found.append(name)
    return found


def _placeholder_error(names: list, where: str = "") -> list:
    """One message naming every setting still holding a placeholder; none when there is none."""
    if not names:
        return []
    return [
        f"{', '.join(names)}{where} still {'holds' if len(names) == 1 else 'hold'} the placeholder from "
        "vault.yml.example, which is no secret: put a real one in your vault.yml (a token: the output of "
        "`openssl rand -hex 32`; an API key: your model provider's), then encrypt it with ansible-vault"
    ]


def _memory_bytes(value) -> int | None:
    """MemoryMax= as bytes (a percentage: None, judged by the VM), or -1 when it is not a size systemd takes."""
    match = MEMORY_RE.fullmatch(str(value)) if isinstance(value, (str, int)) and not isinstance(value, bool) else None
    if match is None:
        return -1
    if match.group(3) is not None:
        return None if int(match.group(3)) >= 1 else -1
    return int(match.group(1)) * 1024 ** " KMGT".index(match.group(2) or " ")


def _env_errors(name: str, env, key_re: re.Pattern, keys: str, keys_rule: str) -> list:
    """An environment setting: a mapping whose keys match key_re, with one-line values."""
    if not isinstance(env, Mapping):
        return [f"{name} must be a mapping of {keys} to one-line values, got {_shown(env)}"]
    bad = [key for key, value in env.items() if not _matches(key_re, key) or not one_line(value)]
    if bad:
        return [f"{name}: {', '.join(_shown(key, 40) for key in bad)} must be {keys_rule} with one-line values"]
    return []


def coordinator_errors(settings: Mapping) -> list:
    """The coordinator's own settings: port, addresses, disk threshold, tokens, extra env, data directory."""
    s, errors = settings, []
    if "host" in s and s.get("coordinator_host") != s["host"]:
        errors.append(
            f"{s['host']} runs the coordinator role but the fleet's coordinator is the first host of group "
            f"coordinator ({s.get('coordinator_host') or 'none: the group is empty'}): put this host first in that "
            "group, or run the role there"
        )
    if not _port(s.get("coordinator_port")):
        errors.append(f"coordinator_port {_shown(s.get('coordinator_port'), 40)} must be a number from 1 to 65535")
    if not _matches(BIND_HOST_RE, s.get("coordinator_bind_host")):
        errors.append(f"coordinator_bind_host {_shown(s.get('coordinator_bind_host'))} must be an address or host name")
    elif s.get("coordinator_bind_host") in ("0.0.0.0", "::"):
        errors.append(
            f"coordinator_bind_host {_shown(s.get('coordinator_bind_host'))}: beyond loopback the coordinator speaks "
            "TLS on one address and plain HTTP on 127.0.0.1 for its own VM, which binding every address would take. "
            "Leave coordinator_bind_host unset (the fleet plan binds the private address: central_mcp_private_address, "
            "else ansible_host) or give that address"
        )
    if not _matches(ADDRESS_RE, s.get("private_address")):
        errors.append(
            f"central_mcp_private_address (else ansible_host) {_shown(s.get('private_address'))} must be the "
            "address or name other VMs reach this one by"
        )
    percent = s.get("coordinator_disk_warn_percent")
    if not (PERCENT_RE.fullmatch(str(percent)) and 0 < float(str(percent)) <= 100) or isinstance(percent, bool):
        errors.append(
            f"coordinator_disk_warn_percent {_shown(percent, 40)} must be a percentage above 0 and at most 100, like 85"
        )
    for name in ("coordinator_api_token", "coordinator_dashboard_token"):
        token = s.get(name)
        if token not in ("", None) and not _placeholder(token) and not _matches(TOKEN_RE, token):
            errors.append(
                f"{name} must be 16-256 characters of letters, digits and . _ ~ + / = - (or empty to generate one)"
            )
    errors += _placeholder_error(_placeholders(s, ("coordinator_api_token", "coordinator_dashboard_token")))
    attempts = s.get("coordinator_task_max_attempts", 3)
    if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= 100:
        errors.append(f"coordinator_task_max_attempts {_shown(attempts, 40)} must be a whole number from 1 to 100")
    quiet = s.get("coordinator_quiet_s", 900)
    if isinstance(quiet, bool) or not isinstance(quiet, int) or not 10 <= quiet <= 86400 * 7:
        errors.append(f"coordinator_quiet_s {_shown(quiet, 40)} must be a number of seconds from 10 to 604800")
    for name, default, low, high in (
        ("coordinator_agent_writes_per_minute", 30, 0, 100000),
        ("coordinator_agent_writes_burst", 10, 1, 100000),
        ("coordinator_retention_days", 30, 0, 36500),
        ("coordinator_tasks_max", 256, 64, 100000),
    ):
        value = s.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            errors.append(f"{name} {_shown(value, 40)} must be a whole number from {low} to {high}")
    memory = _memory_bytes(s.get("coordinator_memory_max", "1G"))
    if memory is not None and memory < MEMORY_MIN:
        errors.append(
            f"coordinator_memory_max {_shown(s.get('coordinator_memory_max'), 40)} must be a size systemd's "
            "MemoryMax= takes, of at least 256M (e.g. 1G, 768M, or 10% of the VM's memory)"
        )
    url = s.get("coordinator_notify_url") or ""
    if url and not _matches(NOTIFY_URL_RE, url):
        # The value is not shown: a chat webhook URL is a secret.
        errors.append("coordinator_notify_url must be an http:// or https:// URL on one line, without spaces")
    extra_env = s.get("coordinator_extra_env")
    names = "CENTRAL_MCP_* names"
    errors += _env_errors("coordinator_extra_env", extra_env, EXTRA_ENV_RE, names, names)
    data_dir = s.get("coordinator_data_dir")
    if not _matches(DATA_DIR_RE, data_dir) or ".." in data_dir:
        errors.append(
            f"coordinator_data_dir {_shown(data_dir)} must be a directory below /var/lib, /srv, /opt or /data"
        )
    return errors


# The secrets each agents host's inventory may give (a secret or a mapping of them), checked for placeholders.
HOST_SECRETS = (
    "launcher_agent_tokens", "launcher_api_keys", "launcher_anthropic_api_key", "launcher_relay_token",
    "central_mcp_api_token",
)  # fmt: skip


def coordinator_fleet_errors(hostvars, plan) -> list:
    """The whole fleet as the coordinator sees it (``plan``: the fleet_plan filter's): each host's agents, names
    and Vault tokens unique across hosts, and how the coordinator reaches each other VM's pane relay (its port,
    token and private address)."""
    errors, names, tokens, placeholders = [], {}, {}, {}
    remote = set(plan["coordinator"]["remote_hosts"])
    for host, planned in plan["hosts"].items():
        host_vars = hostvars[host]
        agents = host_vars.get("central_mcp_agents", [])
        found = fleet_errors(agents, plan["kinds"])
        if found:
            errors.append(f"Fix central_mcp_agents of {host} in the inventory: {' | '.join(found)}")
        elif isinstance(agents, list):
            for agent in agents:
                names.setdefault(str(agent["name"]).lower(), []).append(host)
        given = host_vars.get("launcher_agent_tokens", {})
        for name, token in given.items() if isinstance(given, Mapping) else ():
            tokens.setdefault(_text(token), []).append(f"{host}/{name}")
        for name in _placeholders(host_vars, HOST_SECRETS):
            placeholders.setdefault(name, []).append(host)
        if host not in remote:
            continue
        port = planned["relay"]["port"]
        token = host_vars.get("launcher_relay_token", "")
        address = host_vars.get("central_mcp_private_address", "")
        if (
            not _port(port)
            or (token not in ("", None) and not _matches(TOKEN_RE, token))
            or (address not in ("", None) and not _matches(ADDRESS_RE, address))
        ):
            errors.append(
                f"Fix the inventory of {host} (its agents connect to this coordinator from another VM): "
                f"launcher_relay_port {_shown(port, 40)} must be a number from 1 to 65535, launcher_relay_token "
                "16-256 letters, digits or . _ ~ + / = - (or empty to generate one), and central_mcp_private_address "
                f"{_shown(address)} an address or host name"
            )
    twice = [name for name, where in names.items() if len(where) > 1]
    if twice:
        errors.append(
            "Agent names must be unique across all hosts of the agents group (the coordinator knows agents by "
            f"name); used more than once: {', '.join(twice)}"
        )
    # Tokens not given are generated, each its own; those given in Vault must differ across hosts too.
    shared = [" and ".join(agents) for token, agents in tokens.items() if token is not None and len(agents) > 1]
    if shared:
        errors.append(
            f"Two agents have the same coordinator token in launcher_agent_tokens ({'; '.join(shared)}): "
            "the coordinator knows an agent by its token, so give each agent its own, or leave it out to have "
            "one generated"
        )
    for hosts in sorted({tuple(hosts) for hosts in placeholders.values()}):  # one message per set of hosts
        found = [name for name, where in placeholders.items() if tuple(where) == hosts]
        errors += _placeholder_error(found, f" ({'all hosts' if len(hosts) > 1 else 'host'} {', '.join(hosts)})")
    return errors


def launcher_errors(settings: Mapping, kinds, host: str) -> list:
    """The launcher's settings and this host's agents: names, models, env, API keys, session, back-off, tokens."""
    s, errors = settings, []
    found = fleet_errors(s.get("central_mcp_agents"), kinds)
    if found:
        errors.append(f"Fix central_mcp_agents of {host} in the inventory: {' | '.join(found)}")
    errors += _env_errors(
        "launcher_agent_env", s.get("launcher_agent_env"), ENV_KEY_RE, "variable names",
        "variable names ([A-Za-z_][A-Za-z0-9_]*)",
    )  # fmt: skip
    keys = s.get("launcher_api_keys")
    if not isinstance(keys, Mapping):
        errors.append(f"launcher_api_keys must be a mapping of agent kinds to keys, got {_shown(keys)}")
    else:
        bad = [kind for kind, key in keys.items() if kind not in kinds or _text(key) is None or not one_line(key)]
        if bad:
            errors.append(
                f"launcher_api_keys: the keys {', '.join(_shown(kind, 40) for kind in bad)} must be agent kinds "
                f"({', '.join(kinds)}) with one-line string values"
            )
    versions = s.get("launcher_cli_versions")
    if not isinstance(versions, Mapping) or any(
        kind not in kinds or not _matches(VERSION_RE, versions[kind]) for kind in versions
    ):
        errors.append(
            f"launcher_cli_versions {_shown(versions)} must map agent kinds ({', '.join(kinds)}) to npm versions "
            "such as 2.1.340"
        )
    for gone, instead in RENAMED.items():
        if s.get(gone) is not None:
            errors.append(f"{gone} is no longer read: {instead}")
    session = s.get("launcher_session")
    if not _matches(SESSION_RE, session):
        errors.append(
            f"launcher_session {_shown(session)} is not allowed: use 1-32 letters, digits, '_' or '-', "
            "starting with a letter"
        )
    backoff = _number(s.get("launcher_restart_backoff_s"))
    backoff_max = _number(s.get("launcher_restart_backoff_max_s"))
    if backoff is None or backoff_max is None or backoff < 1 or backoff_max < backoff:
        errors.append(
            f"launcher_restart_backoff_s ({s.get('launcher_restart_backoff_s')}) must be at least 1 and "
            f"launcher_restart_backoff_max_s ({s.get('launcher_restart_backoff_max_s')}) at least as large: "
            "an agent that keeps failing must never restart in a tight loop"
        )
    user = s.get("launcher_user")
    if not _matches(USER_RE, user) or user == "root":
        errors.append(f"launcher_user {_shown(user, 40)} must be an unprivileged user name (not root)")
    url = s.get("launcher_coordinator_url")
    if not _matches(URL_RE, url):
        errors.append(f"launcher_coordinator_url {_shown(url)} must be an http(s) URL")
    tokens = s.get("launcher_agent_tokens")
    if not isinstance(tokens, Mapping):
        errors.append(f"launcher_agent_tokens must be a mapping of agent names to tokens, got {_shown(tokens)}")
    else:
        bad = [name for name, token in tokens.items() if not _placeholder(token) and not _matches(TOKEN_RE, token)]
        values = [_text(token) for token in tokens.values()]
        if bad or len(set(values)) != len(values):
            errors.append(
                "each token in launcher_agent_tokens must be 16-256 characters of letters, digits and . _ ~ + / = -, "
                f"one token per agent (agents {', '.join(str(name) for name in bad)} have a bad one)"
            )
    for name, default in (("launcher_agents_memory_max", "80%"), ("launcher_relay_memory_max", "256M"),
                          ("launcher_runtime_memory_max", "256M"), ("launcher_agent_memory_max", "auto")):  # fmt: skip
        if name == "launcher_agent_memory_max" and s.get(name, default) == "auto":
            continue
        memory = _memory_bytes(s.get(name, default))
        if memory == -1 and name == "launcher_agent_memory_max":
            errors.append(
                f"{name} {_shown(s.get(name), 40)} must be auto (the sizing rule's share), a size systemd's "
                "MemoryMax= takes (2G) or a share of the VM's memory (50%)"
            )
        elif memory == -1:
            errors.append(
                f"{name} {_shown(s.get(name), 40)} must be a size systemd's MemoryMax= takes (512M, 6G) "
                "or a share of the VM's memory (80%)"
            )
        elif memory is not None and memory < 64 * 2**20:
            errors.append(f"{name} {_shown(s.get(name), 40)} is below 64M: one agent CLI alone takes more")
    for name, default in (("launcher_agents_tasks_max", 4096), ("launcher_agent_tasks_max", 1024)):
        tasks = s.get(name, default)
        if not isinstance(tasks, int) or isinstance(tasks, bool) or not 256 <= tasks <= 1_000_000:
            errors.append(f"{name} {_shown(tasks, 40)} must be a whole number from 256 to 1000000")
    secrets = ("launcher_agent_tokens", "launcher_api_keys", "launcher_anthropic_api_key")
    errors += _placeholder_error(_placeholders(s, secrets))
    return errors


GCE_NAMES = {  # Compute Engine's own rules for the names
    "project": re.compile(r"[a-z][a-z0-9-]{4,28}[a-z0-9]"),
    "zone": re.compile(r"[a-z]+-[a-z]+[0-9]+-[a-z]"),
    "instance": re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?"),
}
MACHINE_TYPE_RE = re.compile(r"[a-z][a-z0-9-]+")
DISK_GB_RE = re.compile(r"[0-9]+")


def vm_upgrade_errors(settings: Mapping, host: str) -> list:
    """vm_upgrade's settings for a Compute Engine VM with a machine type or a disk size to ensure: the VM's names,
    the machine type, the disk size, a fleet for `auto`, and the credentials, before any API call."""
    s, errors = settings, []
    names = {key: s.get(f"vm_upgrade_{key}") for key in GCE_NAMES}
    if not all(_matches(GCE_NAMES[key], value) for key, value in names.items()):
        errors.append(
            ", ".join(f"vm_upgrade_{key} {_shown(value)}" for key, value in names.items()).replace(
                ", vm_upgrade_instance", " and vm_upgrade_instance"
            )
            + " must be Compute Engine names (e.g. my-project, us-central1-a, agents-1)"
        )
    machine_type, known = s.get("vm_upgrade_machine_type"), list(s.get("known_types") or [])
    if s.get("machine_type_managed"):
        if not (machine_type == "auto" or machine_type in known or _matches(MACHINE_TYPE_RE, machine_type)):
            errors.append(
                f"vm_upgrade_machine_type {_shown(machine_type)} is not a machine type: use auto, one of "
                f"{', '.join(known)}, or a Compute Engine type name such as n2-standard-4 (lower-case letters, "
                "digits and '-')"
            )
        if machine_type == "auto" and not s.get("has_agents"):
            errors.append(
                f"vm_upgrade_machine_type is auto but {host} has no central_mcp_agents: describe its agents in the "
                "inventory, or name a machine type"
            )
    size = s.get("vm_upgrade_disk_size_gb")
    if s.get("disk_managed"):
        text = str(size)
        if text != "auto" and not (DISK_GB_RE.fullmatch(text) and 10 <= int(text) <= 65536):
            errors.append(
                f"vm_upgrade_disk_size_gb {_shown(size)} is not a disk size: use auto, or a whole number of GB from "
                "10 (the smallest boot disk) to 65536, or leave it empty to leave the disk alone"
            )
        if text == "auto" and not s.get("has_agents"):
            errors.append(
                f"vm_upgrade_disk_size_gb is auto but {host} has no central_mcp_agents: describe its agents in the "
                "inventory, or give a size in GB"
            )
    model = s.get("vm_upgrade_provisioning_model")
    if model not in (None, "", "standard", "spot"):
        errors.append(
            f"vm_upgrade_provisioning_model {_shown(model)} is not a provisioning model: use spot, standard, or leave "
            "it empty to leave the VM as it is"
        )
    if model == "spot" and s.get("coordinator_here") and s.get("vm_upgrade_spot_coordinator") is not True:
        errors.append(
            f"vm_upgrade_provisioning_model is spot on {host}, the coordinator's VM: a preemption there stops the "
            "coordinator, its dashboard and the watcher that starts the fleet's Spot VMs again, so every agent "
            "waits until someone starts it. Keep the coordinator's VM standard and make the other agent VMs Spot, "
            "or set vm_upgrade_spot_coordinator: true to accept that"
        )
    try:
        price_table(s.get("central_mcp_prices"))
    except PriceError as exc:
        errors.append(str(exc))
    for old in s.get("replaced") or []:
        errors.append(
            f"{old} is no longer read: prices come from one table, central_mcp_prices (see the README's prices), "
            "e.g. central_mcp_prices: {machine_types: {e2-standard-4: {on_demand: 0.134}}, disks: {pd-ssd: 0.17}} "
            "(machine types in US dollars an hour, disks per GB-month); remove it"
        )
    auth = s.get("vm_upgrade_auth_kind")
    if (auth == "accesstoken" and not s.get("vm_upgrade_access_token")) or (
        auth == "serviceaccount" and not s.get("vm_upgrade_service_account_file")
    ):
        errors.append(
            f"vm_upgrade_auth_kind is {auth}: set vm_upgrade_access_token (from Vault) for accesstoken, or "
            "vm_upgrade_service_account_file (a JSON key on the controller) for serviceaccount"
        )
    return errors


PERSISTENT_ROOT_RE = re.compile(r"/[A-Za-z0-9._/-]*")


def pod_errors(plan: Mapping, host: str, settings: Mapping) -> list:
    """A host without systemd (launcher_persistent_root) and its tunnel to the coordinator (central_mcp_tunnel)."""
    errors = []
    root, tunnel = settings.get("launcher_persistent_root"), settings.get("central_mcp_tunnel")
    if _text(root) is None or (root and (not _matches(PERSISTENT_ROOT_RE, root) or root.rstrip("/") == "")):
        errors.append(
            f"launcher_persistent_root {_shown(root)} must be empty (a VM) or an absolute directory other than / "
            "(the volume that outlives a stop of a pod: /workspace on RunPod)"
        )
    if tunnel not in (None, True, False):
        errors.append(f"central_mcp_tunnel {_shown(tunnel)} must be true or false")
    if tunnel is not True:
        return errors
    here = (plan.get("hosts") or {}).get(host) or {}
    if not here.get("tunnel"):
        errors.append(
            f"central_mcp_tunnel is true for {host}, but the coordinator is not another host of the inventory "
            "(group coordinator): a tunnel leads to the coordinator's VM"
        )
        return errors
    if not root:
        errors.append(
            f"central_mcp_tunnel is true for {host}, which has no launcher_persistent_root: the tunnel is for hosts "
            "without systemd outside the coordinator's network (pods), whose boot starter runs it; a VM reaches the "
            "coordinator on its private network"
        )
    port = here["tunnel"]["port"]
    if isinstance(port, bool) or not isinstance(port, int) or not 1024 <= port <= 65535:
        errors.append(f"central_mcp_tunnel_port {_shown(port)} of {host} must be a port from 1024 to 65535")
    others = [
        other for other, theirs in plan["coordinator"]["tunnel"]["ports"].items() if other != host and theirs == port
    ]  # fmt: skip
    if others:
        errors.append(
            f"{host} and {', '.join(others)} would both reach the coordinator's VM on port {port}: set "
            "central_mcp_tunnel_port of one of them to another port from 1024 to 65535"
        )
    return errors


class FilterModule:
    def filters(self):
        return {
            "pod_errors": pod_errors,
            "vm_upgrade_errors": vm_upgrade_errors,
            "coordinator_errors": coordinator_errors,
            "coordinator_fleet_errors": coordinator_fleet_errors,
            "launcher_errors": launcher_errors,
        }
