"""Feed settings: ``CRUNCH_FEED_*`` environment variables, optionally from ``.env`` files.

Kept apart from the engine settings so a feed can be built and tested on its own. A bad
value raises ``ConfigError`` naming the variable, what was expected and what was given.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from crunch_engine.errors import ConfigError
from crunch_engine.feeds.base import parse_granularity
from crunch_engine.timeutil import ensure_utc

FEED_ENV_PREFIX = "CRUNCH_FEED_"
FEED_ENV_FILES = (".env", ".local.env")
DEFAULT_GRANULARITY = {"replay": "5s"}


def _split_list(value: object) -> object:
    """``"BTC, ada"`` or ``'["BTC"]'`` -> ``["BTC", "ADA"]``."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            value = json.loads(text)
        else:
            value = [part for part in (p.strip() for p in text.split(",")) if part]
    if isinstance(value, list | tuple):
        return [str(item).strip().upper() for item in value if str(item).strip()]
    return value


def _split_mapping(value: object) -> object:
    """``'{"BTC": "x"}'`` or ``"BTC=x,ETH=y"`` -> a dict with upper-case asset keys."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return {}
        if text.startswith("{"):
            value = json.loads(text)
        else:
            pairs = [part.split("=", 1) for part in text.split(",") if part.strip()]
            if any(len(pair) != 2 for pair in pairs):
                raise ValueError("expected JSON object or ASSET=value pairs separated by commas")
            value = {key: val for key, val in pairs}
    if isinstance(value, Mapping):
        return {
            str(k).strip().upper(): v.strip() if isinstance(v, str) else v for k, v in value.items()
        }
    return value


class FeedSettings(BaseSettings):
    """Which provider feeds the tape, for which assets, and how to reach it."""

    model_config = SettingsConfigDict(
        env_prefix=FEED_ENV_PREFIX,
        env_file=FEED_ENV_FILES,
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
    )

    provider: str = "replay"
    """binance, pyth, replay (bundled real candles, offline) or synthetic (seeded GBM)."""

    assets: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["BTC"])
    """Assets to ingest, e.g. ``BTC,ADA``."""

    kind: Literal["tick", "candle"] = "candle"
    granularity: str = ""
    """Candle or tick spacing, e.g. 1m. Default: 5s for replay (each 5 s of wall time
    plays one real minute, so the demo moves every few seconds), 1m for the others."""
    request_timeout_seconds: float = Field(10.0, gt=0)
    max_retries: int = Field(5, ge=0)
    """Retries of one request after 429/418/5xx/connection errors before giving up."""
    backoff_seconds: float = Field(1.0, ge=0)
    """First backoff delay; doubles per retry up to ``max_backoff_seconds``."""
    max_backoff_seconds: float = Field(60.0, ge=0)

    binance_base_url: str = "https://api.binance.com/api"
    """Spot REST root (``/v3/...`` is appended); ``https://data-api.binance.vision/api``
    is the read-only mirror for regions that get HTTP 451."""
    binance_ws_url: str = "wss://stream.binance.com:9443/"
    binance_quote: str = "USDT"
    binance_symbols: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    """Explicit asset -> symbol overrides, e.g. ``BTC=BTCFDUSD``."""
    binance_use_sdk: bool = True
    """Use python-binance when importable; the httpx client is the fallback either way."""
    binance_use_websocket: bool = True
    binance_poll_seconds: float = Field(5.0, gt=0)
    """REST polling period when the websocket is down (and for ticks)."""
    binance_ws_retry_seconds: float = Field(30.0, ge=0)
    binance_weight_limit: int = Field(6000, gt=0)
    binance_weight_slowdown: float = Field(0.8, gt=0, le=1)
    """Fraction of the per-minute weight after which requests wait for the next minute."""

    pyth_base_url: str = "https://hermes.pyth.network"
    pyth_api_key: SecretStr | None = None
    pyth_feed_ids: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    """Extra or replacement asset -> Hermes feed id (hex) pairs."""
    pyth_use_stream: bool = True
    pyth_poll_seconds: float = Field(2.0, gt=0)
    pyth_reconnect_seconds: float = Field(1.0, ge=0)
    pyth_requests_per_10s: int = Field(30, gt=0)
    pyth_candle_grace_seconds: float = Field(2.0, ge=0)
    """How long after a minute ends its candle waits for late ticks before it is emitted."""

    replay_anchor: datetime | None = None
    """The wall time of replay slot 0; default 2025-01-01T00:00Z so every process plays
    the same tape. Speed follows ``granularity``: each slot plays one real minute."""

    synthetic_seed: int = 7
    synthetic_sigma: float = Field(0.0054, gt=0)
    """Hourly log-return volatility (BTC is about 0.0054)."""
    synthetic_start_prices: Annotated[dict[str, float], NoDecode] = Field(default_factory=dict)

    @field_validator("assets", mode="before")
    @classmethod
    def _parse_assets(cls, value: object) -> object:
        result = _split_list(value)
        if isinstance(result, list) and not result:
            raise ValueError("at least one asset is required, e.g. BTC,ETH")
        return result

    @field_validator("binance_symbols", "pyth_feed_ids", "synthetic_start_prices", mode="before")
    @classmethod
    def _parse_mapping(cls, value: object) -> object:
        return _split_mapping(value)

    @field_validator("provider", "binance_quote", mode="before")
    @classmethod
    def _strip(cls, value: object) -> object:
        return value.strip() if isinstance(value, str) else value

    @field_validator("provider")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()

    @field_validator("binance_quote")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()

    @field_validator("kind", mode="before")
    @classmethod
    def _lower_kind(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _default_granularity(self) -> FeedSettings:
        if not self.granularity:
            self.granularity = DEFAULT_GRANULARITY.get(self.provider, "1m")
        return self

    @field_validator("granularity")
    @classmethod
    def _check_granularity(cls, value: str) -> str:
        if not value.strip():
            return ""
        parse_granularity(value)
        return value.strip()

    @field_validator("binance_base_url", "binance_ws_url", "pyth_base_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        text = value.strip()
        if "://" not in text:
            raise ValueError("expected an absolute URL such as https://host/path")
        return text

    @field_validator("replay_anchor")
    @classmethod
    def _utc_anchor(cls, value: datetime | None) -> datetime | None:
        return ensure_utc(value) if value is not None else None


class _ExplicitFeedSettings(FeedSettings):
    """Reads only the values passed in: no process environment, no ``.env`` files."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def _describe(error: Mapping[str, Any]) -> str:
    loc = [str(part) for part in error.get("loc", ())]
    name = f"{FEED_ENV_PREFIX}{loc[0].upper()}" if loc else FEED_ENV_PREFIX + "*"
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    return f"{name}: {message} (got {error.get('input')!r})"


def load_feed_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> FeedSettings:
    """Validated feed settings; a bad value raises ``ConfigError`` naming the variable.

    With ``environ`` only that mapping is read (no process environment, no ``.env``
    files): tests and tools that build a feed from an explicit configuration.
    """
    try:
        if environ is None:
            return FeedSettings(**overrides)
        values: dict[str, Any] = {
            key[len(FEED_ENV_PREFIX) :].lower(): value
            for key, value in environ.items()
            if key.upper().startswith(FEED_ENV_PREFIX)
        }
        values.update(overrides)
        return _ExplicitFeedSettings(**values)
    except ValidationError as exc:
        lines = [_describe(error) for error in exc.errors()]
        raise ConfigError("invalid feed settings:\n  " + "\n  ".join(lines)) from None


def feed_env_names() -> list[str]:
    """Every ``CRUNCH_FEED_*`` variable the feed settings read (docs, ``config check``)."""
    return [f"{FEED_ENV_PREFIX}{name.upper()}" for name in FeedSettings.model_fields]
