"""Check a running node end to end through its API (standard library only).

    python scripts/verify.py [--url http://127.0.0.1:8000] [--wait 120] [--expect-models a,b]

Waits for ``/healthz``, then until every expected model (default: every model the node
knows, ``/reports/models``) has a row in every leaderboard (``/info`` lists them), and
prints the leaderboards. Exit code 0 when all is there, 1 otherwise (with what is
missing). Used by ``make verify`` against a local ``crunch serve`` or the Docker stack.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any


def get(base: str, path: str, timeout: float = 5.0) -> Any:
    request = urllib.request.Request(
        base.rstrip("/") + path, headers={"Accept": "application/json"}
    )
    api_key = os.environ.get("CRUNCH_API_KEY")
    if api_key:
        request.add_header("X-API-Key", api_key)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read().decode("utf-8"))


def missing_models(base: str, expected: set[str]) -> tuple[dict[str, set[str]], dict[str, Any]]:
    """Per leaderboard key, the expected model ids without a row; and the rows."""
    boards = get(base, "/info").get("leaderboards") or []
    missing: dict[str, set[str]] = {}
    rows: dict[str, Any] = {}
    for key in boards:
        entries = get(base, "/reports/leaderboard?key=" + urllib.parse.quote(key))
        rows[key] = entries
        present = {str(entry.get("model_id")) for entry in entries}
        if expected - present:
            missing[key] = expected - present
    return missing, rows


def print_boards(rows: dict[str, Any]) -> None:
    for key, entries in rows.items():
        print(f"leaderboard {key}:")
        for entry in entries:
            scores = ", ".join(
                f"{name.removeprefix('score_')}={value:.4f}"
                for name, value in entry.items()
                if name.startswith("score_") and isinstance(value, int | float)
            )
            print(f"  {entry.get('rank'):>3}  {entry.get('model_id'):<24} {scores}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    port = os.environ.get("CRUNCH_API_PORT", "8000")
    parser.add_argument("--url", default=f"http://127.0.0.1:{port}")
    parser.add_argument("--wait", type=float, default=120.0, help="seconds to wait at most")
    parser.add_argument("--expect-models", default="", help="comma-separated model ids")
    args = parser.parse_args(argv)
    deadline = time.monotonic() + args.wait
    expected = {m.strip() for m in args.expect_models.split(",") if m.strip()}
    problem = "not started"
    while True:
        try:
            health = get(args.url, "/healthz")
            known = {str(m["model_id"]) for m in get(args.url, "/reports/models")}
            wanted = expected or known
            if not wanted:
                problem = "no model has registered yet (is the orchestrator running?)"
            else:
                missing, rows = missing_models(args.url, wanted)
                if not missing:
                    print(f"node {args.url}: healthy (engine {health.get('version')})")
                    print_boards(rows)
                    return 0
                problem = "; ".join(
                    f"leaderboard {key} lacks {', '.join(sorted(ids))}"
                    for key, ids in missing.items()
                )
        except (urllib.error.URLError, OSError, ValueError) as error:
            problem = f"{args.url} not answering: {error}"
        if time.monotonic() >= deadline:
            print(f"verify failed: {problem}", file=sys.stderr)
            return 1
        time.sleep(2.0)


if __name__ == "__main__":
    sys.exit(main())
