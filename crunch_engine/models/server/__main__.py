"""``python -m crunch_engine.models.server --address HOST:PORT --code-dir DIR``

One process per model. Serves ``dynamic_subclass.DynamicSubclassService`` and
``grpc.health.v1.Health/Check`` with the reference wire format. Exit codes: 0 after
SIGTERM/SIGINT, 86 when a call exceeded ``--hard-limit-seconds`` (watchdog), 2 for bad
arguments or an address that cannot be bound.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys

from crunch_engine.models.server.connection import CALL_PATH, REST_PATH, SETUP_PATH, GrpcServer
from crunch_engine.models.server.dispatch import Dispatcher, start_watchdog
from crunch_engine.models.server.runtime import MAX_MESSAGE_BYTES, ModelRuntime

logger = logging.getLogger("crunch_engine.models.server")
WATCHDOG_EXIT_CODE = 86
SHUTDOWN_GRACE_SECONDS = 2.0


def parse_address(address: str) -> tuple[str, int]:
    """``host:port``, ``[v6]:port`` or ``:port``; ``[::]`` and empty mean every interface."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"address must be HOST:PORT, got {address!r}")
    host = host.strip("[]")
    return (host if host not in ("", "::", "0.0.0.0") else "", int(port))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m crunch_engine.models.server")
    parser.add_argument("--address", default=os.environ.get("GRPC_ADDRESS", "[::]:50051"))
    parser.add_argument("--code-dir", default=os.environ.get("CODE_DIRECTORY"), required=False)
    parser.add_argument("--hard-limit-seconds", type=float, default=30.0)
    parser.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "INFO"))
    parser.add_argument("--max-message-bytes", type=int, default=MAX_MESSAGE_BYTES)
    parser.add_argument(
        "--pipeline-depth",
        type=int,
        default=4,
        help="calls a pipelining client may queue per connection (advertised on Setup)",
    )
    return parser


async def serve(args: argparse.Namespace) -> int:
    loop = asyncio.get_running_loop()
    code_dir = args.code_dir
    runtime = ModelRuntime(code_dir, max_message_bytes=args.max_message_bytes)
    dispatcher = Dispatcher(loop, queue_limit=args.pipeline_depth)
    if args.hard_limit_seconds > 0:
        start_watchdog(dispatcher.clock, args.hard_limit_seconds, WATCHDOG_EXIT_CODE)
    handlers = {
        SETUP_PATH: ("Setup", runtime.setup),
        CALL_PATH: ("Call", runtime.call),
        REST_PATH: ("Rest", runtime.rest),
    }
    app = GrpcServer(handlers, dispatcher, max_message_bytes=args.max_message_bytes)
    host, port = parse_address(args.address)
    try:
        server = await loop.create_server(app.protocol, host or None, port, backlog=256)
    except OSError as error:
        logger.error("cannot listen on %s: %s", args.address, error)
        return 2
    bound = ", ".join(str(sock.getsockname()[:2]) for sock in server.sockets)
    logger.info("model server for %s serving on %s (pid %d)", code_dir, bound, os.getpid())

    stopping = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await stopping.wait()
    logger.info("stopping")
    server.close()
    app.goaway_all()
    deadline = loop.time() + SHUTDOWN_GRACE_SECONDS
    while app.busy and loop.time() < deadline:  # noqa: ASYNC110 - busy is a plain flag
        await asyncio.sleep(0.02)
    await asyncio.sleep(0)  # let the transports flush the GOAWAY frames
    return 0


def yield_to_the_caller() -> None:
    """Run as SCHED_BATCH where the OS has it: a batch task never preempts on wake-up.

    When the engine writes a request to 100 model processes on 2 cores, each write wakes
    a server; as a normal task it would preempt the engine at once, so the fan-out would
    run one model at a time. As batch tasks the servers wait for the engine's writes to
    finish, then share the cores. No privilege is needed to lower one's own policy.
    """
    if hasattr(os, "sched_setscheduler") and hasattr(os, "SCHED_BATCH"):
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    yield_to_the_caller()
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not args.code_dir or not os.path.isdir(args.code_dir):
        logger.error("--code-dir must be an existing directory, got %r", args.code_dir)
        return 2
    args.code_dir = os.path.abspath(args.code_dir)
    try:
        parse_address(args.address)
    except ValueError as error:
        logger.error("%s", error)
        return 2
    try:
        import uvloop
    except ImportError:  # uvloop is optional off Linux/macOS
        return asyncio.run(serve(args))
    return uvloop.run(serve(args))


if __name__ == "__main__":
    sys.exit(main())
