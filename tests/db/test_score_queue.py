"""The score queue and the appended outcomes, on both backends: what is due, what a
retried cycle does, what two workers scoring the same prediction do, what readers see."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from crunch_engine.db.database import Database
from crunch_engine.db.repositories.predictions import ScoreUpdate
from crunch_engine.db.tables import ScoreBucketRow, ScoreQueueRow
from tests.db.test_prediction_repositories import T0, cycle

LATER = T0 + timedelta(minutes=10)


async def test_every_written_prediction_is_queued_until_it_has_an_outcome(
    database: Database,
) -> None:
    await database.models.ensure_known(["alpha", "beta"])
    source, rows = cycle(0, ["alpha", "beta"])
    await database.predictions.record_cycle([source], rows)
    assert await database.predictions.count(score_status="PENDING") == 2
    assert await database.predictions.due_for_scoring(T0 + timedelta(minutes=4), 10) == []

    alpha, beta = sorted(rows, key=lambda r: r.id)
    await database.predictions.store_scores(
        [
            ScoreUpdate(alpha.id, "SCORED", LATER, 0.1, True, ground_truth={"up": True}),
            ScoreUpdate(beta.id, "PENDING", LATER, None, None, "no candle yet", None, 2),
        ]
    )
    due = await database.predictions.due_for_scoring(LATER, 10)
    assert [(d.id, d.resolve_attempts) for d in due] == [(beta.id, 2)]
    views = {v.id: v for v in await database.predictions.latest(limit=10)}
    assert views[alpha.id].score_status == "SCORED" and views[alpha.id].score_value == 0.1
    assert views[alpha.id].ground_truth_jsonb == {"up": True}
    assert views[alpha.id].scored_at == LATER
    waiting = views[beta.id]
    assert (waiting.score_status, waiting.resolve_attempts) == ("PENDING", 2)
    assert waiting.score_failed_reason == "no candle yet" and waiting.scored_at is None


async def test_a_retried_cycle_does_not_requeue_scored_predictions(database: Database) -> None:
    await database.models.ensure_known(["alpha"])
    source, rows = cycle(0, ["alpha"])
    await database.predictions.record_cycle([source], rows)
    await database.predictions.store_scores([ScoreUpdate(rows[0].id, "SCORED", LATER, 0.3, True)])
    await database.predictions.record_cycle([source], rows)  # the same cycle, written again
    assert await database.predictions.due_for_scoring(LATER, 10) == []
    assert await database.predictions.count() == 1
    assert await database.predictions.count(score_status="SCORED") == 1


async def test_two_workers_scoring_one_prediction_never_double_count(database: Database) -> None:
    """The second outcome for a prediction collides with the first, so its whole batch,
    bucket increments included, rolls back."""
    await database.models.ensure_known(["alpha", "beta"])
    source, rows = cycle(0, ["alpha", "beta"])
    await database.predictions.record_cycle([source], rows)
    first = ScoreUpdate(rows[0].id, "SCORED", LATER, 0.2, True)
    await database.scores.commit_scored([first], {("alpha", "btc", T0): (0.2, 1)})
    again = [first, ScoreUpdate(rows[1].id, "SCORED", LATER, 0.4, True)]
    with pytest.raises(IntegrityError):
        await database.scores.commit_scored(
            again, {("alpha", "btc", T0): (0.2, 1), ("beta", "btc", T0): (0.4, 1)}
        )
    async with database.sessions() as session:
        counted = await session.scalar(select(func.sum(ScoreBucketRow.count)))
        queued = await session.scalar(select(func.count()).select_from(ScoreQueueRow))
    assert counted == 1
    assert queued == 1  # beta is still waiting, untouched by the failed batch
    assert await database.predictions.count(score_status="SCORED") == 1


async def test_unknown_score_status_is_refused(database: Database) -> None:
    await database.models.ensure_known(["alpha"])
    source, rows = cycle(0, ["alpha"])
    await database.predictions.record_cycle([source], rows)
    with pytest.raises(ValueError, match="score_status 'DONE'"):
        await database.predictions.store_scores([ScoreUpdate(rows[0].id, "DONE", LATER)])
    assert await database.predictions.count(score_status="PENDING") == 1


@pytest.mark.parametrize("scope", [{"asset": "BTC"}, {"asset": "BTC", "levels": [1, 2]}])
async def test_due_predictions_never_share_a_scope_object(
    database: Database, scope: dict[str, object]
) -> None:
    """Scopes repeat across a cycle's models and are decoded once on PostgreSQL; a
    scoring slot that changes one prediction's scope must not change another's."""
    await database.models.ensure_known(["alpha", "beta"])
    source, rows = cycle(0, ["alpha", "beta"])
    for row in rows:
        row.scope = {**scope, "levels": [1, 2]} if "levels" in scope else dict(scope)
    await database.predictions.record_cycle([source], rows)
    first, second = await database.predictions.due_for_scoring(LATER, 10)
    assert first.scope_jsonb == second.scope_jsonb == rows[0].scope
    first.scope_jsonb["asset"] = "ETH"
    if "levels" in scope:
        first.scope_jsonb["levels"].append(3)
    assert second.scope_jsonb == rows[0].scope
