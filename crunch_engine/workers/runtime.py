"""What every worker process shares: logging, graceful stop on SIGTERM/SIGINT, exit codes."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from crunch_engine.errors import CrunchError
from crunch_engine.settings import Settings, load_settings

T = TypeVar("T")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level, format=LOG_FORMAT, stream=sys.stderr, force=True)
    for noisy in ("httpx", "httpcore", "aiosqlite", "asyncio", "websockets", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))


def run_async(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on uvloop when it is installed (faster I/O), else asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def install_stop_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


async def wait_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep up to ``seconds``; True when ``stop`` was set meanwhile."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=max(0.0, seconds))
    except TimeoutError:
        return False
    return True


def run_worker(name: str, body: Callable[[Settings, asyncio.Event], Awaitable[None]]) -> int:
    """Load settings, run ``body`` until SIGTERM/SIGINT; exit 2 on bad configuration."""
    try:
        settings = load_settings()
    except CrunchError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    configure_logging(settings.log_level)
    log = logging.getLogger(f"crunch_engine.workers.{name}")

    async def main() -> None:
        stop = asyncio.Event()
        install_stop_signals(stop)
        await body(settings, stop)

    try:
        asyncio.run(main())
    except CrunchError as exc:
        log.error("%s", exc)
        return exc.exit_code
    log.info("stopped")
    return 0
