"""What each of the ten slots is called with and what it returns.

The engine calls every slot with keyword arguments. A slot implementation may accept
any subset of its slot's documented arguments (or ``**kwargs``), sync or ``async``; a
parameter that is not documented must have a default. ``crunch config check`` verifies
this for every slot before anything runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from crunch_engine.feeds.contracts import StoredMarketRecord


class SlotName(StrEnum):
    RAW_INPUT_PROVIDER = "RAW_INPUT_PROVIDER"
    INFERENCE_INPUT_BUILDER = "INFERENCE_INPUT_BUILDER"
    INFERENCE_OUTPUT_VALIDATOR = "INFERENCE_OUTPUT_VALIDATOR"
    SCORING_FUNCTION = "SCORING_FUNCTION"
    GROUND_TRUTH_RESOLVER = "GROUND_TRUTH_RESOLVER"
    MODEL_SCORE_AGGREGATOR = "MODEL_SCORE_AGGREGATOR"
    LEADERBOARD_RANKER = "LEADERBOARD_RANKER"
    REPORT_SCHEMA_PROVIDER = "REPORT_SCHEMA_PROVIDER"
    PREDICTION_SCOPE_BUILDER = "PREDICTION_SCOPE_BUILDER"
    PREDICT_CALL_BUILDER = "PREDICT_CALL_BUILDER"


@dataclass(frozen=True, slots=True)
class SlotSpec:
    name: SlotName
    arguments: tuple[str, ...]
    returns: str
    purpose: str


SLOT_SPECS: dict[SlotName, SlotSpec] = {
    spec.name: spec
    for spec in (
        SlotSpec(
            SlotName.RAW_INPUT_PROVIDER,
            ("tape", "config", "now"),
            "a JSON-serialisable mapping (the cycle's raw input)",
            "Fetch or build the raw data of a prediction cycle (usually from the tape).",
        ),
        SlotSpec(
            SlotName.INFERENCE_INPUT_BUILDER,
            ("raw_input", "config"),
            "a JSON-serialisable value sent to every model's tick",
            "Transform the raw input into what models receive.",
        ),
        SlotSpec(
            SlotName.INFERENCE_OUTPUT_VALIDATOR,
            ("output", "scope"),
            "the normalised output mapping; raise ValueError when invalid",
            "Validate (and normalise) one model's response.",
        ),
        SlotSpec(
            SlotName.SCORING_FUNCTION,
            ("output", "ground_truth", "scope"),
            "a finite float",
            "Score one validated prediction against its ground truth.",
        ),
        SlotSpec(
            SlotName.GROUND_TRUTH_RESOLVER,
            ("prediction", "tape"),
            "a JSON-serialisable mapping, or None when not (yet) resolvable",
            "Resolve what actually happened, tape first.",
        ),
        SlotSpec(
            SlotName.MODEL_SCORE_AGGREGATOR,
            ("model_id", "windows"),
            "a mapping window name -> {value, count}",
            "Aggregate a model's per-prediction scores over the rolling windows.",
        ),
        SlotSpec(
            SlotName.LEADERBOARD_RANKER,
            ("model_scores", "rank_by", "direction"),
            "a list of leaderboard entries, each with rank and model_id",
            "Rank models into a leaderboard snapshot.",
        ),
        SlotSpec(
            SlotName.REPORT_SCHEMA_PROVIDER,
            ("windows",),
            "{schema_version, leaderboard_columns, metrics_widgets}",
            "Define the leaderboard columns and metric widgets the web UI shows.",
        ),
        SlotSpec(
            SlotName.PREDICTION_SCOPE_BUILDER,
            ("config", "inference_input", "now"),
            "a list of scope mappings (one prediction per model per scope)",
            "Build the scope dimensions of each prediction of a cycle.",
        ),
        SlotSpec(
            SlotName.PREDICT_CALL_BUILDER,
            ("phase", "payload"),
            "a ModelCall (method, args, kwargs)",
            "Assemble the model invocation: phase 'tick' (payload = inference input) "
            "or 'predict' (payload = scope).",
        ),
    )
}


@dataclass(frozen=True, slots=True)
class ModelCall:
    """A method call on a participant model, as PREDICT_CALL_BUILDER describes it."""

    method: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class WindowStats:
    """Sum and count of a model's scores inside one rolling window."""

    total: float
    count: int

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None


@dataclass(frozen=True, slots=True)
class PricePoint:
    ts: datetime
    price: float


class TapeReader(Protocol):
    """What slots may read from the tape (implemented over ``market_records``)."""

    async def latest(self, asset: str, limit: int) -> list[StoredMarketRecord]:
        """The newest ``limit`` records of ``asset``, newest first."""
        ...

    async def price_at(
        self, asset: str, at: datetime, *, horizon_seconds: float | None = None
    ) -> PricePoint | None:
        """The last known price at ``at``, or None when missing or stale (older than the
        tape's staleness fraction of ``horizon_seconds``, and never less than one candle)."""
        ...
