# SPDX-License-Identifier: Apache-2.0
"""The one settings object, read from ``CENTRAL_MCP_*`` environment variables.

Everything configurable lives here, so the systemd unit (an ``EnvironmentFile``)
is the whole configuration and a bad value stops the service at start with a
message naming the variable, instead of surfacing later as a strange failure.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from central_mcp import tls
from central_mcp.relay_auth import Address, check_token

DEFAULT_DB = "/var/lib/central-mcp/central-mcp.db"
DEFAULT_RELAY_SOCKET = "/run/central-mcp-relay/relay.sock"
FORGE_KINDS = ("github", "gitlab")


class ConfigError(ValueError):
    """A setting has a value the coordinator cannot run with; the message names it."""


@dataclass(frozen=True)
class RelaySpec:
    """The pane relay of another VM: the agents of ``host`` are watched through ``address``."""

    host: str
    address: Address
    token: str = field(default="", repr=False)


@dataclass(frozen=True)
class ForgeSpec:
    """Where pull requests go: the forge's kind, its API URL, the token, and each repository's project there."""

    kind: str
    api_url: str
    token: str = field(repr=False)
    projects: tuple[tuple[str, str], ...] = ()  # (repository's inventory name, "owner/name" or GitLab's path)

    def project(self, repo: str) -> str | None:
        return dict(self.projects).get(repo)


@dataclass(frozen=True)
class Settings:
    """Runtime configuration. Build it with :meth:`from_env`; tests pass a dict."""

    db_path: Path = Path(DEFAULT_DB)
    backup_dir: Path = Path(DEFAULT_DB).parent / "backups"
    host: str = "127.0.0.1"
    port: int = 3000
    agents_file: Path | None = None
    api_token: str = field(default="", repr=False)
    public_url: str = "http://127.0.0.1:3000"
    liveness_s: float = 5.0
    assign_s: float = 30.0
    health_s: float = 10.0
    upkeep_s: float = 300.0
    stale_s: float = 120.0
    offline_s: float = 600.0
    backups_keep: int = 7
    log_level: str = "info"
    dashboard_host: str = "127.0.0.1"
    dashboard_port: int = 8000  # 0: no dashboard
    dashboard_token: str = field(default="", repr=False)
    dashboard_input: bool = False
    relay_socket: Path = Path(DEFAULT_RELAY_SOCKET)  # this VM's pane relay
    relays: tuple[RelaySpec, ...] = ()  # other VMs' relays (CENTRAL_MCP_RELAYS_FILE)
    machine_type: str = ""
    monthly_cost: float | None = None
    disk_warn_percent: float = 85.0  # /health warns when the data directory's filesystem is this full
    # How each agent kind's CLI shows in a command line (the launcher's kind files say): the processes the health
    # panel counts on this VM; none when unset.
    agent_processes: tuple[str, ...] = ()
    # Worker runtimes (agent-run): how often they heartbeat; three missed beats make an agent offline.
    heartbeat_s: float = 5.0
    # A working agent with no coordinator call and no new output on its screen this long is "quiet".
    quiet_s: float = 900.0
    # The Spot watcher: how often it reads the fleet's Spot VMs, where the Compute API and this VM's metadata
    # server (its service account's token) answer.
    spot_s: float = 15.0
    compute_url: str = "https://compute.googleapis.com/compute/v1"
    metadata_url: str = "http://metadata.google.internal"
    # Failed attempts (its CLI ended, its agent went offline) after which a task is FAILED.
    task_max_attempts: int = 3
    # Where to POST a one-line JSON message when an agent waits for a person, goes offline or a task fails.
    notify_url: str = field(default="", repr=False)  # a chat webhook URL is a secret
    # Each agent's notes and progress reports: this many a minute on average, up to the burst at once; 0: no limit.
    agent_writes_per_minute: int = 30
    agent_writes_burst: int = 10
    # Events and notes of finished tasks (and notes about no task) older than this are deleted; 0: kept forever.
    retention_days: int = 30
    # The host's certificate (chain) and key from the fleet CA: /mcp and /api serve HTTPS only, and the
    # dashboard too when it listens beyond loopback. None: plain HTTP.
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    # Names and addresses clients may call this coordinator by (Host, Origin), besides loopback and the public
    # URL's host: the fleet's inventory names and addresses.
    allowed_hosts: tuple[str, ...] = ()
    # The fleet CA: every TCP relay connection is TLS, its certificate checked against this CA alone.
    relay_ca_file: Path | None = None
    # With TLS on the private address: plain HTTP on this loopback address too, same port, for the VM's own
    # agents and checks (nothing leaves the machine there). None: the one listener.
    local_host: str | None = None
    # Where pull requests of pushed task branches go (CENTRAL_MCP_FORGE_FILE, a credential); None: none opened.
    forge: ForgeSpec | None = None

    @property
    def loopback(self) -> bool:
        """True when only this machine can reach the port (the safe default)."""
        return is_loopback(self.host)

    @property
    def tls(self) -> bool:
        """True when /mcp and /api serve HTTPS (a certificate and key are set)."""
        return self.tls_cert_file is not None

    @property
    def dashboard_tls(self) -> bool:
        """The dashboard serves HTTPS when it listens beyond loopback; on loopback (an SSH tunnel) it stays plain."""
        return self.tls and not is_loopback(self.dashboard_host)

    @property
    def runtime_offline_s(self) -> float:
        """No heartbeat from an agent's runtime for this long: the agent is offline (three missed beats)."""
        return 3 * self.heartbeat_s

    @property
    def dashboard_login_token(self) -> str:
        """The dashboard's login token: its own, else the API token (one secret fewer to manage)."""
        return self.dashboard_token or self.api_token

    @property
    def mcp_url(self) -> str:
        """Where agents connect: what the launcher writes into each agent's config."""
        return self.public_url.rstrip("/") + "/mcp"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read and validate every ``CENTRAL_MCP_*`` variable; raise :class:`ConfigError` on the first bad one."""
        env = os.environ if env is None else env
        db_path = Path(_get(env, "CENTRAL_MCP_DB", DEFAULT_DB))
        if not db_path.is_absolute():
            raise ConfigError(f"CENTRAL_MCP_DB={str(db_path)!r}: give an absolute path to the database file")
        backup_dir = Path(_get(env, "CENTRAL_MCP_BACKUP_DIR", str(db_path.parent / "backups")))
        host = _get(env, "CENTRAL_MCP_HOST", "127.0.0.1")
        port = _int(env, "CENTRAL_MCP_PORT", cls.port, low=1, high=65535)
        agents_raw = _get(env, "CENTRAL_MCP_AGENTS_FILE", "")
        api_token = _secret(env, "CENTRAL_MCP_API_TOKEN")
        tls_cert, tls_key = _tls_pair(env)
        url_host = f"[{host}]" if ":" in host else host
        scheme = "https" if tls_cert else "http"
        public_url = _get(env, "CENTRAL_MCP_PUBLIC_URL", f"{scheme}://{url_host}:{port}").rstrip("/")
        if not public_url.startswith(("http://", "https://")):
            raise ConfigError(f"CENTRAL_MCP_PUBLIC_URL={public_url!r}: must start with http:// or https://")
        if tls_cert and not public_url.startswith("https://"):
            raise ConfigError(
                f"CENTRAL_MCP_PUBLIC_URL={public_url!r}: the coordinator serves HTTPS only "
                "(CENTRAL_MCP_TLS_CERT_FILE is set): give an https:// URL"
            )
        settings = cls(
            db_path=db_path,
            backup_dir=backup_dir,
            host=host,
            port=port,
            agents_file=Path(agents_raw) if agents_raw else None,
            api_token=api_token,
            public_url=public_url,
            liveness_s=_float(env, "CENTRAL_MCP_LIVENESS_S", 5.0),
            assign_s=_float(env, "CENTRAL_MCP_ASSIGN_S", 30.0),
            health_s=_float(env, "CENTRAL_MCP_HEALTH_S", 10.0),
            upkeep_s=_float(env, "CENTRAL_MCP_UPKEEP_S", 300.0),
            stale_s=_float(env, "CENTRAL_MCP_STALE_S", 120.0),
            offline_s=_float(env, "CENTRAL_MCP_OFFLINE_S", 600.0),
            backups_keep=_int(env, "CENTRAL_MCP_BACKUPS_KEEP", 7, low=1, high=10000),
            log_level=_choice(env, "CENTRAL_MCP_LOG_LEVEL", "info", ("debug", "info", "warning", "error")),
            dashboard_host=_get(env, "CENTRAL_MCP_DASHBOARD_HOST", "127.0.0.1"),
            dashboard_port=_int(env, "CENTRAL_MCP_DASHBOARD_PORT", 8000, low=0, high=65535),
            dashboard_token=_secret(env, "CENTRAL_MCP_DASHBOARD_TOKEN"),
            dashboard_input=_choice(env, "CENTRAL_MCP_DASHBOARD_INPUT", "false", ("true", "false")) == "true",
            relay_socket=Path(_get(env, "CENTRAL_MCP_RELAY_SOCKET", DEFAULT_RELAY_SOCKET)),
            relays=_relays(env, "CENTRAL_MCP_RELAYS_FILE"),
            machine_type=_get(env, "CENTRAL_MCP_MACHINE_TYPE", ""),
            monthly_cost=_cost(env, "CENTRAL_MCP_MONTHLY_COST"),
            disk_warn_percent=_percent(env, "CENTRAL_MCP_DISK_WARN_PERCENT", 85.0),
            agent_processes=_words(env, "CENTRAL_MCP_AGENT_PROCESSES"),
            heartbeat_s=_float(env, "CENTRAL_MCP_HEARTBEAT_S", 5.0),
            quiet_s=_float(env, "CENTRAL_MCP_QUIET_S", 900.0),
            spot_s=_float(env, "CENTRAL_MCP_SPOT_S", 15.0),
            compute_url=_url(env, "CENTRAL_MCP_COMPUTE_URL") or "https://compute.googleapis.com/compute/v1",
            metadata_url=_url(env, "CENTRAL_MCP_METADATA_URL") or "http://metadata.google.internal",
            task_max_attempts=_int(env, "CENTRAL_MCP_TASK_MAX_ATTEMPTS", 3, low=1, high=100),
            notify_url=_url(env, "CENTRAL_MCP_NOTIFY_URL"),
            agent_writes_per_minute=_int(env, "CENTRAL_MCP_AGENT_WRITES_PER_MINUTE", 30, low=0, high=100000),
            agent_writes_burst=_int(env, "CENTRAL_MCP_AGENT_WRITES_BURST", 10, low=1, high=100000),
            retention_days=_int(env, "CENTRAL_MCP_RETENTION_DAYS", 30, low=0, high=36500),
            tls_cert_file=tls_cert,
            tls_key_file=tls_key,
            allowed_hosts=_hosts(env, "CENTRAL_MCP_ALLOWED_HOSTS"),
            relay_ca_file=_relay_ca(env, "CENTRAL_MCP_RELAY_CA_FILE"),
            local_host=_get(env, "CENTRAL_MCP_LOCAL_HOST", "") or None,
            forge=_forge(env, "CENTRAL_MCP_FORGE_FILE"),
        )
        if settings.local_host is not None:
            _check_local_host(settings)
        if settings.dashboard_port and settings.dashboard_port == settings.port:
            raise ConfigError(
                f"CENTRAL_MCP_DASHBOARD_PORT={settings.dashboard_port} is also CENTRAL_MCP_PORT: give the dashboard "
                "its own port (default 8000) or 0 to turn it off"
            )
        if settings.offline_s <= settings.stale_s:
            raise ConfigError(
                f"CENTRAL_MCP_OFFLINE_S={settings.offline_s:g} must be greater than "
                f"CENTRAL_MCP_STALE_S={settings.stale_s:g} (an agent goes stale before it goes offline)"
            )
        return settings

    def check_exposure(self) -> None:
        """Refuse to serve an unauthenticated REST API beyond this machine.

        Agents always need their own token for ``/mcp``; the REST API is open
        only when no API token is set, which is acceptable on loopback alone.
        """
        if not self.loopback and not self.api_token:
            raise ConfigError(
                f"CENTRAL_MCP_HOST={self.host!r} is reachable from other machines but CENTRAL_MCP_API_TOKEN is "
                "empty: set CENTRAL_MCP_API_TOKEN (a long random secret) or bind to 127.0.0.1"
            )
        if self.dashboard_port and not is_loopback(self.dashboard_host) and not self.dashboard_login_token:
            raise ConfigError(
                f"CENTRAL_MCP_DASHBOARD_HOST={self.dashboard_host!r} is reachable from other machines but no login "
                "token is set: set CENTRAL_MCP_DASHBOARD_TOKEN (or CENTRAL_MCP_API_TOKEN), or bind it to 127.0.0.1"
            )


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address; any other name or address counts as exposed."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _secret(env: Mapping[str, str], name: str) -> str:
    """``NAME``, or the content of the file named by ``NAME_FILE`` (systemd ``LoadCredential=``, a 0600 file).

    A file keeps the secret out of the unit, the environment of child
    processes and ``systemctl show``. Setting both is ambiguous and refused.
    """
    value = env.get(name, "").strip()
    path = env.get(f"{name}_FILE", "").strip()
    if value and path:
        raise ConfigError(f"{name} and {name}_FILE are both set: keep one")
    if not path:
        return value
    try:
        value = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{name}_FILE={path!r}: cannot read it: {exc}") from None
    if not value:
        raise ConfigError(f"{name}_FILE={path!r}: the file is empty")
    return value


def _relays(env: Mapping[str, str], name: str) -> tuple[RelaySpec, ...]:
    """Other VMs' relays from a JSON file (a systemd credential: it holds their tokens).

    ``{"relays": [{"host": "vm2", "address": "tcp:10.0.0.3:8765", "token": "..."}]}``
    """
    path = env.get(name, "").strip()
    if not path:
        return ()
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"{name}={path!r}: cannot read it as JSON: {exc}") from None
    entries = doc.get("relays") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        raise ConfigError(f'{name}={path!r}: expected {{"relays": [{{"host", "address", "token"}}, ...]}}')
    specs: list[RelaySpec] = []
    for number, entry in enumerate(entries, 1):
        where = f"{name}={path!r}, relay {number}"
        if not isinstance(entry, dict) or not isinstance(entry.get("host"), str) or not entry["host"]:
            raise ConfigError(f"{where}: each relay needs a host (the agents' host name in the agents file)")
        try:
            address = Address.parse(str(entry.get("address", "")))
            token = check_token(str(entry.get("token", "")), f"{where} ({entry['host']})")
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        if any(spec.host == entry["host"] for spec in specs):
            raise ConfigError(f"{where}: host {entry['host']!r} has two relays; keep one")
        specs.append(RelaySpec(entry["host"], address, token))
    return tuple(specs)


def _forge(env: Mapping[str, str], name: str) -> ForgeSpec | None:
    """The forge of the fleet's repositories from a JSON file (a systemd credential: it holds the token).

    ``{"kind": "github", "api_url": "https://api.github.com", "token": "...", "projects": {"app": "org/app"}}``
    (GitLab: ``"kind": "gitlab"``, ``https://gitlab.com/api/v4``, projects as ``group/subgroup/app``).
    """
    path = env.get(name, "").strip()
    if not path:
        return None
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"{name}={path!r}: cannot read it as JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f'{name}={path!r}: expected {{"kind", "api_url", "token", "projects"}}')
    kind, api_url, token, projects = doc.get("kind"), doc.get("api_url"), doc.get("token"), doc.get("projects")
    if kind not in FORGE_KINDS:
        raise ConfigError(f"{name}={path!r}: kind {kind!r:.40} is not one of {', '.join(FORGE_KINDS)}")
    if not isinstance(api_url, str) or not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", api_url):
        raise ConfigError(
            f"{name}={path!r}: api_url {api_url!r:.120} is not an http(s) URL, like https://api.github.com"
        )
    if api_url.startswith("http://") and not is_loopback(urlsplit(api_url).hostname or ""):
        raise ConfigError(
            f"{name}={path!r}: api_url {api_url!r} is plain HTTP beyond this machine: the token would cross the "
            "network in clear; give the forge's https:// URL"
        )
    if not isinstance(token, str) or len(token.strip()) < 8 or any(c.isspace() for c in token.strip()):
        raise ConfigError(f"{name}={path!r}: token must be the forge's API token (one word, from the Vault)")
    if not isinstance(projects, dict) or not projects:
        raise ConfigError(f"{name}={path!r}: projects must map each repository's inventory name to its forge project")
    for repo, project in projects.items():
        if not isinstance(project, str) or not re.fullmatch(
            r"[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)+", project
        ):
            raise ConfigError(
                f"{name}={path!r}: the project of repository {repo!r} is {project!r:.120}; expected owner/name "
                "(GitLab: group/subgroup/name)"
            )
    return ForgeSpec(kind, api_url, token.strip(), tuple(sorted(projects.items())))


def _tls_pair(env: Mapping[str, str]) -> tuple[Path | None, Path | None]:
    """The server's certificate and key files, both or neither, checked to load as a pair."""
    cert_name, key_name = "CENTRAL_MCP_TLS_CERT_FILE", "CENTRAL_MCP_TLS_KEY_FILE"
    cert, key = env.get(cert_name, "").strip(), env.get(key_name, "").strip()
    if not cert and not key:
        return None, None
    if not (cert and key):
        given, missing = (cert_name, key_name) if cert else (key_name, cert_name)
        raise ConfigError(
            f"{given} is set but {missing} is not: set both (the host's certificate from the fleet CA and its key) "
            "to serve HTTPS, or neither for plain HTTP"
        )
    try:
        tls.server_context(Path(cert), Path(key), cert_name, key_name)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return Path(cert), Path(key)


def _relay_ca(env: Mapping[str, str], name: str) -> Path | None:
    """The fleet CA's certificate for the relay client, checked to load; None when unset."""
    raw = env.get(name, "").strip()
    if not raw:
        return None
    try:
        tls.client_context(Path(raw), name)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return Path(raw)


def _check_local_host(settings: Settings) -> None:
    """CENTRAL_MCP_LOCAL_HOST: a loopback address beside a TLS listener on one address (not on all of them)."""
    if settings.local_host not in ("127.0.0.1", "::1"):
        raise ConfigError(
            f"CENTRAL_MCP_LOCAL_HOST={settings.local_host!r} must be a loopback address (127.0.0.1 or ::1): it "
            "serves plain HTTP"
        )
    if not settings.tls or settings.loopback:
        raise ConfigError(
            "CENTRAL_MCP_LOCAL_HOST is plain HTTP beside TLS on another address: set CENTRAL_MCP_TLS_CERT_FILE and "
            "CENTRAL_MCP_TLS_KEY_FILE and a CENTRAL_MCP_HOST beyond loopback, or leave it unset"
        )
    if settings.host in ("0.0.0.0", "::", ""):
        raise ConfigError(
            f"CENTRAL_MCP_HOST={settings.host!r} takes loopback too, so CENTRAL_MCP_LOCAL_HOST cannot listen beside "
            "it: give CENTRAL_MCP_HOST the private address other machines use"
        )


def _hosts(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """Comma-separated host names and IP addresses (IPv6 without brackets), without ports."""
    hosts = tuple(word.strip() for word in env.get(name, "").split(",") if word.strip())
    for host in hosts:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            if not re.fullmatch(r"[A-Za-z0-9_]([A-Za-z0-9_.-]{0,251}[A-Za-z0-9_])?", host):
                raise ConfigError(
                    f"{name}: {host!r} is not a host name or IP address; list names and addresses without ports "
                    "(any port is allowed), IPv6 without brackets, e.g. vm1,10.0.0.2,fd00::2"
                ) from None
    return hosts


def _url(env: Mapping[str, str], name: str) -> str:
    """An optional http(s) URL (a webhook); empty for none. Never shown in a message: a webhook URL is a secret."""
    raw = env.get(name, "").strip()
    if raw and (not raw.startswith(("http://", "https://")) or any(c.isspace() for c in raw)):
        raise ConfigError(f"{name}: expected an http:// or https:// URL on one line, like https://hooks.example/T/B")
    return raw


def _cost(env: Mapping[str, str], name: str) -> float | None:
    """An optional amount of money per month (the VM's price, shown as given; no currency conversion)."""
    raw = env.get(name, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected a number, like 97.09") from None
    if not 0 <= value < 10**7:
        raise ConfigError(f"{name}={raw!r}: expected a positive number, like 97.09")
    return value


def _percent(env: Mapping[str, str], name: str, default: float) -> float:
    """A share in percent, above 0 and at most 100."""
    raw = _get(env, name, str(default))
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected a percentage above 0 and at most 100, like {default:g}") from None
    if not 0 < value <= 100:
        raise ConfigError(f"{name}={raw!r}: expected a percentage above 0 and at most 100, like {default:g}")
    return value


def _words(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """A comma-separated list of command-line words (file names such as gemini.js)."""
    words = tuple(word.strip() for word in _get(env, name, "").split(",") if word.strip())
    bad = [word for word in words if not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", word)]
    if bad:
        raise ConfigError(f"{name}: {bad[0]!r} is not a command name (letters, digits, . _ -), e.g. claude,gemini.js")
    return words


def _get(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, "").strip()
    return value or default


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = _get(env, name, str(default))
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected a number of seconds, like {default:g}") from None
    if not 0 < value < 10**7:
        raise ConfigError(f"{name}={raw!r}: expected a positive number of seconds, like {default:g}")
    return value


def _int(env: Mapping[str, str], name: str, default: int, *, low: int, high: int) -> int:
    raw = _get(env, name, str(default))
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected a whole number between {low} and {high}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={raw!r}: expected a whole number between {low} and {high}")
    return value


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = _get(env, name, default).lower()
    if value not in choices:
        raise ConfigError(f"{name}={value!r}: expected one of {', '.join(choices)}")
    return value
