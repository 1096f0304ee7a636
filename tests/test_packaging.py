"""The wheel carries the packs, the migrations and runs without the source tree."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_wheel_ships_packs_and_migrations(tmp_path: Path) -> None:
    build = subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert build.returncode == 0, build.stderr
    [wheel] = tmp_path.glob("crunch_control-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for pack in ("baseline", "demo", "realtime", "tournament"):
        assert f"crunch_engine/_packs/{pack}/pack.json" in names
    assert "crunch_engine/db/migrations/env.py" in names
    assert any(n.startswith("crunch_engine/db/migrations/versions/0001") for n in names)
    # the offline demo: real candles with their licence, the web UI, the TUI's styles
    for data in ("BTCUSDT_1m.csv", "ADAUSDT_1m.csv", "LICENSE-tradetropy.txt"):
        assert f"crunch_engine/feeds/data/{data}" in names
    for static in ("index.html", "app.js", "app.css", "views.css"):
        assert f"crunch_engine/api/static/{static}" in names
    assert "crunch_tui/app.tcss" in names
    assert "crunch_engine/demo/models/models.yml" in names
    assert "crunch_engine/demo/models/momentum/main.py" in names

    # Run from the unpacked wheel, far from the repository: the packs are found inside it.
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from crunch_engine.cli.main import run; run()",
            "packs",
            "list",
            "--json",
        ],
        cwd=tmp_path,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert [p["id"] for p in json.loads(result.stdout)] == [
        "baseline",
        "demo",
        "realtime",
        "tournament",
    ]
    check = subprocess.run(
        [
            sys.executable,
            "-c",
            "import crunch_engine.packs.loader as l; print(l.builtin_packs_dir())",
        ],
        cwd=tmp_path,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert check.stdout.strip() == str(site / "crunch_engine" / "_packs")
