"""What the API handlers share: settings, the database, the competition, the supervisor."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import Request

from crunch_engine.competition import Competition
from crunch_engine.db.database import Database
from crunch_engine.db.repositories.reports import ReportQueries
from crunch_engine.settings import Settings
from crunch_engine.timeutil import utc_now

if TYPE_CHECKING:
    from crunch_engine.supervisor import Supervisor


@dataclass
class ApiContext:
    settings: Settings
    database: Database
    competition: Competition
    supervisor: Supervisor | None = None
    """None when the API runs without workers (tests, a read-only replica)."""
    reports: ReportQueries = field(init=False)
    started_at: Any = field(default_factory=utc_now)
    _schema: dict[str, Any] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.reports = ReportQueries(self.database.sessions)

    @property
    def leaderboard_keys(self) -> list[str]:
        return [board.key for board in self.competition.pack.scoring.leaderboards]

    async def report_schema(self) -> dict[str, Any]:
        """REPORT_SCHEMA_PROVIDER's output, computed once (it depends on the pack only)."""
        if self._schema is None:
            from crunch_engine.slots.spec import SlotName

            provider = self.competition.slot(SlotName.REPORT_SCHEMA_PROVIDER)
            schema = await provider(windows=dict(self.competition.pack.scoring.windows))
            self._schema = normalise_schema(dict(schema))
        return self._schema


def normalise_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Emit ``PROJECT`` for the model column even when a provider says ``MODEL``."""
    columns = []
    for column in schema.get("leaderboard_columns", []):
        column = dict(column)
        if column.get("type") == "MODEL":
            column["type"] = "PROJECT"
        columns.append(column)
    schema["leaderboard_columns"] = sorted(columns, key=lambda c: c.get("order", 0))
    schema.setdefault("metrics_widgets", [])
    schema.setdefault("schema_version", 1)
    return schema


def get_context(request: Request) -> ApiContext:
    return request.app.state.context  # type: ignore[no-any-return]
