"""A cycle's prediction records from call results: validated, invalid, failed, absent;
the validator may be a plain function, a coroutine function, or a function returning
an awaitable."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from crunch_engine.models.contracts import CallResult, CallStatus
from crunch_engine.services.predict import RAW_OUTPUT_LIMIT, PredictService
from crunch_engine.slots.resolver import ResolvedSlot
from crunch_engine.slots.spec import SlotName

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SCOPE = {"asset": "BTC", "horizon_seconds": 300}
CONFIG = {"id": "btc", "scope_key": "btc-up"}


def check(output: Any, scope: Any) -> dict[str, float]:
    if not isinstance(output, dict) or not 0 <= output.get("p_up", -1) <= 1:
        raise ValueError(f"bad output for {scope['asset']}")
    return {"p_up": float(output["p_up"])}


async def check_async(output: Any, scope: Any) -> dict[str, float]:
    return check(output, scope)


def check_returning_awaitable(output: Any, scope: Any) -> Any:
    return check_async(output, scope)


class _Competition:
    def __init__(self, validator: Callable[..., Any], is_async: bool) -> None:
        self.validator = ResolvedSlot(
            SlotName.INFERENCE_OUTPUT_VALIDATOR, "test:check", "test", validator, None, is_async
        )

    def slot(self, name: SlotName) -> ResolvedSlot:
        assert name is SlotName.INFERENCE_OUTPUT_VALIDATOR
        return self.validator


@pytest.mark.parametrize(
    ("validator", "is_async"),
    [(check, False), (check_async, True), (check_returning_awaitable, False)],
)
async def test_records_of_one_scope(validator: Callable[..., Any], is_async: bool) -> None:
    service = PredictService(None, _Competition(validator, is_async), None, None, call_timeout=1)  # type: ignore[arg-type]
    results = {
        "good": CallResult("good", CallStatus.SUCCESS, {"p_up": 0.7}, 120),
        "bad": CallResult("bad", CallStatus.SUCCESS, {"p_up": 3, "pad": "x" * 9000}, 80),
        "broken": CallResult("broken", CallStatus.FAILED, None, 50, "MODEL_FAILED: boom"),
    }
    models = ["absent", "bad", "broken", "good"]
    records = await service._records(results, models, SCOPE, CONFIG, "btc:1", 0, NOW)
    by_model = {record.model_id: record for record in records}
    assert [record.model_id for record in records] == models
    good = by_model["good"]
    assert (good.status, good.output, good.failure_reason, good.exec_time_us) == (
        "SUCCESS", {"p_up": 0.7}, None, 120,
    )  # fmt: skip
    assert good.id == "btc:1:0:good" and good.input_id == "btc:1"
    assert good.resolvable_at == NOW + timedelta(seconds=300) and good.scope == SCOPE
    bad = by_model["bad"]
    assert bad.status == "INVALID" and bad.failure_reason == "ValueError: bad output for BTC"
    assert bad.output["truncated"] and len(bad.output["head"]) == RAW_OUTPUT_LIMIT
    assert by_model["broken"].status == "FAILED"
    assert by_model["broken"].failure_reason == "MODEL_FAILED: boom"
    assert by_model["absent"].status == "ABSENT" and by_model["absent"].output is None
