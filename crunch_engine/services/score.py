"""Scoring resolvable predictions: tape-first ground truth, isolated scoring, penalties.

- Ground truth comes from GROUND_TRUTH_RESOLVER (tape first), once per distinct
  (scope, performed_at, resolvable_at) in a batch: every model of a cycle shares it.
- Missing or stale data leaves a prediction PENDING (retried), and UNRESOLVED with the
  reason once ``unresolved_after`` has passed: never scored on bad data, not penalised
  (it is the data's fault, and every model is equally affected).
- Each SCORING_FUNCTION call is isolated: one that raises or returns a non-finite value
  is stored with ``score_success = false`` and the reason, and the batch goes on.
- ABSENT / FAILED / TIMEOUT / INVALID predictions, and failed scorings, get the pack's
  penalty (default: the rule's worst score), so skipping a hard round never pays.
- Scores and their window-bucket increments commit in one transaction.
"""

from __future__ import annotations

import inspect
import logging
import math
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from crunch_engine.competition import Competition
from crunch_engine.db.database import Database
from crunch_engine.db.repositories.scores import BucketKey, bucket_start
from crunch_engine.db.repositories.scoring_rows import DuePrediction, ScoreUpdate
from crunch_engine.slots.spec import SlotName, TapeReader

logger = logging.getLogger(__name__)
_UNKNOWN = object()
_TruthCache = dict[tuple[str, datetime, datetime], list[tuple[Any, Any]]]
"""Per batch: (scope key, performed_at, resolvable_at) -> [(scope, resolver result)]."""


@dataclass
class ScoreReport:
    scored: int = 0
    penalised: int = 0
    scoring_failed: int = 0
    unresolved: int = 0
    still_pending: int = 0
    seconds: float = 0.0

    @property
    def written(self) -> int:
        return self.scored + self.penalised + self.scoring_failed + self.unresolved


class ScoreService:
    def __init__(
        self,
        database: Database,
        competition: Competition,
        tape: TapeReader,
        *,
        settle: timedelta,
        unresolved_after: timedelta,
        batch_size: int,
    ) -> None:
        self.database = database
        self.competition = competition
        self.tape = tape
        self.settle = settle
        self.unresolved_after = unresolved_after
        self.batch_size = batch_size
        scoring = competition.pack.scoring
        assert scoring.penalty is not None  # filled in by the manifest validator
        self.penalty = scoring.penalty
        self.bounds = scoring.bounds
        self._resolver = competition.slot(SlotName.GROUND_TRUTH_RESOLVER)
        self._score = competition.slot(SlotName.SCORING_FUNCTION)

    async def score_due(self, now: datetime) -> ScoreReport:
        """Score one batch of due predictions (oldest first); returns what happened."""
        started = time.perf_counter()
        report = ScoreReport()
        due = await self.database.predictions.due_for_scoring(now - self.settle, self.batch_size)
        truths: _TruthCache = {}
        updates: list[ScoreUpdate] = []
        increments: dict[BucketKey, list[float]] = defaultdict(lambda: [0.0, 0])
        for prediction in due:
            update = await self._score_one(prediction, now, truths, report)
            if update.resolve_attempts is None:
                update.resolve_attempts = prediction.resolve_attempts
            updates.append(update)
            if update.score_status == "SCORED" and update.score_value is not None:
                key = (
                    prediction.model_id,
                    prediction.scope_key,
                    bucket_start(prediction.performed_at),
                )
                increments[key][0] += update.score_value
                increments[key][1] += 1
        await self.database.scores.commit_scored(
            updates, {key: (total, int(count)) for key, (total, count) in increments.items()}
        )
        report.seconds = time.perf_counter() - started
        if due:
            logger.info(
                "score due=%d scored=%d penalised=%d scoring_failed=%d unresolved=%d "
                "pending=%d seconds=%.3f",
                len(due),
                report.scored,
                report.penalised,
                report.scoring_failed,
                report.unresolved,
                report.still_pending,
                report.seconds,
            )
        return report

    async def _score_one(
        self,
        prediction: DuePrediction,
        now: datetime,
        truths: _TruthCache,
        report: ScoreReport,
    ) -> ScoreUpdate:
        if prediction.status != "SUCCESS":
            report.penalised += 1
            reason = f"penalty for {prediction.status}: {prediction.failure_reason or 'no detail'}"
            return ScoreUpdate(prediction.id, "SCORED", now, self.penalty, False, reason)
        truth, why = await self._ground_truth(prediction, truths)
        if truth is None:
            attempts = (prediction.resolve_attempts or 0) + 1
            if now - prediction.resolvable_at >= self.unresolved_after:
                report.unresolved += 1
                reason = f"unresolved after {attempts} attempts: {why}"
                return ScoreUpdate(
                    prediction.id, "UNRESOLVED", now, None, False, reason, None, attempts
                )
            report.still_pending += 1
            return ScoreUpdate(prediction.id, "PENDING", now, None, None, why, None, attempts)
        try:
            arguments = {
                "output": prediction.inference_output_jsonb,
                "ground_truth": truth,
                "scope": prediction.scope_jsonb,
            }
            score = self._score
            if getattr(score, "is_async", True):
                value = await score(**arguments)
            else:  # a plain function: no coroutine per prediction
                value = score.call_sync(**arguments)
                if inspect.isawaitable(value):
                    value = await value
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
            ):
                raise ValueError(f"SCORING_FUNCTION returned {value!r}, not a finite number")
        except Exception as exc:
            report.scoring_failed += 1
            reason = f"scoring failed ({type(exc).__name__}: {exc}); penalty applied"
            return ScoreUpdate(prediction.id, "SCORED", now, self.penalty, False, reason, truth)
        report.scored += 1
        value = float(value)
        if self.bounds is not None:
            value = min(self.bounds[1], max(self.bounds[0], value))
        return ScoreUpdate(prediction.id, "SCORED", now, value, True, None, truth)

    async def _ground_truth(
        self, prediction: DuePrediction, truths: _TruthCache
    ) -> tuple[Any, str]:
        # Every model of a cycle shares the scope's ground truth: cached per (scope key,
        # times), then matched by scope equality (cheaper than a canonical-JSON key).
        group = truths.setdefault(
            (prediction.scope_key, prediction.performed_at, prediction.resolvable_at), []
        )
        scope = prediction.scope_jsonb
        cached: Any = _UNKNOWN
        for known_scope, known in group:
            if known_scope == scope:
                cached = known
                break
        if cached is _UNKNOWN:
            if self.tape is not None:
                self.tape.last_miss = None
            try:
                cached = await self._resolver(
                    prediction={
                        "id": prediction.id,
                        "model_id": prediction.model_id,
                        "scope_key": prediction.scope_key,
                        "scope": scope,
                        "performed_at": prediction.performed_at,
                        "resolvable_at": prediction.resolvable_at,
                        "output": prediction.inference_output_jsonb,
                    },
                    tape=self.tape,
                )
            except Exception as exc:
                logger.exception("GROUND_TRUTH_RESOLVER failed for %s", prediction.id)
                cached = _Failure(f"GROUND_TRUTH_RESOLVER raised {type(exc).__name__}: {exc}")
            if cached is None and self.tape is not None and self.tape.last_miss:
                cached = _Failure(f"ground truth not available yet: {self.tape.last_miss}")
            group.append((scope, cached))
        if isinstance(cached, _Failure):
            return None, cached.reason
        if cached is None:
            return None, "ground truth not available yet (missing or stale market data)"
        return cached, ""


@dataclass(frozen=True)
class _Failure:
    reason: str
