# SPDX-License-Identifier: Apache-2.0
"""The coordinator's wheels are pinned with hashes, and every install checks them.

Reads the files only (no network): the locks that tools/lock-coordinator.sh
writes, the role's controller-side build (files/build-wheels), the role's
install task on the target, and the test bed's coordinator/.venv.
"""

import re
import shlex
import tomllib
from pathlib import Path

import jinja2
import pytest
import yaml

TOP = Path(__file__).resolve().parents[2]
COORDINATOR = TOP / "coordinator"
RUNTIME_LOCK = COORDINATOR / "requirements.lock"
TEST_LOCK = COORDINATOR / "requirements-test.lock"
PIN = re.compile(r"(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;\\]+)")
HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_lock(path: Path) -> dict[str, tuple[str, list[str]]]:
    """{normalised name: (version, hashes)}; fails on any line that is not a hashed exact pin."""
    # Join the continuation lines, drop comments: one logical line per requirement.
    logical, current = [], ""
    for raw in path.read_text().splitlines():
        line = raw.split(" #", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if not line:
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    assert not current, f"{path.name}: a continuation line runs off the end of the file"
    pins = {}
    for line in logical:
        req = line.split()[0]
        match = PIN.fullmatch(req)
        assert match, f"{path.name}: {req!r} is not an exact pin (name==version)"
        hashes = HASH.findall(line)
        assert hashes, f"{path.name}: {req} has no --hash: regenerate the lock with tools/lock-coordinator.sh"
        rest = HASH.sub("", line[len(req) :]).split()
        assert not rest, f"{path.name}: {req} carries options other than hashes: {rest}"
        name = _norm(match["name"])
        assert name not in pins, f"{path.name}: {name} is pinned twice"
        pins[name] = (match["version"], hashes)
    return pins


@pytest.mark.parametrize("lock", [RUNTIME_LOCK, TEST_LOCK], ids=lambda p: p.name)
def test_every_requirement_is_pinned_with_a_hash(lock):
    pins = parse_lock(lock)
    assert pins, f"{lock.name} pins nothing"
    # No index URL, find-links or local path is carried in a lock.
    for line in lock.read_text().splitlines():
        assert not line.startswith("-"), f"{lock.name}: option line {line!r}"
        assert "file:" not in line, f"{lock.name}: local path in {line!r}"


def test_the_parser_refuses_a_pin_without_hash(tmp_path):
    bad = tmp_path / "bad.lock"
    bad.write_text("anyio==4.16.0 \\\n    --hash=sha256:" + "a" * 64 + "\nh11==0.16.0\n")
    with pytest.raises(AssertionError, match="h11==0.16.0 has no --hash"):
        parse_lock(bad)
    bad.write_text("h11>=0.16 \\\n    --hash=sha256:" + "a" * 64 + "\n")
    with pytest.raises(AssertionError, match="not an exact pin"):
        parse_lock(bad)


def test_the_locks_agree_with_pyproject():
    """Every direct dependency is locked at its pin; the test lock is the runtime set at the same versions."""
    project = tomllib.loads((COORDINATOR / "pyproject.toml").read_text())["project"]
    runtime, test = parse_lock(RUNTIME_LOCK), parse_lock(TEST_LOCK)
    for lock_name, pins, deps in [
        (RUNTIME_LOCK.name, runtime, project["dependencies"]),
        (TEST_LOCK.name, test, project["dependencies"] + project["optional-dependencies"]["test"]),
    ]:
        for dep in deps:
            match = PIN.fullmatch(dep.split(";")[0].strip())
            assert match, f"pyproject.toml: {dep!r} is not pinned exactly"
            name = _norm(match["name"].split("[")[0])
            assert name in pins, f"{lock_name} lacks {name}: run tools/lock-coordinator.sh"
            locked, wanted = pins[name][0], match["version"]
            assert locked == wanted, f"{lock_name}: {name}=={locked}, pyproject {wanted}: run tools/lock-coordinator.sh"
    for name, (version, _) in runtime.items():
        assert name in test, f"{TEST_LOCK.name} lacks the runtime dependency {name}"
        assert test[name][0] == version, f"{name}: {version} at run time, {test[name][0]} in the tests"


def _install_task_pip_args() -> list[str]:
    """The arguments of the role's 'pip install' on the target, rendered as Ansible would."""

    def flat(tasks: list[dict]) -> list[dict]:  # the tasks, those inside blocks included
        return [leaf for t in tasks for leaf in (flat(t["block"]) if "block" in t else [t])]

    tasks = flat(yaml.safe_load((TOP / "roles/coordinator/tasks/install_release.yml").read_text()))
    [task] = [t for t in tasks if "/bin/pip install" in str(t.get("ansible.builtin.shell", ""))]
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    env.filters["quote"] = shlex.quote
    values = {"_coordinator_venv": "/opt/central-mcp/venvs/R", "coordinator_install_dir": "/opt/central-mcp"}
    values["_coordinator_release"] = "R"
    values["_coordinator_target"] = {"python_path": "/usr/bin/python3"}  # what host_info found
    for name, value in task.get("vars", {}).items():
        values[name] = env.from_string(value).render(values)
    cmd = env.from_string(task["ansible.builtin.shell"]["cmd"]).render(values)
    [pip] = [part for part in cmd.split(";") if "/bin/pip install" in part]
    return shlex.split(pip)[2:]


def test_the_role_installs_only_hashed_wheels_on_the_target():
    args = _install_task_pip_args()
    assert "--require-hashes" in args and "--no-index" in args, args
    assert args[args.index("-r") + 1] == "/opt/central-mcp/wheels/R/install.lock", args
    # Nothing named outside install.lock: every argument is an option or an option's value.
    named = [a for i, a in enumerate(args) if not a.startswith("-") and args[i - 1] not in ("--find-links", "-r")]
    assert not named, f"the role installs {named} outside install.lock"


def test_the_controller_build_checks_hashes_and_writes_install_lock():
    script = (TOP / "roles/coordinator/files/build-wheels").read_text()
    download = script[script.index("pip download") :].split("\n\n", 1)[0]
    assert "--require-hashes" in download, "build-wheels downloads without checking the lock's hashes"
    assert "install.lock" in script and "--hash=sha256:" in script, "build-wheels does not pin its own wheel"


def test_the_test_bed_installs_the_coordinator_venv_from_the_hashed_lock():
    setup = (TOP / "tests/testbed/setup.sh").read_text()
    call = setup[setup.index('venv "$top/coordinator/.venv"') :].split("\nfi", 1)[0]
    assert '--require-hashes -r "$top/coordinator/requirements-test.lock"' in call
    assert '--no-deps -e "$top/coordinator"' in call
    # A change to either lock rebuilds the venv (the files listed before the first "--").
    pin_files = call.split(" -- ", 1)[0]
    assert "requirements.lock" in pin_files and "requirements-test.lock" in pin_files
