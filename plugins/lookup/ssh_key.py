# SPDX-License-Identifier: Apache-2.0
"""Lookup: an SSH key pair of the fleet (a pod's tunnel key), generated once and kept on the controller."""

from __future__ import annotations

DOCUMENTATION = r"""
---
name: ssh_key
author: Central-MCP maintainers (@central-mcp)
version_added: "0.1.0"
short_description: An SSH key pair of the fleet, generated once and kept on the controller
description:
  - Returns the key pair named by each term C(HOST/NAME) as C({private, public}). The first call creates an
    Ed25519 key in O(dir)/HOST/NAME (OpenSSH's private key format, mode 0600, its directories 0700) and
    its public key in O(dir)/HOST/NAME.pub; later calls, from any role, read the same files.
  - The fleet plan (P(central_mcp.agents.fleet_plan#filter)) names the tunnel key of each host that reaches
    the coordinator through an SSH tunnel (C(HOST/tunnel)); the launcher gives the private key to that host,
    the coordinator role lets its public key, and nothing else, open the tunnel on the coordinator's VM.
  - Needs the C(cryptography) package on the controller (ansible-core depends on it).
  - A term that is not C(HOST/NAME) (each part 1-63 letters, digits, C(.), C(_) or C(-), starting with a
    letter or digit, no C(..)), or a key file that cannot be read as an OpenSSH key, fails the lookup.
options:
  _terms:
    description: Keys as C(HOST/NAME), HOST an inventory hostname.
    type: list
    elements: str
    required: true
  dir:
    description: Controller directory holding the keys, one subdirectory per host.
    type: path
    default: ~/.config/central-mcp/credentials
"""

EXAMPLES = r"""
- name: The public half of a pod's tunnel key
  ansible.builtin.debug:
    msg: "{{ lookup('central_mcp.agents.ssh_key', 'gpu-agents-1/tunnel', dir=launcher_credentials_dir).public }}"
"""

RETURN = r"""
_raw:
  description: One key pair per term.
  type: list
  elements: dict
  contains:
    private:
      description: The private key, in OpenSSH's format.
      type: str
    public:
      description: The public key, as one authorized_keys line (C(ssh-ed25519 AAAA... HOST/NAME)).
      type: str
"""

import os

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase
from ansible_collections.central_mcp.agents.plugins.plugin_utils.credential_names import secret_path

try:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
except ImportError:  # said when the lookup runs, not when Ansible lists plugins
    serialization = None


def _key_file(directory: str, term: str) -> str:
    return secret_path("ssh_key", directory, term, "HOST/NAME")


def _write(path: str, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def ssh_key(path: str, comment: str) -> dict:
    """The pair at ``path`` (made once: a fork that loses the race reads the winner's)."""
    if serialization is None:
        raise AnsibleLookupError("ssh_key: needs the cryptography package on the controller (pip install cryptography)")
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        private = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
        try:
            _write(f"{path}.tmp-{os.getpid()}", private, 0o600)
            os.link(f"{path}.tmp-{os.getpid()}", path)  # whole or not at all; never over another fork's key
        except FileExistsError:
            pass
        finally:
            try:
                os.unlink(f"{path}.tmp-{os.getpid()}")
            except FileNotFoundError:
                pass
    try:
        with open(path, "rb") as handle:
            private = handle.read()
        key = serialization.load_ssh_private_key(private, password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise AnsibleLookupError(f"ssh_key: cannot read {path} as an OpenSSH private key: {exc}") from exc
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    line = f"{public.decode()} {comment}"
    try:
        with open(f"{path}.pub", encoding="ascii") as handle:
            written = handle.read().strip()
    except FileNotFoundError:
        written = ""
    if written != line:
        with open(f"{path}.pub", "w", encoding="ascii") as handle:
            handle.write(line + "\n")
    return {"private": private.decode(), "public": line}


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        directory = os.path.expanduser(self.get_option("dir"))
        return [ssh_key(_key_file(directory, term), str(term)) for term in terms]
