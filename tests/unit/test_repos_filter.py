# SPDX-License-Identifier: Apache-2.0
"""central_mcp_repos and the agents' repo: hostile URLs and branch names refused before any change."""

from __future__ import annotations

import subprocess

import pytest

from plugins.filter.repos import (
    branch_error,
    forge_errors,
    forge_file,
    repo_disk_gb,
    repo_errors,
    repo_plan,
    worktrees,
)

KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
TOKEN = "ghp_pushes_to_app_0123456789"
CA = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ2VudHJhbC1NQ1AgdGVzdA==\n-----END CERTIFICATE-----\n"
APP = {"url": "git@github.com:org/app.git", "branch": "main", "host_keys": [HOST_KEY], "key": KEY}
LAYOUT = {"dir": "/etc/central-mcp/repos", "mirror_dir": "/var/lib/central-mcp/repos",
          "author": "Agent {name} <agent-{lower}@central-mcp.invalid>"}  # fmt: skip


def test_a_good_fleet_has_no_errors_and_each_agent_gets_the_first_repository_unless_it_says() -> None:
    repos = {"app": APP, "docs": {**APP, "url": "ssh://git@git.example.com:2222/org/docs.git", "branch": "trunk"}}
    agents = [{"name": "A", "role": "x"}, {"name": "B", "role": "x", "repo": "docs", "author": "Bee <b@x.org>"},
              {"name": "C", "role": "x", "repo": "none"}]  # fmt: skip
    assert repo_errors(repos, agents) == []
    plan = repo_plan(repos, agents, LAYOUT)
    assert plan["agents"]["A"] == {
        "name": "app", "url": APP["url"], "base": "main", "author": "Agent A <agent-a@central-mcp.invalid>",
        "known_hosts": "/etc/central-mcp/repos/app.known_hosts", "protocols": "ssh",
    }  # fmt: skip
    assert plan["agents"]["B"]["author"] == "Bee <b@x.org>" and plan["agents"]["B"]["base"] == "trunk"
    assert "C" not in plan["agents"]
    assert plan["repos"]["app"]["known_hosts_text"] == f"github.com {HOST_KEY}\n"
    assert plan["repos"]["docs"]["known_hosts_text"] == f"[git.example.com]:2222 {HOST_KEY}\n"
    assert plan["repos"]["app"]["mirror"] == "/var/lib/central-mcp/repos/app.git"
    assert repo_plan({}, agents[:1], LAYOUT)["agents"] == {}  # no repositories: today's empty workspaces


@pytest.mark.parametrize(
    "url",
    [
        "ext::sh -c touch% /tmp/pwned", "-uhelp", "--upload-pack=touch /tmp/x", "file:///srv/app.git",
        "http://github.com/org/app.git", "https://user:token@github.com/org/app.git", "ftp://x/y",
        "https://github.com/org/app.git?x=1", "https://-x/y",
        "git@github.com:-oProxyCommand=x", "ssh://-oProxyCommand=x/y", "git@github.com:org/app.git; rm -rf /",
        "ssh://git@host/path with space", "", "fd::17",
    ],
)  # fmt: skip
def test_hostile_or_unusable_urls_are_refused_naming_them(url: str) -> None:
    repo = {"url": url, "token": TOKEN} if url.startswith("https://") else {**APP, "url": url}
    errors = repo_errors({"app": repo}, [])
    assert len(errors) == 1 and "central_mcp_repos.app.url" in errors[0], errors
    assert "token@" not in errors[0]  # credentials in a URL are never shown


def test_file_urls_only_where_tests_allow_them_and_without_keys() -> None:
    local = {"app": {"url": "file:///srv/git/app.git"}}
    assert repo_errors(local, [], allow_file=True) == []
    assert repo_errors(local, [])  # not in a real fleet


@pytest.mark.parametrize(
    "branch", ["-main", "a..b", "a b", "x.lock", ".hidden", "a/", "/a", "a//b", "a@{1}", "a~1", "a^", "a:b",
               "a?", "a*", "a[", "a\\b", "a.", "a\x07"],
)  # fmt: skip
def test_branch_names_git_would_refuse_are_refused(branch: str) -> None:
    errors = repo_errors({"app": {**APP, "branch": branch}}, [])
    assert len(errors) == 1 and "central_mcp_repos.app.branch" in errors[0], errors
    assert not git_takes(branch)


def git_takes(branch: str) -> bool:
    """git's own verdict: a name for a branch (--branch) and a valid ref under refs/heads/."""
    return all(
        subprocess.run(["git", "check-ref-format", *argv], capture_output=True).returncode == 0
        for argv in (["--branch", branch], [f"refs/heads/{branch}"])
    )


def test_a_branch_named_at_is_refused_though_git_would_read_it_as_head() -> None:
    assert branch_error("@") and git_takes("@")


@pytest.mark.parametrize("branch", ["main", "release/2.0", "feature/x_y-z", "v1.2.3", "trunk"])
def test_branch_names_git_takes_are_taken(branch: str) -> None:
    assert branch_error(branch) is None
    assert git_takes(branch)


def test_host_keys_and_a_deploy_key_are_required_and_the_key_is_never_shown() -> None:
    errors = repo_errors({"app": {**APP, "host_keys": [], "key": "hunter2-not-a-key"}}, [])
    assert any("host_keys must list" in e and "never trusted on first use" in e for e in errors), errors
    assert any(".key must be the repository's deploy key" in e for e in errors), errors
    assert not any("hunter2" in e for e in errors)
    bad_host_key = repo_errors({"app": {**APP, "host_keys": ["github.com ssh-ed25519 AAAA"]}}, [])
    assert len(bad_host_key) == 1 and "is not a public key" in bad_host_key[0]


def test_unknown_repo_names_authors_and_keys_are_refused() -> None:
    agents = [{"name": "A", "repo": "ap"}, {"name": "B", "author": "no email"}]
    errors = repo_errors({"app": {**APP, "password": "x", "token": "y"}, "none": APP, "../x": APP}, agents)
    assert any("unknown key(s) password" in e for e in errors)
    assert any("app: token are for HTTPS URLs; an SSH URL takes host_keys and key" in e for e in errors)
    assert any("'none' is not a repository name" in e for e in errors)
    assert any("'../x' is not a repository name" in e for e in errors)
    assert any("repo 'ap' is not in central_mcp_repos (known: app, none, ../x" in e for e in errors), errors
    assert any("author 'no email' must read 'Name <email>'" in e for e in errors)
    assert repo_errors("git@x:y", []) and repo_errors(None, []) == []


FORGE = {"kind": "github", "token": "ghp_0123456789abcdef"}
FORGE_REPOS = {
    "app": {"url": "git@github.com:org/app.git"},
    "lib": {"url": "ssh://git@gitlab.example:2222/g/sub/lib.git"},
}


def test_the_forge_file_gives_each_repository_its_project_from_its_url_unless_told() -> None:
    assert forge_errors({}, {}) == [] and forge_errors(FORGE, FORGE_REPOS) == []
    assert forge_file(FORGE, FORGE_REPOS) == {
        "kind": "github", "api_url": "https://api.github.com", "token": "ghp_0123456789abcdef",
        "projects": {"app": "org/app", "lib": "g/sub/lib"},
    }  # fmt: skip
    told = {**FORGE, "kind": "gitlab", "projects": {"lib": "group/lib"}}
    assert forge_file(told, FORGE_REPOS)["projects"] == {"app": "org/app", "lib": "group/lib"}
    assert forge_file(told, FORGE_REPOS)["api_url"] == "https://gitlab.com/api/v4"


@pytest.mark.parametrize(
    ("changes", "said"),
    [
        ({"kind": "gitea"}, "coordinator_forge.kind 'gitea' must be one of github, gitlab"),
        ({"api_url": "http://forge.example/api"}, "coordinator_forge.api_url 'http://forge.example/api' must be"),
        ({"api_url": "https://user:pw@forge.example/api"}, "must be the forge's https:// API URL"),
        ({"token": "short"}, "coordinator_forge.token must be the forge's API token"),
        ({"projects": {"docs": "org/docs"}}, "'docs' is not in central_mcp_repos (known: app, lib)"),
        ({"projects": {"app": "../../etc"}}, "coordinator_forge.projects.app '../../etc' must read owner/name"),
        ({"owner": "org"}, "coordinator_forge: unknown key(s) owner"),
    ],
)
def test_a_bad_forge_is_refused_naming_the_value_and_never_the_token(changes: dict, said: str) -> None:
    errors = forge_errors({**FORGE, **changes}, FORGE_REPOS)
    assert any(said in e for e in errors), errors
    assert not any("ghp_" in e or "short" in e.split("token")[-1] for e in errors)


def test_a_forge_without_repositories_or_a_readable_project_says_what_to_set() -> None:
    assert forge_errors(FORGE, {}) == [
        "coordinator_forge is set but central_mcp_repos is empty: pull requests are opened for the branches of the "
        "fleet's repositories"
    ]
    (error,) = forge_errors(FORGE, {"local": {"url": "file:///srv/app.git"}})
    assert "set coordinator_forge.projects.local (owner/name)" in error


def test_the_disk_counts_each_used_repositorys_mirror_once_and_a_worktree_per_agent() -> None:
    repos = {"app": APP, "big": {**APP, "disk_gb": 6, "worktree_gb": 1.5}, "unused": {**APP, "disk_gb": 100}}
    agents = [{"name": "A"}, {"name": "B"}, {"name": "C", "repo": "big"}, {"name": "D", "repo": "none"}]
    assert repo_disk_gb(repos, agents) == (1 + 2 * 0.5) + (6 + 1.5)
    assert repo_disk_gb({}, agents) == 0 and repo_disk_gb(repos, []) == 0


@pytest.mark.parametrize("size", [-1, "big", True, 20000])
def test_disk_sizes_must_be_numbers_of_gb(size: object) -> None:
    errors = repo_errors({"app": {**APP, "disk_gb": size}}, [])
    assert errors == [f"central_mcp_repos.app.disk_gb {str(size)!r:.40} must be a number of GB from 0 to 10000"]


def test_an_https_repository_pushes_with_its_token_as_a_credential_and_its_private_ca() -> None:
    repos = {"app": {"url": "https://git.example.com/org/app.git", "token": TOKEN, "username": "deploy", "ca": CA}}
    assert repo_errors(repos, [{"name": "A"}]) == []
    plan = repo_plan(repos, [{"name": "A"}], LAYOUT)
    assert plan["agents"]["A"] == {
        "name": "app", "url": "https://git.example.com/org/app.git", "base": "main",
        "author": "Agent A <agent-a@central-mcp.invalid>", "known_hosts": "/etc/central-mcp/repos/app.known_hosts",
        "protocols": "https", "username": "deploy", "ca": "/etc/central-mcp/repos/app.ca.pem",
    }  # fmt: skip
    assert TOKEN not in str(plan["agents"])  # the runtime's spec names no token: the unit's credential holds it
    planned = plan["repos"]["app"]
    assert (planned["token_file"], planned["token"], planned["known_hosts_text"]) == (
        "/etc/central-mcp/repos/app.token", TOKEN + "\n", "",
    )  # fmt: skip
    (repo,) = worktrees(plan, [{"name": "A", "workdir": "/w/A"}], "agent")["repos"]
    assert (repo["token_file"], repo["username"], repo["ca_file"], repo["key_file"]) == (
        "/etc/central-mcp/repos/app.token", "deploy", "/etc/central-mcp/repos/app.ca.pem", "",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "said"),
    [
        ({"token": None}, "app.token must be a token that may push"),
        ({"token": "two words"}, "app.token must be a token that may push"),
        ({"key": "k", "host_keys": []}, "app: host_keys, key are for SSH URLs; an HTTPS URL takes token"),
        ({"username": "a b"}, "app.username 'a b' must be a user name"),
        ({"ca": "not a certificate"}, "app.ca must be the PEM certificate(s)"),
    ],
)
def test_a_bad_https_repository_is_refused_naming_the_value_never_the_token(changes: dict, said: str) -> None:
    repo = {"url": "https://git.example.com/org/app.git", "token": TOKEN, **changes}
    errors = repo_errors({"app": {k: v for k, v in repo.items() if v is not None}}, [])
    assert any(said in e for e in errors) and not any(TOKEN in e for e in errors), errors
