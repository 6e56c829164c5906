# SPDX-License-Identifier: Apache-2.0
"""The fleet's repositories (central_mcp_repos) and which agent works on which (each agent's ``repo:``).

`repo_errors` checks them before any change, naming every bad value and never
showing a key: URLs limited to ``ssh://``, ``user@host:path`` (and
``file://`` only where a test allows it), branch names as ``git
check-ref-format --branch`` takes them, the server's host keys pinned (never
trust on first use), a deploy key per repository, and ``repo:`` names that
exist. `repo_plan` says, per repository, where its key, pinned host keys and
mirror live on the VM and, per agent, what its runtime is told (the
repository as task_branch.py takes it: name, URL, base, author, known_hosts;
the key reaches the agent's unit as a credential, never a path it could share).
"""

import re

from ansible_collections.central_mcp.agents.plugins.module_utils.git_env import protocol

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
NONE = "none"  # an agent's ``repo: none``: an empty workspace, as before repositories
HOST_RE = r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]"
USER_RE = r"[A-Za-z0-9._-]{1,64}"
PATH_RE = r"[A-Za-z0-9._~/+-]{1,500}"
SSH_URL_RE = re.compile(
    rf"ssh://(?:(?P<user>{USER_RE})@)?(?P<host>{HOST_RE})(?::(?P<port>[0-9]{{1,5}}))?/(?P<path>{PATH_RE})"
)
SCP_URL_RE = re.compile(rf"(?P<user>{USER_RE})@(?P<host>{HOST_RE}):(?P<path>(?!-){PATH_RE})")
FILE_URL_RE = re.compile(rf"file:///{PATH_RE}")
HTTPS_URL_RE = re.compile(rf"https://(?P<host>{HOST_RE})(?::(?P<port>[0-9]{{1,5}}))?/(?P<path>{PATH_RE})")
TOKEN_RE = re.compile(r"[^\s]{8,4096}")
CERT_RE = re.compile(r"(-----BEGIN CERTIFICATE-----\n[A-Za-z0-9+/=\n]+-----END CERTIFICATE-----\n?)+")
KEY_TYPES = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa",
             "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com")  # fmt: skip
HOST_KEY_RE = re.compile(
    rf"(?P<type>{'|'.join(re.escape(t) for t in KEY_TYPES)}) (?P<key>[A-Za-z0-9+/]{{32,}}={{0,3}})"
)
PRIVATE_KEY_RE = re.compile(r"-----BEGIN (OPENSSH|RSA|EC) PRIVATE KEY-----\n[\s\S]+\n-----END \1 PRIVATE KEY-----\n?")
AUTHOR_RE = re.compile(r"[^<>\n\0]{1,100} <[^<>\s@]{1,64}@[^<>\s@]{1,190}>")
SSH_KEYS = ("host_keys", "key")
HTTPS_KEYS = ("token", "username", "ca")
REPO_KEYS = ("url", "branch", *SSH_KEYS, *HTTPS_KEYS, "disk_gb", "worktree_gb")
# What a repository takes on a VM's disk unless its entry says: its mirror (the history, all of it; `git
# count-objects -vH` gives size-pack) once per VM, and one checkout of its files per agent that works on it (a
# worktree shares the mirror's objects: benchmarks/repo_disk.py measured 50 MB for a 300 MB history, where a
# full clone takes 350 MB).
REPO_DISK_GB = {"disk_gb": 1.0, "worktree_gb": 0.5}


def branch_error(name):
    """Why git check-ref-format --branch would refuse ``name`` (its rules, for refs/heads/<name>), or None."""
    if not isinstance(name, str) or not name:
        return "is empty"
    if name.startswith("-"):
        return "starts with '-'"
    if name == "@" or "@{" in name:
        return "contains '@{' or is '@'"
    if ".." in name or "//" in name or name.startswith("/") or name.endswith("/") or name.endswith("."):
        return "contains '..' or '//', or starts or ends with '/', or ends with '.'"
    if any(part.startswith(".") or part.endswith(".lock") for part in name.split("/")):
        return "has a part starting with '.' or ending with '.lock'"
    if any(ord(c) < 0x20 or c in " ~^:?*[\\\x7f" for c in name):
        return "contains a space, a control character or one of ~ ^ : ? * [ \\"
    return None


def _url_error(url, allow_file):
    if not isinstance(url, str) or not url or len(url) > 600:
        return "must be the repository's URL"
    if url.startswith("-") or "::" in url or any(ord(c) < 0x21 or c == "\x7f" for c in url):
        return "starts with '-', names a git transport helper ('::') or holds a space or control character"
    if url.startswith("http://"):
        return "is plain HTTP: the token would cross the network in clear; give its https:// or SSH URL"
    if url.startswith("https://"):
        if "@" in url.split("/", 3)[2]:
            return "holds credentials: give the token as the repository's token (from the Vault), never in the URL"
        if not HTTPS_URL_RE.fullmatch(url):
            return "is not an HTTPS URL git takes: https://host[:port]/path (letters, digits, . _ ~ / + -)"
        return None
    if url.startswith("file://"):
        return None if allow_file and FILE_URL_RE.fullmatch(url) else "is a file:// URL: give the server's SSH URL"
    if not (SSH_URL_RE.fullmatch(url) or SCP_URL_RE.fullmatch(url)):
        return "is not an SSH URL: use ssh://user@host[:port]/path or user@host:path (letters, digits, . _ ~ / + -)"
    return None


def ssh_host(url):
    """The known_hosts name of an SSH URL's server: host, or [host]:port for a port other than 22."""
    found = SSH_URL_RE.fullmatch(url) or SCP_URL_RE.fullmatch(url)
    if not found:
        return None
    port = found.groupdict().get("port")
    host = found["host"]
    return f"[{host.strip('[]')}]:{port}" if port and port != "22" else host


def repo_errors(repos, agents, allow_file=False):
    """Every problem in central_mcp_repos and the agents' ``repo:``, as messages naming the bad value (never a key)."""
    errors = []
    if repos is None:
        repos = {}
    if not isinstance(repos, dict):
        return [f"central_mcp_repos must be a mapping of repository names to url, branch, host_keys and key, "
                f"got {type(repos).__name__}"]  # fmt: skip
    for name, repo in repos.items():
        where = f"central_mcp_repos.{name}"
        if not isinstance(name, str) or not NAME_RE.fullmatch(name) or name == NONE:
            errors.append(f"central_mcp_repos: {str(name)!r:.80} is not a repository name: 1-64 letters, digits, "
                          f". _ -, not '{NONE}'")  # fmt: skip
            continue
        if not isinstance(repo, dict):
            errors.append(f"{where} must be a mapping with url, branch, host_keys and key")
            continue
        unknown = sorted(str(key) for key in repo if key not in REPO_KEYS)
        if unknown:
            errors.append(f"{where}: unknown key(s) {', '.join(unknown)}: allowed are {', '.join(REPO_KEYS)}")
        for field, default in REPO_DISK_GB.items():
            size = repo.get(field, default)
            if isinstance(size, bool) or not isinstance(size, (int, float)) or not 0 <= size <= 10000:
                errors.append(f"{where}.{field} {str(size)!r:.40} must be a number of GB from 0 to 10000")
        url = repo.get("url")
        why = _url_error(url, allow_file)
        if why:  # credentials someone put in the URL are not shown
            errors.append(f"{where}.url {re.sub(r'://[^/@]*@', '://***@', str(url))!r:.120} {why}")
        branch = repo.get("branch", "main")
        why = branch_error(branch)
        if why:
            errors.append(f"{where}.branch {str(branch)!r:.80} is not a branch name: it {why}")
        if isinstance(url, str) and url.startswith("file://"):
            continue  # a test's local repository: no server, no key
        if isinstance(url, str) and url.startswith("https://"):
            errors += _https_errors(where, repo)
            continue
        wrong = sorted(key for key in HTTPS_KEYS if key in repo)
        if wrong:
            errors.append(f"{where}: {', '.join(wrong)} are for HTTPS URLs; an SSH URL takes host_keys and key")
        keys = repo.get("host_keys")
        if not isinstance(keys, list) or not keys:
            errors.append(f"{where}.host_keys must list the server's SSH host keys ('ssh-ed25519 AAAA...', from "
                          f"ssh-keyscan checked against the forge's published fingerprints): they are pinned, "
                          f"never trusted on first use")  # fmt: skip
        else:
            errors += [f"{where}.host_keys entry {str(k)!r:.60} is not a public key ('TYPE BASE64', TYPE one of "
                       f"{', '.join(KEY_TYPES[:3])}, ...)" for k in keys if not isinstance(k, str)
                       or not HOST_KEY_RE.fullmatch(k.strip())]  # fmt: skip
        key = repo.get("key")
        if not isinstance(key, str) or not PRIVATE_KEY_RE.fullmatch(key.strip() + "\n"):
            errors.append(f"{where}.key must be the repository's deploy key, an SSH private key in OpenSSH or PEM "
                          f"format, from the Vault (its value is not shown)")  # fmt: skip
    for position, agent in enumerate(agents or [], 1):
        if not isinstance(agent, dict):
            continue
        where = f"central_mcp_agents[{position}] ({agent.get('name')})"
        chosen = agent.get("repo")
        if chosen is not None and chosen != NONE and chosen not in repos:
            known = ", ".join(map(str, repos)) or "none: central_mcp_repos is empty"
            errors.append(f"{where}: repo {str(chosen)!r:.80} is not in central_mcp_repos (known: {known}; "
                          f"'{NONE}' for an empty workspace)")  # fmt: skip
        author = agent.get("author")
        if author is not None and (not isinstance(author, str) or not AUTHOR_RE.fullmatch(author)):
            errors.append(f"{where}: author {str(author)!r:.80} must read 'Name <email>' (its commits' author)")
    return errors


def _https_errors(where, repo):
    """An HTTPS repository: a token that may push (never shown), an optional user name and private CA."""
    errors = []
    wrong = sorted(key for key in SSH_KEYS if key in repo)
    if wrong:
        errors.append(f"{where}: {', '.join(wrong)} are for SSH URLs; an HTTPS URL takes token (and username, ca)")
    token = repo.get("token")
    if not isinstance(token, str) or not TOKEN_RE.fullmatch(token.strip()):
        errors.append(f"{where}.token must be a token that may push to the repository, one word from the Vault "
                      f"(its value is not shown)")  # fmt: skip
    username = repo.get("username", "")
    if not isinstance(username, str) or (username and not re.fullmatch(USER_RE, username)):
        errors.append(f"{where}.username {str(username)!r:.80} must be a user name (letters, digits, . _ -)")
    ca = repo.get("ca", "")
    if ca and (not isinstance(ca, str) or not CERT_RE.fullmatch(ca.strip() + "\n")):
        errors.append(f"{where}.ca must be the PEM certificate(s) of the CA that signed the server's certificate")
    return errors


def repo_plan(repos, agents, layout):
    """Where each repository lives on the VM, and each agent's repository as its runtime is told.

    layout: ``dir`` (the repositories' root-owned directory: keys, pinned host keys), ``mirror_dir``,
    ``author`` (the default author, with ``{name}`` and ``{lower}``) and ``allow_file`` (tests).
    Returns {'repos': {name: {...}}, 'agents': {agent name: {...}}}.
    """
    repos = repos or {}
    planned = {}
    for name, repo in repos.items():
        url = repo["url"]
        host = ssh_host(url)
        planned[name] = {
            "name": name,
            "url": url,
            "base": repo.get("branch", "main"),
            "key_file": f"{layout['dir']}/{name}.key",
            "known_hosts": f"{layout['dir']}/{name}.known_hosts",
            "known_hosts_text": "".join(f"{host} {k.strip()}\n" for k in repo.get("host_keys") or []) if host else "",
            "key": (repo.get("key") or "").strip() + "\n" if repo.get("key") else "",
            "mirror": f"{layout['mirror_dir']}/{name}.git",
            "protocols": protocol(url),
            "token_file": f"{layout['dir']}/{name}.token",
            "token": (repo.get("token") or "").strip() + "\n" if repo.get("token") else "",
            "username": repo.get("username") or "",
            "ca_file": f"{layout['dir']}/{name}.ca.pem" if repo.get("ca") else "",
            "ca": repo["ca"].strip() + "\n" if repo.get("ca") else "",
        }
    first = next(iter(repos), None)
    chosen = {}
    for agent in agents or []:
        name = agent["name"]
        pick = agent.get("repo", first)
        if pick is None or pick == NONE:
            continue
        repo = planned[pick]
        author = agent.get("author") or layout["author"].format(name=name, lower=name.lower())
        chosen[name] = {
            "name": pick, "url": repo["url"], "base": repo["base"], "author": author,
            "known_hosts": repo["known_hosts"], "protocols": repo["protocols"],
            **({"username": repo["username"], "ca": repo["ca_file"]} if repo["protocols"] == "https" else {}),
        }  # fmt: skip
    return {"repos": planned, "agents": chosen}


def repo_disk_gb(repos, agents):
    """GB the repositories of these agents take on their VM: each one's mirror once, and a worktree per agent."""
    repos = repos or {}
    first = next(iter(repos), None)
    agents_on = {}
    for agent in agents or []:
        pick = agent.get("repo", first)
        if pick in repos:  # (repo_errors refuses any other name before this counts)
            agents_on[pick] = agents_on.get(pick, 0) + 1
    total = 0.0
    for name, count in agents_on.items():
        sizes = {**REPO_DISK_GB, **{k: v for k, v in repos[name].items() if k in REPO_DISK_GB}}
        total += float(sizes["disk_gb"]) + count * float(sizes["worktree_gb"])
    return round(total, 2)


def worktrees(plan, fleet, console_user):
    """repo_worktrees' arguments: the repositories this host's agents use, and each such agent's workspace."""
    chosen = plan.get("agents", {})
    used = sorted({repo["name"] for repo in chosen.values()})
    fields = ("name", "url", "base", "mirror", "key_file", "known_hosts", "token_file", "username", "ca_file")
    repos = [{key: plan["repos"][name][key] for key in fields} for name in used]
    for repo in repos:
        repo["key_file"] = repo["key_file"] if plan["repos"][repo["name"]]["key"] else ""
        repo["token_file"] = repo["token_file"] if plan["repos"][repo["name"]]["token"] else ""
    trees = [
        {"agent": agent["name"], "repo": chosen[agent["name"]]["name"], "path": agent["workdir"],
         "owner": agent.get("user") or console_user, "author": chosen[agent["name"]]["author"]}
        for agent in fleet
        if agent["name"] in chosen
    ]  # fmt: skip
    return {"repos": repos, "worktrees": trees}


FORGE_KEYS = ("kind", "api_url", "token", "projects")
FORGE_API = {"github": "https://api.github.com", "gitlab": "https://gitlab.com/api/v4"}
PROJECT_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*(?:/[A-Za-z0-9_][A-Za-z0-9_.-]*)+")
FORGE_URL_RE = re.compile(
    r"https://[^\s/?#@]+(?:/[^\s?#]*)?|http://(?:127\.0\.0\.1|localhost|\[::1\])(?::[0-9]+)?(?:/[^\s?#]*)?"
)


def forge_project(url):
    """The forge's project of a repository's SSH URL: its path without ``.git`` (org/app, group/sub/app)."""
    found = SSH_URL_RE.fullmatch(url) or SCP_URL_RE.fullmatch(url) or HTTPS_URL_RE.fullmatch(url)
    path = found["path"] if found else ""
    return path.strip("/").removesuffix(".git")


def forge_errors(forge, repos):
    """Every problem in coordinator_forge (the forge that gets the pull requests), never showing its token."""
    if not forge:
        return []
    if not isinstance(forge, dict):
        return [
            f"coordinator_forge must be a mapping with kind, api_url, token and projects, got {type(forge).__name__}"
        ]
    errors = []
    unknown = sorted(str(key) for key in forge if key not in FORGE_KEYS)
    if unknown:
        errors.append(f"coordinator_forge: unknown key(s) {', '.join(unknown)}: allowed are {', '.join(FORGE_KEYS)}")
    kind = forge.get("kind")
    if kind not in FORGE_API:
        errors.append(f"coordinator_forge.kind {str(kind)!r:.40} must be one of {', '.join(FORGE_API)}")
    api_url = forge.get("api_url", FORGE_API.get(kind, ""))
    if not isinstance(api_url, str) or not FORGE_URL_RE.fullmatch(api_url):
        errors.append(f"coordinator_forge.api_url {str(api_url)!r:.120} must be the forge's https:// API URL "
                      f"(e.g. {FORGE_API['github']}, {FORGE_API['gitlab']}, https://ghe.example/api/v3)")  # fmt: skip
    token = forge.get("token")
    if not isinstance(token, str) or len(token.strip()) < 8 or len(token.split()) != 1:
        errors.append("coordinator_forge.token must be the forge's API token, one word from the Vault "
                      "(its value is not shown)")  # fmt: skip
    repos = repos or {}
    if not repos:
        errors.append("coordinator_forge is set but central_mcp_repos is empty: pull requests are opened for the "
                      "branches of the fleet's repositories")  # fmt: skip
    projects = forge.get("projects") or {}
    if not isinstance(projects, dict):
        return errors + ["coordinator_forge.projects must map repository names to the forge's owner/name"]
    for name, project in projects.items():
        if name not in repos:
            errors.append(f"coordinator_forge.projects: {str(name)!r:.80} is not in central_mcp_repos "
                          f"(known: {', '.join(map(str, repos)) or 'none'})")  # fmt: skip
        elif not isinstance(project, str) or not PROJECT_RE.fullmatch(project):
            errors.append(f"coordinator_forge.projects.{name} {str(project)!r:.120} must read owner/name "
                          f"(GitLab: group/subgroup/name)")  # fmt: skip
    for name, repo in repos.items():
        if name not in projects and isinstance(repo, dict) and isinstance(repo.get("url"), str):
            if not PROJECT_RE.fullmatch(forge_project(repo["url"])):
                errors.append(f"coordinator_forge: no project of repository {name!r} can be read from its URL "
                              f"{repo['url']!r:.120}: set coordinator_forge.projects.{name} (owner/name)")  # fmt: skip
    return errors


def forge_file(forge, repos):
    """The coordinator's forge credential (CENTRAL_MCP_FORGE_FILE): kind, API URL, token, each repository's project."""
    projects = forge.get("projects") or {}
    return {
        "kind": forge["kind"],
        "api_url": forge.get("api_url") or FORGE_API[forge["kind"]],
        "token": forge["token"].strip(),
        "projects": {name: projects.get(name) or forge_project(repo["url"]) for name, repo in (repos or {}).items()},
    }


class FilterModule:
    def filters(self):
        return {
            "repo_errors": repo_errors, "repo_plan": repo_plan, "worktrees": worktrees, "repo_disk_gb": repo_disk_gb,
            "forge_errors": forge_errors, "forge_file": forge_file,
        }  # fmt: skip
