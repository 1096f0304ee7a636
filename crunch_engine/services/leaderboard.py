"""Leaderboards: window stats -> MODEL_SCORE_AGGREGATOR -> LEADERBOARD_RANKER -> snapshot.

Windows are whole hours ending with the current one (``recent`` 24 h = the current hour
and the 23 before it), read from the score buckets in one query per leaderboard.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from crunch_engine.competition import Competition
from crunch_engine.db.database import Database
from crunch_engine.db.repositories.scores import BUCKET, bucket_start
from crunch_engine.slots.spec import SlotName, WindowStats

logger = logging.getLogger(__name__)


class LeaderboardService:
    def __init__(self, database: Database, competition: Competition) -> None:
        self.database = database
        self.competition = competition
        self._aggregate = competition.slot(SlotName.MODEL_SCORE_AGGREGATOR)
        self._rank = competition.slot(SlotName.LEADERBOARD_RANKER)

    def window_starts(self, now: datetime) -> dict[str, datetime]:
        end = bucket_start(now) + BUCKET
        return {
            name: end - timedelta(seconds=seconds)
            for name, seconds in self.competition.pack.scoring.windows.items()
        }

    async def rebuild(self, now: datetime) -> dict[str, list[dict[str, Any]]]:
        """Rank every leaderboard of the pack at ``now``; returns the entries by key."""
        scoring = self.competition.pack.scoring
        since = self.window_starts(now)
        models = await self.database.models.list()
        boards: dict[str, list[dict[str, Any]]] = {}
        for board in scoring.leaderboards:
            stats = await self.database.scores.window_stats(board.scope_keys, since)
            empty = {name: WindowStats(0.0, 0) for name in since}
            model_scores = []
            for model in models:
                windows = await self._aggregate(
                    model_id=model.id, windows=stats.get(model.id, empty)
                )
                model_scores.append(
                    {
                        "model_id": model.id,
                        "windows": windows,
                        "status": "active" if model.state == "RUNNING" else model.state.lower(),
                    }
                )
            entries = list(
                await self._rank(
                    model_scores=model_scores, rank_by=scoring.rank_by, direction=scoring.direction
                )
            )
            previous = await self.database.leaderboards.latest(board.key)
            before = {e["model_id"]: e for e in (previous.entries_jsonb if previous else [])}
            for entry in entries:
                entry["rank_change"] = _rank_change(before.get(entry["model_id"]), entry["rank"])
            await self.database.leaderboards.insert(
                board.key,
                now,
                entries,
                meta={
                    "windows": dict(scoring.windows),
                    "rank_by": scoring.rank_by,
                    "direction": scoring.direction,
                },
            )
            await self.database.scores.insert_model_scores(
                [
                    {
                        "id": f"{board.key}:{e['model_id']}:{int(now.timestamp() * 1000)}",
                        "model_id": e["model_id"],
                        "leaderboard_key": board.key,
                        "computed_at": now,
                        "score_payload_jsonb": {k: v for k, v in e.items() if k != "model_id"},
                    }
                    for e in entries
                ]
            )
            boards[board.key] = entries
        logger.info(
            "leaderboards %s models=%d",
            " ".join(f"{k}:{len(v)}" for k, v in boards.items()),
            len(models),
        )
        return boards


def _rank_change(previous: dict[str, Any] | None, rank: int) -> int | None:
    """The model's last move (positive: up). Sticky: a snapshot where the rank did not
    change keeps the previous move, so it stays visible between score cycles instead
    of flashing for one refresh."""
    if previous is None:
        return None
    if previous["rank"] != rank:
        return int(previous["rank"]) - rank
    kept = previous.get("rank_change")
    return int(kept) if kept is not None else 0
