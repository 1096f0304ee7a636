"""The engine's model client: discovery, Setup, and the fast concurrent fan-out.

Speed comes from: one long-lived channel per deployment, the CallRequest encoded once per
fan-out and shared by every model as raw bytes, no wait_for_ready (a dead model fails at
once instead of holding the round), and a semaphore only when the fleet exceeds
``max_concurrency``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import grpc
import grpc.aio

from crunch_engine.models.client.channel import ModelChannel, SetupError
from crunch_engine.models.client.discovery import OrchestratorLink
from crunch_engine.models.client.fleet import ModelSlot
from crunch_engine.models.contracts import (
    CallResult,
    CallStatus,
    FailureCode,
    ModelEndpoint,
    ModelHealth,
    WireState,
)
from crunch_engine.models.protocol import codec

logger = logging.getLogger("crunch_engine.models.client")

_TIMEOUT_CODES = frozenset(
    {
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)
_SUCCESS, _FAILED, _TIMEOUT, _ABSENT = (
    CallStatus.SUCCESS,
    CallStatus.FAILED,
    CallStatus.TIMEOUT,
    CallStatus.ABSENT,
)
_decode = codec.decode
_perf = time.perf_counter


class ModelClient:
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

    async def _setup(self, slot: ModelSlot, channel: ModelChannel) -> None:
        endpoint = slot.endpoint
        try:
            await channel.setup(self.base_classname, self.setup_timeout)
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
        request = codec.encode_call_request(method, args, kwargs)
        deadline = self.timeout if timeout is None else timeout
        self._start_pending()
        results: dict[str, CallResult] = {}
        targets: list[ModelSlot] = []
        now = time.monotonic()
        slots = self._slots
        for model_id in slots if model_ids is None else model_ids:
            slot = slots.get(model_id)
            if slot is None:
                results[model_id] = CallResult(model_id, _ABSENT, detail="unknown model")
            elif not slot.ready:
                detail = slot.reason or "not ready"
                results[model_id] = CallResult(model_id, _ABSENT, detail=detail)
            elif slot.cooldown_until > now:
                left = slot.cooldown_left(now)
                detail = f"cooldown {left:.1f}s left: {slot.cooldown_reason}"
                results[model_id] = CallResult(model_id, _ABSENT, detail=detail)
            else:
                targets.append(slot)
        if targets:
            if len(targets) <= self.max_concurrency:
                outcomes = await asyncio.gather(
                    *[self._call_one(slot, request, deadline) for slot in targets]
                )
            else:
                semaphore = asyncio.Semaphore(self.max_concurrency)

                async def limited(slot: ModelSlot) -> CallResult:
                    async with semaphore:
                        return await self._call_one(slot, request, deadline)

                outcomes = await asyncio.gather(*[limited(slot) for slot in targets])
            for slot, outcome in zip(targets, outcomes, strict=True):
                results[outcome.model_id] = outcome
                self._account(slot, method, outcome)
        return results

    async def _call_one(self, slot: ModelSlot, request: bytes, deadline: float) -> CallResult:
        endpoint = slot.endpoint
        channel = slot.channel
        started = _perf()
        try:
            response = await channel.call(request, timeout=deadline)  # type: ignore[union-attr]
        except grpc.aio.AioRpcError as error:
            elapsed = int((_perf() - started) * 1_000_000)
            code = error.code()
            status = _TIMEOUT if code in _TIMEOUT_CODES else _FAILED
            detail = f"{code.name}: {error.details()}"
            return CallResult(
                endpoint.model_id, status, None, elapsed, detail, endpoint.deployment_id
            )
        except (asyncio.CancelledError, AttributeError):
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # our caller is cancelled, not just this model's channel
            if channel is None or slot.channel is not channel:  # closed by a state change
                elapsed = int((_perf() - started) * 1_000_000)
                detail = "disconnected during the call"
                return CallResult(
                    endpoint.model_id, _ABSENT, None, elapsed, detail, endpoint.deployment_id
                )
            raise
        elapsed = int((_perf() - started) * 1_000_000)
        status_code = response.status.code
        if status_code == "SUCCESS":
            variant = response.methodResponse
            try:
                value = _decode(variant.type, variant.value)
            except codec.DecodingError as error:
                detail = f"undecodable result: {error}"
                return CallResult(
                    endpoint.model_id, _FAILED, None, elapsed, detail, endpoint.deployment_id
                )
            return CallResult(
                endpoint.model_id, _SUCCESS, value, elapsed, None, endpoint.deployment_id
            )
        detail = f"{status_code or 'UNKNOWN'}: {response.status.message}"
        if status_code == "FAILED_PRECONDITION":
            self._resetup(slot)
        return CallResult(endpoint.model_id, _FAILED, None, elapsed, detail, endpoint.deployment_id)

    def _account(self, slot: ModelSlot, method: str, outcome: CallResult) -> None:
        if outcome.status is _ABSENT:
            return
        streak = slot.record(method, outcome.status, outcome.exec_time_us, outcome.detail)
        if streak.length < self.failure_threshold:
            return
        timeouts = streak.timeouts >= streak.failures
        code = FailureCode.MULTIPLE_TIMEOUT if timeouts else FailureCode.MULTIPLE_FAILED
        what = "timeouts" if timeouts else "failures"
        reason = f"{streak.length} consecutive {what} of {method}: {outcome.detail}"
        slot.start_cooldown(self.cooldown_seconds, reason)
        logger.warning(
            "model %s on cooldown for %.0fs: %s", outcome.model_id, self.cooldown_seconds, reason
        )
        self._report(slot, code, reason)

    def _resetup(self, slot: ModelSlot) -> None:
        """The server lost its instance (e.g. Rest by someone else): Setup again."""
        if slot.ready and slot.channel is not None:
            slot.ready = False
            slot.reason = "setting up again (the server had no instance)"
            slot.connect_task = asyncio.get_running_loop().create_task(
                self._setup(slot, slot.channel)
            )

    # -- context manager ---------------------------------------------------------------------

    async def __aenter__(self) -> ModelClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            await self.close()
