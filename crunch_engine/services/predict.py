"""One predict cycle: tape -> input -> tick -> scopes -> predict -> validate -> one write.

Every model the fleet knows gets a row for every scope of every cycle: SUCCESS with its
validated output, or FAILED / TIMEOUT / ABSENT / INVALID with the reason, so the score
worker can penalise non-answers (skipping a hard round must never pay).
"""

from __future__ import annotations

import inspect
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from crunch_engine.competition import Competition
from crunch_engine.db.database import Database
from crunch_engine.db.repositories.predictions import PredictionInput, PredictionRecord
from crunch_engine.models.contracts import CallResult, CallStatus, ModelEndpoint
from crunch_engine.services.model_health import HealthBook
from crunch_engine.slots.spec import ModelCall, SlotName, TapeReader
from crunch_engine.timeutil import to_epoch_ms

logger = logging.getLogger(__name__)

HEALTH_WRITE_SECONDS = 10.0
"""How often the per-model health record is written to the models table."""

RAW_OUTPUT_LIMIT = 4096
"""Invalid outputs are stored for diagnosis, truncated to this many characters."""


class ModelFleet(Protocol):
    """What the predict service needs from the model client."""

    def known_models(self) -> list[ModelEndpoint]: ...

    async def call(
        self,
        method: str,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        model_ids: Sequence[str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - a per-call gRPC deadline
    ) -> dict[str, CallResult]: ...


@dataclass
class CycleReport:
    scope_key: str
    performed_at: datetime
    models: int
    counts: dict[str, int] = field(default_factory=dict)
    seconds_input: float = 0.0
    seconds_models: float = 0.0
    seconds_write: float = 0.0

    @property
    def seconds_total(self) -> float:
        """From the input being built to every prediction committed."""
        return self.seconds_models + self.seconds_write


def _truncate(value: Any) -> Any:
    """Keep an invalid output for diagnosis without storing megabytes of it."""
    try:
        text = json.dumps(value, default=repr)
    except (TypeError, ValueError):
        text = repr(value)
    if len(text) <= RAW_OUTPUT_LIMIT:
        return value if isinstance(value, dict | list | str | int | float | bool) else text
    return {"truncated": True, "length": len(text), "head": text[:RAW_OUTPUT_LIMIT]}


class PredictService:
    def __init__(
        self,
        database: Database,
        competition: Competition,
        fleet: ModelFleet,
        tape: TapeReader,
        *,
        call_timeout: float,
    ) -> None:
        self.database = database
        self.competition = competition
        self.fleet = fleet
        self.tape = tape
        self.call_timeout = call_timeout
        self.health = HealthBook()
        self._known: dict[str, tuple[Any, ...]] = {}
        self._health_written = float("-inf")

    def _slot(self, name: SlotName) -> Any:
        return self.competition.slot(name)

    async def _model_call(self, phase: str, payload: Any) -> ModelCall:
        call = await self._slot(SlotName.PREDICT_CALL_BUILDER)(phase=phase, payload=payload)
        if not isinstance(call, ModelCall):
            raise TypeError(f"PREDICT_CALL_BUILDER must return a ModelCall, got {call!r}")
        return call

    async def run_cycle(self, config: Mapping[str, Any], now: datetime) -> CycleReport:
        """Run one cycle of ``config`` (a scheduled prediction config as a mapping)."""
        started = time.perf_counter()
        raw = await self._slot(SlotName.RAW_INPUT_PROVIDER)(tape=self.tape, config=config, now=now)
        inference_input = await self._slot(SlotName.INFERENCE_INPUT_BUILDER)(
            raw_input=raw, config=config
        )
        scopes = await self._slot(SlotName.PREDICTION_SCOPE_BUILDER)(
            config=config, inference_input=inference_input, now=now
        )
        endpoints = {e.model_id: e for e in self.fleet.known_models()}
        model_ids = sorted(endpoints)
        report = CycleReport(str(config["scope_key"]), now, len(model_ids))
        input_built = time.perf_counter()
        report.seconds_input = input_built - started

        tick = await self._model_call("tick", inference_input)
        predict_calls = [await self._model_call("predict", scope) for scope in scopes]
        all_results = await self._call_all([tick, *predict_calls], model_ids)
        for results in all_results:
            self.health.record(results, endpoints)

        cycle_id = f"{config['id']}:{to_epoch_ms(now)}"
        records: list[PredictionRecord] = []
        for index, (scope, results) in enumerate(zip(scopes, all_results[1:], strict=True)):
            records += await self._records(results, model_ids, scope, config, cycle_id, index, now)
        for record in records:
            report.counts[record.status] = report.counts.get(record.status, 0) + 1
        models_done = time.perf_counter()
        report.seconds_models = models_done - input_built

        source = PredictionInput(
            id=cycle_id,
            prediction_config_id=str(config["id"]),
            scope_key=str(config["scope_key"]),
            performed_at=now,
            raw_input=raw,
            inference_input=inference_input,
        )
        await self._remember_models(endpoints)
        await self.database.predictions.record_cycle([source], records)
        report.seconds_write = time.perf_counter() - models_done
        if time.monotonic() - self._health_written >= HEALTH_WRITE_SECONDS:
            # Health is for people and dashboards: a write every few seconds is plenty,
            # and keeps it off the per-cycle critical path.
            await self.database.models.update_health(self.health.snapshot())
            self._health_written = time.monotonic()
        logger.info(
            "cycle scope=%s models=%d %s input_ms=%.1f models_ms=%.1f write_ms=%.1f",
            report.scope_key,
            report.models,
            " ".join(f"{k.lower()}={v}" for k, v in sorted(report.counts.items())),
            report.seconds_input * 1000,
            report.seconds_models * 1000,
            report.seconds_write * 1000,
        )
        return report

    async def _call_all(
        self, calls: Sequence[ModelCall], model_ids: list[str]
    ) -> list[dict[str, CallResult]]:
        """Tick and predicts of a cycle: as one pipelined sequence when the fleet can
        (one wake-up per model), otherwise one fan-out after the other."""
        sequence = getattr(self.fleet, "call_sequence", None)
        if sequence is not None:
            return list(
                await sequence(
                    [(c.method, c.args, c.kwargs) for c in calls],
                    model_ids=model_ids,
                    timeout=self.call_timeout,
                )
            )
        return [
            await self.fleet.call(
                c.method, c.args, c.kwargs, model_ids=model_ids, timeout=self.call_timeout
            )
            for c in calls
        ]

    async def _records(
        self,
        results: Mapping[str, CallResult],
        model_ids: Sequence[str],
        scope: Mapping[str, Any],
        config: Mapping[str, Any],
        cycle_id: str,
        index: int,
        now: datetime,
    ) -> list[PredictionRecord]:
        """One record per model for one scope: one tight loop, the validator called
        directly when it is a plain function (100 awaits per cycle cost ~1 ms)."""
        validator = self._slot(SlotName.INFERENCE_OUTPUT_VALIDATOR)
        validate_sync = None if validator.is_async else validator.call_sync
        shared = dict(scope)  # read-only, shared by the scope's records
        due = now + timedelta(seconds=float(scope.get("horizon_seconds", 0)))
        config_id, scope_key = str(config["id"]), str(config["scope_key"])
        prefix = f"{cycle_id}:{index}:"
        records = []
        for model_id in model_ids:
            result = results.get(model_id)
            status, output, reason, exec_us = "ABSENT", None, "no answer: not connected", None
            if result is not None:
                status, reason, exec_us = result.status.value, result.detail, result.exec_time_us
                if result.status is CallStatus.SUCCESS:
                    try:
                        if validate_sync is not None:
                            output = validate_sync(output=result.result, scope=shared)
                            if inspect.isawaitable(output):  # a plain function returning one
                                output = await output
                        else:
                            output = await validator(output=result.result, scope=shared)
                        reason = None
                    except Exception as exc:  # the validator's verdict, or its own failure
                        status, output = "INVALID", _truncate(result.result)
                        reason = f"{type(exc).__name__}: {exc}"
            records.append(
                PredictionRecord(
                    id=prefix + model_id,
                    input_id=cycle_id,
                    model_id=model_id,
                    prediction_config_id=config_id,
                    scope_key=scope_key,
                    scope=shared,
                    status=status,
                    performed_at=now,
                    resolvable_at=due,
                    output=output,
                    failure_reason=reason,
                    exec_time_us=exec_us,
                )
            )
        return records

    async def _remember_models(self, endpoints: Mapping[str, ModelEndpoint]) -> None:
        """Keep the ``models`` table current (only rows that changed are written)."""
        from crunch_engine.db.repositories.models import ModelInfo

        changed = []
        for endpoint in endpoints.values():
            key = (
                endpoint.identity.model_name,
                endpoint.identity.cruncher_id,
                endpoint.identity.cruncher_name,
                endpoint.deployment_id,
                endpoint.state.value,
            )
            if self._known.get(endpoint.model_id) != key:
                changed.append(
                    ModelInfo(
                        id=endpoint.model_id,
                        name=endpoint.identity.model_name,
                        player_id=endpoint.identity.cruncher_id or None,
                        player_name=endpoint.identity.cruncher_name or None,
                        deployment_id=endpoint.deployment_id,
                        state=endpoint.state.value,
                    )
                )
                self._known[endpoint.model_id] = key
        if changed:
            await self.database.models.upsert(changed)
