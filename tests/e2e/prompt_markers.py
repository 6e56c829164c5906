# SPDX-License-Identifier: Apache-2.0
"""The one list of prompt markers (roles/launcher/files/prompt_markers.py), for tests that import it by this name.

Stdlib only: the end-to-end tests and the Molecule `kinds` scenario's
testinfra tests (another venv) both read it.
"""

import importlib.util
from pathlib import Path

_PATH = Path(__file__).resolve().parents[2] / "roles" / "launcher" / "files" / "prompt_markers.py"
_SPEC = importlib.util.spec_from_file_location("central_mcp_prompt_markers", _PATH)
_MODULE = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(_MODULE)
PROMPT_MARKERS = _MODULE.PROMPT_MARKERS
asking = _MODULE.asking
