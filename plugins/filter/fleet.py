# SPDX-License-Identifier: Apache-2.0
"""Filters that turn the inventory's fleet description into what the launcher deploys.

`fleet_errors` checks what argument specs cannot (names, uniqueness, env keys),
so the role can fail before any change with every bad value named.
`launcher_fleet` computes, per agent, the tmux window command, the content of
its 0600 env file, its kind's config documents and a revision digest that
changes whenever any of those change (so tmux_agents restarts that agent only).
What differs between agent CLIs (claude, codex, gemini) comes from the kind
files of the launcher role (vars/kinds/*.yml), never from code here.
"""

import hashlib
import json
import re
import shlex

NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")
ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
RESERVED = {"control", "logs"}
AGENT_KEYS = (
    "name",
    "role",
    "model",
    "kind",
    "env",
    "command",
    "workdir",
    "permission_mode",
    "allowed_tools",
    "prompt",
    "tools",
    "mode",
    "repo",
    "author",
)
# worker: the runtime owns the work loop (one CLI run per task); interactive: a long-lived CLI a person talks to.
MODES = ("worker", "interactive")
# Seconds a worker's CLI may go on after its task is final, to finish its turn, before the runtime ends it.
TASK_GRACE_S = 30
# What a worker's window runs between tasks (agent_worker.IDLE_COMMAND; agent_probe.py knows it).
WORKER_IDLE_COMMAND = "exec sleep infinity"
# Modes in which an unattended agent never stops at an approval prompt (the
# others ask a person, and there is none at a tmux window at 3 a.m.).
UNATTENDED_MODES = ("dontAsk", "bypassPermissions")
FIELD_RE = re.compile(r"\{([a-z_]+)\}")
TOOL_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*(\([^()\n\r\0]{1,200}\))?$")
# Model names as providers spell them: claude-sonnet-5-5, glm-4.6, org/model:tag.
MODEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}$")
ROLE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._/-]{0,63}")
# Coordinator tools as an agent's grant names them (the coordinator enforces it).
COORDINATOR_TOOL_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")
# A model API base URL, as it lands in a CLI's config (Codex's provider base_url).
BASE_URL_RE = re.compile(r"https?://[A-Za-z0-9.:\[\]_-]+(/[A-Za-z0-9._~/%+-]*)?")
MAX_AGENTS_PER_HOST = 16  # the sizing rule's largest VM (e2-standard-8) holds 16
# Workspaces live where data belongs, never in a system directory the role would chown.
WORKDIR_RE = re.compile(r"/(home|srv|opt|data|mnt|var/lib|work)(/[A-Za-z0-9._-]+)+")
# Unix user names as useradd takes them on Debian without --badname: an agent's own user is the prefix and its
# name in lower case (agent names are unique ignoring case, so their users are too).
USER_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")


def fleet_errors(agents, kinds=None):
    """Every problem in the fleet description, as messages naming the bad value."""
    errors = []
    if not isinstance(agents, list):
        return [f"central_mcp_agents must be a list of agents, got {type(agents).__name__}"]
    if not agents:
        return [
            "central_mcp_agents is empty: a host in the agents group runs 1 to 16 agents "
            "(to stop them all, stop central-mcp-agents.service; to retire the host, remove it from the group)"
        ]
    if len(agents) > MAX_AGENTS_PER_HOST:
        errors.append(
            f"central_mcp_agents has {len(agents)} agents: one VM runs at most {MAX_AGENTS_PER_HOST} "
            "(the largest type of the sizing rule); put the others on another VM"
        )
    seen = {}
    for position, agent in enumerate(agents, 1):
        where = f"central_mcp_agents[{position}]"
        if not isinstance(agent, dict):
            errors.append(f"{where} must be a dict with name and role, got {agent!r:.80}")
            continue
        unknown = sorted(str(key) for key in agent if key not in AGENT_KEYS)
        if unknown:
            errors.append(f"{where}: unknown key(s) {', '.join(unknown)}: allowed are {', '.join(AGENT_KEYS)}")
        role = agent.get("role")
        if not isinstance(role, str) or not ROLE_RE.fullmatch(role):
            errors.append(
                f"{where}: role {role!r:.80} is not a role: 1-64 letters, digits, spaces and . _ / - "
                "(what the agent works on)"
            )
        name = agent.get("name")
        if not isinstance(name, str) or not NAME_RE.fullmatch(name):
            errors.append(
                f"{where}: agent name {name!r:.80} is not allowed: use 1-32 letters, digits, '_' or '-', "
                "starting with a letter (it names a tmux window, a file and a token)"
            )
        elif name.lower() in RESERVED:
            errors.append(f"{where}: agent name {name!r} is reserved for the Control and Logs windows: pick another")
        elif name.lower() in seen:
            errors.append(
                f"{where}: agent name {name!r} is used twice (also at central_mcp_agents[{seen[name.lower()]}]): "
                "names must be unique, ignoring case"
            )
        else:
            seen[name.lower()] = position
        model = agent.get("model")
        if model is not None and (not isinstance(model, str) or not MODEL_RE.fullmatch(model)):
            errors.append(f"{where}: model {model!r:.80} is not a model name (letters, digits and . _ : / @ -)")
        kind = agent.get("kind", "claude")
        if kinds is not None and (not isinstance(kind, str) or kind not in kinds):
            errors.append(f"{where}: kind {kind!r:.40} is unknown: use one of {', '.join(sorted(kinds))}")
        grant = agent.get("tools")
        if grant is not None and (not isinstance(grant, list) or not all(isinstance(t, str) for t in grant)):
            errors.append(f"{where}: tools must be a list of coordinator tool names, got {grant!r:.80}")
        elif grant == []:
            errors.append(f"{where}: tools is empty, so the agent could call no coordinator tool: leave it out for all")
        elif grant:
            errors += [
                f"{where}: tools entry {t!r:.80} is not a coordinator tool name (lower-case letters, digits, _)"
                for t in grant
                if not COORDINATOR_TOOL_RE.fullmatch(t)
            ]
        run_mode = agent.get("mode")
        if run_mode is not None and run_mode not in MODES:
            errors.append(f"{where}: mode {run_mode!r:.40} is not a mode: use worker or interactive")
        mode = agent.get("permission_mode")
        if mode is not None and mode not in UNATTENDED_MODES:
            errors.append(
                f"{where}: permission_mode {mode!r:.40} would stop the agent at an approval prompt with nobody "
                f"to answer it: use {' or '.join(UNATTENDED_MODES)}"
            )
        tools = agent.get("allowed_tools")
        if tools is not None and (not isinstance(tools, list) or not all(isinstance(t, str) for t in tools)):
            errors.append(f"{where}: allowed_tools must be a list of tool names, got {tools!r:.80}")
        elif tools:
            errors += [
                f"{where}: allowed_tools entry {t!r:.80} is not a tool rule" for t in tools if not TOOL_RE.fullmatch(t)
            ]
        prompt = agent.get("prompt")
        if prompt is not None and (not isinstance(prompt, str) or "\0" in prompt or len(prompt) > 4000):
            errors.append(f"{where}: prompt must be text of at most 4000 characters")
        env = agent.get("env") or {}
        if not isinstance(env, dict):
            errors.append(f"{where}: env must be a mapping of NAME: value, got {type(env).__name__}")
            env = {}
        workdir = agent.get("workdir")
        if workdir is not None and (
            not isinstance(workdir, str) or not WORKDIR_RE.fullmatch(workdir) or {".", ".."} & set(workdir.split("/"))
        ):
            errors.append(
                f"{where}: workdir {workdir!r:.80} must be a path below /home, /srv, /opt, /data, /mnt, "
                "/var/lib or /work (the role gives it to the agent user)"
            )
        command = agent.get("command")
        if command is not None:
            try:
                if not isinstance(command, str) or not shlex.split(command):
                    raise ValueError("empty")
            except ValueError as exc:
                errors.append(f"{where}: command {command!r:.80} is not a command line ({exc})")
        for key, value in env.items():
            if not isinstance(key, str) or not ENV_KEY_RE.fullmatch(key):
                errors.append(f"{where}: env key {key!r:.80} is not a variable name ([A-Za-z_][A-Za-z0-9_]*)")
            elif not isinstance(value, (str, int, float)) or isinstance(value, bool):
                errors.append(f"{where}: env {key} must be a string, got {type(value).__name__}")
            elif not one_line(value):
                errors.append(f"{where}: env {key} contains a newline or NUL: env values are one line")
        spec = kinds.get(kind) if isinstance(kinds, dict) and isinstance(kind, str) else None
        managed = {*IDENTITY_ENV, TOKEN_ENV, *_managed_env(spec or {})}
        errors += [
            f"{where}: env {key} is set by the launcher (the agent's identity, its own CLI home or its coordinator "
            "token): leave it out"
            for key in env
            if key in managed
        ]
        base_env = (spec or {}).get("base_url_env")
        if base_env and base_env in env and not BASE_URL_RE.fullmatch(str(env[base_env])):
            errors.append(f"{where}: env {base_env} {str(env[base_env])!r:.80} is not an http(s) base URL")
    return errors


# The agent's identity in its env file: set by the launcher, never by the inventory.
def agent_user(name: str, prefix: str) -> str:
    """The Unix user an agent runs as: the prefix (launcher_agent_user_prefix) and its name in lower case."""
    return f"{prefix}{name.lower()}"


def state_dir(home: str, name: str) -> str:
    """An agent's CLI home, in the console user's home: its own user's home directory too."""
    return f"{home}/.central-mcp/{name}"


def agent_users(agents, prefix, home):
    """The Unix user of each agent of a host, as host_info's ``users`` option and the user module take them:
    name, home (its CLI home), shell (bash: the CLIs run their commands in the user's shell), groups (none)."""
    return [
        {"name": agent_user(agent["name"], prefix), "home": state_dir(home, agent["name"]), "shell": "/bin/bash",
         "groups": []}
        for agent in agents
    ]  # fmt: skip


def agent_user_errors(agents, prefix, console_user):
    """What keeps the agents of a host from each running as a Unix user of its own, one message per problem.

    Agents with a bad name are left to fleet_errors, which names them.
    """
    if not isinstance(prefix, str) or not USER_RE.fullmatch(prefix or "-") or len(prefix) > 16:
        return [
            f"launcher_agent_user_prefix {prefix!r:.40} is not a user name prefix: 1-16 lower-case letters, digits, "
            "'_' or '-', starting with a letter or '_' (each agent runs as <prefix><its name in lower case>)"
        ]
    errors = []
    for agent in agents if isinstance(agents, list) else []:
        name = agent.get("name") if isinstance(agent, dict) else None
        if not isinstance(name, str) or not NAME_RE.fullmatch(name):
            continue
        user = agent_user(name, prefix)
        if len(user) > 32:
            errors.append(
                f"agent {name}: its Unix user {user!r} is longer than 32 characters: shorten the agent's name "
                f"to {32 - len(prefix)} characters or launcher_agent_user_prefix"
            )
        elif user == console_user:
            errors.append(
                f"agent {name}: its Unix user {user!r} is launcher_user, the console user that owns the tmux "
                "session: rename the agent or change launcher_agent_user_prefix"
            )
    return errors


IDENTITY_ENV = ("AGENT_NAME", "AGENT_ROLE", "AGENT_MODEL", "AGENT_KIND", "AGENT_PROCESS")
# The agent's coordinator token in its 0600 env file: the runtime's heartbeats and the CLIs that read it from there.
TOKEN_ENV = "CENTRAL_MCP_AGENT_TOKEN"


def one_line(value) -> bool:
    """Whether a value, as text, has no newline, carriage return or NUL (env files hold one line per value)."""
    return not any(ch in str(value) for ch in "\n\r\0")


def _managed_env(kind):
    """Variables a kind sets itself: its CLI's config home and its own env lines (the coordinator token)."""
    return ([kind["config_dir_env"]] if kind.get("config_dir_env") else []) + list(kind.get("env") or {})


def _fill(value, fields):
    """Put per-agent fields into a kind's config document ({name} style); empty list items drop out."""
    if isinstance(value, str):  # only known {field} names: other braces (in a prompt) stay as written
        return FIELD_RE.sub(lambda m: str(fields[m[1]]) if isinstance(fields.get(m[1]), str) else m[0], value)
    if isinstance(value, list):
        filled = []
        for item in value:
            whole = isinstance(item, str) and item.startswith("{") and item.endswith("}") and item[1:-1] in fields
            if whole and isinstance(fields[item[1:-1]], list):
                filled += fields[item[1:-1]]  # "{allowed_tools}" stands for the whole list
            else:
                filled.append(_fill(item, fields))
        return [item for item in filled if item != ""]
    if isinstance(value, dict):
        return {_fill(key, fields): _fill(item, fields) for key, item in value.items()}
    return value


def launcher_fleet(agents, kinds, settings, secrets):
    """Per agent: name, kind, mode, command, workdir, state_dir, user, env_file, configs, worker, runtime, revision.

    user is the agent's own Unix user (None without settings' user_prefix).

    settings: libexec_dir, config_dir, home, workspace_root, coordinator_url,
    default_model, backoff_s, backoff_max_s, healthy_after_s, permission_mode,
    allowed_tools, prompt (the defaults of the agents' own keys), and
    optionally mode (default worker) and task_prompt (worker mode's
    prompt per task, {task_id} {title} {description} {role} {priority} {name}
    {model} filled in by the runtime), install_dirs (kind -> where its CLI
    is installed, the fleet plan's), platform (launcher_cli_platform) and
    user_prefix (launcher_agent_user_prefix: each agent's CLI runs as
    <prefix><name in lower case>, in a systemd unit of its own that agent-run
    starts through sudo and agent-unit; without it, as the user of the window) and ca_file (the fleet CA, when the
    coordinator_url is https: the runtime trusts it, and so does each CLI
    through the variables its kind lists in ca_env).
    secrets: tokens (name -> token), api_key (the role's key, for kinds with
    api_key_from_role), api_keys (kind -> key, optional).
    """
    errors = fleet_errors(agents, kinds)
    if errors:
        raise ValueError("; ".join(errors))
    fleet = []
    for agent in agents:
        name = agent["name"]
        kind_name = agent.get("kind", "claude")
        kind = kinds[kind_name]
        model = agent.get("model") or settings["default_model"]
        workdir = agent.get("workdir") or f"{settings['workspace_root']}/{name}"
        # Its CLI's home: the home directory of its own user, if it has one.
        cli_home = state_dir(settings["home"], name)
        user = agent_user(name, settings["user_prefix"]) if settings.get("user_prefix") else None
        env = {
            "AGENT_NAME": name,
            "AGENT_ROLE": str(agent.get("role", "")),
            "AGENT_MODEL": model,
            "AGENT_KIND": kind_name,
            "AGENT_PROCESS": kind.get("process", kind_name),  # how its CLI shows in a command line
            "CENTRAL_MCP_URL": settings["coordinator_url"],
        }
        if settings.get("ca_file"):  # the coordinator speaks TLS with a certificate of the fleet's own CA
            env["CENTRAL_MCP_CA_FILE"] = settings["ca_file"]
            env.update(dict.fromkeys(kind.get("ca_env") or [], settings["ca_file"]))
        # The role's key for this kind: launcher_anthropic_api_key for claude, api_keys[kind] for any.
        role_key = (secrets.get("api_keys") or {}).get(kind_name) or (
            secrets.get("api_key") if kind.get("api_key_from_role") else ""
        )
        if kind.get("api_key_env") and role_key:
            env[kind["api_key_env"]] = role_key
        token = secrets.get("tokens", {}).get(name, "")
        managed = {kind["config_dir_env"]: cli_home} if kind.get("config_dir_env") else {}
        managed[TOKEN_ENV] = token
        managed.update({key: _fill(value, {"token": token}) for key, value in (kind.get("env") or {}).items()})
        env.update(managed)
        for extra in (settings.get("agent_env") or {}, agent.get("env") or {}):  # the fleet's, then the agent's own
            env.update({key: str(value) for key, value in extra.items()})
        # Again, in place: no shared env moves an agent out of its own CLI home or gives it another token.
        env.update(managed)
        api_key = env.get(kind.get("api_key_env") or "", "")
        base_url = env.get(kind.get("base_url_env") or "") or kind.get("base_url_default", "")
        if kind.get("base_url_env") and not BASE_URL_RE.fullmatch(base_url):
            raise ValueError(f"agent {name}: {kind['base_url_env']} {base_url!r:.80} is not an http(s) base URL")
        fields = {
            "name": name,
            "role": str(agent.get("role", "")),
            "model": model,
            "workdir": workdir,
            "url": settings["coordinator_url"],
            "token": token,
            "state_dir": cli_home,
            "install_dir": (settings.get("install_dirs") or {}).get(kind_name, ""),
            "platform": settings.get("platform", ""),
            "model_base_url": base_url,
            "api_key_suffix": api_key[-20:],
            "permission_mode": agent.get("permission_mode") or settings["permission_mode"],
            "allowed_tools": list(agent.get("allowed_tools") or settings["allowed_tools"]),
        }
        config_dir = f"{settings['config_dir']}/{name}"
        env_path = f"{config_dir}.env"  # its env file: agent-run and the worker runtime read it
        mode = agent.get("mode") or settings.get("mode") or "worker"
        argv = [_fill(part, fields) for part in kind["argv"]]
        worker = None
        if mode == "worker":  # the runtime starts this CLI with each task's prompt, read before every task
            worker = {
                "path": f"{config_dir}.worker.json",
                "content": {
                    "command": shlex.split(agent["command"]) if agent.get("command") else argv,
                    "prompt": settings.get("task_prompt") or "",
                    "prompt_flag": kind.get("prompt_flag", ""),
                    "exit_keys": kind.get("exit_keys", ""),
                    "grace_s": TASK_GRACE_S,
                },
            }
            argv = []  # not in the window's command: a new CLI version or model applies at the next task
        elif agent.get("command"):
            argv = shlex.split(agent["command"])
        else:
            prompt = _fill(agent.get("prompt") if agent.get("prompt") is not None else settings["prompt"], fields)
            flag = [kind["prompt_flag"]] if kind.get("prompt_flag") else []
            argv += [*flag, prompt] if prompt else []  # the first instruction, so the agent starts working by itself
        run = [
            f"{settings['libexec_dir']}/agent-run",
            "--name", name,
            "--env-file", env_path,
            "--backoff", str(settings["backoff_s"]),
            "--backoff-max", str(settings["backoff_max_s"]),
            "--healthy-after", str(settings["healthy_after_s"]),
            # what the Control window and agent_status read from the command line when they may not read
            # the agent's environment (an agent of its own user)
            "--kind", kind_name,
            "--process", kind.get("process", kind_name),
        ]  # fmt: skip
        if user:  # its CLI runs as its own user, in its workspace (the window's user may not enter it)
            run += ["--user", user, "--workdir", workdir]
        configs = []
        for doc in kind.get("configs") or []:
            # One flat file per document next to the env file, always *.json (the content is JSON):
            # .claude.json -> A.claude.json, .gemini/settings.json -> F.gemini-settings.json.
            source = f"{config_dir}.{doc['file'].lstrip('.').replace('/', '-')}"
            source += "" if source.endswith(".json") else ".json"
            configs.append({"path": source, "content": _fill(doc["content"], fields)})
            run += [f"--merge-{doc.get('format', 'json')}", f"{source}:{cli_home}/{doc['file']}"]
        env_file = "".join(f"{key}={value}\n" for key, value in env.items())
        runtime = None
        if worker:
            # The host's runtime (agent-runtime) starts `run --task FILE` in the window for each task,
            # reading the env file, the CLI's settings, its command and the task prompt again each time:
            # a change to any of them reaches the worker between two tasks, never in the middle of one.
            # Between tasks the window shows a line and sleeps, so nothing restarts it for such a change.
            runtime = {
                "name": name,
                "run": run,
                "env_files": [env_path],
                "worker": worker["path"],
                "workdir": workdir,
                "task_file": f"{settings['home']}/.central-mcp/{name}.task.json",
                # Written by the CLI's end-of-turn hook, as the agent's user: in a directory it shares with
                # the runtime (launcher_files), never in the runtime's own.
                "turn_file": f"{settings['home']}/.central-mcp/{name}.turn/ended",
            }
            waiting = f"[agent-run] agent {name} (worker): waiting for a task from its runtime (agent-runtime)"
            command = f"printf '%s\\n' {shlex.quote(waiting)}; {WORKER_IDLE_COMMAND}"
        else:
            command = shlex.join(run + (["--", *argv] if argv else []))
        # The revision restarts the agent's window when it changes (never while a worker's task runs).
        # "own unit": an agent of its own user started before it ran in a unit of its own (through sudo
        # alone, a rule that is gone) is started again, the new way.
        revised = [command, workdir] if worker else [command, env_file, configs, workdir]
        revised += ["own unit"] if user else []
        digest = hashlib.sha256(json.dumps(revised, sort_keys=True).encode())
        fleet.append(
            {
                "name": name,
                "kind": kind_name,
                "mode": mode,
                "command": command,
                "workdir": workdir,
                "state_dir": cli_home,
                "user": user,
                "env_file": env_file,
                "configs": configs,
                "worker": worker,
                "runtime": runtime,
                "revision": digest.hexdigest()[:16],
            }
        )
    return fleet


def installs_due(installs, paths):
    """The agent CLIs of the fleet plan's ``installs`` that a host lacks, from host_info's ``paths``: those whose
    tree is not complete (no marker) or whose ``bin`` links do not lead to their targets. Each comes with
    ``from_image`` (its tree is not complete and the host's image has the tree of the same lock: that one is used
    in place, through a link) and ``remove_first`` (its directory is there without a complete tree, or is a link to a
    tree no longer there: it goes first)."""
    due = []
    for install in installs:
        seen = {path: paths.get(path) or {} for path in (install["marker"], *install["bin"], *install["bin"].values())}
        linked = all(
            seen[target].get("exists") and seen[link].get("realpath") == seen[target].get("realpath")
            for link, target in install["bin"].items()
        )
        unfinished = not seen[install["marker"]].get("exists")
        if unfinished or not linked:
            directory = paths.get(install["path"]) or {}
            due.append(
                {
                    **install,
                    "from_image": unfinished
                    and bool(install["image_marker"] and (paths.get(install["image_marker"]) or {}).get("exists")),
                    "remove_first": unfinished and bool(directory.get("exists") or directory.get("link_target")),
                }
            )
    return due


def coordinator_agents(agents, hostvars, generated_tokens):
    """What the coordinator is told of each agent of the fleet plan's ``agents``, its token only as sha256.

    An agent's token is its host's launcher_agent_tokens entry (Vault) or,
    else, the generated one at the same position in ``generated_tokens``.
    """
    records = []
    for agent, generated in zip(agents, generated_tokens, strict=True):
        given = hostvars[agent["host"]].get("launcher_agent_tokens") or {}
        token = given[agent["name"]] if agent["name"] in given else generated
        records.append(
            {
                **{key: agent[key] for key in ("name", "role", "model", "kind", "tools", "host")},
                "token_sha256": hashlib.sha256(str(token).encode()).hexdigest(),  # str(): a Vault value decrypts
            }
        )
    return records


def coordinator_relays(plan, hostvars, generated_tokens):
    """How the coordinator reaches the pane relay of each other VM of the fleet plan: {host, address, token}.

    The token is the host's launcher_relay_token (Vault) or, else, the
    generated one at the same position in ``generated_tokens`` (one per
    host of the plan's coordinator.remote_hosts).
    """
    relays = []
    for host, generated in zip(plan["coordinator"]["remote_hosts"], generated_tokens, strict=True):
        token = str(hostvars[host].get("launcher_relay_token") or generated)
        relays.append({"host": host, "address": plan["hosts"][host]["relay"]["address"], "token": token})
    return relays


def coordinator_tunnel_keys(plan, keys):
    """The tunnels' authorized_keys on the coordinator's VM: each tunneled host's public key (``keys``, one per
    host of the plan's coordinator.tunnel.hosts, in order) may forward the coordinator's port and listen on
    its own port of loopback, and do nothing else."""
    tunnel, port = plan["coordinator"]["tunnel"], plan["coordinator"]["port"]
    lines = [
        "# Written by Ansible (central_mcp.agents.coordinator): one key per host that reaches the coordinator\n",
        "# through an SSH tunnel; each may forward the coordinator's port and listen on its own port, nothing else.\n",
    ]
    for host, key in zip(tunnel["hosts"], keys, strict=True):
        options = (
            f'restrict,port-forwarding,command="/usr/sbin/nologin",permitopen="127.0.0.1:{port}",'
            f'permitlisten="127.0.0.1:{tunnel["ports"][host]}"'
        )
        lines.append(f"{options} {key['public']}\n")
    return "".join(lines)


class FilterModule:
    def filters(self):
        return {
            "coordinator_tunnel_keys": coordinator_tunnel_keys,
            "fleet_errors": fleet_errors,
            "agent_user_errors": agent_user_errors,
            "agent_users": agent_users,
            "launcher_fleet": launcher_fleet,
            "installs_due": installs_due,
            "coordinator_agents": coordinator_agents,
            "coordinator_relays": coordinator_relays,
        }
