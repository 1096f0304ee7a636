"""Fan-out of call sequences: the fast pipelined path and the grpc.aio path.

``call_sequence([(method, args, kwargs), ...])`` gives the same results as one ``call``
per element, one after the other: statuses, exec_time_us (microseconds, per call),
details, failure streaks, cooldowns, health. Models whose server advertised pipelining
get the whole sequence in one write on their fast connection (one wake-up per model per
cycle); the others (reference servers, remote orchestrators) run it call after call over
grpc.aio, each model independently of the others.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import grpc
import grpc.aio

from crunch_engine.models.client.fastpath import (
    EncodedSequence,
    FastConnection,
    Outcome,
    SequenceRun,
    StreamIds,
)
from crunch_engine.models.client.fleet import ModelSlot
from crunch_engine.models.contracts import CallResult, CallStatus, FailureCode
from crunch_engine.models.protocol import codec, dynamic_subclass_pb2
from crunch_engine.models.server import framing as fr

if TYPE_CHECKING:
    from crunch_engine.models.client.model_client import ModelClient

logger = logging.getLogger("crunch_engine.models.client")

_TIMEOUT_CODES = frozenset(
    {
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)
_TIMEOUT_INTS = frozenset(code.value[0] for code in _TIMEOUT_CODES)
_CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}
_SUCCESS, _FAILED, _TIMEOUT, _ABSENT = (
    CallStatus.SUCCESS,
    CallStatus.FAILED,
    CallStatus.TIMEOUT,
    CallStatus.ABSENT,
)
_CallResponse = dynamic_subclass_pb2.CallResponse
_decode = codec.decode
_perf = time.perf_counter

Call = tuple[str, Sequence[Any], Mapping[str, Any] | None]


class FanOutMixin:
    """The call side of ModelClient (kept apart to keep modules short)."""

    _stream_ids: StreamIds

    async def call_sequence(
        self: ModelClient,
        calls: Sequence[Call],
        *,
        model_ids: Sequence[str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - the per-call deadline
    ) -> list[dict[str, CallResult]]:
        """Run ``calls`` in order on every requested model (default: all known).

        Returns one dict per call, each with one CallResult per requested model id.
        Raises codec.EncodingError when arguments cannot be encoded (a caller bug).
        """
        methods = [method for method, _, _ in calls]
        requests = [codec.encode_call_request(m, a, k) for m, a, k in calls]
        deadline = self.timeout if timeout is None else timeout
        self._start_pending()
        results: list[dict[str, CallResult]] = [{} for _ in calls]
        if not calls:
            return results
        fast: list[ModelSlot] = []
        slow: list[ModelSlot] = []
        now = time.monotonic()
        slots = self._slots
        for model_id in slots if model_ids is None else model_ids:
            slot = slots.get(model_id)
            reason = "unknown model" if slot is None else self._absent_reason(slot, now)
            if reason is not None:
                for per_call in results:
                    per_call[model_id] = CallResult(model_id, _ABSENT, detail=reason)
            elif self._fast_usable(slot):  # type: ignore[arg-type]
                fast.append(slot)  # type: ignore[arg-type]
            else:
                slow.append(slot)  # type: ignore[arg-type]
        jobs = []
        if fast:
            jobs.append(self._run_fast(fast, methods, requests, deadline, results))
        if slow:
            if len(slow) <= self.max_concurrency:
                jobs += [self._grpc_chain(s, methods, requests, deadline, results) for s in slow]
            else:
                semaphore = asyncio.Semaphore(self.max_concurrency)

                async def limited(slot: ModelSlot) -> None:
                    async with semaphore:
                        await self._grpc_chain(slot, methods, requests, deadline, results)

                jobs += [limited(slot) for slot in slow]
        if len(jobs) == 1:
            await jobs[0]
        else:
            await asyncio.gather(*jobs)
        return results

    def _absent_reason(self: ModelClient, slot: ModelSlot, now: float) -> str | None:
        """Why ``slot`` is not called now (None: it is)."""
        if not slot.ready:
            return slot.reason or "not ready"
        if slot.cooldown_until > now:
            left = slot.cooldown_left(now)
            return f"cooldown {left:.1f}s left: {slot.cooldown_reason}"
        return None

    def _fast_usable(self: ModelClient, slot: ModelSlot) -> bool:
        fast = slot.fast
        if fast is None:
            return False
        if fast.usable and self._stream_ids.next > fast.last_stream_id:
            return True
        self._reopen_fast(slot)
        return False

    async def _run_fast(
        self: ModelClient,
        slots: list[ModelSlot],
        methods: list[str],
        requests: list[bytes],
        deadline: float,
        results: list[dict[str, CallResult]],
    ) -> None:
        encoded = EncodedSequence(requests, self._stream_ids.take(len(requests)))
        began = _perf()
        run = SequenceRun(len(slots), len(requests), deadline, began)
        connections = [slot.fast for slot in slots]
        for index, connection in enumerate(connections):
            if connection is None or not connection.send(encoded, run, index):
                run.expire(index, "connection not usable", fr.GRPC_UNAVAILABLE)
        if run.remaining:
            run.arm()
            await run.done
        now = time.monotonic()
        for call, method in enumerate(methods):
            per_call = results[call]
            for index, slot in enumerate(slots):
                model_id = slot.endpoint.model_id
                outcome = run.outcomes[index][call]
                connection = connections[index]
                # The peer vanished mid-call: whichever of the EOF and the orchestrator's
                # STOPPED news came first, the result reads the same.
                status = outcome.status  # type: ignore[union-attr]
                lost = status != fr.GRPC_OK and (
                    slot.fast is not connection
                    or (
                        connection is not None
                        and connection.closed
                        and status == fr.GRPC_UNAVAILABLE
                    )
                )
                if not lost and call and (reason := self._absent_reason(slot, now)) is not None:
                    per_call[model_id] = CallResult(model_id, _ABSENT, detail=reason)
                    continue  # a cooldown or re-setup started by an earlier call
                previous = began if call == 0 else run.outcomes[index][call - 1].finished  # type: ignore[union-attr]
                elapsed = int((outcome.finished - previous) * 1_000_000)  # type: ignore[union-attr]
                if lost:
                    endpoint = slot.endpoint
                    result = CallResult(
                        model_id,
                        _ABSENT,
                        None,
                        elapsed,
                        "disconnected during the call",
                        endpoint.deployment_id,
                    )
                else:
                    result = self._from_outcome(slot, outcome, elapsed)  # type: ignore[arg-type]
                per_call[model_id] = result
                self._account(slot, method, result)

    def _from_outcome(
        self: ModelClient, slot: ModelSlot, outcome: Outcome, elapsed: int
    ) -> CallResult:
        endpoint = slot.endpoint
        status = outcome.status
        if status != fr.GRPC_OK:
            kind = _TIMEOUT if status in _TIMEOUT_INTS else _FAILED
            detail = f"{_CODE_NAMES.get(status, str(status))}: {outcome.message}"
            return CallResult(
                endpoint.model_id, kind, None, elapsed, detail, endpoint.deployment_id
            )
        try:
            response = _CallResponse.FromString(outcome.payload)
        except Exception as error:  # a broken server: a failure of this model
            detail = f"undecodable CallResponse: {error}"
            return CallResult(
                endpoint.model_id, _FAILED, None, elapsed, detail, endpoint.deployment_id
            )
        return self._from_response(slot, response, elapsed)

    def _from_response(
        self: ModelClient, slot: ModelSlot, response: Any, elapsed: int
    ) -> CallResult:
        endpoint = slot.endpoint
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

    async def _grpc_chain(
        self: ModelClient,
        slot: ModelSlot,
        methods: list[str],
        requests: list[bytes],
        deadline: float,
        results: list[dict[str, CallResult]],
    ) -> None:
        """The sequence on one model over grpc.aio, one call after the other."""
        model_id = slot.endpoint.model_id
        for call, (method, request) in enumerate(zip(methods, requests, strict=True)):
            if call and (reason := self._absent_reason(slot, time.monotonic())) is not None:
                results[call][model_id] = CallResult(model_id, _ABSENT, detail=reason)
                continue
            result = await self._grpc_call(slot, request, deadline)
            results[call][model_id] = result
            self._account(slot, method, result)

    async def _grpc_call(
        self: ModelClient, slot: ModelSlot, request: bytes, deadline: float
    ) -> CallResult:
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
        return self._from_response(slot, response, elapsed)

    def _account(self: ModelClient, slot: ModelSlot, method: str, outcome: CallResult) -> None:
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

    def _resetup(self: ModelClient, slot: ModelSlot) -> None:
        """The server lost its instance (e.g. Rest by someone else): Setup again."""
        if slot.ready and slot.channel is not None:
            slot.ready = False
            slot.reason = "setting up again (the server had no instance)"
            slot.connect_task = asyncio.get_running_loop().create_task(
                self._setup(slot, slot.channel)
            )

    # -- fast connections --------------------------------------------------------------

    async def _open_fast(self: ModelClient, slot: ModelSlot, within: float) -> None:
        """Open the lean connection to a server that advertised pipelining."""
        channel = slot.channel
        if channel is None or channel.pipeline_depth <= 0:
            return
        try:
            connection = await FastConnection.open(channel.host, channel.port, within)
        except (OSError, TimeoutError, ConnectionError) as error:
            logger.info(
                "model %s: fast path unavailable (%s), using grpc", slot.endpoint.model_id, error
            )
            return
        if slot.channel is not channel:
            connection.close()
            return
        old, slot.fast = slot.fast, connection
        if old is not None:
            old.close()

    def _reopen_fast(self: ModelClient, slot: ModelSlot) -> None:
        """Replace a lost or exhausted fast connection in the background (grpc meanwhile)."""
        if slot.fast_task is not None and not slot.fast_task.done():
            return
        old, slot.fast = slot.fast, None
        if old is not None:
            old.close()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        slot.fast_task = loop.create_task(self._open_fast(slot, 5.0))
