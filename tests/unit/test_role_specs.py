# SPDX-License-Identifier: Apache-2.0
"""Every role's argument spec, defaults and README say the same thing.

A role documents its variables three times: ``defaults/main.yml`` gives the
values, ``meta/argument_specs.yml`` (entry point ``main``) types them for
Ansible's validation and ``ansible-doc``, and the README explains them. This
test keeps them in step, so a variable cannot be added to one and forgotten
in the other. Each check is parametrized per role and per variable, so a
failure names the variable.

Naming: a role's own variables are prefixed ``<role>_``. The only unprefixed
options allowed are the shared inventory variables several roles read (such
as ``central_mcp_agents``); they carry the collection's ``central_mcp_``
prefix instead and have no role default, since no single role owns them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from ansible.module_utils.common.validation import (
    check_type_bool,
    check_type_dict,
    check_type_float,
    check_type_int,
    check_type_list,
    check_type_str,
)

REPO = Path(__file__).resolve().parents[2]
ROLES_DIR = REPO / "roles"
SHARED_PREFIX = "central_mcp_"


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads Ansible's ``!unsafe`` and ``!vault`` scalars as plain strings."""


for _tag in ("!unsafe", "!vault"):
    _Loader.add_constructor(_tag, lambda loader, node: loader.construct_scalar(node))


def load_yaml(path: Path):
    with open(path, encoding="utf-8") as handle:
        return yaml.load(handle, Loader=_Loader)


ROLES = sorted(p.name for p in ROLES_DIR.iterdir() if p.is_dir())
SPEC_ROLES = [r for r in ROLES if (ROLES_DIR / r / "meta" / "argument_specs.yml").is_file()]
SPEC_ROLES = [r for r in SPEC_ROLES if (ROLES_DIR / r / "defaults" / "main.yml").is_file()]


def defaults_of(role: str) -> dict:
    return load_yaml(ROLES_DIR / role / "defaults" / "main.yml") or {}


def spec_of(role: str) -> dict:
    """The options of entry point ``main``; {} if there is none (its own test says so)."""
    specs = load_yaml(ROLES_DIR / role / "meta" / "argument_specs.yml") or {}
    return ((specs.get("argument_specs") or {}).get("main") or {}).get("options") or {}


DEFAULTS = {role: defaults_of(role) for role in SPEC_ROLES}
SPECS = {role: spec_of(role) for role in SPEC_ROLES}


def is_shared(role: str, name: str) -> bool:
    return not name.startswith(f"{role}_")


def templated(value) -> bool:
    """True if Jinja is anywhere in the value: its real default is only known at run time."""
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, dict):
        return any(templated(k) or templated(v) for k, v in value.items())
    if isinstance(value, list):
        return any(templated(v) for v in value)
    return False


def params(pairs):
    return [pytest.param(role, name, id=f"{role}:{name}") for role, name in pairs]


DEFAULT_VARS = params((r, v) for r in SPEC_ROLES for v in DEFAULTS[r])
SPEC_OPTIONS = params((r, o) for r in SPEC_ROLES for o in SPECS[r])
PUBLIC_VARS = params((r, v) for r in SPEC_ROLES for v in sorted(set(DEFAULTS[r]) | set(SPECS[r])))
LITERAL_DEFAULTS = params((r, v) for r in SPEC_ROLES for v, value in DEFAULTS[r].items() if not templated(value))

# How Ansible's argument validation would read a value of each type. `path` is
# compared as written: expanding ~ or $VARS would make the test depend on the
# machine it runs on.
COERCE = {
    "str": lambda v: check_type_str(v, allow_conversion=True),
    "path": str,
    "int": check_type_int,
    "float": check_type_float,
    "bool": check_type_bool,
    "dict": check_type_dict,
}


def coerce(value, option: dict):
    kind = option.get("type", "str")
    if value is None:
        return None
    if kind == "list":
        element = {"type": option["elements"]} if "elements" in option else {"type": "raw"}
        return [coerce(item, element) for item in check_type_list(value)]
    return COERCE.get(kind, lambda v: v)(value)


# ----------------------------------------------------------------- the roles
def test_roles_are_found():
    """Guard against a path change that would turn every check below into zero tests."""
    assert SPEC_ROLES, f"no role with both meta/argument_specs.yml and defaults/main.yml in {ROLES_DIR.name}/"


@pytest.mark.parametrize("role", SPEC_ROLES)
def test_role_has_main_entry_point(role):
    """Ansible validates only the entry point the role is called with: `main`, and it must have options."""
    assert SPECS[role], f"{role}: meta/argument_specs.yml has no argument_specs.main.options"
    assert isinstance(DEFAULTS[role], dict), f"{role}: defaults/main.yml is not a mapping"


# ----------------------------------------------------------------- defaults <-> spec
@pytest.mark.parametrize(("role", "name"), DEFAULT_VARS)
def test_default_is_documented(role, name):
    """A default the spec does not know is never validated and never shows in ansible-doc."""
    assert name in SPECS[role], f"{role}: {name} is in defaults/main.yml but not in meta/argument_specs.yml"


@pytest.mark.parametrize(("role", "name"), SPEC_OPTIONS)
def test_option_has_a_default(role, name):
    """A role's own option needs a value when the inventory gives none; a shared one is the inventory's."""
    if is_shared(role, name):
        assert name not in DEFAULTS[role], f"{role}: shared variable {name} must not get a role default"
    else:
        assert name in DEFAULTS[role], f"{role}: {name} is in meta/argument_specs.yml but not in defaults/main.yml"


@pytest.mark.parametrize(("role", "name"), PUBLIC_VARS)
def test_public_variable_is_prefixed(role, name):
    """The prefix keeps roles from overwriting each other's variables in one play."""
    if name.startswith(f"{role}_"):
        return
    assert name.startswith(SHARED_PREFIX) and name not in DEFAULTS[role], (
        f"{role}: {name} is neither prefixed {role}_ nor a shared {SHARED_PREFIX}* inventory variable"
    )


def undescribed(option: dict, path: str) -> list[str]:
    """Paths of this option and its suboptions that lack a type or a description."""
    problems = []
    if not option.get("type"):
        problems.append(f"{path} has no type")
    description = option.get("description")
    lines = description if isinstance(description, list) else [description]
    if not all(isinstance(line, str) and line.strip() for line in lines):
        problems.append(f"{path} has no description")
    for sub, sub_option in (option.get("options") or {}).items():
        problems += undescribed(sub_option or {}, f"{path}.{sub}")
    return problems


@pytest.mark.parametrize(("role", "name"), SPEC_OPTIONS)
def test_option_has_type_and_description(role, name):
    """Without a type Ansible validates nothing; without a description ansible-doc tells nothing."""
    problems = undescribed(SPECS[role][name] or {}, name)
    assert not problems, f"{role}: " + "; ".join(problems)


@pytest.mark.parametrize(("role", "name"), LITERAL_DEFAULTS)
def test_spec_default_matches_defaults(role, name):
    """ansible-doc shows the spec's default; it must be the value the role really uses."""
    option = SPECS[role].get(name)
    if option is None:
        pytest.skip(f"{role}: {name} is not in the spec at all, which test_default_is_documented reports")
    assert "default" in option, (
        f"{role}: the spec of {name} gives no default; defaults/main.yml says {DEFAULTS[role][name]!r}"
    )
    spec_value, role_value = coerce(option["default"], option), coerce(DEFAULTS[role][name], option)
    assert spec_value == role_value, (
        f"{role}: {name} defaults to {DEFAULTS[role][name]!r} in defaults/main.yml "
        f"but to {option['default']!r} in meta/argument_specs.yml"
    )


# ----------------------------------------------------------------- README
@pytest.mark.parametrize("role", ROLES)
def test_role_has_readme(role):
    """Galaxy and the reader of the checkout start from the README."""
    assert (ROLES_DIR / role / "README.md").is_file(), f"{role} has no README.md"


@pytest.mark.parametrize(("role", "name"), PUBLIC_VARS)
def test_readme_names_variable(role, name):
    """A variable the README does not mention is one nobody knows to set."""
    readme = ROLES_DIR / role / "README.md"
    text = readme.read_text(encoding="utf-8") if readme.is_file() else ""
    assert re.search(rf"(?<!\w){re.escape(name)}(?!\w)", text), f"{role}/README.md does not mention {name}"
