"""The engine's default slot implementations: an up/down probability competition.

Models receive recent candles in ``tick(data)`` and answer ``predict(**scope)`` with
``{"p_up": probability that the price is higher after horizon_seconds}``; predictions
are Brier scored (lower is better) against the tape. Every pack can replace any of
these with its own callables.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from crunch_engine.scoring import rules
from crunch_engine.slots.spec import ModelCall, TapeReader, WindowStats
from crunch_engine.timeutil import parse_iso, to_iso

DEFAULT_LOOKBACK = 60
_TEMPLATE_ONLY_KEYS = ("assets", "lookback")


def _assets(template: Mapping[str, Any]) -> list[str]:
    assets = template.get("assets") or ([template["asset"]] if "asset" in template else [])
    if not assets:
        raise ValueError("scope_template needs 'asset' or 'assets'")
    return [str(asset) for asset in assets]


async def provide_raw_input(
    *, tape: TapeReader, config: Mapping[str, Any], now: datetime
) -> dict[str, Any]:
    """RAW_INPUT_PROVIDER: the latest ``lookback`` records of each asset, oldest first."""
    template = config["scope_template"]
    lookback = int(template.get("lookback", DEFAULT_LOOKBACK))
    records: dict[str, list[dict[str, Any]]] = {}
    for asset in _assets(template):
        newest_first = await tape.latest(asset, lookback)
        records[asset] = [
            {"ts": to_iso(r.ts_event), "kind": r.kind, **r.values} for r in reversed(newest_first)
        ]
    return {"as_of": to_iso(now), "records": records}


def build_inference_input(*, raw_input: Mapping[str, Any]) -> dict[str, Any]:
    """INFERENCE_INPUT_BUILDER: ``{"as_of", "candles": {asset: [...]}}`` for ``tick``."""
    return {"as_of": raw_input["as_of"], "candles": dict(raw_input["records"])}


def build_prediction_scopes(*, config: Mapping[str, Any]) -> list[dict[str, Any]]:
    """PREDICTION_SCOPE_BUILDER: one scope per asset of the config's scope template."""
    template = dict(config["scope_template"])
    common = {k: v for k, v in template.items() if k not in (*_TEMPLATE_ONLY_KEYS, "asset")}
    if "horizon_seconds" not in common:
        raise ValueError("scope_template needs 'horizon_seconds'")
    return [{"asset": asset, **common} for asset in _assets(template)]


def build_tracker_call(*, phase: str, payload: Any) -> ModelCall:
    """PREDICT_CALL_BUILDER for ``TrackerBase``: ``tick(data)`` and ``predict(**scope)``."""
    if phase == "tick":
        return ModelCall("tick", (payload,), {})
    if phase == "predict":
        return ModelCall("predict", (), dict(payload))
    raise ValueError(f"unknown phase {phase!r}")


def build_crunchdao_call(*, phase: str, payload: Any) -> ModelCall:
    """PREDICT_CALL_BUILDER for CrunchDAO's current tracker interface:
    ``feed_update(data)`` and ``predict(subject, resolve_horizon_seconds, step_seconds)``."""
    if phase == "tick":
        return ModelCall("feed_update", (payload,), {})
    if phase == "predict":
        return ModelCall(
            "predict",
            (),
            {
                "subject": payload["asset"],
                "resolve_horizon_seconds": payload["horizon_seconds"],
                "step_seconds": payload.get("step_seconds", payload["horizon_seconds"]),
            },
        )
    raise ValueError(f"unknown phase {phase!r}")


def validate_up_probability(*, output: Any) -> dict[str, float]:
    """INFERENCE_OUTPUT_VALIDATOR: ``{"p_up": p}`` with p a finite number in [0, 1]."""
    if not isinstance(output, Mapping):
        raise ValueError(f"expected an object with 'p_up', got {type(output).__name__}")
    if "p_up" not in output:
        raise ValueError(f"missing 'p_up' (keys: {sorted(map(str, output))[:10]})")
    value = output["p_up"]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"'p_up' must be a number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"'p_up' must be within [0, 1], got {value!r}")
    return {"p_up": value}


async def resolve_price_move(
    *, prediction: Mapping[str, Any], tape: TapeReader
) -> dict[str, Any] | None:
    """GROUND_TRUTH_RESOLVER: the price move of the scope's asset between the
    prediction time and ``resolvable_at``, from the tape. None when either price is
    missing or stale, so the prediction stays unresolved instead of being scored badly."""
    asset = prediction["scope"]["asset"]
    start_at = _as_datetime(prediction["performed_at"])
    end_at = _as_datetime(prediction["resolvable_at"])
    horizon = float(
        prediction["scope"].get("horizon_seconds") or (end_at - start_at).total_seconds()
    )
    start = await tape.price_at(asset, start_at, horizon_seconds=horizon)
    end = await tape.price_at(asset, end_at, horizon_seconds=horizon)
    if start is None or end is None or start.price <= 0:
        return None
    return {
        "asset": asset,
        "start_ts": to_iso(start.ts),
        "start_price": start.price,
        "end_ts": to_iso(end.ts),
        "end_price": end.price,
        "return": end.price / start.price - 1.0,
        "up": end.price > start.price,
    }


def score_brier(*, output: Mapping[str, Any], ground_truth: Mapping[str, Any]) -> float:
    """SCORING_FUNCTION: Brier score ``(p_up - outcome)^2`` in [0, 1]; lower is better.
    A strictly proper rule: reporting one's true belief minimises the expected score."""
    return rules.brier(float(output["p_up"]), bool(ground_truth["up"]))


def aggregate_window_means(*, windows: Mapping[str, WindowStats]) -> dict[str, dict[str, Any]]:
    """MODEL_SCORE_AGGREGATOR: the mean score and prediction count of each window."""
    return {name: {"value": stats.mean, "count": stats.count} for name, stats in windows.items()}


def rank_by_primary_window(
    *, model_scores: Sequence[Mapping[str, Any]], rank_by: str, direction: str
) -> list[dict[str, Any]]:
    """LEADERBOARD_RANKER: order by the ``rank_by`` window (``asc``: lower is better).

    Ties are broken by the other windows in their given order, then by model id, so the
    order is deterministic; models without a score in ``rank_by`` come last.
    """
    sign = 1.0 if direction == "asc" else -1.0

    def sort_key(entry: Mapping[str, Any]) -> tuple[Any, ...]:
        windows: Mapping[str, Mapping[str, Any]] = entry["windows"]
        order = [rank_by, *[name for name in windows if name != rank_by]]
        key: list[Any] = []
        for name in order:
            value = windows.get(name, {}).get("value")
            key += [value is None, sign * value if value is not None else 0.0]
        return (*key, str(entry["model_id"]))

    ranked = []
    for rank, entry in enumerate(sorted(model_scores, key=sort_key), start=1):
        row: dict[str, Any] = {"rank": rank, "model_id": entry["model_id"]}
        for name, window in entry["windows"].items():
            row[f"score_{name}"] = window.get("value")
            row[f"count_{name}"] = window.get("count", 0)
        row["status"] = entry.get("status", "active")
        ranked.append(row)
    return ranked


def _window_label(name: str, seconds: int) -> str:
    hours = seconds / 3600
    span = f"{hours / 24:g}d" if hours >= 168 and hours % 24 == 0 else f"{hours:g}h"
    return f"{name.capitalize()} ({span})"


def report_schema(*, windows: Mapping[str, int]) -> dict[str, Any]:
    """REPORT_SCHEMA_PROVIDER: leaderboard columns and metric widgets for the web UI."""
    columns: list[dict[str, Any]] = [
        {
            "id": 1,
            "type": "PROJECT",
            "property": "model_id",
            "format": None,
            "displayName": "Model",
            "tooltip": None,
            "nativeConfiguration": {"type": "model", "statusProperty": "status"},
            "order": 0,
        }
    ]
    series = []
    for index, (name, seconds) in enumerate(windows.items()):
        label = _window_label(name, seconds)
        columns.append(
            {
                "id": index + 2,
                "type": "VALUE",
                "property": f"score_{name}",
                "format": "decimal-4",
                "displayName": label,
                "tooltip": f"Mean Brier score over the last {label.split('(')[1][:-1]} "
                "(lower is better)",
                "nativeConfiguration": None,
                "order": 20 + 10 * index,
            }
        )
        series.append({"name": f"score_{name}", "label": label})
    widgets = [
        {
            "id": 1,
            "type": "CHART",
            "displayName": "Score",
            "tooltip": "Rolling mean Brier score per model (lower is better)",
            "order": 10,
            "endpointUrl": "/reports/models/global",
            "nativeConfiguration": {
                "type": "line",
                "xAxis": {"name": "performed_at"},
                "yAxis": {"series": series, "format": "decimal-4"},
                "displayEvolution": False,
            },
        }
    ]
    return {"schema_version": 1, "leaderboard_columns": columns, "metrics_widgets": widgets}


def _as_datetime(value: Any) -> datetime:
    return value if isinstance(value, datetime) else parse_iso(str(value))
