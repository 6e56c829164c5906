#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Make the committed npm lock of one agent CLI version, for each platform the launcher installs for.

The launcher installs an agent CLI only from its lock (the controller runs
``npm ci --ignore-scripts`` in a tree of its own: npm checks every package's
tarball against the integrity hash the lock holds, and no package runs code).
This writes that lock, for the kind file's packages (roles/launcher/vars/kinds/
KIND.yml, {version} and {platform} filled in) at exact versions:
    roles/launcher/files/npm/KIND-VERSION-PLATFORM/package.json
    roles/launcher/files/npm/KIND-VERSION-PLATFORM/package-lock.json
lockfileVersion 3, an sha512 integrity for every package, the optional native
packages of every os/cpu included (npm ci takes the platform's). No registry
address is written into it (any mirror of the npm registry serves it). npm
runs with scripts off here too. Review the diff, commit it, then set
launcher_cli_versions: {KIND: "VERSION"} (or the kind file's version).
    tools/lock-cli.py codex 0.172.0 [--platform linux-x64] [--force]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
ROLE = REPO / "roles" / "launcher"
LOCKS = ROLE / "files" / "npm"
# The platforms launcher_cli_platform may name (its argument spec's choices): a lock for each.
SPECS = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text(encoding="utf-8"))
PLATFORMS = SPECS["argument_specs"]["main"]["options"]["launcher_cli_platform"]["choices"]


def dependencies(kind: str, version: str, platform: str) -> dict[str, dict[str, str]]:
    """The kind file's packages for this version and platform at exact versions, as package.json has them.

    A package the kind file names with {platform} is that platform's native build: an optional dependency, so
    that npm installs it for the platform it is told (--os/--cpu) instead of refusing it on a controller of
    another one (npm checks a required package against the controller's own). The launcher checks it arrived.
    """
    spec = yaml.safe_load((ROLE / "vars" / "kinds" / f"{kind}.yml").read_text(encoding="utf-8"))[kind]["install"]
    found: dict[str, dict[str, str]] = {"dependencies": {}, "optionalDependencies": {}}
    for package in spec["packages"]:
        name, _, pinned = package.replace("{version}", version).replace("{platform}", platform).rpartition("@")
        found["optionalDependencies" if "{platform}" in package else "dependencies"][name] = pinned
    return {key: value for key, value in found.items() if value}


def lock_errors(lock: dict, wanted: dict[str, dict[str, str]]) -> list[str]:
    """What makes a lock unfit to install from: each package must come from the registry with its integrity."""
    errors = [] if lock.get("lockfileVersion") == 3 else [f"lockfileVersion {lock.get('lockfileVersion')}, not 3"]
    packages = lock.get("packages", {})
    root = packages.get("", {})
    if {key: root[key] for key in wanted if key in root} != wanted:
        errors.append(f"the lock's own dependencies are not {wanted}")
    for name in (name for group in wanted.values() for name in group):
        if f"node_modules/{name}" not in packages:
            errors.append(f"{name} is not in the lock")
    for path, entry in packages.items():
        if path and not str(entry.get("integrity", "")).startswith("sha512-"):
            errors.append(f"{path} has no sha512 integrity (a git, file or link source?)")
        if path and ("resolved" in entry or entry.get("link")):
            errors.append(f"{path} names where it comes from ({entry.get('resolved')}): only the registry's by name")
    return errors


def make_lock(kind: str, version: str, platform: str, npm: str) -> dict:
    """package.json and its lock, made by npm in a scratch directory (nothing installed, no script run)."""
    wanted = dependencies(kind, version, platform)
    package = {
        "name": f"central-mcp-{kind}-{platform}",
        "version": version,
        "private": True,
        "description": f"The {kind} agent CLI as the launcher installs it (made by tools/lock-cli.py: do not edit)",
        **wanted,
    }
    os_name, cpu = platform.split("-")
    with tempfile.TemporaryDirectory(prefix="lock-cli-") as scratch:
        (Path(scratch) / "package.json").write_text(json.dumps(package, indent=2) + "\n", encoding="utf-8")
        argv = [npm, "install", "--package-lock-only", "--ignore-scripts", "--no-audit", "--no-fund",
                "--omit-lockfile-registry-resolved", f"--os={os_name}", f"--cpu={cpu}", "--libc=glibc"]  # fmt: skip
        done = subprocess.run(argv, cwd=scratch, capture_output=True, text=True, timeout=600)
        if done.returncode:
            sys.exit(f"lock-cli: npm could not lock {wanted} for {platform}: {done.stderr.strip()[-2000:]}")
        lock = json.loads((Path(scratch) / "package-lock.json").read_text(encoding="utf-8"))
    errors = lock_errors(lock, wanted)
    if errors:
        sys.exit(f"lock-cli: the lock npm made for {kind} {version} ({platform}) is not fit: " + "; ".join(errors))
    return {"package.json": package, "package-lock.json": lock}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", help="an agent kind: the name of a file of roles/launcher/vars/kinds")
    parser.add_argument("version", help="the CLI's npm version, e.g. 0.172.0")
    parser.add_argument("--platform", action="append", choices=PLATFORMS, help="only this one (default: all)")
    parser.add_argument("--force", action="store_true", help="replace a committed lock (a new lock, a new tree)")
    args = parser.parse_args()
    if not (ROLE / "vars" / "kinds" / f"{args.kind}.yml").is_file():
        kinds = sorted(p.stem for p in (ROLE / "vars" / "kinds").glob("*.yml"))
        parser.error(f"no agent kind {args.kind!r}: use one of {', '.join(kinds)}")
    if not re.fullmatch(r"[0-9][0-9A-Za-z.+-]{0,63}", args.version):  # as the launcher's preflight allows
        parser.error(f"{args.version!r} is not an npm version such as 0.172.0")
    npm = shutil.which("npm")
    if npm is None:
        sys.exit("lock-cli: npm is needed (the npm registry, or a mirror of it, must be reachable)")
    for platform in args.platform or PLATFORMS:
        target = LOCKS / f"{args.kind}-{args.version}-{platform}"
        if (target / "package-lock.json").exists() and not args.force:
            print(f"{target.relative_to(REPO)}: already locked (--force makes it again)")
            continue
        files = make_lock(args.kind, args.version, platform, npm)
        target.mkdir(parents=True, exist_ok=True)
        for name, content in files.items():
            (target / name).write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
        count = len(files["package-lock.json"]["packages"]) - 1
        print(f"{target.relative_to(REPO)}: {count} packages, each with its integrity")
    print(f'Review and commit it, then set launcher_cli_versions: {{{args.kind}: "{args.version}"}}.')
    return 0


if __name__ == "__main__":
    sys.exit(main())
