# SPDX-License-Identifier: Apache-2.0
"""Installs the pinned agent CLIs into the pod image, as the launcher's controller installs them.

usage: python3 install_clis.py LAUNCHER_ROLE DEST [KIND...]

For each kind (all of the launcher's kinds with an install when none is
named), its version from the kind file (roles/launcher/vars/kinds), from its
committed lock only (files/npm/<kind>-<version>-<platform>): ``npm ci
--ignore-scripts`` checks every tarball against the lock's integrity hash
and runs no package's code; the files the kind pins by sha256 (Gemini's
Node) are checked. Each tree lands in DEST/<lock's name>-<12 digits of the
lock's sha256>, the name of the controller's own tree: the launcher uses a
tree of the image (a link to it) only when its name is the one its lock
gives, and installs from the controller otherwise.
"""

from __future__ import annotations

import hashlib
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

CPUS = {"x86_64": "x64", "aarch64": "arm64"}  # uname -m -> the platform names of the launcher's locks


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(role: Path, dest: Path, wanted: list[str]) -> None:
    target = f"linux-{CPUS[platform.machine()]}"
    kinds = {}
    for path in sorted((role / "vars" / "kinds").glob("*.yml")):
        kinds.update(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    unknown = sorted(set(wanted) - set(kinds))
    if unknown:
        sys.exit(f"install_clis: no kind {', '.join(unknown)} (the launcher's kinds: {', '.join(sorted(kinds))})")
    for kind in wanted or sorted(kinds):
        install = kinds[kind].get("install")
        if not install:
            continue
        lock = role / "files" / "npm" / f"{kind}-{install['version']}-{target}"
        tree = dest / f"{lock.name}-{sha256(lock / 'package-lock.json')[:12]}"
        tree.mkdir(parents=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(lock / name, tree / name)
        os_, cpu = target.split("-")
        npm = ["npm", "ci", "--ignore-scripts", "--omit=dev", "--no-audit", "--no-fund"]
        subprocess.run([*npm, f"--os={os_}", f"--cpu={cpu}", "--libc=glibc"], cwd=tree, check=True)
        for name in (install.get("bin") or {}).values():  # the platform's native package arrived
            name = name.replace("{platform}", target).replace("{version}", install["version"])
            if not (tree / name).exists():
                sys.exit(f"install_clis: {tree / name} is missing (the lock has no package of it for {target})")
        for name, pinned in ((install.get("sha256") or {}).get(target) or {}).items():
            if sha256(tree / name) != pinned:
                sys.exit(f"install_clis: {tree / name} is not the file {kind}'s kind file pins (sha256 {pinned})")
        print(f"install_clis: {tree.name}")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__.split("\n\n")[1])
    main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:])
