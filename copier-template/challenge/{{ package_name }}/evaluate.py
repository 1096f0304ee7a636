"""Evaluate a model locally on the bundled candles, the way the node scores it.

    python -m <package>.evaluate examples/momentum [--json] [--max-rounds N]

The bundled real 1-minute candles (``data/candles.csv``) are replayed round by round:
``tick(data)`` with the last ``LOOKBACK`` candles of every asset, then ``predict(**scope)``
for each scope of the competition; every answer is validated and Brier scored against the
close ``horizon_seconds`` later (``scoring.py``). Invalid, failed or late answers get the
worst score, as on the node. Prints the mean score per scope and overall (lower is better).
"""

from __future__ import annotations

import argparse
import csv
import importlib
import inspect
import json
import math
import pkgutil
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any

from . import competition, scoring
from .tracker import TrackerBase

CANDLE_SECONDS = 60
"""The bundled candles are one minute apart."""
CALL_DEADLINE_SECONDS = 2.0
"""The node's default deadline of one call; a slower answer is scored as missing."""
WARMUP = 30
"""Candles of history before the first round."""


def load_candles(path: Path | None = None) -> dict[str, list[dict[str, Any]]]:
    """The bundled candles by asset, oldest first, in the node's tick format."""
    if path is None:
        text = (files(__package__) / "data" / "candles.csv").read_text(encoding="utf-8")
    else:
        text = path.read_text(encoding="utf-8")
    out: dict[str, list[dict[str, Any]]] = {}
    for row in csv.DictReader(text.splitlines()):
        ts = datetime.fromtimestamp(int(row["ts_ms"]) / 1000, tz=UTC)
        out.setdefault(row["asset"], []).append(
            {
                "ts": ts.isoformat(),
                "kind": "candle",
                "open": float(row["open"]),
                "high": float(row["high"]),
                "low": float(row["low"]),
                "close": float(row["close"]),
                "volume": float(row["volume"]),
            }
        )
    return out


def _forget_foreign(name: str, folder: Path) -> None:
    """Drop a cached module of the same name loaded from elsewhere (another submission)."""
    module = sys.modules.get(name)
    origin = getattr(module, "__file__", None) if module is not None else None
    if module is not None and (origin is None or not Path(origin).resolve().is_relative_to(folder)):
        for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
            del sys.modules[key]


def load_model(folder: Path) -> TrackerBase:
    """An instance of the ``TrackerBase`` subclass defined in a submission folder (as the
    node's model runner finds it: the first subclass outside this package)."""
    folder = folder.resolve()
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a folder (give a submission folder)")
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    errors: list[str] = []
    for info in pkgutil.iter_modules([str(folder)]):
        _forget_foreign(info.name, folder)
        try:
            module = importlib.import_module(info.name)
        except Exception as error:
            errors.append(f"{info.name}: {type(error).__name__}: {error}")
            continue
        for _, candidate in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(candidate, TrackerBase)
                and candidate is not TrackerBase
                and not candidate.__module__.startswith(__package__ + ".")
                and not inspect.isabstract(candidate)
            ):
                return candidate()
    detail = f" (import errors: {'; '.join(errors)})" if errors else ""
    raise LookupError(f"no subclass of TrackerBase in {folder}{detail}")


@dataclass
class ScopeResult:
    scope_key: str
    asset: str
    scores: list[float] = field(default_factory=list)
    rejected: int = 0
    last_reason: str | None = None

    @property
    def mean(self) -> float | None:
        return sum(self.scores) / len(self.scores) if self.scores else None


@dataclass
class Report:
    model: str
    rounds: int
    horizon_candles: int
    results: list[ScopeResult]
    latency_ms_max: float

    @property
    def mean(self) -> float | None:
        scores = [s for result in self.results for s in result.scores]
        return sum(scores) / len(scores) if scores else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "rounds": self.rounds,
            "horizon_candles": self.horizon_candles,
            "mean_score": self.mean,
            "latency_ms_max": round(self.latency_ms_max, 3),
            "scopes": [
                {
                    "scope_key": r.scope_key,
                    "asset": r.asset,
                    "predictions": len(r.scores),
                    "rejected": r.rejected,
                    "mean_score": r.mean,
                    "last_rejection": r.last_reason,
                }
                for r in self.results
            ],
        }


def evaluation_scopes(assets: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
    """(scope_key, scope) pairs for the assets with candles; when no asset of the
    competition is bundled, its scopes are evaluated on the first bundled asset."""
    pairs: list[tuple[str, dict[str, Any]]] = []
    for config in competition.SCHEDULED_PREDICTION_CONFIGS:
        one = competition.scopes_of(config)
        pairs.extend((config["scope_key"], scope) for scope in one if scope["asset"] in assets)
    if not pairs and assets:
        config = competition.SCHEDULED_PREDICTION_CONFIGS[0]
        scope = {**competition.scopes_of(config)[0], "asset": assets[0]}
        pairs.append((config["scope_key"], scope))
    return pairs


def _timed(function: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return result, (time.perf_counter() - started) * 1000.0


def evaluate(
    model: TrackerBase,
    candles: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    horizon_seconds: int = competition.HORIZON_SECONDS,
    interval_seconds: int = competition.INTERVAL_SECONDS,
    lookback: int = competition.LOOKBACK,
    max_rounds: int | None = None,
    name: str = "",
) -> Report:
    """Replay the candles through ``model`` and score every answer."""
    assets = [asset for asset in candles if candles[asset]]
    length = min(len(candles[asset]) for asset in assets)
    horizon = max(1, math.ceil(horizon_seconds / CANDLE_SECONDS))
    stride = max(1, round(interval_seconds / CANDLE_SECONDS))
    first = min(WARMUP, max(0, length - horizon - 1))
    if first + horizon >= length:
        raise ValueError(
            f"the horizon ({horizon_seconds} s = {horizon} candles) does not fit in the "
            f"{length} bundled candles"
        )
    pairs = evaluation_scopes(assets)
    results = {key + "/" + scope["asset"]: ScopeResult(key, scope["asset"]) for key, scope in pairs}
    rounds = 0
    slowest = 0.0
    for t in range(first, length - horizon, stride):
        if max_rounds is not None and rounds >= max_rounds:
            break
        rounds += 1
        window = {asset: list(candles[asset][max(0, t - lookback + 1) : t + 1]) for asset in assets}
        as_of = datetime.fromisoformat(window[assets[0]][-1]["ts"]).timestamp() + CANDLE_SECONDS
        data = {
            "as_of": datetime.fromtimestamp(as_of, tz=UTC).isoformat(),
            "candles": window,
        }
        tick_error: str | None = None
        try:
            _, took = _timed(model.tick, data)
            slowest = max(slowest, took)
        except Exception as error:
            tick_error = f"tick raised {type(error).__name__}: {error}"
        for key, scope in pairs:
            result = results[key + "/" + scope["asset"]]
            series = candles[scope["asset"]]
            truth = scoring.ground_truth(series[t]["close"], series[t + horizon]["close"])
            reason = tick_error
            answer: Any = None
            if reason is None:
                try:
                    answer, took = _timed(model.predict, **scope)
                    slowest = max(slowest, took)
                    if took > CALL_DEADLINE_SECONDS * 1000:
                        reason = f"late: {took:.0f} ms (deadline {CALL_DEADLINE_SECONDS:g} s)"
                except Exception as error:
                    reason = f"predict raised {type(error).__name__}: {error}"
            if reason is None:
                value, reason = scoring.score_answer(answer, truth)
            else:
                value = scoring.WORST_SCORE
            result.scores.append(value)
            if reason is not None:
                result.rejected += 1
                result.last_reason = reason
    return Report(name, rounds, horizon, list(results.values()), slowest)


def format_report(report: Report) -> str:
    lines = [
        f"model: {report.model}",
        f"rounds: {report.rounds} (horizon {report.horizon_candles} candle(s) of 1 minute; "
        f"slowest call {report.latency_ms_max:.1f} ms)",
        f"{'scope':<32} {'asset':<8} {'predictions':>11} {'rejected':>8} {'mean score':>10}",
    ]
    for r in report.results:
        mean = f"{r.mean:.4f}" if r.mean is not None else "-"
        lines.append(
            f"{r.scope_key:<32} {r.asset:<8} {len(r.scores):>11} {r.rejected:>8} {mean:>10}"
        )
        if r.last_reason:
            lines.append(f"  last rejection: {r.last_reason}")
    overall = f"{report.mean:.4f}" if report.mean is not None else "-"
    lines.append(f"score: {overall} (mean Brier; lower is better, always 0.5 scores 0.25)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=f"python -m {__package__}.evaluate",
        description="Score a submission folder locally on the bundled candles.",
    )
    parser.add_argument("folder", type=Path, help="a submission folder, e.g. examples/momentum")
    parser.add_argument("--candles", type=Path, help="another candles CSV (same columns)")
    parser.add_argument("--max-rounds", type=int, help="stop after this many rounds")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    try:
        model = load_model(args.folder)
    except (FileNotFoundError, LookupError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    name = f"{args.folder} ({type(model).__name__})"
    report = evaluate(model, load_candles(args.candles), max_rounds=args.max_rounds, name=name)
    print(json.dumps(report.as_dict()) if args.json else format_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
