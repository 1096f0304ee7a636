"""Settings: CRUNCH_ prefix, .env files, validation naming the key, secrets redacted."""

from __future__ import annotations

from pathlib import Path

import pytest

from crunch_engine.errors import ConfigError
from crunch_engine.settings import load_settings, redact_url


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for key in ("CRUNCH_DATABASE_URL", "CRUNCH_DATA_DIR", "CRUNCH_PACK", "CRUNCH_LOG_LEVEL"):
        monkeypatch.delenv(key, raising=False)


def test_defaults_use_embedded_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    settings = load_settings()
    assert settings.pack == "demo"
    assert (
        settings.effective_database_url
        == f"sqlite+aiosqlite:///{tmp_path / '.crunch' / 'crunch.db'}"
    )


def test_env_and_env_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("CRUNCH_PACK=realtime\nCRUNCH_LOG_LEVEL=debug\n")
    (tmp_path / ".local.env").write_text("CRUNCH_PACK=tournament\n")
    settings = load_settings()
    assert settings.pack == "tournament"  # .local.env wins over .env
    assert settings.log_level == "DEBUG"
    monkeypatch.setenv("CRUNCH_PACK", "baseline")
    assert load_settings().pack == "baseline"  # the environment wins over files


def test_database_url_spellings_are_normalised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRUNCH_DATABASE_URL", "postgresql://u:pw@db:5432/crunch")
    settings = load_settings()
    assert settings.effective_database_url == "postgresql+asyncpg://u:pw@db:5432/crunch"
    assert settings.redacted_database_url == "postgresql+asyncpg://u:***@db:5432/crunch"


def test_bad_values_name_the_variable_and_hide_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRUNCH_DATABASE_URL", "mysql://root:topsecret@db/x")
    monkeypatch.setenv("CRUNCH_LOG_LEVEL", "loud")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert "CRUNCH_DATABASE_URL: unsupported database driver 'mysql'" in message
    assert "CRUNCH_LOG_LEVEL:" in message
    assert "topsecret" not in message


def test_redact_url() -> None:
    assert redact_url("postgresql+asyncpg://a:b@h/d") == "postgresql+asyncpg://a:***@h/d"


def test_a_misspelt_key_in_a_dotenv_file_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("CRUNCH_PACK=realtime\nCRUNCH_DATABSE_URL=postgresql://x/y\n")
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert "CRUNCH_DATABSE_URL" in message
    assert str(tmp_path / ".env") in message
    assert "did you mean CRUNCH_DATABASE_URL?" in message


def test_a_near_miss_in_the_environment_is_refused_others_are_not(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CRUNCH_SOMEONE_ELSES_TOKEN", "x")  # another tool's variable
    assert load_settings().pack == "demo"
    monkeypatch.setenv("CRUNCH_FEED_PROVDER", "binance")
    with pytest.raises(ConfigError, match="did you mean CRUNCH_FEED_PROVIDER"):
        load_settings()
