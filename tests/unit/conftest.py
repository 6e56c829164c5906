# SPDX-License-Identifier: Apache-2.0
"""Make ``ansible_collections.central_mcp.agents`` importable in unit tests.

The checkout holds ``collections/ansible_collections/central_mcp/agents``, a
symlink to the repository itself, so putting ``collections/`` on ``sys.path``
is all it takes: tests import plugins by their FQCN, as Ansible does.
"""

import sys
from pathlib import Path

COLLECTIONS = Path(__file__).resolve().parents[2] / "collections"
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))
