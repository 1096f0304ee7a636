"""The base of every view: shows the app's latest snapshot when (and only when) visible.

Hidden modes skip updates; on resume they draw the newest snapshot at once, so with
four views only one does work per poll.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.screen import Screen

from crunch_tui.snapshots import Snapshot

if TYPE_CHECKING:
    from crunch_tui.app import CrunchApp


class LiveScreen(Screen[None]):
    """Subclasses implement ``show(snapshot)``; it must be cheap and idempotent."""

    @property
    def crunch(self) -> CrunchApp:
        return cast("CrunchApp", self.app)

    def on_mount(self) -> None:
        self.watch(self.app, "snapshot", self._snapshot_changed, init=False)
        self.refresh_view()

    def on_screen_resume(self) -> None:
        self.refresh_view()

    def _snapshot_changed(self, _snapshot: Snapshot) -> None:
        if self.is_current:
            self.refresh_view()

    def refresh_view(self) -> None:
        self.show(self.crunch.snapshot)

    def show(self, snapshot: Snapshot) -> None:
        raise NotImplementedError
