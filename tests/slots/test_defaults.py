"""The default slot implementations (the baseline up/down competition)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from crunch_engine.feeds.contracts import StoredMarketRecord
from crunch_engine.slots import defaults
from crunch_engine.slots.spec import PricePoint, WindowStats

T0 = datetime(2025, 6, 1, tzinfo=UTC)


class ListTape:
    """A TapeReader over an in-memory list of candles (the real one reads the database)."""

    def __init__(self, closes: list[float]) -> None:
        self.records = [
            StoredMarketRecord(
                "replay", "BTC", "candle", "1m", T0 + timedelta(minutes=i), {"close": c}
            )
            for i, c in enumerate(closes)
        ]

    async def latest(self, asset: str, limit: int) -> list[StoredMarketRecord]:
        return list(reversed(self.records))[:limit]

    async def price_at(
        self, asset: str, at: datetime, *, horizon_seconds: float | None = None
    ) -> PricePoint | None:
        known = [r for r in self.records if r.ts_event <= at]
        return PricePoint(known[-1].ts_event, known[-1].values["close"]) if known else None


CONFIG = {
    "scope_template": {"asset": "BTC", "horizon_seconds": 300, "step_seconds": 60, "lookback": 3}
}


async def test_raw_input_holds_the_latest_records_oldest_first() -> None:
    raw = await defaults.provide_raw_input(tape=ListTape([1, 2, 3, 4, 5]), config=CONFIG, now=T0)
    assert [c["close"] for c in raw["records"]["BTC"]] == [3, 4, 5]
    built = defaults.build_inference_input(raw_input=raw)
    assert built["candles"]["BTC"][-1]["close"] == 5


def test_scopes_per_asset() -> None:
    config = {"scope_template": {"assets": ["BTC", "ADA"], "horizon_seconds": 60, "lookback": 5}}
    scopes = defaults.build_prediction_scopes(config=config)
    assert scopes == [
        {"asset": "BTC", "horizon_seconds": 60},
        {"asset": "ADA", "horizon_seconds": 60},
    ]


def test_call_builders() -> None:
    assert defaults.build_tracker_call(phase="tick", payload={"a": 1}).method == "tick"
    call = defaults.build_tracker_call(
        phase="predict", payload={"asset": "BTC", "horizon_seconds": 60}
    )
    assert (call.method, call.kwargs) == ("predict", {"asset": "BTC", "horizon_seconds": 60})
    crunchdao = defaults.build_crunchdao_call(
        phase="predict", payload={"asset": "BTC", "horizon_seconds": 60, "step_seconds": 15}
    )
    assert crunchdao.kwargs == {"subject": "BTC", "resolve_horizon_seconds": 60, "step_seconds": 15}
    assert defaults.build_crunchdao_call(phase="tick", payload={}).method == "feed_update"


@pytest.mark.parametrize(
    "bad", [None, [], {"x": 1}, {"p_up": "0.5"}, {"p_up": True}, {"p_up": 1.5}, {"p_up": math.nan}]
)
def test_validator_refuses_bad_output(bad: object) -> None:
    with pytest.raises(ValueError):
        defaults.validate_up_probability(output=bad)


def test_validator_normalises() -> None:
    assert defaults.validate_up_probability(output={"p_up": 1, "extra": 2}) == {"p_up": 1.0}


async def test_ground_truth_and_brier() -> None:
    tape = ListTape([100, 101, 102, 103, 104, 105, 106])
    prediction = {
        "scope": {"asset": "BTC"},
        "performed_at": T0 + timedelta(minutes=1),
        "resolvable_at": (T0 + timedelta(minutes=6)).isoformat(),
    }
    truth = await defaults.resolve_price_move(prediction=prediction, tape=tape)
    assert truth is not None
    assert truth["up"] is True and truth["start_price"] == 101 and truth["end_price"] == 106
    assert defaults.score_brier(output={"p_up": 0.75}, ground_truth=truth) == pytest.approx(0.0625)
    assert defaults.score_brier(output={"p_up": 0.75}, ground_truth={"up": False}) == pytest.approx(
        0.5625
    )
    early = {**prediction, "performed_at": T0 - timedelta(minutes=1)}
    assert await defaults.resolve_price_move(prediction=early, tape=tape) is None


def test_ranking_is_deterministic_with_ties_and_missing() -> None:
    def entry(model: str, recent: float | None, steady: float | None) -> dict:
        return {
            "model_id": model,
            "windows": {
                "recent": {"value": recent, "count": 1 if recent is not None else 0},
                "steady": {"value": steady, "count": 1},
            },
        }

    scores = [
        entry("c", 0.2, 0.3),
        entry("b", 0.2, 0.3),
        entry("a", 0.2, 0.1),
        entry("z", None, 0.0),
        entry("d", 0.1, 0.9),
    ]
    ranked = defaults.rank_by_primary_window(model_scores=scores, rank_by="recent", direction="asc")
    assert [r["model_id"] for r in ranked] == ["d", "a", "b", "c", "z"]
    assert [r["rank"] for r in ranked] == [1, 2, 3, 4, 5]
    assert ranked[0]["score_recent"] == 0.1 and ranked[0]["count_recent"] == 1
    descending = defaults.rank_by_primary_window(
        model_scores=scores, rank_by="recent", direction="desc"
    )
    assert [r["model_id"] for r in descending] == ["b", "c", "a", "d", "z"]


def test_aggregator_and_report_schema() -> None:
    windows = {"recent": WindowStats(1.0, 4), "anchor": WindowStats(0.0, 0)}
    assert defaults.aggregate_window_means(windows=windows) == {
        "recent": {"value": 0.25, "count": 4},
        "anchor": {"value": None, "count": 0},
    }
    schema = defaults.report_schema(windows={"recent": 86400, "steady": 259200, "anchor": 604800})
    columns = schema["leaderboard_columns"]
    assert columns[0]["type"] == "PROJECT" and columns[0]["property"] == "model_id"
    assert [c["displayName"] for c in columns[1:]] == [
        "Recent (24h)",
        "Steady (72h)",
        "Anchor (7d)",
    ]
    assert schema["metrics_widgets"][0]["endpointUrl"] == "/reports/models/global"
