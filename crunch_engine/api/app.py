"""The FastAPI application: routers, auth tiers, CORS, the static web UI."""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response

from crunch_engine import __version__
from crunch_engine.api.cache import MicroCache
from crunch_engine.api.context import ApiContext
from crunch_engine.api.guards import RejectNulCharacters
from crunch_engine.api.routes import control, feeds, reports

STATIC_DIR = Path(__file__).with_name("static")
PUBLIC_HOT_PATHS = (
    "/reports/leaderboard",
    "/reports/models",
    "/reports/feeds",
    "/reports/feeds/tail",
    "/reports/schema",
    "/reports/schema/leaderboard-columns",
    "/reports/schema/metrics-widgets",
)
READ_HOT_PATHS = ("/reports/models/global", "/reports/models/params", "/reports/snapshots")


def create_app(context: ApiContext) -> FastAPI:
    """An app over ``context``; the caller owns the database and the supervisor."""
    app = FastAPI(
        title="crunch-control",
        version=__version__,
        description="Report and control API of a Crunch node (see docs/api.md).",
    )
    app.state.context = context
    for router in (reports.public, reports.read, feeds.router, control.reads, control.actions):
        app.include_router(router)
    # Keyed reads are only cached when the key is not required for them: the cache
    # answers before the auth dependency would run. Added before CORS so that CORS
    # (outermost) still sets its headers per request origin.
    hot = PUBLIC_HOT_PATHS + (() if context.settings.api_read_auth else READ_HOT_PATHS)
    app.add_middleware(MicroCache, paths=hot, ttl=context.settings.api_cache_seconds)
    origins = context.settings.cors_origins
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST"],
            allow_headers=["X-API-Key", "Authorization", "Content-Type"],
            expose_headers=["X-Next-Cursor"],
        )
    app.add_middleware(RejectNulCharacters)
    _mount_ui(app)
    return app


class _UiFiles(StaticFiles):
    """Static files revalidated on every load, so an upgrade never mixes old modules."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        return response


def _mount_ui(app: FastAPI) -> None:
    # Browsers refuse ES modules served as text/plain (some systems map .js so).
    mimetypes.add_type("text/javascript", ".js")
    index = STATIC_DIR / "index.html"
    if STATIC_DIR.is_dir():
        app.mount("/static", _UiFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False, response_model=None)
    async def web_ui() -> FileResponse | HTMLResponse:
        if index.is_file():
            return FileResponse(index, headers={"Cache-Control": "no-cache"})
        return HTMLResponse("<h1>crunch-control</h1><p>The web UI is not installed.</p>")
