#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""How the roles are wired: role YAML lines, the share that carries Jinja, and where the topology is defined.

Prints, for the working tree or a git revision (``--rev REV``):

- the lines of role YAML (``roles/*/{tasks,vars,defaults,handlers}/*.yml``,
  blank and comment lines left out) and the share that carries Jinja: a line
  inside a ``{{ }}``/``{% %}`` expression or a condition (``when``, ``that``,
  ``changed_when``, ``failed_when``, ``until``), whole and for task files only
  (prometheus.prometheus' task files: 17-27 %), and, counted the simplest
  way, the share of all lines (comments and blank ones too) with ``{{`` or
  ``{%``;
- the places (file:line, code only: no comment, docstring, message or
  plugin documentation; of argument specs only the defaults and choices)
  that define the coordinator's port (3000), the pane relay's port (8765),
  the private-address fallback (central_mcp_private_address, else
  ansible_host) and the list of agent kinds (claude, codex and gemini
  together), in the collection and the coordinator's package (which has
  defaults of its own for running without Ansible).

  python benchmarks/role_wiring.py             # the working tree
  python benchmarks/role_wiring.py --rev HEAD~5
"""

from __future__ import annotations

import argparse
import ast
import re
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
ROLE_DIRS = ("tasks", "vars", "defaults", "handlers")
CONDITION_KEYS = {"when", "that", "changed_when", "failed_when", "until"}
JINJA = re.compile(r"\{\{|\{%")
CODE_ROOTS = ("roles", "plugins", "playbooks", "inventories", "coordinator/src")
PLACES = {
    "coordinator port (3000)": re.compile(r"(?<![\w.])3000(?![\w.])"),
    "relay port (8765)": re.compile(r"(?<![\w.])8765(?![\w.])"),
    "private address fallback": re.compile(r"central_mcp_private_address.*ansible_host"),
    "list of agent kinds": re.compile(r"(?=.*\bclaude\b)(?=.*\bcodex\b)(?=.*\bgemini\b)"),
}


def files(rev: str | None) -> list[str]:
    if rev:
        out = subprocess.run(["git", "ls-tree", "-r", "--name-only", rev], cwd=REPO, capture_output=True, text=True)
        return out.stdout.split()
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                         capture_output=True, text=True)  # fmt: skip
    return [name for name in out.stdout.split() if (REPO / name).exists()]


def read(rev: str | None, name: str) -> str:
    if rev:
        return subprocess.run(["git", "show", f"{rev}:{name}"], cwd=REPO, capture_output=True, text=True).stdout
    return (REPO / name).read_text(encoding="utf-8")


def jinja_lines(text: str) -> tuple[set[int], set[int]]:
    """(code lines, lines carrying Jinja) of one YAML file, 0-based."""
    code = {n for n, line in enumerate(text.splitlines()) if line.strip() and not line.strip().startswith("#")}
    carrying: set[int] = set()

    def walk(node, condition: bool = False) -> None:
        if isinstance(node, yaml.ScalarNode):
            value = str(node.value)
            if condition or JINJA.search(value):
                carrying.update(range(node.start_mark.line, max(node.end_mark.line, node.start_mark.line) + 1))
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                walk(item, condition)
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                walk(value, condition or (isinstance(key, yaml.ScalarNode) and key.value in CONDITION_KEYS))

    for document in yaml.compose_all(text, Loader=yaml.SafeLoader):
        walk(document)
    return code, carrying & code


def python_places(text: str) -> dict[str, list[int]]:
    """Lines of Python code that define one of PLACES: literals in expressions, not docstrings or messages."""
    found: dict[str, list[int]] = {what: [] for what in PLACES}
    tree = ast.parse(text)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and type(node.value) is int and node.value in (3000, 8765):
            found["coordinator port (3000)" if node.value == 3000 else "relay port (8765)"].append(node.lineno)
        elif isinstance(node, (ast.Tuple, ast.List, ast.Set, ast.Dict)):
            items = node.keys if isinstance(node, ast.Dict) else node.elts
            names = {item.value for item in items if isinstance(item, ast.Constant) and isinstance(item.value, str)}
            if {"claude", "codex", "gemini"} <= names:
                found["list of agent kinds"].append(node.lineno)
        elif isinstance(node, (ast.BoolOp, ast.Call)) and not isinstance(node, ast.JoinedStr):
            names = {n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
            if {"central_mcp_private_address", "ansible_host"} <= names and isinstance(node, ast.BoolOp):
                found["private address fallback"].append(node.lineno)
    return found


def yaml_places(name: str, text: str) -> dict[str, list[int]]:
    """Lines of role, playbook or inventory YAML (and templates) that define one of PLACES (comments left out)."""
    found: dict[str, list[int]] = {what: [] for what in PLACES}
    if name.startswith("plugins/"):
        return found  # a filter's documentation
    in_spec = "/meta/argument_specs" in name
    # The fallback spans lines in a folded scalar: look for it in the text without comments.
    bare = "\n".join("" if line.strip().startswith("#") else line.split(" #")[0] for line in text.splitlines())
    if not in_spec:
        for match in re.finditer(r"central_mcp_private_address[^\n]*\n?[^\n]*ansible_host", bare):
            found["private address fallback"].append(bare.count("\n", 0, match.start()) + 1)
    for number, line in enumerate(text.splitlines(), 1):
        code = line.split("#")[0] if not line.strip().startswith("#") else ""
        if in_spec and not re.search(r"^\s*(default|choices):", code):
            continue  # descriptions
        for what, pattern in PLACES.items():
            if what == "private address fallback" or (in_spec and what != "list of agent kinds"):
                continue
            if pattern.search(code):
                found[what].append(number)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rev", help="a git revision (default: the working tree)")
    rev = parser.parse_args().rev
    names = files(rev)
    total = carrying = task_total = task_carrying = raw_total = raw_jinja = 0
    for name in names:
        parts = name.split("/")
        if len(parts) == 4 and parts[0] == "roles" and parts[2] in ROLE_DIRS and name.endswith(".yml"):
            text = read(rev, name)
            code, jinja = jinja_lines(text)
            raw_total += len(text.splitlines())
            raw_jinja += sum(1 for line in text.splitlines() if JINJA.search(line))
            total, carrying = total + len(code), carrying + len(jinja)
            if parts[2] == "tasks":
                task_total, task_carrying = task_total + len(code), task_carrying + len(jinja)
    print(
        f"role YAML ({rev or 'working tree'}): {total} lines, {carrying} carry Jinja ({100 * carrying / total:.0f} %)"
    )
    print(f"  task files: {task_total} lines, {task_carrying} carry Jinja ({100 * task_carrying / task_total:.0f} %)")
    print(f"  all lines (comments and blank ones too) with {{{{ or {{%: {raw_jinja} of {raw_total} "
          f"({100 * raw_jinja / raw_total:.0f} %)")  # fmt: skip
    found: dict[str, list[str]] = {what: [] for what in PLACES}
    for name in names:
        if not name.startswith(CODE_ROOTS) or not name.endswith((".py", ".yml", ".j2")):
            continue
        text = read(rev, name)
        places = python_places(text) if name.endswith(".py") else yaml_places(name, text)
        for what, numbers in places.items():
            found[what] += [f"{name}:{number}" for number in numbers]
    for what, places in found.items():
        print(f"{what}: defined in {len(places)} place(s)")
        for place in places:
            print(f"  {place}")
    kinds = [name for name in names if name.startswith("roles/launcher/vars/kinds/") and name.endswith(".yml")]
    print(f"  (and the kinds themselves: one file each in roles/launcher/vars/kinds, {len(kinds)} files)")


if __name__ == "__main__":
    main()
