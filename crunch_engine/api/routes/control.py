"""Control endpoints (admin tier): the supervisor's processes, their logs, model health."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import StreamingResponse

from crunch_engine.api.auth import require_admin_action, require_admin_read
from crunch_engine.api.context import ApiContext, get_context
from crunch_engine.api.schemas import ModelHealthOut
from crunch_engine.supervisor import LogLine, ProcessInfo, Supervisor, UnknownProcessError
from crunch_engine.timeutil import parse_iso

reads = APIRouter(tags=["control"], dependencies=[Depends(require_admin_read)])
actions = APIRouter(tags=["control"], dependencies=[Depends(require_admin_action)])

PING_SECONDS = 15.0


def _supervisor(context: ApiContext) -> Supervisor | None:
    return context.supervisor


def _unknown(name: str, context: ApiContext) -> HTTPException:
    supervisor = _supervisor(context)
    known = ", ".join(p.name for p in supervisor.processes()) if supervisor else "none"
    return HTTPException(
        status.HTTP_404_NOT_FOUND, f"unknown process {name!r}; known processes: {known}"
    )


@reads.get("/control/processes", response_model=list[ProcessInfo])
async def processes(context: ApiContext = Depends(get_context)) -> list[ProcessInfo]:
    supervisor = _supervisor(context)
    return supervisor.processes() if supervisor else []


@reads.get("/control/processes/{name}", response_model=ProcessInfo)
async def process(name: str, context: ApiContext = Depends(get_context)) -> ProcessInfo:
    supervisor = _supervisor(context)
    if supervisor is None:
        raise _unknown(name, context)
    try:
        return supervisor.process(name)
    except UnknownProcessError:
        raise _unknown(name, context) from None


@actions.post("/control/processes/{name}/{action}", response_model=ProcessInfo)
async def act(
    name: str,
    action: Literal["start", "stop", "restart"],
    context: ApiContext = Depends(get_context),
) -> ProcessInfo:
    """Start, stop or restart a worker; returns its state once the action was applied."""
    supervisor = _supervisor(context)
    if supervisor is None:
        raise _unknown(name, context)
    handler = {
        "start": supervisor.start_process,
        "stop": supervisor.stop_process,
        "restart": supervisor.restart_process,
    }[action]
    try:
        return await handler(name)
    except UnknownProcessError:
        raise _unknown(name, context) from None


@reads.get("/control/logs", response_model=list[LogLine])
async def logs(
    process: str | None = Query(None, description="A process name (default: all, merged)"),
    limit: int = Query(200, ge=1, le=5000),
    context: ApiContext = Depends(get_context),
) -> list[LogLine]:
    supervisor = _supervisor(context)
    if supervisor is None:
        if process is not None:
            raise _unknown(process, context)
        return []
    try:
        return supervisor.logs(process, limit)
    except UnknownProcessError:
        raise _unknown(process or "", context) from None


@reads.get(
    "/control/logs/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def log_stream(
    request: Request,
    process: str | None = Query(None, description="A process name (default: all)"),
    context: ApiContext = Depends(get_context),
) -> StreamingResponse:
    """Server-Sent Events: ``log`` (a LogLine) and ``state`` (a ProcessInfo) events."""
    supervisor = _supervisor(context)
    if supervisor is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no supervisor runs in this API process")
    if process is not None:
        try:
            supervisor.process(process)
        except UnknownProcessError:
            raise _unknown(process, context) from None
    return StreamingResponse(
        _events(request, supervisor, process),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _events(
    request: Request, supervisor: Supervisor, process: str | None
) -> AsyncIterator[str]:
    yield ": connected\n\n"
    subscription = supervisor.subscribe()
    iterator = subscription.__aiter__()
    try:
        while not await request.is_disconnected():
            try:
                event = await asyncio.wait_for(iterator.__anext__(), PING_SECONDS)
            except TimeoutError:
                yield ": ping\n\n"
                continue
            except StopAsyncIteration:
                return
            if process is not None and event.process != process:
                continue
            payload = event.line if event.kind == "log" else event.info
            if payload is None:
                continue
            yield f"event: {event.kind}\ndata: {payload.model_dump_json()}\n\n"
    finally:
        closer = getattr(subscription, "aclose", None) or getattr(iterator, "aclose", None)
        if closer is not None:
            with contextlib.suppress(Exception):
                await closer()


def _ms(value: object) -> float | None:
    return round(float(value) / 1000, 3) if isinstance(value, int | float) else None


@reads.get("/control/models/health", response_model=list[ModelHealthOut])
async def models_health(context: ApiContext = Depends(get_context)) -> list[ModelHealthOut]:
    """Per-model health as the predict worker last wrote it (every few seconds)."""
    out = []
    for model in await context.database.models.list():
        health = model.health_jsonb or {}
        error_at = health.get("last_error_at")
        out.append(
            ModelHealthOut(
                model_id=model.id,
                model_name=model.name,
                state=model.state,
                deployment_id=model.deployment_id,
                latency_p50_ms=_ms(health.get("latency_p50_us")),
                latency_p95_ms=_ms(health.get("latency_p95_us")),
                counts={str(k): int(v) for k, v in (health.get("counts") or {}).items()},
                consecutive_failures=int(health.get("consecutive_failures") or 0),
                last_error=health.get("last_error"),
                last_error_at=parse_iso(error_at) if isinstance(error_at, str) else None,
                restarts=int(health.get("restarts") or 0),
                updated_at=model.updated_at if health else None,
            )
        )
    return out
