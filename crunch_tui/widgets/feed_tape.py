"""The feed tape: per asset, the latest price, a Sparkline of recent prices and the
newest records scrolling by. Widgets are created once per feed and updated in place."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Sparkline, Static

from crunch_tui.snapshots import FeedTape

RECENT = 4


class FeedCard(Vertical):
    """One feed: header, Sparkline, last few records."""

    def __init__(self, tape: FeedTape, **kwargs: object) -> None:
        super().__init__(classes="feed-card", **kwargs)  # type: ignore[arg-type]
        self._tape = tape

    def compose(self) -> ComposeResult:
        yield Static(classes="feed-title")
        yield Sparkline([], classes="feed-spark")
        yield Static(classes="feed-recent")

    def on_mount(self) -> None:
        self.show(self._tape, force=True)

    def show(self, tape: FeedTape, *, force: bool = False) -> None:
        if tape == self._tape and not force:
            return
        self._tape = tape
        self.query_one(".feed-title", Static).update(_title(tape), layout=force)
        self.query_one(Sparkline).data = list(tape.prices)
        self.query_one(".feed-recent", Static).update(_recent(tape), layout=force)


def _title(tape: FeedTape) -> Text:
    text = Text.assemble((tape.subject, "bold"), f"  {tape.source} {tape.kind} {tape.granularity}")
    if tape.prices:
        last = tape.prices[-1]
        text.append(f"  {last:,.2f}", style="bold")
        if len(tape.prices) > 1 and tape.prices[0]:
            change = (last / tape.prices[0] - 1) * 100
            text.append(f"  {change:+.2f}%", style="green" if change >= 0 else "red")
    else:
        text.append("  no records yet", style="dim")
    return text


def _recent(tape: FeedTape) -> Text:
    text = Text()
    pairs = list(zip(tape.times, tape.prices, strict=True))[-RECENT:]
    for when, price in reversed(pairs):
        stamp = f"{when:%H:%M:%S}" if when else "--:--:--"
        text.append(f"{stamp}  {price:,.2f}\n", style="dim" if text else "")
    return text


class FeedTapeView(Vertical):
    """All feeds, in a stable order keyed by feed."""

    def show(self, tapes: Sequence[FeedTape]) -> None:
        cards = {card.id: card for card in self.query(FeedCard)}
        wanted = {_card_id(t): t for t in tapes}
        for card_id, card in cards.items():
            if card_id not in wanted:
                card.remove()
        for card_id, tape in wanted.items():
            card = cards.get(card_id)
            if card is None:
                self.mount(FeedCard(tape, id=card_id))
            else:
                card.show(tape)
        empty = self.query(".feed-empty")
        if tapes and empty:
            empty.remove()


def _card_id(tape: FeedTape) -> str:
    safe = "".join(c if c.isalnum() else "-" for c in tape.key)
    return f"feed-{safe}"
