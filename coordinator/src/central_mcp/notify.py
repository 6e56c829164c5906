# SPDX-License-Identifier: Apache-2.0
"""Tell a person: a JSON POST to ``CENTRAL_MCP_NOTIFY_URL`` when an agent needs one.

Sent when an agent starts waiting (its CLI asks a question on its screen),
goes offline, or a task fails. The body carries ``text``, one line that chat
webhooks (Slack, Mattermost, Google Chat, Rocket.Chat) show as the message,
``content`` with the same line (Discord's name for it), and the details as
fields. Delivery is best effort with a short time-out and two retries; it
never holds up the coordinator (its own task reads the event bus).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import httpx2

from central_mcp.service import Service

log = logging.getLogger(__name__)

TIMEOUT_S = 5.0
RETRIES = 2


def message(svc: Service, event_type: str, data: dict[str, Any]) -> dict[str, Any] | None:
    """The webhook body for one bus event, or None when the event is not one to tell a person."""
    if event_type == "agent.state" and data.get("state") in ("waiting", "offline"):
        name, state = data["name"], data["state"]
        beat = svc.roster.runtimes.get(name)
        if state == "waiting":
            asks = (beat.prompt if beat else "") or "a question"
            text = f"central-mcp: agent {name} is waiting for a person: its screen shows {asks!r}"
        else:
            text = f"central-mcp: agent {name} is offline (was {data.get('previous')}); its tasks go back to the board"
        screen = beat.screen[-10:] if beat else []
        return {"text": text, "content": text, "event": "agent." + state, "agent": name, "screen": screen}
    if event_type == "task.failed" and data.get("state") == "FAILED":
        result = " ".join(str(data.get("result") or "").split())[:300]
        text = f"central-mcp: task #{data['id']} \u201c{data['title']}\u201d FAILED: {result}"
        return {"text": text, "content": text, "event": "task.failed", "task": data["id"], "agent": data["claimed_by"]}
    return None


class Notifier:
    """Reads the event bus and posts what a person must hear to the webhook."""

    def __init__(self, svc: Service) -> None:
        self.svc = svc
        self.url = svc.settings.notify_url
        self._task: asyncio.Task[None] | None = None
        self.sent = 0
        self.failed = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="central-mcp-notify")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        async with httpx2.AsyncClient(timeout=TIMEOUT_S) as client:
            while True:  # a dropped subscription (reader too slow) starts again
                sub = self.svc.bus.subscribe()
                try:
                    async for event in sub:
                        body = message(self.svc, event.type, event.data)
                        if body is not None:
                            await self.svc.store.durable()  # tell people only what a power cut keeps
                            await self._post(client, body)
                finally:
                    sub.close()
                await asyncio.sleep(1)

    async def _post(self, client: httpx2.AsyncClient, body: dict[str, Any]) -> None:
        for attempt in range(RETRIES + 1):
            try:
                answer = await client.post(self.url, json=body)
                if answer.status_code < 300:
                    self.sent += 1
                    return
                problem = f"HTTP {answer.status_code}"
            except httpx2.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            await asyncio.sleep(1 + attempt)
        self.failed += 1
        # The URL is not logged: a chat webhook URL is a secret.
        log.warning("notify webhook: %s not delivered (%s)", body["event"], problem)
