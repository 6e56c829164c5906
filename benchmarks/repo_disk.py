# SPDX-License-Identifier: Apache-2.0
"""Disk per agent: a worktree sharing the VM's mirror (what the launcher makes) against a full clone.

Generates a repository of about --size-mb of history (files of random,
incompressible content, rewritten over --commits commits, so the history is
larger than one checkout), makes the bare mirror the launcher keeps on a VM,
then for one agent both a worktree as the repo_worktrees module makes it
(``git clone --shared`` of the mirror) and a full clone (``--no-local``: its
own copy of every object, as one clone per agent would be). Prints the
mirror's size, and for each way the checkout, the repository's own
``.git`` and the total. Everything in a temporary directory, removed at the
end.

Run: ``python3 benchmarks/repo_disk.py [--size-mb 300] [--commits 6]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
from pathlib import Path


def run(*argv: str, cwd: Path | None = None) -> None:
    subprocess.run(argv, cwd=cwd, check=True, capture_output=True)


def du(path: Path) -> int:
    """Bytes on disk (allocated blocks), as df sees them."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            total += os.lstat(os.path.join(root, name)).st_blocks * 512
    return total


def mb(n: int) -> str:
    return f"{n / 2**20:7.1f} MB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=300, help="history to generate, MB")
    parser.add_argument("--commits", type=int, default=6, help="commits that rewrite the files")
    parser.add_argument("--files", type=int, default=40)
    args = parser.parse_args()
    per_file = args.size_mb * 2**20 // (args.commits * args.files)
    with tempfile.TemporaryDirectory(prefix="repo-disk-") as tmp:
        root = Path(tmp)
        seed, mirror = root / "seed", root / "mirror.git"
        run("git", "init", "-q", "--initial-branch=main", str(seed))
        for commit in range(args.commits):
            for index in range(args.files):
                (seed / f"data-{index:03d}.bin").write_bytes(os.urandom(per_file))
            run("git", "add", "--all", cwd=seed)
            run("git", "-c", "user.name=B", "-c", "user.email=b@x", "commit", "-qm", f"commit {commit}", cwd=seed)
        run("git", "clone", "-q", "--mirror", str(seed), str(mirror))
        worktree, full = root / "worktree", root / "full"
        run("git", "clone", "-q", "--shared", "--branch", "main", str(mirror), str(worktree))
        run("git", "clone", "-q", "--no-local", "--branch", "main", str(mirror), str(full))
        print(f"repository: {args.commits} commits x {args.files} files of {per_file / 2**20:.1f} MB "
              f"(history {mb(du(mirror)).strip()} in the VM's mirror, once per repository)")  # fmt: skip
        print(f"{'per agent':<28}{'checkout':>12}{'own .git':>12}{'total':>12}")
        for label, path in (("worktree (shares the mirror)", worktree), ("full clone", full)):
            git_dir = du(path / ".git")
            print(f"{label:<28}{mb(du(path) - git_dir):>12}{mb(git_dir):>12}{mb(du(path)):>12}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
