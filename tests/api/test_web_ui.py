"""The web UI in a real browser (system Chromium, headless) against a real `crunch serve`.

One server on the offline demo for the module (it takes ~40 s to rank the models), one
fresh browser context per test (the API key lives in sessionStorage). Every test fails
on a console error or an uncaught page error. Full-page screenshots go to the test's
temporary directory and, when set, to ``$CRUNCH_TEST_ARTIFACTS``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
WORKERS = {"market-data", "orchestrator", "predict", "score"}
LAPTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
NO_CHANGE = "\u2013"  # the en dash the leaderboard shows for an unchanged rank

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)", allow_module_level=True)

from playwright.sync_api import Browser, Page, sync_playwright  # noqa: E402

from tests.api.live import LiveServer  # noqa: E402


@dataclass
class Server:
    url: str
    api_key: str
    process: subprocess.Popen[bytes]
    log: Path
    shots: Path
    artifacts: Path | None = None
    _client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self._client = httpx.Client(base_url=self.url, timeout=10)

    def get(self, path: str, **params: Any) -> Any:
        response = self._client.get(path, params=params, headers={"X-API-Key": self.api_key})
        response.raise_for_status()
        return response.json()

    def output(self, tail: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-tail:]


@pytest.fixture(scope="module")
def server(sqlite_server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The session's `crunch serve` on SQLite (see conftest.py), with a screenshot folder."""
    artifacts = os.environ.get("CRUNCH_TEST_ARTIFACTS")
    srv = Server(
        sqlite_server.url,
        sqlite_server.api_key,
        sqlite_server.process,
        sqlite_server.log,
        shots=tmp_path_factory.mktemp("web-ui") / "screenshots",
        artifacts=Path(artifacts) / "web-ui" if artifacts else None,
    )
    try:
        yield srv
    finally:
        srv._client.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield instance
        finally:
            instance.close()


class UI:
    """A page in a fresh context, with its console errors and uncaught errors recorded."""

    def __init__(self, browser: Browser, server: Server, viewport: dict[str, int]) -> None:
        self.server = server
        self.context = browser.new_context(viewport=viewport)
        self.page: Page = self.context.new_page()
        self.page.set_default_timeout(30_000)
        self.errors: list[str] = []
        self.page.on(
            "console",
            lambda m: (
                self.errors.append(f"console.{m.type}: {m.text} @ {m.location}")
                if m.type == "error"
                else None
            ),
        )
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))

    def open(self, page: str) -> Page:
        self.page.goto(f"{self.server.url}/#/{page}")
        self.page.wait_for_selector(f"[data-testid=page-{page}]")
        return self.page

    def enter_key(self) -> None:
        self.page.fill("[data-testid=api-key-input]", self.server.api_key)
        self.page.click("[data-testid=api-key-save]")
        self.page.wait_for_selector("[data-testid=key-state]:has-text('key set')")

    def screenshot(self, name: str) -> None:
        self.server.shots.mkdir(parents=True, exist_ok=True)
        path = self.server.shots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        if self.server.artifacts is not None:
            self.server.artifacts.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, self.server.artifacts / path.name)

    def banner(self) -> list[str]:
        return self.page.locator("[data-testid=banner-item]").all_text_contents()

    def assert_clean(self) -> None:
        assert self.errors == [], "errors in the browser console:\n" + "\n".join(self.errors)
        assert self.banner() == [], f"error banner shown: {self.banner()}"

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def ui(browser: Browser, server: Server) -> Iterator[UI]:
    instance = UI(browser, server, LAPTOP)
    try:
        yield instance
    finally:
        instance.close()


def _expected_change(change: Any) -> str:
    if not isinstance(change, int) or change == 0:
        return NO_CHANGE
    return f"▲{change}" if change > 0 else f"▼{-change}"


def _decimal_columns(schema: dict[str, Any]) -> list[tuple[str, int]]:
    out = []
    for column in schema["leaderboard_columns"]:
        match = re.fullmatch(r"decimal-(\d+)", str(column.get("format") or ""))
        if column.get("type") == "VALUE" and match:
            out.append((column["property"], int(match.group(1))))
    return out


def test_leaderboard_matches_the_api(ui: UI, server: Server) -> None:
    page = ui.open("leaderboard")
    page.wait_for_selector("[data-testid=lb-row]")
    schema = server.get("/reports/schema")
    columns = sorted(schema["leaderboard_columns"], key=lambda c: c.get("order", 0))
    headers = page.locator("[data-testid=leaderboard-table] thead th").all_text_contents()
    assert [h.strip().lower() for h in headers[1:]] == [
        (c.get("displayName") or c["property"]).lower() for c in columns
    ]
    names = {m["model_id"]: m["model_name"] for m in server.get("/reports/models")}
    decimals = _decimal_columns(schema)
    assert decimals, "the demo schema formats its scores as decimal-N"
    value_index = {c["property"]: i + 1 for i, c in enumerate(columns)}  # +1: the rank column

    def from_dom() -> list[tuple[Any, ...]]:
        return page.evaluate(
            """(props) => [...document.querySelectorAll('[data-testid=lb-row]')].map(tr => [
                 tr.dataset.modelId,
                 tr.querySelector('[data-testid=lb-model-name]').textContent,
                 tr.querySelector('[data-testid=lb-rank-change]').textContent,
                 ...props.map(i => tr.children[i].textContent),
               ])""",
            [value_index[p] for p, _ in decimals],
        )

    def from_api() -> list[list[Any]]:
        return [
            [
                row["model_id"],
                names.get(row["model_id"], row["model_id"]),
                _expected_change(row.get("rank_change")),
                *(f"{row[p]:.{n}f}" if row.get(p) is not None else "—" for p, n in decimals),
            ]
            for row in server.get("/reports/leaderboard")
        ]

    # The UI refreshes every 5 s and a snapshot may land in between: retry briefly.
    deadline = time.monotonic() + 25
    while True:
        dom, api = from_dom(), from_api()
        if dom == api or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert dom == api
    assert page.locator("[data-testid=lb-row] .pulse.live").count() == sum(
        1 for row in server.get("/reports/leaderboard") if row.get("status") in (True, "active")
    )
    header = page.text_content("[data-testid=info]") or ""
    info = server.get("/info")
    assert info["crunch_id"] in header and info["pack"] in header and info["version"] in header
    assert re.search(r"\d\d:\d\d:\d\d", page.text_content("[data-testid=last-refresh]") or "")
    ui.screenshot("leaderboard")
    ui.assert_clean()


def test_leaderboard_updates_rows_in_place(ui: UI, server: Server) -> None:
    """Rank changes show as arrows; a refresh moves and rewrites rows, never rebuilds them.

    The real leaderboard's rank_change is relative to the previous snapshot (seconds ago),
    so the arrows are checked on the real rows with rank changes set by the test.
    """
    real = server.get("/reports/leaderboard")
    assert len(real) >= 2
    served: dict[str, list[dict[str, Any]]] = {
        "rows": [{**row, "rank_change": [2, -1][i] if i < 2 else 0} for i, row in enumerate(real)]
    }
    ui.page.route(
        re.compile(r".*/reports/leaderboard(\?.*)?$"),
        lambda route: route.fulfill(json=served["rows"]),
    )
    page = ui.open("leaderboard")
    page.wait_for_function(
        "(n) => document.querySelectorAll('[data-testid=lb-row]').length === n", arg=len(real)
    )
    changes = page.locator("[data-testid=lb-rank-change]").all_text_contents()
    assert changes == ["▲2", "▼1"] + [NO_CHANGE] * (len(real) - 2)
    # Tag the row elements, then serve the rows reversed with new scores.
    page.evaluate(
        "() => document.querySelectorAll('[data-testid=lb-row]')"
        ".forEach(tr => { tr.__tag = tr.dataset.modelId; })"
    )
    reversed_rows = [
        {**row, "rank": i + 1, "rank_change": 0, "score_recent": 0.5 + i / 100}
        for i, row in enumerate(reversed(real))
    ]
    served["rows"] = reversed_rows
    expected = [row["model_id"] for row in reversed_rows]
    page.wait_for_function(
        """(ids) => JSON.stringify([...document.querySelectorAll('[data-testid=lb-row]')]
             .map(tr => tr.dataset.modelId)) === JSON.stringify(ids)""",
        arg=expected,
        timeout=15_000,
    )
    same_elements = page.evaluate(
        "() => [...document.querySelectorAll('[data-testid=lb-row]')]"
        ".every(tr => tr.__tag === tr.dataset.modelId)"
    )
    assert same_elements, "rows were rebuilt instead of updated in place"
    first = page.locator("[data-testid=lb-row]").first
    assert "0.5000" in (first.text_content() or "")
    ui.assert_clean()


def test_metrics_charts_render(ui: UI, server: Server) -> None:
    page = ui.open("metrics")
    widgets = server.get("/reports/schema")["metrics_widgets"]
    lines = [
        w for w in widgets if w["type"] == "CHART" and w["nativeConfiguration"]["type"] == "line"
    ]
    assert lines, "the demo defines a line chart"
    page.wait_for_function(
        """(n) => {
             const charts = [...document.querySelectorAll('[data-testid=widget] [data-testid=chart]')];
             return charts.length === n && charts.every(c => {
               const canvas = c.querySelector('canvas');
               const empty = c.querySelector('[data-testid=chart-empty]');
               return canvas && canvas.width > 0 && canvas.height > 0 && empty.hidden;
             });
           }""",
        arg=len(lines),
    )
    # Default selection: the top 5 of the leaderboard, one line each in the legend.
    top = [row["model_id"] for row in server.get("/reports/leaderboard")][:5]
    names = {m["model_id"]: m["model_name"] for m in server.get("/reports/models")}
    legend = " ".join(page.locator("[data-testid=widget] .u-legend").all_text_contents())
    for model_id in top:
        assert names.get(model_id, model_id) in legend
    checked = page.eval_on_selector_all(
        "[data-testid=model-option]", "els => els.filter(e => e.checked).map(e => e.value)"
    )
    assert checked == top
    # Another time range refetches and still draws.
    page.click("[data-testid=range-1h]")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=range-1h]').getAttribute('aria-pressed') === 'true'"
    )
    page.wait_for_timeout(1000)
    assert page.locator("[data-testid=widget] [data-testid=chart] canvas").count() >= len(lines)
    ui.screenshot("metrics")
    ui.assert_clean()


def test_models_page_asks_for_the_key_then_shows_health(ui: UI, server: Server) -> None:
    page = ui.open("models")
    # Without the key the control API is not called (no 401 in the console): a note says why.
    page.wait_for_selector("[data-testid=control-note]")
    models = server.get("/reports/models")
    page.wait_for_function(
        "(n) => document.querySelectorAll('[data-testid=model-row]').length === n", arg=len(models)
    )
    ui.enter_key()
    page.wait_for_selector("[data-testid=model-row] [data-testid=state]")
    assert page.locator("[data-testid=control-note]").count() == 0
    health = {h["model_id"]: h for h in server.get("/control/models/health")}
    for model_id, item in health.items():
        row = page.locator(f"[data-testid=model-row][data-model-id='{model_id}']")
        assert row.locator("[data-testid=state]").text_content() == item["state"]
        if item["deployment_id"]:
            assert item["deployment_id"] in (row.text_content() or "")
    ui.screenshot("models")
    ui.assert_clean()


def test_feeds_tab_and_live_tail(ui: UI, server: Server) -> None:
    feeds = server.get("/reports/feeds")
    assert feeds, "the market-data worker has stored the backfill"
    page = ui.open("leaderboard")
    page.wait_for_selector("[data-testid=nav-feeds]", state="visible", timeout=30_000)
    page.click("[data-testid=nav-feeds]")
    page.wait_for_selector("[data-testid=page-feeds]")
    page.wait_for_function(
        "(n) => document.querySelectorAll('[data-testid=feed-row]').length === n", arg=len(feeds)
    )
    page.wait_for_selector("[data-testid=tail-row]")
    assert 0 < page.locator("[data-testid=tail-row]").count() <= 20
    page.wait_for_function(
        """() => { const c = document.querySelector('[data-testid=tail] [data-testid=chart] canvas');
                   return c && c.width > 0 && c.height > 0; }"""
    )
    # The live replay feed is fresh under the UI's rule max(120 s, 6 x granularity).
    assert "live" in page.locator("[data-testid=feed-status]").all_text_contents()
    ui.screenshot("feeds")
    ui.assert_clean()


def test_processes_and_logs(ui: UI, server: Server) -> None:
    page = ui.open("processes")
    page.wait_for_selector("[data-testid=control-note]")
    ui.enter_key()
    page.wait_for_function(
        "(n) => document.querySelectorAll('[data-testid=process-row]').length === n",
        arg=len(WORKERS),
    )
    shown = set(
        page.eval_on_selector_all(
            "[data-testid=process-row]", "els => els.map(e => e.dataset.process)"
        )
    )
    assert shown == WORKERS
    # Control is enabled (a key is configured): every worker has its buttons.
    assert page.locator("[data-testid=action-restart]").count() == len(WORKERS)
    page.wait_for_selector("[data-testid=log-line]")
    assert page.text_content("[data-testid=log-mode]") == "polling every 2 s"
    # Log lines are text, never markup.
    assert page.eval_on_selector_all(
        "[data-testid=log-line] .log-text", "els => els.every(e => e.children.length === 0)"
    )
    page.select_option("[data-testid=log-process]", "predict")
    page.wait_for_selector("[data-testid=log-line][data-process=predict]")
    assert set(
        page.eval_on_selector_all(
            "[data-testid=log-line]", "els => els.map(e => e.dataset.process)"
        )
    ) == {"predict"}
    ui.screenshot("processes")

    # Restart a worker through the UI (POST with the X-API-Key header): a new pid.
    before = {p["name"]: p for p in server.get("/control/processes")}["score"]
    page.click("[data-testid=action-restart][data-process=score]")
    deadline = time.monotonic() + 40
    after = before
    while time.monotonic() < deadline:
        after = {p["name"]: p for p in server.get("/control/processes")}["score"]
        if after["state"] == "running" and after["pid"] != before["pid"]:
            break
        time.sleep(0.5)
    assert after["pid"] != before["pid"] and after["state"] == "running", after
    page.wait_for_selector(
        f"[data-testid=process-row][data-process=score][data-state=running] td:has-text('{after['pid']}')"
    )
    ui.assert_clean()


def test_phone_viewport(browser: Browser, server: Server) -> None:
    phone = UI(browser, server, PHONE)
    try:
        page = phone.open("leaderboard")
        page.wait_for_selector("[data-testid=lb-row]")
        width = page.evaluate(
            "() => [document.documentElement.scrollWidth, document.body.scrollWidth, window.innerWidth]"
        )
        assert max(width[0], width[1]) <= width[2], f"the page scrolls sideways: {width}"
        assert page.locator("[data-testid=nav-leaderboard]").is_visible()
        phone.screenshot("phone-leaderboard")
        for name in ("metrics", "feeds"):
            phone.open(name)
            page.wait_for_timeout(1500)
            width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
            assert width[0] <= width[1], f"{name} scrolls sideways on a phone: {width}"
            phone.screenshot(f"phone-{name}")
        phone.assert_clean()
    finally:
        phone.close()
