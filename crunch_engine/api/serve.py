"""`crunch serve`: the supervisor (workers) and the HTTP API in one headless process.

Order matters: the schema is brought to head before any worker starts (every worker
refuses an unmigrated database), and on the way out the API stops taking requests
before the workers are stopped, so nothing reads a half-stopped engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Iterator, Mapping
from typing import TextIO

import uvicorn

from crunch_engine.api.app import create_app
from crunch_engine.api.context import ApiContext
from crunch_engine.competition import load_competition
from crunch_engine.db.database import Database
from crunch_engine.db.migrate import upgrade_database
from crunch_engine.settings import Settings, redact_url
from crunch_engine.supervisor import Supervisor, default_specs

logger = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: it re-raises a captured SIGTERM after
    shutting down, which would kill us before the workers are stopped. We stop it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def install_stop_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self._request_exit)

    def _request_exit(self) -> None:
        if self.should_exit:
            self.force_exit = True  # a second Ctrl-C: do not wait for open connections
        self.should_exit = True


async def print_logs(supervisor: Supervisor, out: TextIO) -> None:
    """Worker output on our stdout, one ``name | line`` per line (as process-compose)."""
    width = max((len(p.name) for p in supervisor.processes()), default=8)
    async for event in supervisor.subscribe():
        if event.kind == "log" and event.line is not None:
            out.write(f"{event.process:<{width}} | {event.line.line}\n")
            out.flush()
        elif event.kind == "state" and event.info is not None:
            info = event.info
            code = f" (exit {info.last_exit_code})" if info.last_exit_code is not None else ""
            out.write(f"{event.process:<{width}} * {info.state}{code}\n")
            out.flush()


async def serve(
    settings: Settings,
    *,
    host: str,
    port: int,
    workers: bool = True,
    migrate: bool = True,
    out: TextIO = sys.stdout,
    environ: Mapping[str, str] | None = None,
) -> int:
    """Run until SIGINT/SIGTERM; returns the exit code."""
    environ = os.environ if environ is None else environ
    settings.resolved_data_dir.mkdir(parents=True, exist_ok=True)
    url = settings.effective_database_url
    if migrate:
        before, after = await upgrade_database(url)
        if before != after:
            out.write(f"database {redact_url(url)}: {before or 'empty'} -> {after}\n")
    competition = load_competition(settings, environ)
    database = Database(url)
    supervisor = Supervisor(default_specs(settings)) if workers else None
    context = ApiContext(settings, database, competition, supervisor)
    app = create_app(context)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=3,
    )
    server = _Server(config)
    server.install_stop_signals()
    printer: asyncio.Task[None] | None = None
    try:
        await database.require_current_schema()
        if supervisor is not None:
            printer = asyncio.create_task(print_logs(supervisor, out))
            await supervisor.start()
        names = ", ".join(p.name for p in supervisor.processes()) if supervisor else "none"
        out.write(
            f"crunch serve: web UI and API on http://{host}:{port} "
            f"(pack {competition.pack.id}, database {redact_url(url)}, workers: {names})\n"
        )
        out.flush()
        await server.serve()
        return 0 if server.started else 1
    finally:
        if supervisor is not None:
            await supervisor.stop()
        if printer is not None:
            printer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await printer
        await database.close()
