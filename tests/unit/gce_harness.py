# SPDX-License-Identifier: Apache-2.0
"""What the gce_* module tests share: the emulator's timings, the module runner, the manual.

The fixtures (``gce_server``, ``emu``) live in conftest.py; these are the plain
helpers the test files import.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
from ansible.module_utils.testing import patch_module_args

REPO = Path(__file__).resolve().parents[2]
# Emulated operation times: long enough to see a VM stopped, short enough for unit tests.
DURATIONS = {"stop": 0.15, "start": 0.2, "setMachineType": 0.05, "resize": 0.1}


def run_module(module, args: dict, check: bool = False, diff: bool = False) -> dict:
    """The module's real main() in-process; its JSON result plus `rc` (0 ok, 1 failed)."""
    internal = {"_ansible_check_mode": check, "_ansible_diff": diff}
    out = io.StringIO()
    with patch_module_args({**args, **internal}), contextlib.redirect_stdout(out):
        with pytest.raises(SystemExit) as exit_info:
            module.main()
    result = json.loads(out.getvalue())
    result["rc"] = exit_info.value.code
    return result


def calls(emu) -> list[str]:
    """The API methods the module called, in order (compute. prefix dropped)."""
    return [entry["method"].removeprefix("compute.") for entry in emu.log()]


def posts(emu) -> list[str]:
    return [entry["path"] for entry in emu.log() if entry["verb"] != "GET"]


@cache
def module_doc(name: str) -> dict:
    """The module's manual as ansible-doc shows it: DOCUMENTATION merged with its doc fragments."""
    ansible_doc = Path(sys.executable).parent / "ansible-doc"
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(REPO / "collections")}
    fqcn = f"central_mcp.agents.{name}"
    done = subprocess.run(
        [str(ansible_doc), "--json", "-t", "module", fqcn],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)[fqcn]


def assert_doc_matches_spec(name: str, spec: dict) -> dict:
    """Every option ansible-doc shows is one the module takes, with the same type, default, choices, required."""
    documented = module_doc(name)["doc"]["options"]
    assert set(documented) == set(spec), (
        f"only in the docs: {set(documented) - set(spec)}, undocumented: {set(spec) - set(documented)}"
    )
    fields = ("type", "default", "choices", "required")
    for option, want in spec.items():
        shown = {k: documented[option].get(k) for k in fields}
        # ansible-doc fills in what DOCUMENTATION leaves out: required false, default null.
        shown["required"] = shown["required"] or None
        assert shown == {k: want.get(k) for k in fields}, option
    return module_doc(name)
