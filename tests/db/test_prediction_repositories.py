"""Predictions, models, schedules and leaderboards on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import IntegrityError

from crunch_engine.db.database import Database
from crunch_engine.db.repositories import sqlite_cycle
from crunch_engine.db.repositories.models import ModelInfo
from crunch_engine.db.repositories.predictions import (
    PredictionInput,
    PredictionRecord,
    ScoreUpdate,
)
from crunch_engine.db.tables import PredictionInputRow, PredictionRow, ScoreQueueRow
from crunch_engine.packs.loader import load_pack

T0 = datetime(2025, 6, 1, tzinfo=UTC)
LATER = T0 + timedelta(minutes=10)


def cycle(n: int, models: list[str]) -> tuple[PredictionInput, list[PredictionRecord]]:
    at = T0 + timedelta(minutes=n)
    source = PredictionInput(f"in-{n}", "btc", "btc", at, {"raw": n}, {"candles": [n]})
    rows = [
        PredictionRecord(
            id=f"in-{n}:{m}",
            input_id=source.id,
            model_id=m,
            prediction_config_id="btc",
            scope_key="btc",
            scope={"asset": "BTC", "horizon_seconds": 300},
            status="SUCCESS" if m != "absent" else "ABSENT",
            performed_at=at,
            resolvable_at=at + timedelta(minutes=5),
            output={"p_up": 0.5} if m != "absent" else None,
            failure_reason=None if m != "absent" else "not connected",
            exec_time_us=1200,
        )
        for m in models
    ]
    return source, rows


async def test_cycle_write_is_idempotent(database: Database) -> None:
    models = ["alpha", "beta", "absent"]
    await database.models.ensure_known(models)
    source, rows = cycle(0, models)
    await database.predictions.record_cycle([source], rows)
    await database.predictions.record_cycle([source], rows)  # a retried cycle
    assert await database.predictions.count() == 3
    absent = [p for p in await database.predictions.latest(limit=10) if p.model_id == "absent"]
    assert absent[0].status == "ABSENT" and absent[0].failure_reason == "not connected"
    stored = {p.model_id: p for p in await database.predictions.latest(limit=10)}
    for row in rows:  # every column round-trips, on both write paths
        got = stored[row.model_id]
        assert (got.id, got.input_id, got.prediction_config_id, got.scope_key) == (
            row.id, row.input_id, row.prediction_config_id, row.scope_key,
        )  # fmt: skip
        assert got.scope_jsonb == row.scope and got.inference_output_jsonb == row.output
        assert got.exec_time_us == 1200 and got.performed_at == row.performed_at
        assert got.resolvable_at == row.resolvable_at and got.score_status == "PENDING"
        assert got.resolve_attempts == 0
    async with database.sessions() as session:  # a missing output is JSON null, not NULL
        raw = await session.scalar(
            select(func.count()).where(PredictionRow.inference_output_jsonb.is_(None))
        )
    assert raw == 0


async def test_due_for_scoring_oldest_first_and_only_when_resolvable(database: Database) -> None:
    await database.models.ensure_known(["alpha"])
    for n in range(10):
        source, rows = cycle(n, ["alpha"])
        await database.predictions.record_cycle([source], rows)
    now = T0 + timedelta(minutes=5 + 4)  # cycles 0..4 are resolvable
    due = await database.predictions.due_for_scoring(now, limit=3)
    assert [p.id for p in due] == ["in-0:alpha", "in-1:alpha", "in-2:alpha"]
    all_due = await database.predictions.due_for_scoring(now, limit=100)
    assert len(all_due) == 5

    await database.predictions.store_scores(
        [
            ScoreUpdate(p.id, "SCORED", now, 0.25, True, ground_truth={"up": True})
            for p in all_due[:2]
        ]
        + [ScoreUpdate(all_due[2].id, "PENDING", now, resolve_attempts=1)]
    )
    remaining = await database.predictions.due_for_scoring(now, limit=100)
    assert [p.id for p in remaining] == ["in-2:alpha", "in-3:alpha", "in-4:alpha"]
    assert remaining[0].resolve_attempts == 1
    assert await database.predictions.count(score_status="SCORED") == 2


async def test_latest_predictions_newest_first(database: Database) -> None:
    await database.models.ensure_known(["alpha", "beta"])
    for n in range(20):
        source, rows = cycle(n, ["alpha", "beta"])
        await database.predictions.record_cycle([source], rows)
    latest = await database.predictions.latest(model_id="beta", limit=3)
    assert [p.id for p in latest] == ["in-19:beta", "in-18:beta", "in-17:beta"]
    assert all(p.performed_at.tzinfo is not None for p in latest)


async def test_models_upsert_keeps_health(database: Database) -> None:
    await database.models.upsert(
        [ModelInfo("m1", "Momentum", "c1", "Cruncher One", "m1_d1", "RUNNING")]
    )
    await database.models.update_health({"m1": {"p50_us": 900, "consecutive_failures": 0}})
    await database.models.upsert(
        [ModelInfo("m1", "Momentum v2", "c1", "Cruncher One", "m1_d2", "RUNNING")]
    )
    row = await database.models.get("m1")
    assert row is not None
    assert row.name == "Momentum v2" and row.deployment_id == "m1_d2"
    assert row.health_jsonb == {"p50_us": 900, "consecutive_failures": 0}


async def test_scheduled_configs_mirror_the_pack(database: Database) -> None:
    tournament = load_pack("tournament")
    await database.configs.sync(tournament.scheduled_prediction_configs)
    active = await database.configs.active()
    assert [c.scope_key for c in active] == ["in-sample-btc-300s", "out-of-sample-ada-300s"]
    assert active[0].schedule_jsonb == {"every_seconds": 60}

    baseline = load_pack("baseline")
    await database.configs.sync(baseline.scheduled_prediction_configs)
    assert [c.scope_key for c in await database.configs.active()] == ["btc-up-300s"]


async def test_leaderboard_latest_is_the_newest(database: Database) -> None:
    for n in range(5):
        await database.leaderboards.insert(
            "overall", T0 + timedelta(minutes=n), [{"rank": 1, "model_id": f"m{n}"}]
        )
    await database.leaderboards.insert("other", T0 + timedelta(hours=1), [])
    latest = await database.leaderboards.latest("overall")
    assert latest is not None and latest.entries_jsonb == [{"rank": 1, "model_id": "m4"}]
    history = await database.leaderboards.history("overall", limit=2)
    assert [h.entries_jsonb[0]["model_id"] for h in history] == ["m4", "m3"]


async def test_scores_and_their_buckets_commit_together(database: Database) -> None:
    """A failure in the bucket half leaves the score half unwritten too: a worker killed
    between the two can never store scores whose buckets are missing."""
    await database.models.ensure_known(["alpha"])
    source, rows = cycle(0, ["alpha"])
    await database.predictions.record_cycle([source], rows)
    now = T0 + timedelta(minutes=10)
    update = ScoreUpdate(rows[0].id, "SCORED", now, 0.25, True, ground_truth={"up": True})
    ghost = {("no-such-model", "btc", T0): (0.25, 1)}  # violates the models foreign key
    with pytest.raises(IntegrityError):
        await database.scores.commit_scored([update], ghost)
    assert await database.predictions.count(score_status="SCORED") == 0
    assert [p.id for p in await database.predictions.due_for_scoring(now, 10)] == [rows[0].id]


async def test_cycle_write_stores_what_the_orm_stores(database: Database) -> None:
    """The driver-level cycle write encodes every column as the ORM does (JSON text,
    UTC wall time), for times in any zone and for missing outputs."""
    await database.models.ensure_known(["alpha", "absent"])
    source, rows = cycle(0, ["alpha", "absent"])
    zone = timezone(timedelta(hours=2))
    for row in rows:
        row.performed_at = row.performed_at.astimezone(zone)
    await database.predictions.record_cycle([source], rows)
    twins = [{**_columns(row), "id": f"orm-{row.id}"} for row in rows]
    async with database.sessions.begin() as session:
        await session.execute(insert(PredictionRow), twins)
    async with database.sessions() as session:
        stored = (
            await session.execute(
                text(
                    "SELECT id, CAST(scope_jsonb AS TEXT), CAST(inference_output_jsonb AS TEXT),"
                    " CAST(performed_at AS TEXT), CAST(resolvable_at AS TEXT), status,"
                    " failure_reason, exec_time_us FROM predictions ORDER BY id"
                )
            )
        ).all()
    by_id = {row[0]: row[1:] for row in stored}
    for row in rows:
        assert by_id[row.id] == by_id[f"orm-{row.id}"]


async def test_a_failed_cycle_write_leaves_nothing(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Input, predictions and queue entries are written whole or not at all."""
    await database.models.ensure_known(["alpha", "beta"])
    source, rows = cycle(0, ["alpha", "beta"])
    if database.dialect == "postgresql":
        rows[1].status = "NOT-A-VALID-STATUS-AT-ALL"  # over the column's 16 characters
    else:
        monkeypatch.setattr(sqlite_cycle, "_ENQUEUE", "INSERT INTO no_such_table VALUES (?, ?, ?)")
    with pytest.raises(Exception):  # noqa: B017 - the driver's own error, either backend
        await database.predictions.record_cycle([source], rows)
    assert await database.predictions.count() == 0
    async with database.sessions() as session:
        inputs = await session.scalar(select(func.count()).select_from(PredictionInputRow))
        queued = await session.scalar(select(func.count()).select_from(ScoreQueueRow))
    assert (inputs, queued) == (0, 0)
    monkeypatch.undo()
    rows[1].status = "SUCCESS"
    await database.predictions.record_cycle([source], rows)
    assert await database.predictions.count() == 2
    assert len(await database.predictions.due_for_scoring(LATER, 10)) == 2


def _columns(row: PredictionRecord) -> dict[str, object]:
    return {
        "id": row.id,
        "input_id": row.input_id,
        "model_id": row.model_id,
        "prediction_config_id": row.prediction_config_id,
        "scope_key": row.scope_key,
        "scope_jsonb": row.scope,
        "status": row.status,
        "failure_reason": row.failure_reason,
        "exec_time_us": row.exec_time_us,
        "inference_output_jsonb": row.output,
        "performed_at": row.performed_at,
        "resolvable_at": row.resolvable_at,
    }
