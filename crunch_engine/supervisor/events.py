"""Fan-out of supervisor events to any number of subscribers, none of which can block it.

Each subscriber has its own bounded buffer; when it is full the oldest event is
dropped (and counted), so a slow consumer (a stalled SSE client, a busy TUI) loses
old lines instead of slowing down the workers' output or the supervisor.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from types import TracebackType

from crunch_engine.supervisor.models import SupervisorEvent

DEFAULT_QUEUE_SIZE = 10_000


class Subscription:
    """An async iterator of events; ``aclose()`` (or leaving ``async with``) unsubscribes.

    Iteration ends (``StopAsyncIteration``) after ``aclose()``, or once the supervisor
    stopped and every event buffered before that was delivered.
    """

    def __init__(self, hub: EventHub, maxsize: int) -> None:
        self._hub = hub
        self._events: deque[SupervisorEvent] = deque(maxlen=maxsize)
        self._ready = asyncio.Event()
        self._finished = False
        self.dropped = 0
        """Events lost because this subscriber did not keep up."""

    def __len__(self) -> int:
        return len(self._events)

    @property
    def closed(self) -> bool:
        return self._finished

    def push(self, event: SupervisorEvent) -> None:
        """Never blocks: a full buffer loses its oldest event."""
        if self._finished:
            return
        if len(self._events) == self._events.maxlen:
            self.dropped += 1
        self._events.append(event)
        self._ready.set()

    def finish(self) -> None:
        """No more events; what is buffered is still delivered."""
        self._finished = True
        self._ready.set()

    async def aclose(self) -> None:
        """Unsubscribe now; buffered events are discarded."""
        self._hub.unsubscribe(self)
        self._events.clear()
        self.finish()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> SupervisorEvent:
        while not self._events:
            if self._finished:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        return self._events.popleft()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class EventHub:
    """Holds subscribers weakly: one dropped without ``aclose()`` unsubscribes itself."""

    def __init__(self, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        self._queue_size = queue_size
        self._subscribers: weakref.WeakSet[Subscription] = weakref.WeakSet()

    def __len__(self) -> int:
        return len(self._subscribers)

    def subscribe(self, queue_size: int | None = None) -> Subscription:
        subscription = Subscription(self, queue_size or self._queue_size)
        self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)

    def publish(self, event: SupervisorEvent) -> None:
        for subscription in list(self._subscribers):
            subscription.push(event)

    def finish_all(self) -> None:
        """End every current subscription (after its buffered events); new ones still work."""
        for subscription in list(self._subscribers):
            subscription.finish()
        self._subscribers.clear()
