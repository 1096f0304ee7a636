"""`crunch worker NAME`: run one engine worker in the foreground (what the supervisor starts)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Run one engine worker in the foreground.", no_args_is_help=True)


@app.command("market-data")
def market_data() -> None:
    """Backfill from the watermark, then ingest the live feed (CRUNCH_FEED_*)."""
    from crunch_engine.workers.market_data import main

    raise typer.Exit(main())


@app.command("predict")
def predict() -> None:
    """Schedule-driven predict cycles against the model fleet (the orchestrator's models)."""
    from crunch_engine.workers.predict import main

    raise typer.Exit(main())


@app.command("orchestrator")
def orchestrator() -> None:
    """Run the local model orchestrator: one process per model of CRUNCH_MODELS_DIR."""
    from crunch_engine.workers.orchestrator import main

    raise typer.Exit(main())


@app.command("score")
def score() -> None:
    """Resolve ground truth, score, aggregate rolling windows and rank leaderboards."""
    from crunch_engine.workers.score import main

    raise typer.Exit(main())
