# SPDX-License-Identifier: Apache-2.0
"""Lookup: one agent's coordinator bearer token, generated once and kept on the controller."""

from __future__ import annotations

DOCUMENTATION = r"""
---
name: agent_token
author: Central-MCP maintainers (@central-mcp)
version_added: "0.1.0"
short_description: An agent's coordinator token, generated once and kept on the controller
description:
  - Returns the bearer token of each agent named as C(HOST/AGENT). The first call creates a
    random token (40 letters and digits) in O(dir)/HOST/AGENT.token with mode 0600 (its
    directories 0700); later calls, from any role, read the same file. The launcher gives
    the token to the agent's CLI; the coordinator stores only its sha256.
  - The same goes for the other generated secrets of the fleet, named like agents - a
    pane relay's token (C(HOST/launcher.relay)) and the coordinator's API token
    (C(HOST/coordinator.api)). The fleet plan
    (P(central_mcp.agents.fleet_plan#filter)) gives each its term as C(token_ref).
  - Tokens set in Vault (C(launcher_agent_tokens), C(launcher_relay_token),
    C(coordinator_api_token)) take precedence; this lookup is the fallback for those not set.
  - A term that is not C(HOST/AGENT) (each part 1-63 letters, digits, C(.), C(_) or C(-),
    starting with a letter or digit, no C(..)), or a token file that cannot be read, fails
    the lookup.
options:
  _terms:
    description: Agents as C(HOST/AGENT), HOST an inventory hostname.
    type: list
    elements: str
    required: true
  dir:
    description: Controller directory holding the tokens, one subdirectory per host.
    type: path
    default: ~/.config/central-mcp/credentials
"""

EXAMPLES = r"""
- name: Show how long agent A's token is (never the token itself)
  ansible.builtin.debug:
    msg: "{{ lookup('central_mcp.agents.agent_token', 'vm1/A') | length }} characters"

- name: The tokens of two agents, kept in the roles' credentials directory
  ansible.builtin.set_fact:
    tokens: "{{ query('central_mcp.agents.agent_token', 'vm1/A', 'vm2/E', dir=launcher_credentials_dir) }}"
  no_log: true
"""

RETURN = r"""
_raw:
  description: One token per term.
  type: list
  elements: str
"""

import os
import secrets
import string

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase
from ansible_collections.central_mcp.agents.plugins.plugin_utils.credential_names import secret_path

_ALPHABET = string.ascii_letters + string.digits


def _token_file(directory: str, term: str) -> str:
    return secret_path("agent_token", directory, term, "HOST/AGENT", ".token")


def _read_or_create(path: str) -> str:
    try:
        with open(path, encoding="ascii") as handle:
            token = handle.read().split()[0]
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        token = "".join(secrets.choice(_ALPHABET) for _ in range(40))
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another fork made it first: use theirs
            return _read_or_create(path)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(token + "\n")
    except (OSError, IndexError) as exc:
        raise AnsibleLookupError(f"agent_token: cannot read {path}: {exc}") from exc
    return token


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        directory = os.path.expanduser(self.get_option("dir"))
        return [_read_or_create(_token_file(directory, term)) for term in terms]
