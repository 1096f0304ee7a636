"""The engine's model client: discovery, Setup, and the fast concurrent fan-out.

Speed comes from: one long-lived connection per deployment, the CallRequest encoded once
per fan-out and shared by every model as raw bytes, no wait_for_ready (a dead model fails
at once instead of holding the round), and for our own servers (they advertise
``x-crunch-pipeline`` on Setup) a lean HTTP/2 connection that pipelines a whole call
sequence in one write (``calls.py``, ``fastpath.py``). Setup, and every call to other
servers, go through grpc.aio.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from crunch_engine.models.client.calls import FanOutMixin
from crunch_engine.models.client.channel import ModelChannel, SetupError
from crunch_engine.models.client.discovery import OrchestratorLink
from crunch_engine.models.client.fastpath import StreamIds
from crunch_engine.models.client.fleet import ModelSlot
from crunch_engine.models.contracts import (
    CallResult,
    FailureCode,
    ModelEndpoint,
    ModelHealth,
    WireState,
)

logger = logging.getLogger("crunch_engine.models.client")


class ModelClient(FanOutMixin):
    """Calls participant models: ``await client.call("predict", kwargs=scope)``."""

    def __init__(
        self,
        *,
        base_classname: str,
        timeout: float = 2.0,
        max_concurrency: int = 256,
        setup_timeout: float = 10.0,
        failure_threshold: int = 5,
        cooldown_seconds: float = 30.0,
        fast_path: bool = True,
    ) -> None:
        self.base_classname = base_classname
        self.timeout = timeout
        self.max_concurrency = max(1, max_concurrency)
        self.setup_timeout = setup_timeout
        self.failure_threshold = max(1, failure_threshold)
        self.cooldown_seconds = cooldown_seconds
        self._slots: dict[str, ModelSlot] = {}
        self._link: OrchestratorLink | None = None
        self._changed: asyncio.Event | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._closed = False
        self._stream_ids = StreamIds()
        self.fast_path = fast_path
        """Use the lean pipelining connection with servers that offer it (else grpc.aio only)."""

    # -- fleet -----------------------------------------------------------------------------

    async def connect_orchestrator(self, host: str, port: int, crunch_id: str) -> None:
        """Follow an orchestrator's announcements; returns once its ``init`` is processed."""
        if self._link is not None:
            await self._link.close()
        self._link = OrchestratorLink(host, port, crunch_id, self._on_orchestrator_event)
        await self._link.start()

    def _on_orchestrator_event(self, event: str, data: list[dict[str, Any]]) -> None:
        announced: set[str] = set()
        for item in data:
            try:
                endpoint = ModelEndpoint.from_wire(item)
            except (KeyError, ValueError, TypeError) as error:
                logger.warning("ignored malformed model state %.200r: %s", item, error)
                continue
            announced.add(endpoint.model_id)
            self._apply(endpoint)
        if event == "init":
            # init lists the RUNNING models: the others stopped while we were away.
            for model_id, slot in self._slots.items():
                if model_id not in announced and slot.endpoint.state is WireState.RUNNING:
                    self._apply(dataclasses.replace(slot.endpoint, state=WireState.STOPPED))

    def add_endpoint(self, endpoint: ModelEndpoint) -> None:
        """Add (or update) a model by hand: static fleets and tests."""
        self._apply(endpoint)

    def remove_model(self, model_id: str) -> None:
        slot = self._slots.pop(model_id, None)
        if slot is not None:
            self._disconnect(slot)
            self._notify()

    def known_models(self) -> list[ModelEndpoint]:
        return [slot.endpoint for slot in self._slots.values()]

    def ready_model_ids(self) -> list[str]:
        return [model_id for model_id, slot in self._slots.items() if slot.ready]

    async def wait_ready(self, count: int, timeout: float) -> None:  # noqa: ASYNC109
        """Wait until at least ``count`` models are ready; TimeoutError otherwise."""
        async with asyncio.timeout(timeout):
            while True:
                self._start_pending()
                if sum(slot.ready for slot in self._slots.values()) >= count:
                    return
                changed = self._change_event()
                changed.clear()
                await changed.wait()

    def health(self) -> dict[str, ModelHealth]:
        return {model_id: slot.health() for model_id, slot in self._slots.items()}

    async def close(self) -> None:
        self._closed = True
        if self._link is not None:
            await self._link.close()
        for slot in self._slots.values():
            self._disconnect(slot)
        tasks = list(self._background)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _apply(self, endpoint: ModelEndpoint) -> None:
        slot = self._slots.get(endpoint.model_id)
        running = endpoint.state is WireState.RUNNING
        if slot is None:
            slot = self._slots[endpoint.model_id] = ModelSlot(endpoint=endpoint)
            if running:
                self._connect(slot)
            else:
                slot.reason = f"not running ({endpoint.state.value})"
        elif endpoint.deployment_id != slot.endpoint.deployment_id:
            if not running:
                return  # news about another run than the one we hold: stale
            self._disconnect(slot)
            slot.new_deployment(endpoint)
            self._connect(slot)
        elif not running:
            slot.endpoint = endpoint
            self._disconnect(slot)
            slot.reason = f"not running ({endpoint.state.value})"
        else:
            moved = (endpoint.ip, endpoint.port) != (slot.endpoint.ip, slot.endpoint.port)
            slot.endpoint = endpoint
            if moved:
                self._disconnect(slot)
            if slot.channel is None:
                self._connect(slot)
        self._notify()

    def _connect(self, slot: ModelSlot) -> None:
        slot.ready = False
        slot.reason = "connecting"
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # started by the first wait_ready / call inside the loop
        slot.channel = ModelChannel(slot.endpoint.ip, slot.endpoint.port)
        slot.connect_task = loop.create_task(self._setup(slot, slot.channel))

    def _start_pending(self) -> None:
        for slot in self._slots.values():
            if (
                slot.channel is None
                and slot.endpoint.state is WireState.RUNNING
                and slot.reason == "connecting"
            ):
                self._connect(slot)

    def _disconnect(self, slot: ModelSlot) -> None:
        slot.ready = False
        if slot.connect_task is not None:
            slot.connect_task.cancel()
            slot.connect_task = None
        channel, slot.channel = slot.channel, None
        if channel is not None:
            self._spawn(channel.close())
        if slot.fast_task is not None:
            slot.fast_task.cancel()
            slot.fast_task = None
        fast, slot.fast = slot.fast, None
        if fast is not None:
            fast.close()

    async def _setup(self, slot: ModelSlot, channel: ModelChannel) -> None:
        endpoint = slot.endpoint
        began = time.monotonic()
        try:
            await channel.setup(self.base_classname, self.setup_timeout)
            if (
                self.fast_path
                and channel.pipeline_depth > 0
                and (slot.fast is None or not slot.fast.usable)
            ):
                left = self.setup_timeout - (time.monotonic() - began)
                await self._open_fast(slot, max(1.0, left))
        except SetupError as error:
            if slot.channel is not channel:
                return
            slot.reason = f"setup failed: {error}"
            slot.last_error = str(error)
            logger.warning("model %s: %s", endpoint.model_id, error)
            code = (
                FailureCode.CONNECTION_FAILED
                if error.code == "CONNECTION_FAILED"
                else FailureCode.BAD_IMPLEMENTATION
            )
            self._report(slot, code, str(error))
            self._notify()
            return
        if slot.channel is channel:
            slot.ready = True
            slot.reason = ""
            logger.info("model %s ready (%s)", endpoint.model_id, channel.address)
            self._notify()

    def _report(self, slot: ModelSlot, code: FailureCode, reason: str) -> None:
        if self._link is not None and not self._closed:
            endpoint = slot.endpoint
            self._spawn(
                self._link.report_failure(endpoint.model_id, code.value, reason, endpoint.ip)
            )

    def _spawn(self, coroutine: Any) -> None:
        try:
            task = asyncio.get_running_loop().create_task(coroutine)
        except RuntimeError:
            coroutine.close()
            return
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _change_event(self) -> asyncio.Event:
        if self._changed is None:
            self._changed = asyncio.Event()
        return self._changed

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()

    # -- calls -----------------------------------------------------------------------------

    async def call(
        self,
        method: str,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        model_ids: Sequence[str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - the per-call gRPC deadline
    ) -> dict[str, CallResult]:
        """Call ``method`` on every requested model (default: all known) concurrently.

        Returns one CallResult per requested model id. Raises codec.EncodingError when the
        arguments cannot be encoded (a caller bug, not a model failure).
        """
        sequence = await self.call_sequence(
            [(method, args, kwargs)], model_ids=model_ids, timeout=timeout
        )
        return sequence[0]

    # -- context manager ---------------------------------------------------------------------

    async def __aenter__(self) -> ModelClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            await self.close()
