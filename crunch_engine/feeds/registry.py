"""Which provider builds the feed: a name -> factory table, filled with the built-ins.

Factories import their provider lazily, so a missing optional SDK only matters to the
provider that needs it, and a worker picks its feed with ``CRUNCH_FEED_PROVIDER``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from crunch_engine.errors import ConfigError
from crunch_engine.feeds.base import DataFeed
from crunch_engine.feeds.settings import FeedSettings, load_feed_settings

logger = logging.getLogger(__name__)

FeedFactory = Callable[[FeedSettings], DataFeed]


def _binance(settings: FeedSettings) -> DataFeed:
    from crunch_engine.feeds.providers.binance import BinanceFeed

    return BinanceFeed.from_settings(settings)


def _pyth(settings: FeedSettings) -> DataFeed:
    from crunch_engine.feeds.providers.pyth import PythFeed

    return PythFeed.from_settings(settings)


def _replay(settings: FeedSettings) -> DataFeed:
    from crunch_engine.feeds.providers.replay import ReplayFeed

    return ReplayFeed.from_settings(settings)


def _synthetic(settings: FeedSettings) -> DataFeed:
    from crunch_engine.feeds.providers.synthetic import SyntheticFeed

    return SyntheticFeed.from_settings(settings)


BUILTIN_FACTORIES: dict[str, FeedFactory] = {
    "binance": _binance,
    "pyth": _pyth,
    "replay": _replay,
    "synthetic": _synthetic,
}


class DataFeedRegistry:
    """Named feed factories. Names are case-insensitive."""

    def __init__(self, factories: Mapping[str, FeedFactory] | None = None) -> None:
        self._factories: dict[str, FeedFactory] = {}
        for name, factory in (factories or {}).items():
            self.register(name, factory)

    @classmethod
    def with_builtins(cls) -> DataFeedRegistry:
        return cls(BUILTIN_FACTORIES)

    @property
    def names(self) -> list[str]:
        return sorted(self._factories)

    def register(self, name: str, factory: FeedFactory, *, replace: bool = False) -> None:
        key = name.strip().lower()
        if not key:
            raise ValueError("a feed provider needs a name")
        if key in self._factories and not replace:
            raise ValueError(f"feed provider {key!r} is already registered")
        self._factories[key] = factory

    def create(self, name: str, settings: FeedSettings) -> DataFeed:
        key = name.strip().lower()
        factory = self._factories.get(key)
        if factory is None:
            raise ConfigError(
                f"CRUNCH_FEED_PROVIDER: unknown feed provider {name!r}; "
                f"known: {', '.join(self.names) or '(none)'}"
            )
        feed = factory(settings)
        logger.info(
            "feed=%s created assets=%s kind=%s granularity=%s",
            key,
            ",".join(settings.assets),
            settings.kind,
            settings.granularity,
        )
        return feed

    def create_from_settings(self, settings: FeedSettings) -> DataFeed:
        return self.create(settings.provider, settings)

    def create_from_env(self, environ: Mapping[str, str] | None = None) -> DataFeed:
        """Read ``CRUNCH_FEED_*`` (from ``environ`` alone when given) and build the feed."""
        return self.create_from_settings(load_feed_settings(environ))


default_registry = DataFeedRegistry.with_builtins()
