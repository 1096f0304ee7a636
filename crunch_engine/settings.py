"""The one settings object: ``CRUNCH_*`` environment variables, optionally from ``.env`` files.

Read once at start (``load_settings``) and passed down; no other module reads the
environment for engine settings. A bad value stops the process with a message that
names the variable, what was expected and what was given.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from crunch_engine.errors import ConfigError
from crunch_engine.feeds.settings import FeedSettings, load_feed_settings

ENV_PREFIX = "CRUNCH_"
DEMO_MODELS_DIR = Path(__file__).resolve().parent / "demo" / "models"
ENV_FILES = (".env", ".local.env")

_DRIVER_ALIASES = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}


def normalise_database_url(url: str) -> str:
    """Map ``sqlite://``/``postgresql://`` spellings onto the async drivers the engine uses."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ValueError(f"not a database URL: {exc}") from None
    driver = _DRIVER_ALIASES.get(parsed.drivername)
    if driver is None:
        raise ValueError(
            f"unsupported database driver {parsed.drivername!r}: "
            "expected sqlite+aiosqlite:///path or postgresql+asyncpg://user:pass@host/db"
        )
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


def redact_url(url: str) -> str:
    """The URL with its password replaced by ``***``, safe to print or log."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"


class Settings(BaseSettings):
    """Engine settings. Every field is ``CRUNCH_<FIELD>`` in the environment."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=ENV_FILES,
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
    )

    data_dir: Path = Path(".crunch")
    """Holds the embedded SQLite database and every runtime file (logs, pids, caches)."""

    database_url: str | None = None
    """Another database instead of the embedded SQLite file, e.g. postgresql+asyncpg://..."""

    pack: str = "demo"
    """A pack name (``crunch packs list``) or a path to a pack.json."""

    spec: Path | None = None
    """Optional spec.json merged over the pack, slot by slot and config by config."""

    schedule_file: Path = Path("config/scheduled_prediction_configs.json")
    """Optional JSON array of scheduled prediction configs, merged over the pack's (and
    the spec's) config by config on ``scope_key``; used when the file exists."""

    callables_file: Path = Path("config/callables.env")
    """Optional ``SLOT=package.module:attr`` lines; used when the file exists."""

    crunch_id: str = "local"
    """Identifies this competition to the model orchestrator and the web UI."""

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    market_backfill_hours: float = Field(3.0, gt=0)
    """On an empty tape the market-data worker first backfills this much history."""

    market_retention_days: float = Field(90.0, gt=0)
    """Market records older than this (by market time, ts_event) are deleted."""

    tape_staleness_fraction: float = Field(0.2, gt=0, le=1)
    """Ground truth is refused when the last price is older than this fraction of the
    horizon (and never tighter than one candle)."""

    models_dir: Path = DEMO_MODELS_DIR
    """Submissions (one folder each) and their ``models.yml``; default: the demo models."""

    model_base_class: str = "crunch_engine.demo.tracker.TrackerBase"
    """Dotted path of the class submissions subclass (Setup's className on the wire)."""

    orchestrator_host: str = "127.0.0.1"
    orchestrator_port: int = Field(9091, ge=0, le=65535)
    """Where the local orchestrator announces models (ws://host:port/{crunch_id})."""

    model_call_timeout_seconds: float = Field(2.0, gt=0)
    """Deadline of one call (tick or predict) on one model."""

    model_hard_limit_seconds: float = Field(30.0, gt=0)
    """A model stuck inside one call longer than this is killed and restarted."""

    model_max_concurrency: int = Field(256, gt=0)
    """How many model calls the client has in flight at once."""

    model_failure_threshold: int = Field(5, gt=0)
    """Consecutive failures (or timeouts) after which a model is put on cooldown."""

    model_cooldown_seconds: float = Field(30.0, ge=0)

    model_memory_limit_mb: int = Field(1024, ge=0)
    """Address-space limit of one model process (0: none)."""

    model_max_open_files: int = Field(256, ge=0)
    model_max_processes: int = Field(64, ge=0)
    """Per-model limits (0: none). The process limit is per user and not enforced for root."""

    score_interval_seconds: float = Field(5.0, gt=0)
    """How often the score worker looks for resolvable predictions."""

    score_settle_seconds: float = Field(5.0, ge=0)
    """Extra wait after ``resolvable_at`` so the last candle has closed and arrived."""

    score_unresolved_after_seconds: float = Field(3600.0, gt=0)
    """Predictions whose ground truth is still missing this long after ``resolvable_at``
    are marked UNRESOLVED with the reason (never scored on bad data)."""

    score_batch_size: int = Field(10_000, gt=0)
    """Predictions scored per transaction: larger batches share each commit, statement
    and window-bucket row among more predictions (10,000 scored 10 % faster than 5,000
    on PostgreSQL in bench/score_throughput.py); a backlog is drained batch by batch."""

    leaderboard_keep_all_hours: float = Field(24.0, gt=0)
    leaderboard_keep_hourly_days: float = Field(7.0, gt=0)
    """Snapshot retention: every snapshot for the first period, then hourly, then none."""

    api_host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=0, le=65535)
    """Where ``crunch serve`` listens (API and web UI)."""

    api_key: SecretStr | None = None
    """Enables the admin tier (process control). Accepted only in the ``X-API-Key`` or
    ``Authorization: Bearer`` header, compared in constant time."""

    api_read_auth: bool = False
    """Also require the key for the non-public report endpoints."""

    api_cache_seconds: float = Field(1.0, ge=0)
    """How long a hot report read (leaderboard, feeds, metrics) may be reused (0: never)."""

    api_cors_origins: str = ""
    """Comma-separated origins allowed by CORS (none by default)."""

    feed: FeedSettings = Field(default_factory=load_feed_settings)
    """The market-data feed: every ``CRUNCH_FEED_*`` variable (see feeds/settings.py)."""

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return normalise_database_url(value.strip())

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("api_key", mode="before")
    @classmethod
    def _blank_key_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def cors_origins(self) -> list[str]:
        return [o.strip() for o in self.api_cors_origins.split(",") if o.strip()]

    @property
    def resolved_data_dir(self) -> Path:
        return self.data_dir.expanduser().resolve()

    @property
    def effective_database_url(self) -> str:
        """The configured URL, or the embedded SQLite file inside the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.resolved_data_dir / 'crunch.db'}"

    @property
    def redacted_database_url(self) -> str:
        return redact_url(self.effective_database_url)

    def ensure_data_dir(self) -> Path:
        path = self.resolved_data_dir
        path.mkdir(parents=True, exist_ok=True)
        return path


_URL_FIELDS = {"database_url"}


def _describe(error: dict) -> str:
    field = ".".join(str(part) for part in error.get("loc", ()) if part != "__root__")
    name = f"{ENV_PREFIX}{field.upper()}" if field else ENV_PREFIX + "*"
    got = error.get("input")
    if field in _URL_FIELDS and isinstance(got, str):
        got = redact_url(got)
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    return f"{name}: {message} (got {got!r})"


def known_env_names() -> set[str]:
    """Every ``CRUNCH_*`` name the engine reads (settings and feed settings)."""
    from crunch_engine.feeds.settings import feed_env_names

    return set(settings_env_names()) | set(feed_env_names())


def _env_file_values(path: Path) -> Mapping[str, str | None]:
    from dotenv import dotenv_values

    return dotenv_values(path) if path.is_file() else {}


def unknown_key_errors(environ: Mapping[str, str] | None = None) -> list[str]:
    """Misspelt ``CRUNCH_*`` keys, which would otherwise be ignored without a word.

    Every unknown ``CRUNCH_*`` key in a ``.env`` file is an error (the file is ours);
    in the process environment only a near miss of a real name is (other tools may
    own other ``CRUNCH_`` variables).
    """
    known = known_env_names()
    errors = []

    def suggestion(key: str) -> str:
        close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.8)
        return f"; did you mean {close[0]}?" if close else ""

    for name in ENV_FILES:
        path = Path(name)
        for key in _env_file_values(path):
            upper = key.upper()
            if upper.startswith(ENV_PREFIX) and upper not in known:
                errors.append(
                    f"{upper} in {path.resolve()}: not a setting{suggestion(upper)} "
                    "(`crunch config check` lists them all)"
                )
    for key in os.environ if environ is None else environ:
        upper = key.upper()
        if upper.startswith(ENV_PREFIX) and upper not in known and suggestion(upper):
            errors.append(f"{upper} in the environment: not a setting{suggestion(upper)}")
    return errors


def load_settings(**overrides: object) -> Settings:
    """Read and validate the settings; a bad value raises ``ConfigError`` naming the key."""
    unknown = unknown_key_errors()
    if unknown:
        raise ConfigError("invalid settings:\n  " + "\n  ".join(unknown))
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = [_describe(error) for error in exc.errors()]
        raise ConfigError("invalid settings:\n  " + "\n  ".join(lines)) from None


def settings_env_names() -> list[str]:
    """Every environment variable the settings object reads, for docs and `config check`."""
    return [f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields]


def environment_snapshot() -> dict[str, str]:
    """The ``CRUNCH_*`` variables currently set (for diagnostics; values not printed)."""
    return {key: value for key, value in os.environ.items() if key.startswith(ENV_PREFIX)}
