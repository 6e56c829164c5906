#!/usr/bin/python
# SPDX-License-Identifier: Apache-2.0
"""Ansible module: one mirror per repository on a VM, one worktree per agent sharing its objects."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: repo_worktrees
short_description: Mirror the fleet's repositories on a VM and give each agent a worktree of its own
version_added: "0.3.0"
description:
  - For each repository of O(repos), keeps a bare mirror clone on the VM, made with the repository's deploy
    key and its pinned host keys (never trusted on first use), and brings it up to date on every run.
    The mirror never prunes objects (C(gc.auto=0), C(gc.pruneExpire=never)), since the worktrees borrow them.
  - For each agent of O(worktrees), makes its workspace a clone of the mirror that shares the mirror's objects
    (C(git clone --shared), so only what the agent commits is its own), on the repository's base branch, with the
    repository's URL as C(origin) (the agent fetches and pushes there itself, with its own credential) and the
    agent's commit identity; then gives it to the agent's user.
  - A workspace that is already a git repository is left as it is. A workspace that holds files but no
    repository fails the run before anything is changed, naming it, and nothing in it is ever overwritten.
  - Runs git on the target (the launcher installs it). Keys are read from files only root reads, and no key or
    token is ever on a command line or in the module's result.
options:
  repos:
    description: The repositories used on this VM.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: The repository's name in C(central_mcp_repos).
        type: str
        required: true
      url:
        description: Its SSH or HTTPS URL (V(file://) in tests).
        type: str
        required: true
      base:
        description: The branch worktrees start on.
        type: str
        required: true
      mirror:
        description: Path of the bare mirror clone.
        type: path
        required: true
      key_file:
        description: The deploy key's file (root's, 0600) of an SSH URL; empty for other URLs.
        type: path
        default: ""
      known_hosts:
        description: The server's pinned host keys, as a known_hosts file (SSH URLs).
        type: path
        default: ""
      token_file:
        description: The token's file (root's, 0600) of an HTTPS URL, read by git's credential helper when the
          server asks (never on a command line or in a URL).
        type: path
        default: ""
      username:
        description: The user name sent with the token (HTTPS); empty for V(x-access-token), which GitHub takes.
        type: str
        default: ""
      ca_file:
        description: A private CA's certificate that verifies the HTTPS server (a self-hosted forge); empty for the
          system's CAs.
        type: path
        default: ""
  worktrees:
    description: The agents' workspaces.
    type: list
    elements: dict
    required: true
    suboptions:
      agent:
        description: The agent's name (for messages).
        type: str
        required: true
      repo:
        description: The name of its repository in O(repos).
        type: str
        required: true
      path:
        description: Its workspace.
        type: path
        required: true
      owner:
        description: The user that owns the workspace (the agent's own user).
        type: str
        required: true
      author:
        description: The author of its commits, C(Name <email>).
        type: str
        required: true
attributes:
  check_mode:
    support: full
    description:
      - Reports the mirrors it would clone and the worktrees it would make, and changes nothing (it does not
        fetch either, so a mirror that only needs new commits shows no change).
  diff_mode:
    support: full
    description:
      - Each mirror and worktree it makes, before and after.
  platform:
    support: full
    platforms: posix
    description:
      - A Linux target with git and, for SSH URLs, the OpenSSH client.
author:
  - Central-MCP maintainers (@central-mcp)
"""

EXAMPLES = r"""
- name: Mirror the repository and give agent A its worktree
  central_mcp.agents.repo_worktrees:
    repos:
      - name: app
        url: git@github.com:org/app.git
        base: main
        mirror: /var/lib/central-mcp/repos/app.git
        key_file: /etc/central-mcp/repos/app.key
        known_hosts: /etc/central-mcp/repos/app.known_hosts
    worktrees:
      - {agent: A, repo: app, path: /home/agent/workspaces/A, owner: agent-a, author: "Agent A <a@example.org>"}
"""

RETURN = r"""
mirrors_cloned:
  description: Repositories whose mirror was made in this run.
  type: list
  elements: str
  returned: always
mirrors_updated:
  description: Repositories whose mirror got new commits or branches in this run.
  type: list
  elements: str
  returned: always
worktrees_made:
  description: Agents whose workspace became a worktree of their repository in this run.
  type: list
  elements: str
  returned: always
"""

import os
import pwd
import subprocess

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.central_mcp.agents.plugins.module_utils.git_env import git_env, said

GIT_TIMEOUT_S = 600


class GitError(Exception):
    pass


def git(repo, *args, local=False):
    """git for ``repo`` (``local``: from its mirror, to make a worktree), as git_env.py says it reaches the server."""
    env = git_env(repo["url"], known_hosts=repo["known_hosts"], key=repo["key_file"], token_file=repo["token_file"],
                  username=repo["username"], ca_file=repo["ca_file"], local=local, connect_timeout_s=20)  # fmt: skip
    try:
        done = subprocess.run(["git", *args], env=env, capture_output=True, text=True,
                              timeout=GIT_TIMEOUT_S, stdin=subprocess.DEVNULL, check=False)  # fmt: skip
    except subprocess.TimeoutExpired:
        raise GitError(f"git {args[0]} for repository {repo['name']} took more than {GIT_TIMEOUT_S} s") from None
    if done.returncode != 0:
        raise GitError(f"git {args[0]} for repository {repo['name']} failed: {said(done.stderr or done.stdout)}")
    return done.stdout


def refs(repo):
    return git(repo, "--git-dir", repo["mirror"], "for-each-ref", "--format=%(objectname) %(refname)")


def keep_objects(repo):
    for key, value in (("gc.auto", "0"), ("gc.pruneExpire", "never"), ("gc.reflogExpireUnreachable", "never")):
        git(repo, "--git-dir", repo["mirror"], "config", key, value)


def chown_tree(path, user):
    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            os.lchown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)
    os.lchown(path, entry.pw_uid, entry.pw_gid)


def main():
    repo_spec = dict(
        name=dict(type="str", required=True), url=dict(type="str", required=True),
        base=dict(type="str", required=True), mirror=dict(type="path", required=True),
        key_file=dict(type="path", default=""), known_hosts=dict(type="path", default=""),
        token_file=dict(type="path", default=""), username=dict(type="str", default=""),
        ca_file=dict(type="path", default=""),
    )  # fmt: skip
    tree_spec = dict(
        agent=dict(type="str", required=True), repo=dict(type="str", required=True),
        path=dict(type="path", required=True), owner=dict(type="str", required=True),
        author=dict(type="str", required=True),
    )  # fmt: skip
    module = AnsibleModule(
        argument_spec=dict(
            repos=dict(type="list", elements="dict", required=True, options=repo_spec),
            worktrees=dict(type="list", elements="dict", required=True, options=tree_spec),
        ),
        supports_check_mode=True,
    )
    repos = {repo["name"]: repo for repo in module.params["repos"]}
    result = {"changed": False, "mirrors_cloned": [], "mirrors_updated": [], "worktrees_made": []}
    before, after = [], []

    # First what would change, and what must not: a workspace with files but no repository stops the run here.
    due = []
    for tree in module.params["worktrees"]:
        if tree["repo"] not in repos:
            module.fail_json(msg=f"agent {tree['agent']}: repository {tree['repo']!r} is not in repos", **result)
        path = tree["path"]
        if os.path.exists(os.path.join(path, ".git")):
            origin = subprocess.run(
                ["git", "-c", f"safe.directory={path}", "-C", path, "remote", "get-url", "origin"],
                capture_output=True, text=True, check=False,
            ).stdout.strip()  # fmt: skip
            if origin != repos[tree["repo"]]["url"]:
                module.fail_json(
                    msg=f"agent {tree['agent']}'s workspace {path} is a repository whose origin is "
                    f"{origin or 'missing'}, not {tree['repo']}'s URL: nothing was changed. Move it away (or give "
                    "the agent its former repo: back) and run again.",
                    **result,
                )
            continue
        held = sorted(os.listdir(path)) if os.path.isdir(path) else []
        if held:
            module.fail_json(
                msg=f"agent {tree['agent']}'s workspace {path} holds files but no git repository "
                f"({', '.join(held[:5])}{', ...' if len(held) > 5 else ''}): nothing was changed. Move them away "
                f"(or give the agent repo: none) and run again: a worktree of {tree['repo']} goes there.",
                **result,
            )
        due.append(tree)
        before.append(f"{path}: empty")
        after.append(f"{path}: worktree of {tree['repo']} on {repos[tree['repo']]['base']}, owned by {tree['owner']}")

    try:
        for repo in repos.values():
            if not os.path.exists(os.path.join(repo["mirror"], "HEAD")):
                result["mirrors_cloned"].append(repo["name"])
                before.append(f"{repo['mirror']}: none")
                after.append(f"{repo['mirror']}: mirror of {repo['name']}")
                if not module.check_mode:
                    git(repo, "clone", "--quiet", "--mirror", repo["url"], repo["mirror"])
                    keep_objects(repo)
            elif not module.check_mode:
                old = refs(repo)
                git(repo, "--git-dir", repo["mirror"], "remote", "update", "--prune")
                keep_objects(repo)
                if refs(repo) != old:
                    result["mirrors_updated"].append(repo["name"])
        for tree in due:
            repo = repos[tree["repo"]]
            result["worktrees_made"].append(tree["agent"])
            if module.check_mode:
                continue
            path = tree["path"]
            os.makedirs(path, exist_ok=True)
            git(repo, "clone", "--quiet", "--shared", "--branch", repo["base"], repo["mirror"], path, local=True)
            # The workspace is already its agent's user's: root works in it by leave, until it hands it over.
            here = ["-c", f"safe.directory={path}", "-C", path]
            git(repo, *here, "remote", "set-url", "origin", repo["url"])
            name, _sep, email = tree["author"].partition("<")
            git(repo, *here, "config", "user.name", name.strip())
            git(repo, *here, "config", "user.email", email.strip(" >"))
            chown_tree(path, tree["owner"])
    except (GitError, OSError, KeyError) as exc:
        module.fail_json(msg=str(exc), **result)

    result["changed"] = bool(result["mirrors_cloned"] or result["mirrors_updated"] or result["worktrees_made"])
    if module._diff and (before or after):
        result["diff"] = {"before": "\n".join(before) + "\n", "after": "\n".join(after) + "\n"}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
