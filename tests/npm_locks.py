# SPDX-License-Identifier: Apache-2.0
"""A committed npm lock installed once into the controller's cache, as the launcher role installs the CLIs.

``npm ci`` installs exactly the lock (each tarball checked against its
integrity hash) without any package's install scripts, into
``<cache>/central-mcp/npm/<lock's directory name>-<12 digits of its sha256>``,
so that test runs and converges share the tree and a changed lock gets a new one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

NPM_CI = ["ci", "--ignore-scripts", "--omit=dev", "--no-audit", "--no-fund"]


class NpmUnavailable(RuntimeError):
    """npm is not installed here (tests/testbed/setup.sh installs it)."""


def npm_tree(lock: Path, extra: tuple[str, ...] = ()) -> Path:
    """The tree ``npm ci`` made of ``lock`` (a directory with package.json and package-lock.json)."""
    digest = hashlib.sha256((lock / "package-lock.json").read_bytes()).hexdigest()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "central-mcp" / "npm"
    tree = cache / f"{lock.name}-{digest[:12]}"
    if not (tree / "node_modules" / ".package-lock.json").exists():  # npm writes it last (the role checks it too)
        npm = shutil.which("npm")
        if npm is None:
            raise NpmUnavailable(f"npm is not installed, so {lock.name} cannot be installed")
        tree.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(lock / name, tree / name)
        done = subprocess.run([npm, *NPM_CI, *extra], cwd=tree, capture_output=True, text=True, timeout=1200)
        if done.returncode:
            raise RuntimeError(f"npm ci of {lock.name} failed: {done.stderr.strip()[-1500:]}")
    return tree
