"""Scoring and ranking with a controlled clock, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from crunch_engine.competition import Competition, load_competition
from crunch_engine.db.database import Database
from crunch_engine.db.repositories.predictions import PredictionInput, PredictionRecord
from crunch_engine.db.tables import PredictionRow, ScoreBucketRow
from crunch_engine.feeds.base import ManualClock
from crunch_engine.feeds.contracts import MarketRecord
from crunch_engine.feeds.tape import Tape
from crunch_engine.services.leaderboard import LeaderboardService
from crunch_engine.services.score import ScoreService
from crunch_engine.settings import load_settings

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SETTLE = timedelta(seconds=5)
MINUTE = timedelta(minutes=1)


def competition(**environ: str) -> Competition:
    return load_competition(load_settings(pack="baseline"), environ)


async def seed_tape(db: Database, start: datetime, minutes: int, price=lambda i: 100.0 + i) -> None:
    await db.market.upsert(
        [
            MarketRecord("test", "BTC", "candle", "1m", start + i * MINUTE, {"close": price(i)})
            for i in range(minutes)
        ]
    )


async def seed_cycle(
    db: Database, at: datetime, answers: dict[str, tuple[str, float | None]]
) -> None:
    await db.models.ensure_known(list(answers))
    cycle = f"btc:{int(at.timestamp())}"
    source = PredictionInput(cycle, "btc-up-300s", "btc-up-300s", at)
    rows = [
        PredictionRecord(
            id=f"{cycle}:{model}",
            input_id=cycle,
            model_id=model,
            prediction_config_id="btc-up-300s",
            scope_key="btc-up-300s",
            scope={"asset": "BTC", "horizon_seconds": 300},
            status=status,
            performed_at=at,
            resolvable_at=at + timedelta(seconds=300),
            output={"p_up": p} if p is not None else None,
            failure_reason=None if status == "SUCCESS" else f"{status.lower()} in test",
        )
        for model, (status, p) in answers.items()
    ]
    await db.predictions.record_cycle([source], rows)


def scorer(db: Database, comp: Competition, clock: ManualClock, **kw) -> ScoreService:
    tape = Tape(db.market, provider="test", granularity="1m", clock=clock)
    return ScoreService(
        db,
        comp,
        tape,
        settle=SETTLE,
        unresolved_after=kw.get("unresolved_after", timedelta(hours=1)),
        batch_size=kw.get("batch_size", 1000),
    )


async def rows_by_model(db: Database) -> dict[str, PredictionRow]:
    return {p.model_id: p for p in await db.predictions.latest(limit=1000)}


async def test_resolution_waits_for_horizon_and_settle(database: Database) -> None:
    await seed_tape(database, T0 - 10 * MINUTE, 30)
    await seed_cycle(database, T0, {"up": ("SUCCESS", 0.9), "down": ("SUCCESS", 0.2)})
    clock = ManualClock(T0 + timedelta(seconds=300) + SETTLE - timedelta(seconds=1))
    service = scorer(database, competition(), clock)
    early = await service.score_due(clock.now())
    assert early.written == 0 and early.still_pending == 0  # not even looked at yet
    clock.advance(1)
    report = await service.score_due(clock.now())
    assert report.scored == 2
    rows = await rows_by_model(database)
    # price at 12:00 = close of the 11:59 candle (109); at 12:05 = close of 12:04 (114): up.
    assert rows["up"].ground_truth_jsonb["start_price"] == 109.0
    assert rows["up"].ground_truth_jsonb["end_price"] == 114.0
    assert rows["up"].score_value == pytest.approx((0.9 - 1) ** 2)
    assert rows["down"].score_value == pytest.approx((0.2 - 1) ** 2)
    assert rows["up"].score_success is True


async def test_stale_data_is_refused_then_marked_unresolved(database: Database) -> None:
    await seed_tape(database, T0 - 10 * MINUTE, 12)  # the tape stops at 12:02
    await seed_cycle(database, T0, {"m": ("SUCCESS", 0.7)})
    clock = ManualClock(T0 + timedelta(minutes=5) + SETTLE)
    service = scorer(database, competition(), clock)
    first = await service.score_due(clock.now())
    assert first.still_pending == 1 and first.scored == 0
    row = (await rows_by_model(database))["m"]
    assert row.score_status == "PENDING" and row.resolve_attempts == 1 and row.score_value is None
    # the tape's own reason reaches the row: which series, which window
    assert "no candle of BTC (test, 1m) with a price between" in row.score_failed_reason
    clock.advance(3600)
    final = await service.score_due(clock.now())
    assert final.unresolved == 1
    row = (await rows_by_model(database))["m"]
    assert row.score_status == "UNRESOLVED" and row.score_value is None
    assert "unresolved after 2 attempts" in row.score_failed_reason
    assert (
        await service.database.scores.window_stats(["btc-up-300s"], {"all": T0 - timedelta(days=1)})
        == {}
    )


async def test_non_answers_get_the_penalty(database: Database) -> None:
    await seed_tape(database, T0 - 10 * MINUTE, 30)
    answers = {
        "good": ("SUCCESS", 0.5),
        "absent": ("ABSENT", None),
        "failed": ("FAILED", None),
        "timeout": ("TIMEOUT", None),
        "invalid": ("INVALID", None),
    }
    await seed_cycle(database, T0, answers)
    clock = ManualClock(T0 + timedelta(minutes=6))
    report = await scorer(database, competition(), clock).score_due(clock.now())
    assert report.scored == 1 and report.penalised == 4
    rows = await rows_by_model(database)
    assert rows["good"].score_value == pytest.approx(0.25)
    for model in ("absent", "failed", "timeout", "invalid"):
        assert rows[model].score_value == 1.0  # Brier's worst
        assert rows[model].score_success is False
        assert rows[model].score_failed_reason.startswith(f"penalty for {model.upper()}")


async def test_a_failing_scoring_function_is_isolated(database: Database) -> None:
    await seed_tape(database, T0 - 10 * MINUTE, 30)
    await seed_cycle(
        database,
        T0,
        {"raises": ("SUCCESS", 0.13), "nan": ("SUCCESS", 0.14), "fine": ("SUCCESS", 0.6)},
    )
    comp = competition(SCORING_FUNCTION="tests.services.slot_impls:brier_or_break")
    clock = ManualClock(T0 + timedelta(minutes=6))
    report = await scorer(database, comp, clock).score_due(clock.now())
    assert report.scored == 1 and report.scoring_failed == 2
    rows = await rows_by_model(database)
    assert rows["fine"].score_success is True and rows["fine"].score_value == pytest.approx(0.16)
    assert "ZeroDivisionError: the scoring function broke" in rows["raises"].score_failed_reason
    assert "not a finite number" in rows["nan"].score_failed_reason
    assert rows["raises"].score_value == rows["nan"].score_value == 1.0
    assert all(r.score_status == "SCORED" for r in rows.values())


async def test_windows_and_ranking(database: Database) -> None:
    """recent = the current hour and the 23 before; steady = 72 h; anchor = 7 days."""
    now = T0 + timedelta(minutes=30)
    await seed_tape(database, now - timedelta(days=8), 8 * 24 * 60 + 40)
    comp = competition()
    plan = [  # (hours before now, {model: p_up})
        (0.2, {"a": 0.8, "b": 0.8, "c": 0.8}),
        (30, {"a": 0.1, "b": 0.9, "c": 0.9}),
        (100, {"a": 0.9, "b": 0.9, "c": 0.1}),
    ]
    for hours, answers in plan:
        at = (now - timedelta(hours=hours)).replace(second=0, microsecond=0)
        await seed_cycle(database, at, {m: ("SUCCESS", p) for m, p in answers.items()})
    clock = ManualClock(now + timedelta(hours=1))
    await scorer(database, comp, clock).score_due(clock.now())
    boards = await LeaderboardService(database, comp).rebuild(now)
    entries = {e["model_id"]: e for e in boards["overall"]}
    assert {m: e["count_recent"] for m, e in entries.items()} == {"a": 1, "b": 1, "c": 1}
    assert {m: e["count_steady"] for m, e in entries.items()} == {"a": 2, "b": 2, "c": 2}
    assert {m: e["count_anchor"] for m, e in entries.items()} == {"a": 3, "b": 3, "c": 3}
    # recent ties (same answer, same truth); steady breaks it: the 30 h-old round
    # went up, so "a" (0.1) lost it; anchor orders b vs c (the 100 h round went up).
    assert [e["model_id"] for e in boards["overall"]] == ["b", "c", "a"]
    assert entries["b"]["score_recent"] == entries["a"]["score_recent"]
    again = await LeaderboardService(database, comp).rebuild(now + timedelta(minutes=1))
    assert all(e["rank_change"] == 0 for e in again["overall"])


async def test_models_without_scores_are_listed_last(database: Database) -> None:
    await database.models.ensure_known(["silent"])
    await seed_tape(database, T0 - 10 * MINUTE, 30)
    await seed_cycle(database, T0, {"talker": ("SUCCESS", 0.5)})
    clock = ManualClock(T0 + timedelta(minutes=6))
    await scorer(database, competition(), clock).score_due(clock.now())
    entries = (await LeaderboardService(database, competition()).rebuild(clock.now()))["overall"]
    assert [e["model_id"] for e in entries] == ["talker", "silent"]
    assert entries[1]["score_recent"] is None and entries[1]["count_recent"] == 0


async def test_an_interrupted_cycle_commits_nothing_then_scores_once(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed_tape(database, T0 - 10 * MINUTE, 30)
    await seed_cycle(database, T0, {f"m{i}": ("SUCCESS", i / 10) for i in range(10)})
    clock = ManualClock(T0 + timedelta(minutes=6))
    service = scorer(database, competition(), clock)
    calls = 0
    original = service._score

    async def dies_midway(**kwargs):
        nonlocal calls
        calls += 1
        if calls == 6:
            raise KeyboardInterrupt("killed mid-cycle")
        return await original(**kwargs)

    monkeypatch.setattr(service, "_score", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        await service.score_due(clock.now())
    assert await database.predictions.count(score_status="PENDING") == 10
    monkeypatch.setattr(service, "_score", original)
    assert (await service.score_due(clock.now())).scored == 10
    assert (await service.score_due(clock.now())).written == 0
    async with database.sessions() as session:
        counted = await session.scalar(select(func.sum(ScoreBucketRow.count)))
    assert counted == 10


async def test_snapshot_retention_is_bounded(database: Database) -> None:
    now = T0
    for minutes in range(0, 3 * 24 * 60, 20):  # every 20 min for 3 days
        await database.leaderboards.insert("overall", now - timedelta(minutes=minutes), [])
    deleted = await database.scores.prune_snapshots(
        now, keep_all=timedelta(hours=24), keep_hourly=timedelta(days=2)
    )
    history = await database.leaderboards.history("overall", limit=10_000)
    stamps = [h.created_at for h in history]
    recent = [s for s in stamps if s >= now - timedelta(hours=24)]
    older = [s for s in stamps if s < now - timedelta(hours=24)]
    assert len(recent) == 73  # every snapshot of the last day (both ends included)
    assert len(older) == len({s.replace(minute=0) for s in older}) == 24  # one per hour
    assert min(stamps) >= now - timedelta(days=2)
    assert deleted == 216 - 73 - 24


def test_rank_changes_stay_visible_until_the_next_move() -> None:
    from crunch_engine.services.leaderboard import _rank_change

    assert _rank_change(None, 1) is None  # first appearance
    assert _rank_change({"rank": 3, "rank_change": None}, 1) == 2  # moved up two
    assert _rank_change({"rank": 1, "rank_change": 2}, 1) == 2  # kept while unchanged
    assert _rank_change({"rank": 1, "rank_change": 2}, 2) == -1  # the next move replaces it
    assert _rank_change({"rank": 2, "rank_change": None}, 2) == 0
