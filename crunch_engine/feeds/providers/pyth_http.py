"""Pyth Hermes v2 over httpx: latest, point-in-time and the SSE price stream.

Hermes price endpoints need ``Authorization: Bearer <key>`` since the 2026 core
upgrade; without it they answer 401. Auth failures become ``FeedAuthError`` with a
message that names the setting, 429 is retried after ``Retry-After`` (Hermes bans for
60 s), and every request goes through a limiter that keeps under the public 30
requests per 10 s. A malformed price entry is logged with its content and skipped.

The old ``hermes.pyth.network`` host redirects to its successor, and httpx drops the
``Authorization`` header on any cross-origin redirect. A request hook puts the key
back only when the redirect stays on the configured host or its domain (so a key is
never handed to a stranger), and the first redirect logs the URL to configure.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from crunch_engine.feeds.base import Clock, FeedAuthError, FeedError, FeedRateLimitError
from crunch_engine.feeds.providers.common import (
    RateLimiter,
    backoff_delay,
    parse_retry_after,
    shorten,
)
from crunch_engine.timeutil import ensure_utc, from_epoch_ms

logger = logging.getLogger(__name__)

HERMES_BAN_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class PythPrice:
    """One parsed Hermes price: ``value = int(price) * 10**expo``."""

    feed_id: str
    value: float
    conf: float
    publish_time: datetime


def normalise_id(feed_id: str) -> str:
    """Hermes answers ids as lower-case hex without ``0x``; compare in that form."""
    text = feed_id.strip().lower()
    return text[2:] if text.startswith("0x") else text


def parse_prices(payload: Any) -> list[PythPrice]:
    """The ``parsed`` entries of a Hermes answer; malformed entries are logged, skipped."""
    if not isinstance(payload, dict) or not isinstance(payload.get("parsed"), list):
        logger.warning("feed=pyth malformed payload skipped: %s", shorten(payload))
        return []
    prices = []
    for entry in payload["parsed"]:
        try:
            price = entry["price"]
            expo = int(price["expo"])
            prices.append(
                PythPrice(
                    feed_id=normalise_id(str(entry["id"])),
                    value=int(price["price"]) * 10.0**expo,
                    conf=int(price["conf"]) * 10.0**expo,
                    publish_time=from_epoch_ms(int(price["publish_time"]) * 1000),
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            logger.warning("feed=pyth malformed price entry skipped (%r): %s", exc, shorten(entry))
    return prices


def trusted_domain(host: str) -> str:
    """The part of ``host`` a redirect may move within and keep the API key.

    An IP address or a single-label host is trusted only as itself; a name trusts its
    registered domain (``hermes.pyth.network`` trusts ``*.pyth.network``).
    """
    host = host.lower().rstrip(".")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        labels = host.split(".")
        return ".".join(labels[-2:]) if len(labels) >= 2 else host
    return host


def may_carry_key(base_host: str, target_host: str) -> bool:
    target = target_host.lower().rstrip(".")
    domain = trusted_domain(base_host)
    return target == domain or target.endswith("." + domain)


class HermesClient:
    """The Hermes endpoints the feed uses, with auth, retries and throttling."""

    def __init__(
        self,
        *,
        base_url: str,
        clock: Clock,
        api_key: str | None = None,
        timeout: float = 10.0,
        max_retries: int = 5,
        backoff_seconds: float = 1.0,
        max_backoff_seconds: float = 60.0,
        requests_per_10s: int = 30,
    ) -> None:
        headers = {"Accept": "application/json"}
        self._authorization = f"Bearer {api_key}" if api_key else None
        if self._authorization:
            headers["Authorization"] = self._authorization
        self.base_url = base_url.rstrip("/")
        base = httpx.URL(self.base_url)
        self._base_host = base.host
        self._base_origin = (base.scheme, base.host, base.port)
        self.redirected_to: str | None = None
        self.key_withheld_from: str | None = None
        self._clock = clock
        self._timeout = timeout
        self._max_retries = max_retries
        self._backoff = backoff_seconds
        self._max_backoff = max_backoff_seconds
        self._limiter = RateLimiter(requests_per_10s, 10.0, clock)
        self._http = httpx.AsyncClient(
            base_url=self.base_url + "/",
            headers=headers,
            timeout=timeout,
            follow_redirects=True,
            event_hooks={"request": [self._on_request]},
        )
        self.has_key = bool(api_key)

    async def _on_request(self, request: httpx.Request) -> None:
        """Runs for every hop of a redirect chain; keeps the key on trusted hops only."""
        url = request.url
        host = url.host
        if (url.scheme, host, url.port) == self._base_origin:
            return
        origin = f"{url.scheme}://{url.netloc.decode('ascii')}"
        if self.redirected_to != origin:
            self.redirected_to = origin
            logger.warning(
                "feed=pyth %s redirects to %s: set CRUNCH_FEED_PYTH_BASE_URL=%s",
                self.base_url,
                origin,
                origin,
            )
        if not self._authorization or "Authorization" in request.headers:
            return
        downgrade = self._base_origin[0] == "https" and url.scheme != "https"
        if not downgrade and may_carry_key(self._base_host, host):
            request.headers["Authorization"] = self._authorization
        else:
            self.key_withheld_from = origin

    @staticmethod
    def _ids(ids: Sequence[str]) -> list[tuple[str, str]]:
        return [("ids[]", "0x" + normalise_id(i)) for i in ids] + [("parsed", "true")]

    def _refusal(self, response: httpx.Response) -> FeedError | None:
        """The error for a status the caller must not retry blindly (None if retryable)."""
        status = response.status_code
        if status == 401:
            if self.key_withheld_from:
                hint = (
                    f"{self.base_url} redirected to {self.key_withheld_from}, another "
                    "domain, so the API key was not sent there; if that host is "
                    f"genuine set CRUNCH_FEED_PYTH_BASE_URL={self.key_withheld_from}"
                )
            elif self.has_key:
                hint = "the API key was not accepted"
            else:
                hint = "Hermes price endpoints need an API key: set CRUNCH_FEED_PYTH_API_KEY"
            return FeedAuthError(f"pyth: HTTP 401 from {response.request.url.path}: {hint}")
        if status == 403:
            return FeedAuthError(
                f"pyth: HTTP 403 from {response.request.url.path}: the API key lacks access "
                "(check CRUNCH_FEED_PYTH_API_KEY and the plan)"
            )
        if status // 100 == 4 and status not in (404, 408, 429):
            return FeedError(f"pyth: HTTP {status}: {shorten(response.text)}")
        return None

    def retry_delay(self, attempt: int, response: httpx.Response | None) -> float:
        """Backoff for the next attempt; a 429 waits for the ban to lift."""
        if response is not None and response.status_code == 429:
            after = parse_retry_after(response.headers.get("Retry-After"))
            return after if after is not None else HERMES_BAN_SECONDS
        return backoff_delay(attempt, self._backoff, self._max_backoff)

    async def get_json(self, path: str, ids: Sequence[str]) -> Any | None:
        """GET ``path`` with ids; None on 404 (no update at that time)."""
        params = self._ids(ids)
        last = ""
        for attempt in range(self._max_retries + 1):
            await self._limiter.acquire()
            response: httpx.Response | None = None
            try:
                response = await self._http.get(path, params=params)
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code // 100 == 2:
                    try:
                        return response.json()
                    except ValueError:
                        logger.warning(
                            "feed=pyth %s answered non-JSON, skipped: %s",
                            path,
                            shorten(response.text),
                        )
                        return None
                if response.status_code == 404:
                    return None
                refusal = self._refusal(response)
                if refusal is not None:
                    logger.error("%s", refusal)
                    raise refusal
                last = f"HTTP {response.status_code}"
            delay = self.retry_delay(attempt, response)
            logger.warning(
                "feed=pyth %s failed (%s): retry in %.1fs (attempt %d/%d)",
                path,
                last,
                delay,
                attempt + 1,
                self._max_retries + 1,
            )
            if attempt < self._max_retries:
                await self._clock.sleep(delay)
        if last == "HTTP 429":
            raise FeedRateLimitError(f"pyth: {path} still rate limited (HTTP 429)")
        raise FeedError(f"pyth: {path} failed after {self._max_retries + 1} attempts: {last}")

    async def latest(self, ids: Sequence[str]) -> list[PythPrice]:
        payload = await self.get_json("v2/updates/price/latest", ids)
        return parse_prices(payload) if payload is not None else []

    async def at(self, when: datetime, ids: Sequence[str]) -> list[PythPrice]:
        """The first update with ``publish_time >= when`` (point-in-time backfill)."""
        stamp = int(ensure_utc(when).timestamp())
        payload = await self.get_json(f"v2/updates/price/{stamp}", ids)
        return parse_prices(payload) if payload is not None else []

    async def stream(self, ids: Sequence[str]) -> AsyncIterator[list[PythPrice]]:
        """Server-Sent Events from ``/v2/updates/price/stream``: one list per event.

        Returns when the server closes the stream (Hermes does after 24 h); raises
        ``FeedError`` subclasses on refusals so the caller can back off.
        """
        await self._limiter.acquire()
        timeout = httpx.Timeout(self._timeout, read=None)
        async with self._http.stream(
            "GET", "v2/updates/price/stream", params=self._ids(ids), timeout=timeout
        ) as response:
            if response.status_code // 100 != 2:
                await response.aread()
                refusal = self._refusal(response)
                if refusal is not None:
                    raise refusal
                if response.status_code == 429:
                    raise FeedRateLimitError(
                        f"pyth: stream rate limited (retry in {self.retry_delay(0, response)}s)"
                    )
                raise FeedError(f"pyth: stream answered HTTP {response.status_code}")
            data: list[str] = []
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    data.append(line[5:].lstrip())
                    continue
                if line.strip() or not data:
                    continue  # comments, event names, keep-alives
                text, data = "\n".join(data), []
                try:
                    payload = json.loads(text)
                except ValueError:
                    logger.warning("feed=pyth malformed stream event skipped: %s", shorten(text))
                    continue
                yield parse_prices(payload)

    async def aclose(self) -> None:
        await self._http.aclose()
