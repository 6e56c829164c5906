# SPDX-License-Identifier: Apache-2.0
"""The fleet plan: the fleet's topology worked out once, from the inventory.

Every role, the status playbook and the preflight checks read this plan
instead of working out for themselves where the coordinator is, how a VM
reaches it, where each pane relay listens and which agents run where.

``fleet_plan(hostvars, groups)`` returns::

    coordinator:  host, port, bind_host, address (as other VMs reach it),
                  url (its own idea of its MCP URL), local_url, health_url,
                  tls (its certificate's names and addresses, and so the
                  host names it accepts, when it listens beyond loopback:
                  it then speaks TLS there and plain HTTP on 127.0.0.1
                  only; null otherwise),
                  disk_warn_percent, api_token_ref (the agent_token lookup's
                  name for a generated token),
                  remote_hosts (hosts of group agents other than its own),
                  tunnel (null, or how pods reach it: user, address, ssh_port,
                  hosts [the tunneled hosts] and keys_ref {host: the
                  ssh_key lookup's name for that host's key})
    hosts:        {host: coordinator_url (MCP, as this host's agents reach it),
                   api_url (REST, as this host reaches it), remote (the
                   coordinator is another VM), relay {listen, address,
                   port, token_ref, tls (its certificate's names and
                   addresses: a relay on TCP speaks TLS; null on the
                   coordinator's VM)}, agents [names], platform, installs
                   [the agent CLIs its agents use: kind, version, path,
                   packages, bin {link: target}, marker, lock (its
                   committed npm lock), lock_sha256, tree (the controller's
                   tree), sha256 {file: pinned sha256}, lock_error],
                   install_dirs {kind: path}, tunnel (null, or on a host
                   with central_mcp_tunnel: user, address, ssh_port of the
                   coordinator's VM, port (where its relay is reached on
                   that VM's loopback), forward (the coordinator's port
                   there), key_ref)}
    agents:       every agent of the fleet: name, host, role, kind, model,
                  tools, token_ref
    relay_socket: where the pane relay of the coordinator's own VM listens
    ca_file:      where each VM keeps the fleet CA's certificate (the fleet_tls lookup's)
    kinds:        the agent kinds the launcher knows (one file each)
    kind_processes: {kind: the word of its CLI's command line}
    kind_specs:   {kind: its file's content} (the launcher renders its agents from them)
    defaults:     the shared defaults the plan fell back on

The plan holds no secret (it is a fact, shown with -v): a token given in
the inventory (Vault) is read where it is used, under no_log; the plan
names the generated one that stands in for it (``token_ref``).
Ansible's hostvars hold no role defaults, so the plan reads the literal
values of the roles' own ``defaults/main.yml`` (the one place each is set)
for a host whose inventory does not set them. Nothing here trusts a type:
bad values are the preflight checks' to report, and the plan still returns.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
from pathlib import Path

from ansible.module_utils.common.yaml import yaml_load

ROLES = Path(__file__).resolve().parents[2] / "roles"  # the collection's own roles
# The role defaults other hosts need to know (hostvars do not carry them).
SHARED_DEFAULTS = {
    "coordinator": ("coordinator_port", "coordinator_disk_warn_percent"),
    "launcher": ("launcher_relay_port", "launcher_relay_bind_host", "launcher_default_model", "launcher_cli_platform"),
}
ALL_ADDRESSES = ("0.0.0.0", "::")
LOOPBACK = "127.0.0.1"
LOOPBACKS = (LOOPBACK, "::1", "localhost")
# The fleet CA's certificate on every VM: what agents, the runtime and the status read trust.
CA_FILE = "/etc/central-mcp/fleet-ca.pem"
# Where the pane relay of the coordinator's own VM listens: the coordinator's dashboard connects there.
RELAY_SOCKET = "/run/central-mcp-relay/relay.sock"
# The coordinator's VM's user that hosts without a way into its network (pods) open their SSH tunnel as.
TUNNEL_USER = "central-mcp-tunnel"
# Where a tunneled host's relay is reached on the coordinator's loopback, unless central_mcp_tunnel_port says.
TUNNEL_PORTS = (20000, 10000)  # first, how many
# Where a kind's `bin` links go: on every user's PATH.
BIN_DIR = "/usr/local/bin"
# npm writes this file of an installed tree last: a tree without it was never finished.
INSTALLED_MARKER = "node_modules/.package-lock.json"
# The committed npm locks the agent CLIs are installed from: <kind>-<version>-<platform>/package-lock.json.
LOCKS = ROLES / "launcher" / "files" / "npm"
# Where an image with the CLIs in it (the pod image, images/pod) keeps their trees, named as the controller's.
IMAGE_TREES = "/usr/local/lib/central-mcp/npm"


@functools.cache
def shared_defaults() -> dict:
    """The literal role defaults other hosts rely on, read from the roles' defaults files."""
    found = {}
    for role, names in SHARED_DEFAULTS.items():
        with open(ROLES / role / "defaults" / "main.yml", encoding="utf-8") as handle:
            defaults = yaml_load(handle) or {}
        found.update({name: defaults[name] for name in names})
    return found


@functools.cache
def kind_specs() -> dict:
    """The agent kinds: one file each in the launcher's vars/kinds (adding a kind is adding a file)."""
    found = {}
    for path in sorted((ROLES / "launcher" / "vars" / "kinds").glob("*.yml")):
        with open(path, encoding="utf-8") as handle:
            found.update(yaml_load(handle) or {})
    return found


def kind_processes() -> dict:
    """Each kind and the word of its command line that shows a process is its CLI (the kind's ``process``)."""
    return {name: spec.get("process", name) for name, spec in kind_specs().items()}


def installs(kinds, versions, platform: str) -> list:
    """The agent CLIs of the given kinds, as a host installs them: the kind file's ``install``, its version
    overridden by ``versions`` (launcher_cli_versions), {version} and {platform} filled in, with the committed npm
    lock it is installed from (``lock_error`` says how to make one when there is none)."""
    found = []
    for kind in sorted(set(kinds) & set(kind_specs())):
        spec = kind_specs()[kind].get("install")
        if not spec:
            continue
        version = str(versions.get(kind) or spec["version"])
        path = f"{spec['dir']}/{version}"
        links = spec.get("bin") or {}
        lock = LOCKS / f"{kind}-{version}-{platform}"
        digest = _sha256(lock / "package-lock.json")
        # The controller's tree is named for its lock: a new lock is a new tree, never one made otherwise.
        tree = f"{lock.name}-{digest[:12]}" if digest else ""
        # The same tree in the host's image (npm ci of the same lock when the image was built), if it has one.
        image_tree = f"{IMAGE_TREES}/{tree}" if tree else ""

        def fill(text: str, version=version) -> str:
            return text.replace("{version}", version).replace("{platform}", platform)

        found.append(
            {
                "kind": kind,
                "version": version,
                "path": path,
                "packages": [fill(package) for package in spec["packages"]],
                "bin": {f"{BIN_DIR}/{name}": f"{path}/{fill(target)}" for name, target in links.items()},
                "marker": f"{path}/{INSTALLED_MARKER}",
                "lock": str(lock),
                "lock_sha256": digest,
                "tree": tree,
                "image_tree": image_tree,
                "image_marker": f"{image_tree}/{INSTALLED_MARKER}" if image_tree else "",
                "sha256": dict((spec.get("sha256") or {}).get(platform) or {}),
                "lock_error": "" if digest else _lock_error(kind, version, platform),
            }
        )
    return found


def image_paths(install: dict) -> tuple:
    """The paths of an install that say whether the host's image has its tree: the install's own directory (a
    link to the image's tree, or something else) and the marker of the image's tree."""
    return (install["path"], install["image_marker"]) if install["image_marker"] else ()


def _lock_error(kind: str, version: str, platform: str) -> str:
    """What to do about a CLI version without a committed lock for the platform."""
    suffix = f"-{platform}"
    others = sorted(
        path.parent.name[len(kind) + 1 : -len(suffix)] for path in LOCKS.glob(f"{kind}-*{suffix}/package-lock.json")
    )
    return (
        f"{kind} {version} has no committed npm lock for {platform} "
        f"({(LOCKS / f'{kind}-{version}-{platform}').relative_to(ROLES.parent)}), and the launcher installs an "
        f"agent CLI from its lock only: make it with tools/lock-cli.py {kind} {version}, review and commit it"
        + (f", or set launcher_cli_versions.{kind} to a locked version ({', '.join(others)})" if others else "")
    )


def _sha256(path: Path) -> str:
    """A file's sha256 (hex), or "" when there is no such file."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return ""


def bracketed(address: str) -> str:
    """An address as it goes before ':port' in a URL (IPv6 in brackets)."""
    return f"[{address}]" if ":" in address else address


def private_address(host_vars, host: str) -> str:
    """How other VMs reach a host: central_mcp_private_address, else ansible_host, else its inventory name."""
    return str(host_vars.get("central_mcp_private_address") or host_vars.get("ansible_host") or host)


def tls_names(host: str, *addresses: str) -> dict:
    """A certificate's subject alternative names: the host and each DNS name, then each IP address."""
    names, ips = [host], []
    for address in addresses:
        try:
            ipaddress.ip_address(address)
        except ValueError:
            names.append(address)
        else:
            ips.append(address)
    return {"names": list(dict.fromkeys(names)), "addresses": list(dict.fromkeys(ips))}


def _setting(host_vars, name: str):
    value = host_vars.get(name)
    return shared_defaults()[name] if value in (None, "") else value


def _text(value) -> str:
    return "" if value is None else str(value)  # str(): a Vault value decrypts


def tunnel_port(host_vars, host: str) -> int:
    """Where a tunneled host's relay is reached on the coordinator's loopback: central_mcp_tunnel_port, else
    a port of TUNNEL_PORTS from the host's name (stable as hosts come and go; the preflight names a clash)."""
    port = host_vars.get("central_mcp_tunnel_port")
    if port not in (None, ""):
        return port
    first, count = TUNNEL_PORTS
    return first + int(hashlib.sha256(host.encode()).hexdigest()[:8], 16) % count


def fleet_plan(hostvars, groups) -> dict:
    """The fleet's topology from the inventory: see the module's docstring."""
    agent_hosts = list(groups.get("agents") or [])
    coordinators = list(groups.get("coordinator") or [])
    coord = coordinators[0] if coordinators else None
    remote_hosts = [host for host in agent_hosts if host != coord]
    # Hosts outside the coordinator's network (pods) reach it through an SSH tunnel they open to its VM.
    tunneled = [host for host in remote_hosts if hostvars[host].get("central_mcp_tunnel") is True]

    coordinator = None
    if coord is not None:
        cv = hostvars[coord]
        port = _setting(cv, "coordinator_port")
        address = private_address(cv, coord)
        # Other VMs' agents reach it on its private address, with TLS (and it speaks plain HTTP on
        # loopback for its own VM): it binds that address, not all of them, to have loopback for itself.
        # (A tunneled host reaches its loopback, through the tunnel.)
        networked = [host for host in remote_hosts if host not in tunneled]
        bind = _text(cv.get("coordinator_bind_host")) or (address if networked else LOOPBACK)
        tls = bind not in LOOPBACKS
        advertised = address if bind in ALL_ADDRESSES else bind
        local = LOOPBACK if tls else bind  # how its own VM reaches it
        scheme = "https" if tls else "http"
        coordinator = {
            "host": coord,
            "port": port,
            "bind_host": bind,
            "address": address,
            "url": _text(cv.get("coordinator_url")) or f"{scheme}://{bracketed(advertised)}:{port}/mcp",
            "local_url": f"http://{bracketed(local)}:{port}",
            "health_url": f"http://{bracketed(local)}:{port}/health",
            "tls": tls_names(coord, address, *([] if bind in ALL_ADDRESSES else [bind])) if tls else None,
            "disk_warn_percent": _setting(cv, "coordinator_disk_warn_percent"),
            "api_token_ref": f"{coord}/coordinator.api",
            "remote_hosts": remote_hosts,
            "tunnel": {
                "user": TUNNEL_USER,
                "address": _text(cv.get("central_mcp_public_address")) or address,
                "ssh_port": cv.get("central_mcp_public_ssh_port") or 22,
                "hosts": tunneled,
                "ports": {host: tunnel_port(hostvars[host], host) for host in tunneled},
                "keys_ref": {host: f"{host}/tunnel" for host in tunneled},
            }
            if tunneled
            else None,
        }

    hosts, agents = {}, []
    for host in agent_hosts:
        hv = hostvars[host]
        remote = coordinator is not None and host != coord
        tunnel = None
        if remote and host in tunneled:  # the coordinator's loopback, forwarded to this host's own
            tunnel = {
                **{key: coordinator["tunnel"][key] for key in ("user", "address", "ssh_port")},
                "port": coordinator["tunnel"]["ports"][host],
                "forward": coordinator["port"],
                "key_ref": coordinator["tunnel"]["keys_ref"][host],
            }
        if coordinator is None:  # no group coordinator: the agents' own VM, unless launcher_coordinator_url says
            base = f"http://{LOOPBACK}:{shared_defaults()['coordinator_port']}"
        elif tunnel:
            base = f"http://{LOOPBACK}:{coordinator['port']}"
        elif remote:
            scheme = "https" if coordinator["tls"] else "http"
            base = f"{scheme}://{bracketed(coordinator['address'])}:{coordinator['port']}"
        else:
            base = coordinator["local_url"]
        relay_port = _setting(hv, "launcher_relay_port")
        relay_bind = LOOPBACK if tunnel else _text(_setting(hv, "launcher_relay_bind_host"))
        # Where the coordinator reaches it: its address on the network, or the tunnel's end on its own VM.
        relay_at = (
            f"tcp:{LOOPBACK}:{tunnel['port']}" if tunnel else f"tcp:{bracketed(private_address(hv, host))}:{relay_port}"
        )
        declared = hv.get("central_mcp_agents")
        declared = declared if isinstance(declared, list) else []
        default_model = _setting(hv, "launcher_default_model")
        platform = _text(_setting(hv, "launcher_cli_platform"))
        versions = hv.get("launcher_cli_versions")
        versions = versions if isinstance(versions, dict) else {}
        names = []
        for agent in declared:
            if not isinstance(agent, dict) or not isinstance(agent.get("name"), str):
                continue  # the preflight checks name it
            name = agent["name"]
            names.append(name)
            agents.append(
                {
                    "name": name,
                    "host": host,
                    "role": agent.get("role", ""),
                    "kind": agent.get("kind", "claude"),
                    "model": agent.get("model") or default_model,
                    "tools": agent.get("tools"),
                    "token_ref": f"{host}/{name}",
                }
            )
        hosts[host] = {
            "remote": remote,
            "coordinator_url": _text(hv.get("launcher_coordinator_url")) or f"{base}/mcp",
            "api_url": base,
            "relay": {
                # TCP with a token on a VM without the coordinator, else a unix socket for the coordinator's group.
                "listen": f"{bracketed(relay_bind)}:{relay_port}" if remote else RELAY_SOCKET,
                "address": relay_at if remote else "",
                "port": relay_port,
                "token_ref": f"{host}/launcher.relay",
                "tls": tls_names(host, LOOPBACK if tunnel else private_address(hv, host)) if remote else None,
            },
            "agents": names,
            "platform": platform,
            "tunnel": tunnel,
        }
        used = [str(agent.get("kind", "claude")) for agent in declared if isinstance(agent, dict)]
        hosts[host]["installs"] = installs(used, versions, platform)
        hosts[host]["install_dirs"] = {install["kind"]: install["path"] for install in hosts[host]["installs"]}
        # What the launcher's look at the target asks of them: each tree's marker, each link and its target, the
        # tree's directory, and the marker of the image's tree.
        hosts[host]["install_paths"] = [
            path
            for install in hosts[host]["installs"]
            for path in (install["marker"], *install["bin"], *install["bin"].values(), *image_paths(install))
        ]
    return {
        "coordinator": coordinator,
        "hosts": hosts,
        "agents": agents,
        "relay_socket": RELAY_SOCKET,
        "ca_file": CA_FILE,
        "kinds": sorted(kind_specs()),
        "kind_processes": kind_processes(),
        "kind_specs": kind_specs(),
        "defaults": shared_defaults(),
    }


class FilterModule:
    def filters(self):
        return {"fleet_plan": fleet_plan}
