"""0005 drops the foreign keys of the predict cycle's rows and keeps every row (on SQLite
the batch rebuild of ``predictions`` must not cascade into the score queue); the
downgrade puts the keys back."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from crunch_engine.db.engine import create_engine
from crunch_engine.db.migrate import alembic_config, upgrade_engine

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
DROPPED = {
    ("predictions", "fk_predictions_input_id_prediction_inputs"),
    ("predictions", "fk_predictions_model_id_models"),
    ("score_queue", "fk_score_queue_prediction_id_predictions"),
}


async def _foreign_keys(engine: AsyncEngine) -> set[tuple[str, str]]:
    def read(connection: object) -> set[tuple[str, str]]:
        inspector = inspect(connection)
        return {
            (table, key["name"])
            for table in ("predictions", "score_queue")
            for key in inspector.get_foreign_keys(table)
        }

    async with engine.connect() as connection:
        return await connection.run_sync(read)


async def _counts(engine: AsyncEngine) -> tuple[int, int, int]:
    async with engine.connect() as connection:
        return tuple(  # type: ignore[return-value]
            [
                await connection.scalar(text(f"SELECT count(*) FROM {table}"))
                for table in ("prediction_inputs", "predictions", "score_queue")
            ]
        )


async def test_0005_drops_the_cycle_foreign_keys_and_keeps_the_rows(
    empty_database_url: str,
) -> None:
    engine = create_engine(empty_database_url)
    try:
        await upgrade_engine(engine, "0004")
        assert await _foreign_keys(engine) >= DROPPED
        at = T0.replace(tzinfo=None).isoformat(" ") if engine.dialect.name == "sqlite" else T0
        async with engine.begin() as connection:
            await connection.execute(text("INSERT INTO models (id, name, state, "
                "overall_score_jsonb, scores_by_scope_jsonb, health_jsonb, meta_jsonb, "
                "created_at, updated_at) VALUES ('m1', 'm1', 'RUNNING', '{}', '{}', '{}', "
                "'{}', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))  # fmt: skip
            await connection.execute(text("INSERT INTO prediction_inputs (id, "
                "prediction_config_id, scope_key, performed_at, meta_jsonb) VALUES "
                "('in', 'cfg', 'btc', :at, '{}')"), {"at": at})  # fmt: skip
            for name in ("p1", "p2"):
                await connection.execute(text("INSERT INTO predictions (id, input_id, "
                    "model_id, prediction_config_id, scope_key, scope_jsonb, status, "
                    "performed_at, resolvable_at) VALUES (:id, 'in', 'm1', 'cfg', 'btc', "
                    "'{}', 'SUCCESS', :at, :at)"), {"id": name, "at": at})  # fmt: skip
                await connection.execute(text("INSERT INTO score_queue (prediction_id, "
                    "resolvable_at, resolve_attempts) VALUES (:id, :at, 0)"),
                    {"id": name, "at": at})  # fmt: skip

        await upgrade_engine(engine, "0005")
        assert not await _foreign_keys(engine) & DROPPED
        assert await _counts(engine) == (1, 2, 2)

        async with engine.begin() as connection:
            await connection.run_sync(lambda c: command.downgrade(alembic_config(c), "0004"))
        assert await _foreign_keys(engine) >= DROPPED
        assert await _counts(engine) == (1, 2, 2)
    finally:
        await engine.dispose()
