"""The control center app: screen modes over one stream of snapshots.

Background workers poll the engine (re-armed with ``set_timer`` only after the previous
poll finished, so slow polls never pile up) and follow the log stream; the screens are a
function of the latest ``snapshot``. In local mode the app first starts ``crunch serve``
through ``LocalEngine`` and shows its output until the API answers; quitting stops it.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.reactive import var
from textual.timer import Timer

from crunch_tui.collect import collect
from crunch_tui.commands import CrunchCommands
from crunch_tui.control import ControlError, ControlPlane, HttpControlPlane
from crunch_tui.engine import LocalEngine
from crunch_tui.logbook import LogBook
from crunch_tui.messages import Connection, ConnectionKind
from crunch_tui.screens.dashboard import DashboardScreen
from crunch_tui.screens.help import HelpScreen
from crunch_tui.screens.logs import LogsScreen
from crunch_tui.screens.models import ModelsScreen
from crunch_tui.screens.processes import ProcessesScreen
from crunch_tui.screens.starting import StartingScreen
from crunch_tui.snapshots import LogLine, ProcessInfo, Snapshot

MAX_RETRY_SECONDS = 10.0
ENGINE_DRAIN_SECONDS = 0.25
_ECHO = re.compile(r"^(?:\x1b\[[0-9;]*m)*[A-Za-z0-9][\w.-]*\s*(?:\x1b\[[0-9;]*m)*\s*\| ")


def local_now() -> datetime:
    return datetime.now().astimezone()


class CrunchApp(App[int]):
    """``crunch tui``: Dashboard, Models, Logs and Processes over a ``ControlPlane``."""

    CSS_PATH = "app.tcss"
    TITLE = "crunch"
    MODES = {
        "dashboard": DashboardScreen,
        "models": ModelsScreen,
        "logs": LogsScreen,
        "processes": ProcessesScreen,
    }
    DEFAULT_MODE = "dashboard"
    COMMANDS = App.COMMANDS | {CrunchCommands}
    BINDINGS = [
        Binding("d", "switch_mode('dashboard')", "Dashboard"),
        Binding("m", "switch_mode('models')", "Models"),
        Binding("l", "switch_mode('logs')", "Logs"),
        Binding("p", "switch_mode('processes')", "Processes"),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
        Binding("ctrl+p", "command_palette", "Commands", show=False),
    ]

    snapshot: var[Snapshot] = var(Snapshot)
    connection: var[Connection] = var(Connection("connecting", ""))

    def __init__(
        self,
        control: ControlPlane,
        *,
        engine: LocalEngine | None = None,
        clock: Callable[[], datetime] = local_now,
        poll_interval: float = 1.0,
        stream_logs: bool = True,
        blink: bool = True,
    ) -> None:
        super().__init__()
        self.control = control
        self.engine = engine
        self.clock = clock
        self.poll_interval = poll_interval
        self.stream_logs = stream_logs
        self.blink = blink
        self.logbook = LogBook()
        self._poll_timer: Timer | None = None
        self._poll_failures = 0
        self._stopping = False
        self._terminal_gone = False
        self._engine_seq = 0
        self._starting: StartingScreen | None = None
        self.set_reactive(
            CrunchApp.connection,
            Connection("connecting", control.url, local=engine is not None),
        )

    # -- lifecycle -------------------------------------------------------------------

    def on_mount(self) -> None:
        self._install_signal_handlers()
        if self.engine is None:
            self._begin_monitoring()
            return
        self.connection = Connection("starting", self.control.url, "starting engine…", True)
        starting = self._starting = StartingScreen(self.control.url)
        self.add_mode("starting", lambda: starting)
        self.switch_mode("starting")
        self.set_interval(ENGINE_DRAIN_SECONDS, self._drain_engine)
        self.call_after_refresh(self._start_engine)  # paint "starting engine…" first

    def _install_signal_handlers(self) -> None:
        """SIGTERM and SIGHUP (terminal closed) quit cleanly, stopping the local engine."""
        try:
            loop = asyncio.get_running_loop()
            loop.add_signal_handler(signal.SIGTERM, lambda: self.call_later(self.action_quit))
            loop.add_signal_handler(signal.SIGHUP, self._hang_up)
        except (NotImplementedError, RuntimeError, ValueError):  # pragma: no cover
            pass

    def _hang_up(self) -> None:
        """The terminal is gone: stop the engine, then leave without restoring a terminal
        that no longer exists (Textual's shutdown can block writing to it)."""
        self._terminal_gone = True
        self.call_later(self.action_quit)

    async def on_unmount(self) -> None:
        await self.control.aclose()

    def _begin_monitoring(self) -> None:
        self.poll()
        if self.stream_logs:
            self._follow_logs()

    # -- local engine ----------------------------------------------------------------

    @work(exclusive=True, group="engine", exit_on_error=False)
    async def _start_engine(self) -> None:
        assert self.engine is not None and self._starting is not None
        screen = self._starting
        try:
            await self.engine.start()
        except Exception as exc:  # the supervisor could not even spawn the child
            self._engine_failed(screen, f"{type(exc).__name__}: {exc}")
            return
        while not self._stopping:
            state = self.engine.state()
            screen.child(state, self.engine.lines())
            if state.gone:
                self._engine_failed(screen, f"crunch serve exited (code {state.exit_code})")
                return
            try:
                await self.control.info()
                break
            except ControlError:
                await asyncio.sleep(0.25)
        if self._stopping:
            return
        self.connection = Connection("connected", self.control.url, local=True)
        if self.current_mode == "starting":
            self.switch_mode("dashboard")
        self._begin_monitoring()

    def _engine_failed(self, screen: StartingScreen, reason: str) -> None:
        self.connection = Connection("failed", self.control.url, reason, local=True)
        screen.failed(reason)
        self.notify(reason, severity="error", timeout=10)

    def _drain_engine(self) -> None:
        """The child server's own output joins the log book as process ``serve``, less
        its echo of the workers' lines (``name | line``), which the stream delivers."""
        if self.engine is None:
            return
        for line in self.engine.lines(after=self._engine_seq):
            self._engine_seq = line.seq
            if _ECHO.match(line.line) is None:
                self.logbook.add(line)

    # -- polling and streaming -------------------------------------------------------

    @work(exclusive=True, group="poll", exit_on_error=False)
    async def poll(self) -> None:
        """One poll, then re-arm; never two in flight (exclusive), never piling up."""
        if self._poll_timer is not None:
            self._poll_timer.stop()
            self._poll_timer = None
        if self._stopping:
            return
        delay = self.poll_interval
        local = self.engine is not None
        try:
            snapshot = await collect(self.control, self.snapshot, self.clock)
        except ControlError as exc:
            self._poll_failures += 1
            delay = min(self.poll_interval * 2**self._poll_failures, MAX_RETRY_SECONDS)
            detail = f"{exc} · retrying in {delay:.0f} s"
            kind: ConnectionKind = "unreachable"
            if self.engine is not None and (child := self.engine.state()).gone:
                kind, detail = "failed", f"crunch serve exited (code {child.exit_code})"
            self.connection = Connection(kind, self.control.url, detail, local)
        else:
            self._poll_failures = 0
            self.snapshot = snapshot
            if self.connection.kind != "connected":
                self.connection = Connection("connected", self.control.url, local=local)
        if not self._stopping:
            self._poll_timer = self.set_timer(delay, self.poll)

    @work(exclusive=True, group="logs", exit_on_error=False)
    async def _follow_logs(self) -> None:
        """Backfill recent lines, then follow the SSE stream; reconnect with backoff."""
        delay = 1.0
        while not self._stopping:
            try:
                self.logbook.extend(await self.control.logs(limit=500))
                async for event in self.control.stream():
                    delay = 1.0
                    if isinstance(event, LogLine):
                        self.logbook.add(event)
                    elif isinstance(event, ProcessInfo):
                        self._merge_process(event)
            except ControlError:
                pass
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_SECONDS)

    def _merge_process(self, info: ProcessInfo) -> None:
        """A state event or an action's answer updates the snapshot at once."""
        current = self.snapshot
        others = [p for p in current.processes if p.name != info.name]
        processes = tuple(sorted([*others, info], key=lambda p: p.name))
        if processes != current.processes:
            self.snapshot = replace(current, processes=processes, serial=current.serial + 1)

    # -- actions ---------------------------------------------------------------------

    def request_process_action(self, name: str, action: str) -> None:
        self._process_action(name, action)

    @work(group="actions", exit_on_error=False)
    async def _process_action(self, name: str, action: str) -> None:
        try:
            info = await self.control.process_action(name, action)  # type: ignore[arg-type]
        except ControlError as exc:
            self.notify(f"{action} {name}: {exc}", severity="error", timeout=6)
            return
        self.notify(f"{action} {name}: {info.state}", timeout=3)
        self._merge_process(info)
        self.poll()

    def action_help(self) -> None:
        screen = self.screen
        sections = [("Everywhere", list(self.BINDINGS))]
        if screen.BINDINGS and not isinstance(screen, HelpScreen):
            sections.append((type(screen).__name__.removesuffix("Screen"), list(screen.BINDINGS)))
        self.push_screen(HelpScreen(sections))

    def toggle_log_follow(self) -> None:
        self.switch_mode("logs")
        self.call_after_refresh(self._toggle_follow_here)

    def _toggle_follow_here(self) -> None:
        if isinstance(self.screen, LogsScreen):
            self.screen.action_toggle_follow()

    async def action_quit(self) -> None:
        """Local mode stops the child server (and so every worker) before exiting."""
        if self.engine is None:
            if self._terminal_gone:
                os._exit(0)
            self.exit(0)
            return
        if self._stopping:
            return
        self._stopping = True
        self.connection = Connection("stopping", self.control.url, "stopping engine…", True)
        self.run_worker(self._stop_and_exit(), group="shutdown", exit_on_error=False)

    async def _stop_and_exit(self) -> None:
        self.workers.cancel_group(self, "poll")
        self.workers.cancel_group(self, "logs")
        assert self.engine is not None
        try:
            await self.engine.stop()
        finally:
            if self._terminal_gone:
                os._exit(0)  # the engine is stopped; nothing left to clean up on screen
            self.exit(0)


def run_tui(
    attach: str | None = None, api_key: str | None = None, poll_interval: float = 1.0
) -> int:
    """Entry point of ``crunch tui``: local mode starts an engine, attach mode does not."""
    engine: LocalEngine | None = None
    if attach:
        control = HttpControlPlane(attach, api_key)
    else:
        engine = LocalEngine()
        control = HttpControlPlane(engine.url, engine.api_key)
    app = CrunchApp(control, engine=engine, poll_interval=poll_interval)
    try:
        result = app.run()
    finally:
        if engine is not None:
            engine.kill_leftovers()
    return int(result or 0)
