# SPDX-License-Identifier: Apache-2.0
"""Write a small file of the writer's alone, atomically: a reader sees the old content or the new, never part."""

from __future__ import annotations

import os
import tempfile


def write_private(path: str, text: str, prefix: str) -> None:
    """``text`` to ``path`` (0600, as mkstemp makes it), its directory made 0700 when missing; a temporary file
    beside it (named ``prefix``...) is renamed over the old one, and removed if anything fails first."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, mode=0o700, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=prefix, dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
