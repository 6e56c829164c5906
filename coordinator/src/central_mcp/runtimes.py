# SPDX-License-Identifier: Apache-2.0
"""What each agent's runtime (agent-run, the supervisor in its tmux window) last reported.

Liveness comes from the runtime, not from the model: a runtime heartbeats
every few seconds whatever its CLI does, so an agent whose model is busy in a
long build keeps its claim, and one whose window died is offline after three
missed beats. The reports live in memory only: after a coordinator restart
every runtime reports again within one interval, and until then an agent is
judged by its last stored sign of life, as before.

States this adds to the roster's: ``waiting`` (its CLI shows a question for a
person), ``quiet`` (it holds a task, but neither called the coordinator nor
printed anything for ``quiet_s``), and ``offline`` from missed beats.

An agent whose VM is going down (a shutdown, a Spot preemption) says so
(``leave``): it is offline at once, and stays so while beats still come from
that same boot of its VM (``boot_id``, the kernel's ID of one boot), so no
new task is handed to a runtime about to die. Its next boot clears it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

ACTIVITIES = ("idle", "working", "waiting", "interactive")
SCREEN_LINES = 40
LINE_CHARS = 400
BOOT_ID_RE = re.compile(r"^[0-9a-f-]{8,64}$")
# A runtime that does not say its boot (an older one) is back once it beats this long after it left.
LEFT_WITHOUT_BOOT_S = 60.0


class ReportError(ValueError):
    """A heartbeat the coordinator cannot use; the message names the bad field."""


@dataclass
class Beat:
    """One runtime's last heartbeat, in the coordinator's clock."""

    at: float
    activity: str
    task_id: int | None = None
    output_at: float = 0.0  # when its screen last changed
    screen: list[str] = field(default_factory=list)
    prompt: str = ""  # the question on its screen, when waiting
    pid: int | None = None  # its CLI's process, when one runs
    boot_id: str | None = None  # the boot of its VM (/proc/sys/kernel/random/boot_id)

    def view(self, now: float) -> dict[str, Any]:
        return {
            "activity": self.activity,
            "heartbeat_s": round(max(0.0, now - self.at), 1),
            "output_s": round(max(0.0, now - self.output_at), 1),
            "task_id": self.task_id,
            "cli_pid": self.pid,
            "prompt": self.prompt or None,
            "screen": self.screen,
        }


def parse_report(body: dict[str, Any], now: float) -> Beat:
    """A heartbeat body -> :class:`Beat`; :class:`ReportError` naming the first bad field."""
    activity = body.get("activity")
    if activity not in ACTIVITIES:
        raise ReportError(f"activity must be one of {', '.join(ACTIVITIES)}, got {activity!r:.40}")
    task_id = body.get("task_id")
    if task_id is not None and (isinstance(task_id, bool) or not isinstance(task_id, int) or task_id < 1):
        raise ReportError(f"task_id must be a task number or null, got {task_id!r:.40}")
    age = body.get("output_age_s", 0)
    if isinstance(age, bool) or not isinstance(age, (int, float)) or age < 0:
        raise ReportError(f"output_age_s must be a number of seconds, got {age!r:.40}")
    screen = body.get("screen") or []
    if not isinstance(screen, list) or not all(isinstance(line, str) for line in screen):
        raise ReportError("screen must be a list of text lines")
    prompt = body.get("prompt") or ""
    pid = body.get("cli_pid")
    if not isinstance(prompt, str):
        raise ReportError("prompt must be text")
    if pid is not None and (isinstance(pid, bool) or not isinstance(pid, int)):
        raise ReportError("cli_pid must be a process id or null")
    boot_id = boot_id_of(body)
    return Beat(
        at=now,
        activity=activity,
        task_id=task_id,
        output_at=now - float(age),
        screen=[line[:LINE_CHARS] for line in screen[-SCREEN_LINES:]],
        prompt=prompt[:LINE_CHARS],
        pid=pid,
        boot_id=boot_id,
    )


def boot_id_of(body: dict[str, Any]) -> str | None:
    """The report's ``boot_id`` (the kernel's ID of this boot of the VM), or None; ReportError if malformed."""
    boot_id = body.get("boot_id")
    if boot_id is not None and (not isinstance(boot_id, str) or not BOOT_ID_RE.match(boot_id)):
        raise ReportError(f"boot_id must be the kernel's boot ID (hex digits and -), got {boot_id!r:.40}")
    return boot_id


@dataclass
class Left:
    """An agent whose VM said it was going down: when, why, and from which boot."""

    at: float
    reason: str
    boot_id: str | None


class Runtimes:
    """The last beat of every agent whose runtime has reported since this process started."""

    def __init__(self) -> None:
        self._beats: dict[str, Beat] = {}
        self._left: dict[str, Left] = {}

    def record(self, name: str, beat: Beat) -> None:
        self._beats[name] = beat
        left = self._left.get(name)
        if left is not None and self._back(left, beat):
            del self._left[name]

    @staticmethod
    def _back(left: Left, beat: Beat) -> bool:
        """A beat from another boot of the VM than the one that went down (or, unsaid, much later)."""
        if left.boot_id and beat.boot_id:
            return beat.boot_id != left.boot_id
        return beat.at - left.at >= LEFT_WITHOUT_BOOT_S

    def leave(self, name: str, reason: str, boot_id: str | None, now: float) -> None:
        """The agent's VM is going down: offline now, until a beat from its next boot."""
        self._left[name] = Left(now, reason, boot_id)

    def left(self, name: str) -> Left | None:
        return self._left.get(name)

    def get(self, name: str) -> Beat | None:
        return self._beats.get(name)

    def state(
        self, name: str, holds_task: bool, mcp_at: float | None, offline_s: float, quiet_s: float, now: float
    ) -> str | None:
        """The agent's state from its runtime's reports, or None when no runtime has reported."""
        if name in self._left:
            return "offline"
        beat = self._beats.get(name)
        if beat is None:
            return None
        if now - beat.at >= offline_s:
            return "offline"
        if beat.activity == "waiting":
            return "waiting"
        if not holds_task:
            return "idle"
        last = max(mcp_at or 0.0, beat.output_at)
        return "quiet" if now - last >= quiet_s else "working"
