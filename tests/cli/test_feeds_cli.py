"""`crunch feeds` on the default configuration: the offline replay provider."""

from __future__ import annotations

import json
import subprocess
from datetime import timedelta
from pathlib import Path

from crunch_engine.timeutil import parse_iso


def crunch(cmd: list[str], env: dict, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*cmd, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_backfill_status_tail_offline(
    crunch_cmd: list[str], crunch_env: dict, tmp_path: Path
) -> None:
    assert crunch(crunch_cmd, crunch_env, tmp_path, "db", "upgrade").returncode == 0

    first = crunch(crunch_cmd, crunch_env, tmp_path, "feeds", "backfill", "--since", "30m")
    assert first.returncode == 0, first.stderr
    assert "replay:BTC:candle:5s: stored" in first.stdout

    status = json.loads(
        crunch(crunch_cmd, crunch_env, tmp_path, "feeds", "status", "--json").stdout
    )
    [btc] = status
    assert (btc["provider"], btc["asset"], btc["kind"], btc["granularity"]) == (
        "replay",
        "BTC",
        "candle",
        "5s",
    )
    assert 355 <= btc["record_count"] <= 361  # 30 minutes of 5 s candles
    assert btc["watermark_ts"] == btc["newest_ts"]
    span = parse_iso(btc["newest_ts"]) - parse_iso(btc["oldest_ts"])
    assert span == timedelta(seconds=5 * (btc["record_count"] - 1))  # contiguous

    again = crunch(crunch_cmd, crunch_env, tmp_path, "feeds", "backfill", "--since", "30m")
    assert again.returncode == 0 and "stored" in again.stdout  # resumes after the watermark

    tail = json.loads(
        crunch(
            crunch_cmd, crunch_env, tmp_path, "feeds", "tail", "BTC", "--limit", "3", "--json"
        ).stdout
    )
    stamps = [parse_iso(row["ts_event"]) for row in tail]
    assert stamps == sorted(stamps, reverse=True) and len(stamps) == 3
    assert set(tail[0]["values"]) == {"open", "high", "low", "close", "volume"}


def test_backfill_rejects_a_bad_since(
    crunch_cmd: list[str], crunch_env: dict, tmp_path: Path
) -> None:
    crunch(crunch_cmd, crunch_env, tmp_path, "db", "upgrade")
    result = crunch(crunch_cmd, crunch_env, tmp_path, "feeds", "backfill", "--since", "yesterday")
    assert result.returncode == 2
    assert "expected a span like 30d" in result.stderr


def test_feeds_need_a_migrated_database(
    crunch_cmd: list[str], crunch_env: dict, tmp_path: Path
) -> None:
    result = crunch(crunch_cmd, crunch_env, tmp_path, "feeds", "status")
    assert result.returncode == 2
    assert "run `crunch db upgrade`" in result.stderr


def test_unknown_provider_is_named(crunch_cmd: list[str], crunch_env: dict, tmp_path: Path) -> None:
    crunch(crunch_cmd, crunch_env, tmp_path, "db", "upgrade")
    result = crunch(crunch_cmd, crunch_env, tmp_path, "feeds", "backfill", "--provider", "kraken")
    assert result.returncode == 2
    assert "unknown feed provider 'kraken'" in result.stderr and "replay" in result.stderr
