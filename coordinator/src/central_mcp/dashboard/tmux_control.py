# SPDX-License-Identifier: Apache-2.0
"""A tmux control-mode client (``tmux -C``): every pane's output, and commands answered in stream order.

In control mode tmux writes one line per event: ``%output %3 <octal-escaped
bytes>`` for pane output, ``%layout-change @1 <layout> ...`` when a window's
panes change size, ``%window-close @1``, ``%exit``; and the answer to each
command between ``%begin T N F`` and ``%end T N F`` (``%error`` on failure;
F is 1 for commands this client sent). tmux keeps these in order, which is
what lets the relay cut a snapshot exactly between two pieces of output.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable
from typing import Any

MAX_LINE = 2**20  # longest line expected from tmux (a captured line, a burst of output)
ESCAPE_RE = re.compile(rb"\\([0-7]{3})")
LEAF_RE = re.compile(r"(\d+)x(\d+),\d+,\d+,(\d+)")  # a pane in a tmux layout string (containers end in { or [)


def unescape(value: bytes) -> bytes:
    """Undo control mode's octal escapes (``\\015`` -> CR, ``\\134`` -> backslash)."""
    return ESCAPE_RE.sub(lambda m: bytes([int(m.group(1), 8)]), value)


def layout_sizes(layout: str) -> dict[str, tuple[int, int]]:
    """Pane id -> (width, height) from a ``%layout-change`` layout string (leaves only)."""
    return {f"%{pid}": (int(w), int(h)) for w, h, pid in LEAF_RE.findall(layout)}


class TmuxError(RuntimeError):
    """tmux answered a command with an error (or went away before answering)."""


class _Request:
    """A command line sent on the control client, waiting for its replies."""

    def __init__(self, replies: int, on_done: Callable[[list[list[bytes]]], Any] | None, future: asyncio.Future[Any]):
        self.replies, self.on_done, self.future = replies, on_done, future
        self.blocks: list[list[bytes]] = []
        self.error: str | None = None

    def finish(self) -> None:
        if self.future.done():
            return
        try:
            if self.error is not None:
                raise TmuxError(self.error)
            result = self.on_done(self.blocks) if self.on_done else self.blocks
        except Exception as exc:  # a malformed reply: the awaiting caller reports it
            self.future.set_exception(exc)
        else:
            self.future.set_result(result)


class ControlClient:
    """``tmux -C attach-session -r``: a reader of every pane's output and a command channel."""

    def __init__(self, tmux: list[str], session: str, on_output: Callable[[str, bytes], None],
                 on_layout: Callable[[str, dict[str, tuple[int, int]]], None],
                 on_attached: Callable[[], None] | None = None) -> None:  # fmt: skip
        self.tmux, self.session = tmux, session
        self.on_output, self.on_layout = on_output, on_layout
        # Called once tmux answered the attach itself with %end (its %error, or no server at all, never calls it).
        self.on_attached = on_attached
        self.proc: asyncio.subprocess.Process | None = None
        self._pending: list[_Request] = []

    async def start(self) -> None:
        # -N: attach-session would otherwise start a tmux server when none runs (tmux 3.2 and later), which
        # a session started next then joins: every window would inherit this client's process, with its
        # no-new-privileges flag (the relay's), and no agent could be started through sudo in it.
        self.proc = await asyncio.create_subprocess_exec(
            *self.tmux, "-N", "-C", "attach-session", "-r", "-t", self.session,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
            limit=MAX_LINE * 4,
        )  # fmt: skip

    async def command(
        self, line: str, replies: int = 1, on_done: Callable[[list[list[bytes]]], Any] | None = None
    ) -> Any:
        """Send one command line (``a ; b`` gives two replies); the output lines of each.

        ``on_done`` runs inside the stream reader, right at the last ``%end``:
        before any later ``%output`` is handled. Its result is returned.
        """
        if self.proc is None or self.proc.stdin is None or self.proc.returncode is not None:
            raise TmuxError("the tmux control client is not running")
        request = _Request(replies, on_done, asyncio.get_running_loop().create_future())
        self._pending.append(request)
        self.proc.stdin.write(line.encode() + b"\n")
        return await request.future

    async def run(self) -> str:
        """Read the control stream until tmux ends it; the reason."""
        assert self.proc is not None and self.proc.stdout is not None
        block: list[bytes] | None = None
        guard = b""
        ours = attached = False
        reason = "tmux control client ended"
        while True:
            raw = await self.proc.stdout.readline()
            if not raw:
                break
            line = raw[:-1] if raw.endswith(b"\n") else raw
            if block is not None:
                if line.startswith((b"%end ", b"%error ")) and line.split(b" ", 1)[1] == guard:
                    if not ours and not attached and line.startswith(b"%end "):
                        attached = True  # the first block not ours is the attach-session's own answer
                        if self.on_attached is not None:
                            self.on_attached()
                    if ours and self._pending:
                        request = self._pending[0]
                        if line.startswith(b"%error"):
                            request.error = b" ".join(block).decode(errors="replace")
                        request.blocks.append(block)
                        if len(request.blocks) == request.replies:
                            self._pending.pop(0)
                            request.finish()
                    block = None
                else:
                    block.append(line)
            elif line.startswith(b"%output "):
                _, pane, value = (line.split(b" ", 2) + [b""])[:3]
                self.on_output(pane.decode(), unescape(value))
            elif line.startswith(b"%begin "):
                guard = line.split(b" ", 1)[1]
                ours = guard.endswith(b" 1")  # flags 1: a command this client sent (0: the attach itself)
                block = []
            elif line.startswith(b"%layout-change "):
                parts = line.decode(errors="replace").split(" ")
                if len(parts) >= 3:
                    self.on_layout(parts[1], layout_sizes(parts[2]))
            elif line.startswith((b"%window-close ", b"%unlinked-window-close ")):
                self.on_layout(line.decode(errors="replace").split(" ")[1], {})  # a window without panes
            elif line.startswith(b"%exit"):
                reason = line.decode(errors="replace")
        for request in self._pending:
            if not request.future.done():
                request.future.set_exception(TmuxError(reason))
        self._pending.clear()
        return reason

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.terminate()
            await self.proc.wait()
