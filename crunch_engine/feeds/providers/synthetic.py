"""Synthetic feed: seeded geometric Brownian motion for any asset, candles and ticks.

The path is a pure function of (seed, asset, time): every process, every fetch window
and the live loop agree on every price, which makes soak tests and benchmarks
reproducible. Log-prices move on a 5-second grid counted from 2025-01-01 UTC. Each
block of 4096 steps first draws its total move, then fills the inside with a Brownian
bridge that ends exactly on that total; so a price two years out costs a few thousand
draws (one per block), not millions.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from crunch_engine.feeds.base import (
    Clock,
    FeedError,
    FeedFetchRequest,
    FeedHandle,
    FeedSink,
    FeedSubscription,
    SystemClock,
    TaskFeedHandle,
    clip,
    floor_time,
    parse_granularity,
)
from crunch_engine.feeds.contracts import MarketRecord, RecordKind
from crunch_engine.feeds.providers.common import candle_values, run_clocked
from crunch_engine.feeds.settings import FeedSettings

logger = logging.getLogger(__name__)

PROVIDER = "synthetic"
EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
SUBSTEP = timedelta(seconds=5)
BLOCK = 4096
DEFAULT_SIGMA = 0.0054
DEFAULT_START_PRICES = {"BTC": 100_000.0, "ETH": 3_500.0, "SOL": 150.0, "ADA": 0.7}
FALLBACK_START_PRICE = 100.0
MAX_RECORDS = 200_000
_PATH_CACHE_BLOCKS = 64


class SyntheticFeed:
    """Deterministic GBM prices: same seed, same asset, same time -> same value."""

    provider = PROVIDER

    def __init__(
        self,
        *,
        seed: int = 7,
        sigma: float = DEFAULT_SIGMA,
        start_prices: Mapping[str, float] | None = None,
        clock: Clock | None = None,
    ) -> None:
        if sigma <= 0:
            raise ValueError(f"synthetic sigma must be positive, got {sigma}")
        self._seed = seed
        self._sigma_step = sigma * math.sqrt(SUBSTEP.total_seconds() / 3600.0)
        self._start = {
            **DEFAULT_START_PRICES,
            **{k.upper(): v for k, v in (start_prices or {}).items()},
        }
        self._clock = clock or SystemClock()
        self._block_levels: dict[str, dict[int, float]] = {}
        self._paths: OrderedDict[tuple[str, int], list[float]] = OrderedDict()

    @classmethod
    def from_settings(cls, settings: FeedSettings, clock: Clock | None = None) -> SyntheticFeed:
        return cls(
            seed=settings.synthetic_seed,
            sigma=settings.synthetic_sigma,
            start_prices=settings.synthetic_start_prices,
            clock=clock,
        )

    # -- the path -------------------------------------------------------------------

    def _rng(self, asset: str, what: str, index: int) -> random.Random:
        return random.Random(f"{self._seed}:{asset}:{what}:{index}")

    def _block_total(self, asset: str, block: int) -> float:
        return self._rng(asset, "total", block).gauss(0.0, self._sigma_step * math.sqrt(BLOCK))

    def _block_level(self, asset: str, block: int) -> float:
        """Log-price at the first step of ``block`` (cached, extended outward from 0)."""
        levels = self._block_levels.setdefault(
            asset, {0: math.log(self._start.get(asset, FALLBACK_START_PRICE))}
        )
        if block in levels:
            return levels[block]
        if block > 0:
            known = max(b for b in levels if b <= block)
            level = levels[known]
            for b in range(known, block):
                level += self._block_total(asset, b)
                levels[b + 1] = level
        else:
            known = min(b for b in levels if b >= block)
            level = levels[known]
            for b in range(known - 1, block - 1, -1):
                level -= self._block_total(asset, b)
                levels[b] = level
        return levels[block]

    def _path(self, asset: str, block: int) -> list[float]:
        """Log-prices of the BLOCK + 1 steps of ``block``, via a Brownian bridge."""
        key = (asset, block)
        cached = self._paths.get(key)
        if cached is not None:
            self._paths.move_to_end(key)
            return cached
        rng = self._rng(asset, "path", block)
        draws = [rng.gauss(0.0, self._sigma_step) for _ in range(BLOCK)]
        shift = self._block_total(asset, block) / BLOCK - sum(draws) / BLOCK
        level = self._block_level(asset, block)
        path = [level]
        for draw in draws:
            level += draw + shift
            path.append(level)
        self._paths[key] = path
        if len(self._paths) > _PATH_CACHE_BLOCKS:
            self._paths.popitem(last=False)
        return path

    def _log_price(self, asset: str, step_index: int) -> float:
        block, offset = divmod(step_index, BLOCK)
        return self._path(asset, block)[offset]

    def _index(self, ts: datetime) -> int:
        return int((ts - EPOCH) // SUBSTEP)

    def price(self, asset: str, ts: datetime) -> float:
        """The price at ``ts`` (on the 5-second grid, rounded down)."""
        return math.exp(self._log_price(asset.upper(), self._index(ts)))

    def candle(self, asset: str, start: datetime, granularity: str) -> MarketRecord:
        step = _check_step(granularity)
        first = self._index(start)
        count = step // SUBSTEP
        levels = [self._log_price(asset, first + i) for i in range(count + 1)]
        open_, close = math.exp(levels[0]), math.exp(levels[-1])
        rng = self._rng(asset, f"volume:{granularity}", first)
        notional = 1_000_000.0 * step.total_seconds() / 60.0 * rng.lognormvariate(0.0, 0.5)
        return MarketRecord(
            provider=PROVIDER,
            asset=asset,
            kind="candle",
            granularity=granularity,
            ts_event=start,
            values=candle_values(
                open_,
                math.exp(max(levels)),
                math.exp(min(levels)),
                close,
                round(notional / open_, 8),
            ),
        )

    def tick(self, asset: str, ts: datetime, granularity: str) -> MarketRecord:
        return MarketRecord(
            provider=PROVIDER,
            asset=asset,
            kind="tick",
            granularity=granularity,
            ts_event=ts,
            values={"price": self.price(asset, ts)},
        )

    def _record(self, asset: str, kind: RecordKind, granularity: str, ts: datetime) -> MarketRecord:
        if kind == "tick":
            return self.tick(asset, ts, granularity)
        return self.candle(asset, ts, granularity)

    # -- DataFeed -----------------------------------------------------------------

    async def fetch(self, request: FeedFetchRequest) -> Sequence[MarketRecord]:
        step = _check_step(request.granularity)
        asset = request.asset.upper()
        first = floor_time(request.start, step)
        if first < request.start:
            first += step
        now = floor_time(self._clock.now(), step)
        newest = now - step if request.kind == "candle" else now
        last = min(floor_time(request.end, step), newest)
        count = int((last - first) // step) + 1 if last >= first else 0
        cap = min(request.limit or MAX_RECORDS, MAX_RECORDS)
        records = [
            self._record(asset, request.kind, request.granularity, first + i * step)
            for i in range(min(count, cap))
        ]
        logger.info("feed=synthetic asset=%s kind=%s fetched=%d", asset, request.kind, len(records))
        return clip(records, request)

    async def listen(self, subscription: FeedSubscription, sink: FeedSink) -> FeedHandle:
        _check_step(subscription.granularity)
        loop = run_clocked(
            provider=PROVIDER,
            subscription=subscription,
            sink=sink,
            clock=self._clock,
            market_now=self._clock.now,
            to_wall=lambda market_time: market_time,
            make_record=lambda asset, ts: self._record(
                asset.upper(), subscription.kind, subscription.granularity, ts
            ),
        )
        logger.info(
            "feed=synthetic listen assets=%s kind=%s granularity=%s",
            ",".join(subscription.assets),
            subscription.kind,
            subscription.granularity,
        )
        return TaskFeedHandle(asyncio.create_task(loop, name="synthetic-listen"), PROVIDER)

    async def aclose(self) -> None:
        """Nothing to release."""


def _check_step(granularity: str) -> timedelta:
    step = parse_granularity(granularity)
    if step % SUBSTEP:
        raise FeedError(
            f"synthetic prices move every 5 s: granularity must be a multiple of 5s, "
            f"got {granularity!r}"
        )
    return step
