# SPDX-License-Identifier: Apache-2.0
"""The collection's dependencies, as ansible-builder (AWX / Automation Platform) reads them.

Building an image needs a container registry this project cannot reach, so the
files are checked here: ansible-builder itself turns them into a build context,
and every third-party import of the plugins must be declared.
"""

import ast
import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
IGNORED = {"ansible", "ansible_collections", "__future__"}


def declared(requirements: Path) -> set[str]:
    names = set()
    for line in requirements.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.add(re.split(r"[<>=!~\[; ]", line, maxsplit=1)[0].lower().replace("_", "-"))
    return names


def third_party_imports() -> dict[str, set[str]]:
    """Top-level names imported by plugins/ that are neither stdlib nor Ansible: name -> files."""
    found: dict[str, set[str]] = {}
    for path in (REPO / "plugins").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in IGNORED:
                    found.setdefault(top, set()).add(str(path.relative_to(REPO)))
    return found


def test_meta_points_at_files_that_exist():
    meta = yaml.safe_load((REPO / "meta/execution-environment.yml").read_text())
    for kind in ("python", "system"):
        assert (REPO / meta["dependencies"][kind]).is_file(), kind


@pytest.mark.parametrize("module", sorted(third_party_imports()))
def test_every_third_party_import_of_the_plugins_is_declared(module):
    distributions = importlib.metadata.packages_distributions().get(module, [])
    assert distributions, f"{module} is imported by {third_party_imports()[module]} but not installed here"
    wanted = {d.lower().replace("_", "-") for d in distributions}
    assert wanted & declared(REPO / "requirements.txt"), (
        f"{module} (distribution {', '.join(sorted(wanted))}) is imported by "
        f"{', '.join(sorted(third_party_imports()[module]))}: declare it in requirements.txt"
    )


def test_the_example_execution_environment_builds_a_context(tmp_path):
    builder = Path(sys.executable).with_name("ansible-builder")
    result = subprocess.run(
        [str(builder), "create", "-f", "execution-environment.yml", "-c", str(tmp_path / "context")],
        cwd=REPO, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    containerfile = (tmp_path / "context" / "Containerfile").read_text()
    assert "ansible-core==2.19.14" in containerfile
    build = tmp_path / "context" / "_build"
    assert declared(build / "requirements.txt") >= declared(REPO / "requirements.txt")
    assert yaml.safe_load((build / "requirements.yml").read_text()) == yaml.safe_load(
        (REPO / "requirements.yml").read_text()
    )


def test_the_execution_environment_pins_the_tested_ansible():
    ee = yaml.safe_load((REPO / "execution-environment.yml").read_text())
    tested = (REPO / "tests/testbed/requirements.txt").read_text()
    for key in ("ansible_core", "ansible_runner"):
        assert ee["dependencies"][key]["package_pip"] in tested.splitlines(), key
