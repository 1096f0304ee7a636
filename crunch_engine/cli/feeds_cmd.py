"""`crunch feeds`: backfill the tape with progress, and look at what it holds."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Annotated

import typer

from crunch_engine.cli.common import console, fail, load_settings_or_exit, reported_errors

app = typer.Typer(help="Market data: backfill, status and tail of the tape.", no_args_is_help=True)

_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mhdw])\s*$")
_SPAN_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str, now: datetime) -> datetime:
    """``30d``, ``12h``, ``90m``, ``2w`` before now, or an ISO-8601 time with an offset."""
    match = _SPAN.match(text)
    if match:
        return now - timedelta(seconds=float(match.group(1)) * _SPAN_SECONDS[match.group(2)])
    from crunch_engine.timeutil import parse_iso

    try:
        return parse_iso(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r}: expected a span like 30d, 12h, 90m or an ISO time like 2025-06-01T00:00Z"
        ) from None


@app.command("backfill")
def backfill(
    asset: Annotated[
        list[str] | None,
        typer.Option("--asset", "-a", help="Repeatable; default CRUNCH_FEED_ASSETS."),
    ] = None,
    provider: Annotated[str | None, typer.Option(help="Default CRUNCH_FEED_PROVIDER.")] = None,
    kind: Annotated[str | None, typer.Option(help="candle or tick.")] = None,
    granularity: Annotated[str | None, typer.Option(help="e.g. 1m.")] = None,
    since: Annotated[str, typer.Option(help="How far back: 30d, 12h, or an ISO time.")] = "1d",
) -> None:
    """Fill the tape from the provider. Resumable: it continues after the watermark."""
    import asyncio

    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from crunch_engine.db.database import Database
    from crunch_engine.feeds.registry import default_registry
    from crunch_engine.feeds.settings import load_feed_settings
    from crunch_engine.services.ingestion import BackfillProgress, MarketIngestion
    from crunch_engine.timeutil import to_iso, utc_now

    settings = load_settings_or_exit()
    overrides = {"provider": provider, "kind": kind, "granularity": granularity}
    with reported_errors():
        feed_settings = load_feed_settings(
            **{
                **settings.feed.model_dump(exclude_unset=False),
                **{k: v for k, v in overrides.items() if v},
            }
        )
    assets = [a.upper() for a in (asset or feed_settings.assets)]
    start = parse_since(since, utc_now())

    async def run() -> list:
        database = Database(settings.effective_database_url)
        feed = default_registry.create_from_settings(feed_settings)
        results = []
        try:
            await database.require_current_schema()
            ingestion = MarketIngestion(
                database.market,
                feed,
                kind=feed_settings.kind,
                granularity=feed_settings.granularity,
            )
            columns = (
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TextColumn("{task.percentage:>5.1f}%"),
                TextColumn("{task.fields[rows]:>9,} rows"),
                TextColumn("{task.fields[rate]:>9,.0f} rows/s"),
                TimeRemainingColumn(),
            )
            with Progress(*columns, console=console, transient=False) as bar:
                for name in assets:
                    task = bar.add_task(f"{feed.provider} {name}", total=1.0, rows=0, rate=0.0)

                    def update(p: BackfillProgress, task: int = task) -> None:
                        bar.update(
                            task, completed=p.fraction, rows=p.stored, rate=p.rows_per_second
                        )

                    result = await ingestion.backfill(name, start, progress=update)
                    bar.update(task, completed=1.0)
                    results.append(result)
        finally:
            await feed.aclose()
            await database.close()
        return results

    with reported_errors():
        results = asyncio.run(run())
    for r in results:
        note = "already up to date" if r.up_to_date else f"from {to_iso(r.resumed_from)}"
        console.print(
            f"{r.series.id}: stored {r.stored:,} rows in {r.pages} page(s), "
            f"{r.elapsed:.2f}s ({note}, up to {to_iso(r.end)})"
        )


@app.command("status")
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """One row per feed series: record count, oldest/newest record, watermark."""
    import asyncio

    from rich.table import Table

    from crunch_engine.db.database import Database
    from crunch_engine.timeutil import to_iso

    settings = load_settings_or_exit()

    async def read() -> list:
        async with Database(settings.effective_database_url) as database:
            await database.require_current_schema()
            return await database.market.status()

    with reported_errors():
        rows = asyncio.run(read())
    data = [
        {
            "provider": r.provider,
            "asset": r.asset,
            "kind": r.kind,
            "granularity": r.granularity,
            "record_count": r.record_count,
            "oldest_ts": to_iso(r.oldest_ts),
            "newest_ts": to_iso(r.newest_ts),
            "watermark_ts": to_iso(r.watermark_ts),
        }
        for r in rows
    ]
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    table = Table(title="Feeds")
    for column in data[0] if data else ("provider", "asset", "kind", "granularity", "record_count"):
        table.add_column(
            column, justify="right" if column == "record_count" else "left", overflow="fold"
        )
    for row in data:
        table.add_row(*(f"{v:,}" if isinstance(v, int) else str(v or "-") for v in row.values()))
    console.print(
        table
        if data
        else "the tape is empty: run `crunch feeds backfill` or the market-data worker"
    )


@app.command("tail")
def tail(
    asset: Annotated[str, typer.Argument(help="e.g. BTC")],
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 20,
    provider: Annotated[str | None, typer.Option(help="Default CRUNCH_FEED_PROVIDER.")] = None,
    kind: Annotated[str | None, typer.Option()] = None,
    granularity: Annotated[str | None, typer.Option()] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The latest records of an asset, newest first."""
    import asyncio

    from rich.table import Table

    from crunch_engine.db.database import Database
    from crunch_engine.feeds.contracts import SeriesKey
    from crunch_engine.timeutil import to_iso

    settings = load_settings_or_exit()
    series = SeriesKey(
        provider or settings.feed.provider,
        asset.upper(),
        kind or settings.feed.kind,
        granularity or settings.feed.granularity,
    )

    async def read() -> list:
        async with Database(settings.effective_database_url) as database:
            await database.require_current_schema()
            return await database.market.latest(series, limit)

    with reported_errors():
        records = asyncio.run(read())
    if as_json:
        typer.echo(
            json.dumps(
                [{"ts_event": to_iso(r.ts_event), "values": r.values} for r in records], indent=2
            )
        )
        return
    if not records:
        fail(f"no records for {series.id}", 1)
    table = Table(title=series.id)
    value_keys = list(records[0].values)
    for column in ("ts_event", *value_keys):
        table.add_column(column, justify="left" if column == "ts_event" else "right")
    for r in records:
        table.add_row(to_iso(r.ts_event) or "", *(str(r.values.get(k, "")) for k in value_keys))
    console.print(table)
