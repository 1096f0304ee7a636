"""The moved Hermes host: a redirect keeps the API key only within the trusted domain."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from aiohttp import web

from crunch_engine.feeds.base import FeedAuthError, FeedFetchRequest, ManualClock
from crunch_engine.feeds.providers.pyth_http import may_carry_key, trusted_domain
from tests.feeds.conftest import FIXED_NOW
from tests.feeds.fakes.pyth import FakePyth
from tests.feeds.fakes.server import LocalServer
from tests.feeds.test_pyth import BTC, history, make_feed

MINUTE = timedelta(minutes=1)


@dataclass
class Redirector(LocalServer):
    """The old host: answers every path with 308 to ``target`` + the same path."""

    target: str = ""

    @property
    def base_url(self) -> str:
        return self.root

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/{tail:.*}", self._moved)

    async def _moved(self, request: web.Request) -> web.Response:
        self.record(request)
        raise web.HTTPPermanentRedirect(self.target + str(request.rel_url))


@pytest.fixture
async def redirector() -> AsyncIterator[Redirector]:
    server = Redirector()
    await server.start()
    try:
        yield server
    finally:
        await server.close()


def test_trusted_domain_rules() -> None:
    assert trusted_domain("hermes.pyth.network") == "pyth.network"
    assert may_carry_key("hermes.pyth.network", "hermes-v2.pyth.network")
    assert may_carry_key("hermes.pyth.network", "pyth.network")
    assert not may_carry_key("hermes.pyth.network", "evilpyth.network")
    assert not may_carry_key("hermes.pyth.network", "pyth.network.example.com")
    assert may_carry_key("127.0.0.1", "127.0.0.1")
    assert not may_carry_key("127.0.0.1", "0.0.1")
    assert not may_carry_key("localhost", "127.0.0.1")


async def test_redirect_on_the_same_host_keeps_the_key(
    redirector: Redirector,
    fake_pyth: FakePyth,
    manual_clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake_pyth.api_key = "sekrit"
    fake_pyth.history[BTC] = history(FIXED_NOW - 10 * MINUTE, 10)
    redirector.target = fake_pyth.base_url  # another port on 127.0.0.1: another origin
    feed = make_feed(redirector, manual_clock, pyth_api_key="sekrit")  # type: ignore[arg-type]
    start = FIXED_NOW.replace(second=0) - 2 * MINUTE
    with caplog.at_level(logging.WARNING):
        try:
            ticks = await feed.fetch(FeedFetchRequest("BTC", "tick", "1m", start, FIXED_NOW))
        finally:
            await feed.aclose()
    assert len(ticks) == 3
    assert redirector.requests, "the old host was asked first"
    assert {r.headers["Authorization"] for r in fake_pyth.requests} == {"Bearer sekrit"}
    hint = f"set CRUNCH_FEED_PYTH_BASE_URL={fake_pyth.base_url}"
    assert sum(hint in m for m in caplog.messages) == 1  # said once, not per request


async def test_redirect_to_another_host_withholds_the_key_and_says_why(
    redirector: Redirector, fake_pyth: FakePyth, manual_clock: ManualClock
) -> None:
    fake_pyth.api_key = "sekrit"
    stranger = f"http://localhost:{fake_pyth.port}"
    redirector.target = stranger
    feed = make_feed(redirector, manual_clock, pyth_api_key="sekrit")  # type: ignore[arg-type]
    window = FeedFetchRequest("BTC", "tick", "1m", FIXED_NOW - MINUTE, FIXED_NOW)
    try:
        with pytest.raises(FeedAuthError, match=f"CRUNCH_FEED_PYTH_BASE_URL={stranger}"):
            await feed.fetch(window)
    finally:
        await feed.aclose()
    assert fake_pyth.requests, "the redirect was followed"
    assert all("Authorization" not in r.headers for r in fake_pyth.requests)
