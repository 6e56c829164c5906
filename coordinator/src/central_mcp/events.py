# SPDX-License-Identifier: Apache-2.0
"""In-process publish/subscribe of fleet events (task.created, agent.state, ...).

The domain publishes after each committed change; the SSE endpoint and
tests subscribe. Writers must never wait for readers: each subscriber has a
bounded queue, and one that falls behind is dropped (its stream ends with a
``stream.dropped`` event; the browser's EventSource reconnects and catches up
from the replay buffer with ``Last-Event-ID``).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

EVENT_TYPES = (
    "task.created",
    "task.claimed",
    "task.updated",
    "task.completed",
    "task.failed",
    "task.suggested",
    "agent.registered",
    "agent.state",
    "note.posted",
)


@dataclass(frozen=True)
class Event:
    """One fleet event; ``id`` grows by one per event within a process."""

    id: int
    type: str
    data: dict[str, Any]
    at: float = field(default_factory=time.time)


class Subscription:
    """A subscriber's queue; iterate it to receive events until it is closed or dropped."""

    def __init__(self, bus: EventBus, maxsize: int) -> None:
        self._bus = bus
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue(maxsize=maxsize)
        self.dropped = False

    def offer(self, event: Event) -> bool:
        """Queue without waiting; False means the subscriber is too slow and must go."""
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            return False
        return True

    def close(self) -> None:
        self._bus.unsubscribe(self)

    async def __aiter__(self) -> AsyncIterator[Event]:
        while True:
            event = await self.queue.get()
            if event is None:
                return
            yield event


class EventBus:
    """Fan-out of events to any number of subscribers, with a short replay buffer."""

    def __init__(self, queue_size: int = 256, replay: int = 512) -> None:
        self.queue_size = queue_size
        self._subs: set[Subscription] = set()
        self._ids = itertools.count(1)
        self._recent: deque[Event] = deque(maxlen=replay)
        self.published = 0
        self.dropped_subscribers = 0

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    def publish(self, type_: str, data: dict[str, Any]) -> Event:
        """Deliver to every subscriber now; never blocks, never raises for a slow reader.

        Must be called from the event loop's thread (asyncio queues are not
        thread-safe); the domain runs there.
        """
        event = Event(next(self._ids), type_, data)
        self._recent.append(event)
        self.published += 1
        for sub in list(self._subs):
            if not sub.offer(event):
                self._drop(sub)
        return event

    def subscribe(self, last_event_id: int | None = None) -> Subscription:
        """A new subscription; with ``last_event_id``, first the buffered events after it."""
        sub = Subscription(self, self.queue_size)
        if last_event_id is not None:
            for event in self._recent:
                if event.id > last_event_id and not sub.offer(event):
                    break
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)

    def close_all(self) -> None:
        """End every stream (at shutdown), so open SSE responses finish promptly."""
        for sub in list(self._subs):
            self._end(sub)
        self._subs.clear()

    def _drop(self, sub: Subscription) -> None:
        self.dropped_subscribers += 1
        sub.dropped = True
        log.warning("dropped a slow event subscriber (queue of %d full)", self.queue_size)
        self._subs.discard(sub)
        self._end(sub)

    @staticmethod
    def _end(sub: Subscription) -> None:
        # Make room for the end marker so the reader stops after what it has.
        while True:
            try:
                sub.queue.put_nowait(None)
                return
            except asyncio.QueueFull:
                sub.queue.get_nowait()
