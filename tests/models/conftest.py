"""Fixtures for the model protocol, server and client tests: real processes, loopback."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from crunch_engine.models.contracts import ModelEndpoint, ModelIdentity, WireState
from tests.models.interop.announcer import Announcer
from tests.models.interop.servers import DEMO_MODELS, start_our_server, stop, wait_port

EXAMPLE_MODELS = Path(__file__).resolve().parent / "interop" / "example_models"

StartServer = Callable[..., tuple[subprocess.Popen[bytes], int]]


@pytest.fixture
def start_server() -> Iterator[StartServer]:
    """Start our model server on a fresh port; waits until it listens; stops it after."""
    started: list[subprocess.Popen[bytes]] = []

    def start(code_dir: Path | str, *, extra: tuple[str, ...] = (), wait: bool = True, **kw):
        process, port = start_our_server(code_dir, extra=extra, **kw)
        started.append(process)
        if wait:
            wait_port(port, process)
        return process, port

    yield start
    stop(started)


@pytest.fixture
async def announcer() -> AsyncIterator[Announcer]:
    server = await Announcer("test-crunch").start()
    yield server
    await server.close()


def endpoint(
    model_id: str, port: int, deployment: str = "1", state: str = "RUNNING"
) -> ModelEndpoint:
    return ModelEndpoint(
        model_id=model_id,
        deployment_id=f"{model_id}_{deployment}",
        identity=ModelIdentity(model_name=model_id, cruncher_id="c-" + model_id),
        state=WireState(state),
        ip="127.0.0.1",
        port=port,
    )


__all__ = ["DEMO_MODELS", "EXAMPLE_MODELS", "endpoint"]
