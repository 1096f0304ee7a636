"""Report endpoints with the paths and JSON shapes the Crunch coordinator web UI reads."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status

from crunch_engine import __version__
from crunch_engine.api.auth import require_read
from crunch_engine.api.context import ApiContext, get_context
from crunch_engine.api.params import SeriesQuery, bad_request, parse_ids, parse_time, series_query
from crunch_engine.api.schemas import (
    ControlInfo,
    Health,
    Info,
    ModelOut,
    PredictionOut,
    ReportSchema,
    SnapshotOut,
)
from crunch_engine.db.repositories.reports import CursorError, PredictionCursor
from crunch_engine.db.tables import ModelRow

public = APIRouter(tags=["reports"])
read = APIRouter(tags=["reports"], dependencies=[Depends(require_read)])

SERIES_LIMIT = 20_000


@public.get("/healthz", response_model=Health)
async def healthz() -> Health:
    return Health(version=__version__)


@public.get("/info", response_model=Info)
async def info(context: ApiContext = Depends(get_context)) -> Info:
    settings = context.settings
    return Info(
        crunch_id=settings.crunch_id,
        version=__version__,
        pack=context.competition.pack.id,
        database=context.database.dialect,
        feed_provider=settings.feed.provider,
        leaderboards=context.leaderboard_keys,
        started_at=context.started_at,
        control=ControlInfo(
            enabled=settings.api_key is not None and context.supervisor is not None,
            requires_key=settings.api_key is not None,
            available=context.supervisor is not None,
        ),
    )


@public.get("/reports/schema", response_model=ReportSchema)
async def schema(context: ApiContext = Depends(get_context)) -> dict[str, Any]:
    return await context.report_schema()


@public.get("/reports/schema/leaderboard-columns", response_model=list[dict[str, Any]])
async def leaderboard_columns(context: ApiContext = Depends(get_context)) -> list[Any]:
    return list((await context.report_schema())["leaderboard_columns"])


@public.get("/reports/schema/metrics-widgets", response_model=list[dict[str, Any]])
async def metrics_widgets(context: ApiContext = Depends(get_context)) -> list[Any]:
    return list((await context.report_schema())["metrics_widgets"])


def _board_key(context: ApiContext, key: str | None) -> str:
    keys = context.leaderboard_keys
    if key is None:
        return keys[0]
    if key not in keys:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"unknown leaderboard {key!r}; known: {', '.join(keys)}"
        )
    return key


def _names(models: list[ModelRow]) -> dict[str, ModelRow]:
    return {model.id: model for model in models}


@public.get("/reports/leaderboard", response_model=list[dict[str, Any]])
async def leaderboard(
    key: str | None = Query(None, description="Leaderboard key (default: the first one)"),
    context: ApiContext = Depends(get_context),
) -> list[dict[str, Any]]:
    """Rows of the newest snapshot, keyed by the columns' ``property``, best first."""
    snapshot = await context.database.leaderboards.latest(_board_key(context, key))
    if snapshot is None:
        return []
    models = _names(await context.database.models.list())
    rows = []
    for entry in snapshot.entries_jsonb:
        model = models.get(str(entry.get("model_id")))
        row = dict(entry)
        row["model_name"] = model.name if model else str(entry.get("model_id"))
        row["cruncher_name"] = (model.player_name if model else None) or ""
        row["updated_at"] = snapshot.created_at.isoformat()
        rows.append(row)
    return rows


def _model_out(model: ModelRow) -> ModelOut:
    return ModelOut(
        model_id=model.id,
        model_name=model.name,
        cruncher_name=model.player_name or "",
        cruncher_id=model.player_id or "",
        deployment_id=model.deployment_id or "",
    )


async def known_ids(context: ApiContext, ids: list[str] | None) -> list[str] | None:
    """``projectIds`` with at least one registered model; none known is a 404.

    Some unknown among known ones is fine: a model removed since the page loaded must
    not blank every chart of a polling web UI.
    """
    if not ids:
        return ids
    registered = {model.id for model in await context.database.models.list()}
    if registered.isdisjoint(ids):
        shown = ", ".join(ids[:10]) + (", ..." if len(ids) > 10 else "")
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"no model with id {shown} (GET /reports/models lists the models)",
        )
    return ids


@public.get("/reports/models", response_model=list[ModelOut])
async def models(context: ApiContext = Depends(get_context)) -> list[ModelOut]:
    return [_model_out(model) for model in await context.database.models.list()]


@read.get("/reports/models/global", response_model=list[dict[str, Any]])
async def models_global(
    query: SeriesQuery = Depends(series_query),
    key: str | None = Query(None, description="Leaderboard key (default: the first one)"),
    context: ApiContext = Depends(get_context),
) -> list[dict[str, Any]]:
    """Per-model window scores over time (flat rows, oldest first) for the charts."""
    board = _board_key(context, key)
    scoring = context.competition.pack.scoring
    rows = await context.reports.model_scores_between(
        board,
        model_ids=await known_ids(context, query.model_ids),
        start=query.start,
        end=query.end,
        limit=SERIES_LIMIT,
    )
    primary = f"score_{scoring.rank_by}"
    out = []
    for row in rows:
        payload = dict(row.score_payload_jsonb)
        payload.pop("model_id", None)
        flat: dict[str, Any] = {
            "model_id": row.model_id,
            "performed_at": row.computed_at.isoformat(),
            "leaderboard_key": board,
            **payload,
        }
        flat["ranking"] = {
            "key": primary,
            "value": payload.get(primary),
            "direction": scoring.direction,
        }
        out.append(flat)
    return out


@read.get("/reports/models/params", response_model=list[dict[str, Any]])
async def models_params(
    query: SeriesQuery = Depends(series_query),
    context: ApiContext = Depends(get_context),
) -> list[dict[str, Any]]:
    """Hourly mean score per (model, scope_key), the scope's fields top-level."""
    scopes = {
        config.scope_key: dict(config.scope_template)
        for config in context.competition.pack.scheduled_prediction_configs
    }
    rows = await context.reports.score_buckets_between(
        model_ids=await known_ids(context, query.model_ids),
        start=query.start,
        end=query.end,
        limit=SERIES_LIMIT,
    )
    out = []
    for row in rows:
        scope = scopes.get(row.scope_key, {})
        out.append(
            {
                **{k: v for k, v in scope.items() if isinstance(v, str | int | float | bool)},
                "model_id": row.model_id,
                "scope_key": row.scope_key,
                "scope": scope,
                "performed_at": row.bucket_start.isoformat(),
                "score_mean": row.total / row.count if row.count else None,
                "count": row.count,
            }
        )
    return out


@read.get("/reports/predictions", response_model=list[PredictionOut])
async def predictions(
    response: Response,
    projectIds: str | None = Query(None, description="Comma-separated model ids"),
    start: str | None = Query(None, description="ISO-8601 lower bound of performed_at"),
    end: str | None = Query(None, description="ISO-8601 upper bound of performed_at"),
    limit: int = Query(100, ge=1, le=1000),
    cursor: str | None = Query(None, description="X-Next-Cursor of the previous page"),
    context: ApiContext = Depends(get_context),
) -> list[PredictionOut]:
    """Newest first; the next page's cursor is in the ``X-Next-Cursor`` header."""
    start_at, end_at = parse_time("start", start), parse_time("end", end)
    if start_at and end_at and start_at > end_at:
        raise bad_request(f"start ({start_at.isoformat()}) is after end ({end_at.isoformat()})")
    try:
        position = PredictionCursor.decode(cursor) if cursor else None
    except CursorError as error:
        raise bad_request(str(error)) from None
    rows, following = await context.reports.predictions_page(
        model_ids=await known_ids(context, parse_ids(projectIds)),
        start=start_at,
        end=end_at,
        limit=limit,
        cursor=position,
    )
    if following is not None:
        response.headers["X-Next-Cursor"] = following.encode()
    return [
        PredictionOut(
            id=row.id,
            model_id=row.model_id,
            prediction_config_id=row.prediction_config_id,
            scope_key=row.scope_key,
            scope=row.scope_jsonb or {},
            status=row.status,
            failure_reason=row.failure_reason,
            exec_time_ms=row.exec_time_us / 1000 if row.exec_time_us is not None else None,
            score_value=row.score_value,
            score_failed=row.score_success is False,
            score_failed_reason=row.score_failed_reason,
            score_status=row.score_status,
            scored_at=row.scored_at,
            performed_at=row.performed_at,
            resolvable_at=row.resolvable_at,
        )
        for row in rows
    ]


@read.get("/reports/snapshots", response_model=list[SnapshotOut])
async def snapshots(
    key: str | None = Query(None, description="Leaderboard key (default: the first one)"),
    limit: int = Query(20, ge=1, le=500),
    context: ApiContext = Depends(get_context),
) -> list[SnapshotOut]:
    board = _board_key(context, key)
    return [
        SnapshotOut(
            id=row.id,
            leaderboard_key=row.leaderboard_key,
            created_at=row.created_at,
            entries=list(row.entries_jsonb),
        )
        for row in await context.database.leaderboards.history(board, limit)
    ]
