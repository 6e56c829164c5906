# SPDX-License-Identifier: Apache-2.0
"""Filters that turn the inventory's fleet description into what the launcher deploys.

`fleet_errors` checks what argument specs cannot (names, uniqueness, env keys),
so the role can fail before any change with every bad value named.
`launcher_fleet` computes, per agent, the tmux window command, the content of
its 0600 env file, its kind's config document and a revision digest that
changes whenever any of those change (so tmux_agents restarts that agent only).
"""

import hashlib
import json
import re
import shlex

NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")
ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
RESERVED = {"control", "logs"}
AGENT_KEYS = ("name", "role", "model", "kind", "env", "command", "workdir")
# Model names as providers spell them: claude-sonnet-4-5, glm-4.6, org/model:tag.
MODEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}$")


def fleet_errors(agents, kinds=None):
    """Every problem in the fleet description, as messages naming the bad value."""
    errors = []
    if not isinstance(agents, list):
        return [f"central_mcp_agents must be a list of agents, got {type(agents).__name__}"]
    seen = {}
    for position, agent in enumerate(agents, 1):
        where = f"central_mcp_agents[{position}]"
        if not isinstance(agent, dict):
            errors.append(f"{where} must be a dict with name and role, got {agent!r:.80}")
            continue
        unknown = sorted(str(key) for key in agent if key not in AGENT_KEYS)
        if unknown:
            errors.append(f"{where}: unknown key(s) {', '.join(unknown)}: allowed are {', '.join(AGENT_KEYS)}")
        if not isinstance(agent.get("role"), str) or not agent["role"].strip():
            errors.append(
                f"{where}: role {agent.get('role')!r:.80} must be a non-empty string (what the agent works on)"
            )
        name = agent.get("name")
        if not isinstance(name, str) or not NAME_RE.match(name):
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
        if model is not None and (not isinstance(model, str) or not MODEL_RE.match(model)):
            errors.append(f"{where}: model {model!r:.80} is not a model name (letters, digits and . _ : / @ -)")
        kind = agent.get("kind", "claude")
        if kinds is not None and kind not in kinds:
            errors.append(f"{where}: kind {kind!r:.40} is unknown: use one of {', '.join(sorted(kinds))}")
        for key, value in (agent.get("env") or {}).items():
            if not isinstance(key, str) or not ENV_KEY_RE.match(key):
                errors.append(f"{where}: env key {key!r:.80} is not a variable name ([A-Za-z_][A-Za-z0-9_]*)")
            elif not isinstance(value, (str, int, float)) or isinstance(value, bool):
                errors.append(f"{where}: env {key} must be a string, got {type(value).__name__}")
            elif any(ch in str(value) for ch in "\n\r\0"):
                errors.append(f"{where}: env {key} contains a newline or NUL: env values are one line")
    return errors


def _fill(value, fields):
    """Put per-agent fields into a kind's config document ({name} style); empty list items drop out."""
    if isinstance(value, str):
        return value.format(**fields)
    if isinstance(value, list):
        filled = [_fill(item, fields) for item in value]
        return [item for item in filled if item != ""]
    if isinstance(value, dict):
        return {_fill(key, fields): _fill(item, fields) for key, item in value.items()}
    return value


def launcher_fleet(agents, kinds, settings, secrets):
    """Per agent: name, command, workdir, env_file, config_path, config, revision.

    settings: libexec_dir, config_dir, home, workspace_root, coordinator_url,
    default_model, backoff_s, backoff_max_s, healthy_after_s.
    secrets: tokens (name -> token), api_key (default ANTHROPIC_API_KEY).
    """
    errors = fleet_errors(agents, kinds)
    if errors:
        raise ValueError("; ".join(errors))
    fleet = []
    for agent in agents:
        name = agent["name"]
        kind = kinds[agent.get("kind", "claude")]
        model = agent.get("model") or settings["default_model"]
        workdir = agent.get("workdir") or f"{settings['workspace_root']}/{name}"
        state_dir = f"{settings['home']}/.central-mcp/{name}"
        env = {
            "AGENT_NAME": name,
            "AGENT_ROLE": str(agent.get("role", "")),
            "AGENT_MODEL": model,
            "AGENT_KIND": agent.get("kind", "claude"),
            "CENTRAL_MCP_URL": settings["coordinator_url"],
        }
        if kind.get("api_key_env") and secrets.get("api_key"):
            env[kind["api_key_env"]] = secrets["api_key"]
        if kind.get("config_dir_env"):
            env[kind["config_dir_env"]] = state_dir
        env.update({key: str(value) for key, value in (agent.get("env") or {}).items()})
        api_key = env.get(kind.get("api_key_env") or "", "")
        fields = {
            "name": name,
            "model": model,
            "workdir": workdir,
            "url": settings["coordinator_url"],
            "token": secrets.get("tokens", {}).get(name, ""),
            "api_key_suffix": api_key[-20:],
        }
        config_dir = f"{settings['config_dir']}/{name}"
        argv = [_fill(part, fields) for part in kind["argv"]]
        if agent.get("command"):
            argv = shlex.split(agent["command"])
        run = [
            f"{settings['libexec_dir']}/agent-run",
            "--name", name,
            "--env-file", f"{config_dir}.env",
            "--backoff", str(settings["backoff_s"]),
            "--backoff-max", str(settings["backoff_max_s"]),
            "--healthy-after", str(settings["healthy_after_s"]),
        ]  # fmt: skip
        config = _fill(kind.get("config") or {}, fields)
        if config:
            run += ["--merge-json", f"{config_dir}.{kind['config_suffix']}:{state_dir}/{kind['config_file']}"]
        command = shlex.join(run + ["--"] + argv)
        env_file = "".join(f"{key}={value}\n" for key, value in env.items())
        digest = hashlib.sha256(json.dumps([command, env_file, config, workdir], sort_keys=True).encode())
        fleet.append(
            {
                "name": name,
                "kind": agent.get("kind", "claude"),
                "command": command,
                "workdir": workdir,
                "state_dir": state_dir,
                "env_file": env_file,
                "config_path": f"{config_dir}.{kind['config_suffix']}" if config else "",
                "config": config,
                "revision": digest.hexdigest()[:16],
            }
        )
    return fleet


def fleet_by_host(hostvars, hosts):
    """Every agent of the given hosts as {host, agent}: the whole fleet, for the coordinator."""
    return [
        {"host": host, "agent": agent} for host in hosts for agent in hostvars[host].get("central_mcp_agents") or []
    ]


class FilterModule:
    def filters(self):
        return {"fleet_errors": fleet_errors, "launcher_fleet": launcher_fleet, "fleet_by_host": fleet_by_host}
