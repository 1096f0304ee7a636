"""A ``Log`` that keeps ANSI colours and still supports mouse selection and copying.

``RichLog`` renders colours but cannot select text; ``Log`` selects but strips colours.
This keeps the plain text in ``Log``'s buffer (selection, width, copy) and a parallel
list of ``Text.from_ansi`` lines for drawing. Markup is never interpreted: a line like
``[red]x[/red]`` is shown as written.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Self

from rich.style import Style
from rich.text import Text
from textual.geometry import Size
from textual.strip import Strip
from textual.widgets import Log

STRIP_CACHE_MAX = 4096


class AnsiLog(Log):
    """Log lines with ANSI colours; write in batches with ``write_lines``.

    Rendered lines are cached by a serial number that survives pruning (``Log`` keys its
    cache by index, which every prune invalidates), and the buffer is trimmed to exactly
    ``max_lines`` so the virtual size stays constant once full: a new batch then costs a
    repaint of this widget only, not a layout pass over the whole screen.
    """

    def __init__(self, *, max_lines: int | None = 5000, **kwargs: object) -> None:
        super().__init__(max_lines=max_lines, **kwargs)  # type: ignore[arg-type]
        self._styled: list[Text] = []
        self._first = 0  # serial number of self._lines[0]
        self._strips: dict[int, Strip] = {}
        self._base_style: Style | None = None

    def write_lines(self, lines: Iterable[str], scroll_end: bool | None = None) -> Self:
        """Append whole lines in one go (one refresh per batch, no worker thread)."""
        follow = self.auto_scroll if scroll_end is None else scroll_end
        at_end = self.is_vertical_scroll_end
        plain: list[str] = []
        width = self._width
        for raw in lines:
            for part in raw.expandtabs().splitlines() or [""]:
                text = Text.from_ansi(part, no_wrap=True, end="")
                self._styled.append(text)
                plain.append(text.plain)
                width = max(width, text.cell_len)
        if not plain:
            return self
        start = len(self._lines)
        self._lines.extend(plain)
        self._width = width
        pruned = self._prune_max_lines()
        self.virtual_size = Size(self._width, len(self._lines))
        if follow and at_end and not self.is_vertical_scrollbar_grabbed:
            self.scroll_end(animate=False, immediate=True, x_axis=False)
            self.refresh()
        elif pruned:
            self.refresh()  # every line moved up: the whole view changes
        else:
            self.refresh_lines(start, len(plain))
        return self

    def write(self, data: str, scroll_end: bool | None = None) -> Self:
        """Only whole lines are supported: partial writes would desynchronise the buffers."""
        return self.write_lines(data.splitlines(), scroll_end)

    def _prune_max_lines(self) -> bool:
        if self.max_lines is None or len(self._lines) <= self.max_lines:
            return False
        excess = len(self._lines) - self.max_lines
        del self._lines[:excess]
        del self._styled[:excess]
        self._first += excess
        if len(self._strips) > STRIP_CACHE_MAX:
            self._strips = {k: v for k, v in self._strips.items() if k >= self._first}
        return True

    def clear(self) -> Self:
        self._first += len(self._lines)
        self._styled.clear()
        self._strips.clear()
        super().clear()
        self.refresh()
        return self

    @property
    def plain_text(self) -> str:
        return "\n".join(self.lines)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._base_style = None
        self._strips = {}

    def selection_updated(self, selection: object) -> None:
        super().selection_updated(selection)  # type: ignore[arg-type]
        self._strips = {}

    def _render_line(self, y: int, scroll_x: int, width: int) -> Strip:
        """As ``Log._render_line`` but computes the widget's style once, not per line."""
        if self._base_style is None:
            self._base_style = self.rich_style
        rich_style = self._base_style
        if y >= len(self._lines):
            return Strip.blank(width, rich_style)
        line = self._render_line_strip(y, rich_style)
        return line.crop_extend(scroll_x, scroll_x + width, rich_style).apply_offsets(scroll_x, y)

    def _render_line_strip(self, y: int, rich_style: Style) -> Strip:
        selection = self.text_selection
        serial = self._first + y
        if selection is None and (cached := self._strips.get(serial)) is not None:
            return cached
        text = self._styled[y].copy()
        text.style = rich_style
        if selection is not None and (span := selection.get_span(y - self._clear_y)) is not None:
            start, end = span
            if end == -1:
                end = len(text)
            text.stylize(self.screen.get_component_rich_style("screen--selection"), start, end)
        strip = Strip(text.render(self.app.console), text.cell_len)
        if selection is None:
            self._strips[serial] = strip
        return strip
