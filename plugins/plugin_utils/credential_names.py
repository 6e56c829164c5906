# SPDX-License-Identifier: Apache-2.0
"""Where the controller keeps a generated secret of the fleet, from its name: one directory per host.

The agent_token, ssh_key and fleet_tls lookups keep what they make under
``<dir>/<inventory hostname>/``. A name part is what an inventory hostname
or an agent's name may be, and nothing that could leave that directory.
"""

from __future__ import annotations

import os
import re

from ansible.errors import AnsibleLookupError

PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


def is_part(text) -> bool:
    """A host or secret name: 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit, no '..'."""
    return bool(PART.match(str(text))) and ".." not in str(text)


def secret_path(lookup: str, directory: str, term, shape: str, suffix: str = "") -> str:
    """``<directory>/HOST/NAME<suffix>`` for the term ``HOST/NAME``; AnsibleLookupError names a bad term."""
    host, sep, name = str(term).partition("/")
    if not sep or not is_part(host) or not is_part(name):
        raise AnsibleLookupError(f"{lookup}: {term!r} is not {shape} (letters, digits, '.', '_', '-')")
    return os.path.join(directory, host, f"{name}{suffix}")
