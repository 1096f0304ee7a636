"""Migrations bring an empty database to head, and agree with the ORM models."""

from __future__ import annotations

import subprocess

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from crunch_engine.db.engine import create_engine
from crunch_engine.db.migrate import (
    current_revision,
    head_revision,
    upgrade_database,
    upgrade_engine,
)
from crunch_engine.db.tables import Base

EXPECTED_TABLES = {
    "models",
    "predictions",
    "prediction_inputs",
    "model_scores",
    "leaderboards",
    "market_records",
    "market_ingestion_state",
    "scheduled_prediction_configs",
    "model_score_buckets",
    "score_queue",
    "prediction_scores",
}


async def test_upgrade_from_empty_reaches_head_and_matches_models(empty_database_url: str) -> None:
    before, after = await upgrade_database(empty_database_url)
    assert before is None
    assert after == head_revision()

    engine = create_engine(empty_database_url)
    try:
        assert await current_revision(engine) == head_revision()
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
            diff = await connection.run_sync(
                lambda c: compare_metadata(
                    MigrationContext.configure(c, opts={"compare_type": True}), Base.metadata
                )
            )
    finally:
        await engine.dispose()
    assert tables >= EXPECTED_TABLES
    assert diff == [], f"ORM models and migrations disagree: {diff}"


async def test_upgrade_is_idempotent(empty_database_url: str) -> None:
    await upgrade_database(empty_database_url)
    before, after = await upgrade_database(empty_database_url)
    assert before == after == head_revision()


async def test_jsonb_on_postgresql_json_on_sqlite(empty_database_url: str, backend: str) -> None:
    await upgrade_database(empty_database_url)
    engine = create_engine(empty_database_url)
    try:
        async with engine.connect() as connection:
            columns = await connection.run_sync(
                lambda c: {
                    col["name"]: col["type"] for col in inspect(c).get_columns("predictions")
                }
            )
    finally:
        await engine.dispose()
    type_name = type(columns["scope_jsonb"]).__name__
    assert type_name == ("JSONB" if backend == "postgresql" else "JSON")


def test_cli_db_upgrade(empty_database_url: str, crunch_cmd: list[str], crunch_env: dict) -> None:
    env = {**crunch_env, "CRUNCH_DATABASE_URL": empty_database_url}
    first = subprocess.run([*crunch_cmd, "db", "upgrade"], env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert f"empty -> {head_revision()}" in first.stdout
    again = subprocess.run([*crunch_cmd, "db", "current"], env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert f"current: {head_revision()}" in again.stdout


def test_cli_db_upgrade_creates_embedded_sqlite_in_data_dir(
    crunch_cmd: list[str], crunch_env: dict, tmp_path
) -> None:
    result = subprocess.run(
        [*crunch_cmd, "db", "upgrade"], env=crunch_env, cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "data" / "crunch.db").is_file()


def test_cli_db_upgrade_unreachable_postgres_fails_clearly(
    crunch_cmd: list[str], crunch_env: dict
) -> None:
    from crunch_engine.testing.postgres import free_port

    url = f"postgresql+asyncpg://user:hunter2@127.0.0.1:{free_port()}/nothing"
    env = {**crunch_env, "CRUNCH_DATABASE_URL": url}
    result = subprocess.run([*crunch_cmd, "db", "upgrade"], env=env, capture_output=True, text=True)
    assert result.returncode == 1
    assert "cannot reach" in result.stderr
    assert "hunter2" not in result.stderr + result.stdout


async def test_0002_keeps_existing_market_records(empty_database_url: str) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import bindparam, text

    from crunch_engine.db.types import JsonPayload, UTCDateTime

    insert = text(
        "INSERT INTO market_records (provider, asset, kind, granularity, "
        "ts_event, ts_ingested, values_jsonb, meta_jsonb) VALUES "
        "('replay', 'BTC', 'candle', '1m', :ts, :ts, :values, :meta)"
    ).bindparams(
        bindparam("ts", type_=UTCDateTime()),
        bindparam("values", type_=JsonPayload),
        bindparam("meta", type_=JsonPayload),
    )
    await upgrade_database(empty_database_url, "0001")
    engine = create_engine(empty_database_url)
    try:
        async with engine.begin() as connection:
            for minute in range(3):
                ts = datetime(2025, 6, 1, 0, minute, tzinfo=UTC)
                await connection.execute(
                    insert, {"ts": ts, "values": {"close": 100 + minute}, "meta": {}}
                )
        await upgrade_engine(engine)
        async with engine.connect() as connection:
            count = await connection.scalar(text("SELECT count(*) FROM market_records"))
            columns = await connection.run_sync(
                lambda c: {col["name"] for col in inspect(c).get_columns("market_records")}
            )
            key = await connection.run_sync(
                lambda c: inspect(c).get_pk_constraint("market_records")["constrained_columns"]
            )
    finally:
        await engine.dispose()
    assert count == 3
    assert "id" not in columns
    assert key == ["provider", "asset", "kind", "granularity", "ts_event"]
