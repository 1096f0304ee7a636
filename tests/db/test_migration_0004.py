"""0004 moves score outcomes out of ``predictions``: pending rows into the score queue,
scored and unresolved ones into ``prediction_scores``; the downgrade puts them back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alembic import command
from sqlalchemy import bindparam, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from crunch_engine.db.engine import create_engine
from crunch_engine.db.migrate import alembic_config, upgrade_engine
from crunch_engine.db.types import JsonPayload, UTCDateTime

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
SCORE_COLUMNS = {"score_status", "score_value", "scored_at", "resolve_attempts"}

_INSERT = text(
    "INSERT INTO predictions (id, model_id, prediction_config_id, scope_key, scope_jsonb, "
    "status, performed_at, resolvable_at, score_status, score_value, score_success, "
    "score_failed_reason, scored_at, resolve_attempts, ground_truth_jsonb) VALUES "
    "(:id, 'm1', 'cfg', 'btc', :scope, 'SUCCESS', :at, :due, :state, :value, :ok, "
    ":reason, :scored_at, :attempts, :truth)"
).bindparams(
    bindparam("scope", type_=JsonPayload),
    bindparam("truth", type_=JsonPayload),
    bindparam("at", type_=UTCDateTime()),
    bindparam("due", type_=UTCDateTime()),
    bindparam("scored_at", type_=UTCDateTime()),
)
ROWS = [
    {"id": "waiting", "state": "PENDING", "value": None, "ok": None,
     "reason": "ground truth not available yet", "scored_at": T0, "attempts": 3, "truth": None},
    {"id": "scored", "state": "SCORED", "value": 0.25, "ok": True, "reason": None,
     "scored_at": T0, "attempts": 1, "truth": {"up": True}},
    {"id": "lost", "state": "UNRESOLVED", "value": None, "ok": False,
     "reason": "unresolved after 9 attempts", "scored_at": T0, "attempts": 9, "truth": None},
]  # fmt: skip


async def _columns(engine: AsyncEngine, table: str) -> set[str]:
    async with engine.connect() as connection:
        return await connection.run_sync(
            lambda c: {column["name"] for column in inspect(c).get_columns(table)}
        )


async def test_0004_moves_outcomes_and_downgrades_back(empty_database_url: str) -> None:
    engine = create_engine(empty_database_url)
    try:
        await upgrade_engine(engine, "0003")
        async with engine.begin() as connection:
            await connection.execute(text("INSERT INTO models (id, name, state, "
                "overall_score_jsonb, scores_by_scope_jsonb, health_jsonb, meta_jsonb, "
                "created_at, updated_at) VALUES ('m1', 'm1', 'RUNNING', '{}', '{}', '{}', "
                "'{}', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))  # fmt: skip
            for row in ROWS:
                await connection.execute(
                    _INSERT, {**row, "scope": {"asset": "BTC"}, "at": T0, "due": T0 + timedelta(minutes=5)}
                )  # fmt: skip

        await upgrade_engine(engine, "0004")
        assert not SCORE_COLUMNS & await _columns(engine, "predictions")
        async with engine.connect() as connection:
            queued = (
                await connection.execute(
                    text("SELECT prediction_id, resolve_attempts, last_reason FROM score_queue")
                )
            ).all()
            outcomes = {
                row[0]: tuple(row[1:])
                for row in await connection.execute(
                    text(
                        "SELECT prediction_id, score_status, score_value, resolve_attempts "
                        "FROM prediction_scores"
                    )
                )
            }
            kept = await connection.scalar(text("SELECT count(*) FROM predictions"))
        assert queued == [("waiting", 3, "ground truth not available yet")]
        assert outcomes == {"scored": ("SCORED", 0.25, 1), "lost": ("UNRESOLVED", None, 9)}
        assert kept == 3

        async with engine.begin() as connection:
            await connection.run_sync(lambda c: command.downgrade(alembic_config(c), "0003"))
        assert await _columns(engine, "predictions") >= SCORE_COLUMNS
        async with engine.connect() as connection:
            back = {
                row[0]: tuple(row[1:])
                for row in await connection.execute(
                    text(
                        "SELECT id, score_status, score_value, resolve_attempts, "
                        "score_failed_reason FROM predictions"
                    )
                )
            }
            tables = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert back == {
            "waiting": ("PENDING", None, 3, "ground truth not available yet"),
            "scored": ("SCORED", 0.25, 1, None),
            "lost": ("UNRESOLVED", None, 9, "unresolved after 9 attempts"),
        }
        assert not {"score_queue", "prediction_scores"} & tables
    finally:
        await engine.dispose()
