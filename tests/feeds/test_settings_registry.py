"""Feed settings from CRUNCH_FEED_* and the provider registry."""

from __future__ import annotations

import pytest

from crunch_engine.errors import ConfigError
from crunch_engine.feeds.base import DataFeed, ManualClock
from crunch_engine.feeds.providers.binance import BinanceFeed
from crunch_engine.feeds.providers.pyth import PythFeed
from crunch_engine.feeds.providers.replay import ReplayFeed
from crunch_engine.feeds.providers.synthetic import SyntheticFeed
from crunch_engine.feeds.registry import DataFeedRegistry, default_registry
from crunch_engine.feeds.settings import FeedSettings, feed_env_names, load_feed_settings
from tests.feeds.conftest import FIXED_NOW


def test_defaults_and_comma_separated_assets() -> None:
    settings = load_feed_settings({})
    assert (settings.provider, settings.assets, settings.kind) == ("replay", ["BTC"], "candle")
    settings = load_feed_settings(
        {
            "CRUNCH_FEED_ASSETS": "btc, ADA",
            "CRUNCH_FEED_PYTH_FEED_IDS": "ADA=0xabc",
            "CRUNCH_FEED_PYTH_API_KEY": "sekrit-key",
            "CRUNCH_FEED_PROVIDER": " Pyth ",
        }
    )
    assert settings.assets == ["BTC", "ADA"]
    assert settings.pyth_feed_ids == {"ADA": "0xabc"}
    assert settings.provider == "pyth"
    assert "sekrit-key" not in repr(settings)  # the key is a secret


def test_process_environment_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRUNCH_FEED_ASSETS", "BTC,ETH")
    monkeypatch.setenv("CRUNCH_FEED_BINANCE_SYMBOLS", '{"BTC": "BTCFDUSD"}')
    settings = load_feed_settings()
    assert settings.assets == ["BTC", "ETH"]
    assert settings.binance_symbols == {"BTC": "BTCFDUSD"}


def test_errors_name_the_variable() -> None:
    with pytest.raises(ConfigError) as caught:
        load_feed_settings(
            {
                "CRUNCH_FEED_GRANULARITY": "1x",
                "CRUNCH_FEED_REPLAY_ANCHOR": "not a time",
                "CRUNCH_FEED_KIND": "bar",
                "CRUNCH_FEED_ASSETS": " , ",
            }
        )
    message = str(caught.value)
    for name in ("GRANULARITY", "REPLAY_ANCHOR", "KIND", "ASSETS"):
        assert f"CRUNCH_FEED_{name}:" in message
    assert "CRUNCH_FEED_PYTH_API_KEY" in feed_env_names()


@pytest.mark.parametrize(
    ("provider", "cls"),
    [
        ("binance", BinanceFeed),
        ("pyth", PythFeed),
        ("replay", ReplayFeed),
        ("synthetic", SyntheticFeed),
    ],
)
async def test_builtins_are_registered(provider: str, cls: type) -> None:
    feed = default_registry.create_from_env({"CRUNCH_FEED_PROVIDER": provider})
    try:
        assert isinstance(feed, cls)
        assert isinstance(feed, DataFeed)
        assert feed.provider == provider
    finally:
        await feed.aclose()


def test_unknown_provider_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="known: binance, pyth, replay, synthetic"):
        default_registry.create_from_env({"CRUNCH_FEED_PROVIDER": "kraken"})


def test_custom_factories_register() -> None:
    registry = DataFeedRegistry()
    registry.register("Offline", lambda s: ReplayFeed(clock=ManualClock(FIXED_NOW)))
    with pytest.raises(ValueError, match="already registered"):
        registry.register("offline", lambda s: ReplayFeed())
    assert registry.names == ["offline"]
    feed = registry.create_from_settings(FeedSettings(provider="OFFLINE"))
    assert isinstance(feed, ReplayFeed)
