"""Command palette (ctrl+p): switch views, act on workers, toggle log follow, help, quit."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:
    from crunch_tui.app import CrunchApp

VIEWS = ("dashboard", "models", "logs", "processes")


class CrunchCommands(Provider):
    """The main actions; worker actions are listed per process of the latest snapshot."""

    def _commands(self) -> list[tuple[str, Callable[[], object], str]]:
        app = cast("CrunchApp", self.app)
        commands: list[tuple[str, Callable[[], object], str]] = [
            (f"Show {view}", partial(app.switch_mode, view), f"switch to the {view} view")
            for view in VIEWS
        ]
        commands.append(("Help: key bindings", app.action_help, "every key binding"))
        commands.append(("Logs: toggle follow", app.toggle_log_follow, "follow the newest line"))
        for process in app.snapshot.processes:
            for action in ("restart", "stop", "start"):
                commands.append(
                    (
                        f"{action.capitalize()} worker {process.name}",
                        partial(app.request_process_action, process.name, action),
                        f"POST /control/processes/{process.name}/{action}",
                    )
                )
        commands.append(("Quit", app.action_quit, "stop the local engine (if any) and exit"))
        return commands

    async def discover(self) -> Hits:
        for name, callback, help_text in self._commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, callback, help_text in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)
