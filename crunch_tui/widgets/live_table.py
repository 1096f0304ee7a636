"""A DataTable updated in place: columns once, rows keyed by stable ids, changed cells only.

Replacing every row each refresh makes a 100-row table flicker and lose the cursor; this
diff touches only what changed, inside ``app.batch_update()`` so one frame shows it all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, RowDoesNotExist

Row = Sequence[Any]


class LiveTable(DataTable[Any]):
    """``set_columns`` once, then ``sync(rows)`` with ``{row_key: cells}`` on every snapshot."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("cursor_type", "row")
        kwargs.setdefault("zebra_stripes", True)
        super().__init__(**kwargs)
        self._columns_spec: tuple[tuple[str, str], ...] = ()
        self._cells: dict[str, tuple[Any, ...]] = {}
        self._order: tuple[str, ...] = ()
        self.updates = 0  # cells changed by the last sync, for tests and the benchmark

    def set_columns(self, columns: Sequence[tuple[str, str]]) -> None:
        """Add columns (key, label) once; a different set rebuilds the table (rare)."""
        spec = tuple(columns)
        if spec == self._columns_spec:
            return
        self.clear(columns=True)
        self._cells.clear()
        self._order = ()
        for key, label in spec:
            self.add_column(label, key=key)
        self._columns_spec = spec

    @property
    def row_ids(self) -> tuple[str, ...]:
        return self._order

    def selected_key(self) -> str | None:
        """The stable id of the row under the cursor (None when the table is empty)."""
        if not self._order or self.cursor_row < 0:
            return None
        try:
            return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        except (CellDoesNotExist, RowDoesNotExist):
            return None

    def sync(self, rows: Mapping[str, Row], sort_column: str | None = None) -> int:
        """Make the table show ``rows`` touching as little as possible.

        New rows are appended; when ``sort_column`` is given and the snapshot's order
        differs from the table's, one sort by that column restores it.
        """
        keys = [c for c, _ in self._columns_spec]
        changed = 0
        with self.app.batch_update():
            for stale in [k for k in self._cells if k not in rows]:
                self.remove_row(stale)
                del self._cells[stale]
                changed += 1
            for row_key, cells in rows.items():
                new = tuple(cells)
                old = self._cells.get(row_key)
                if old is None:
                    self.add_row(*new, key=row_key)
                    changed += len(new)
                elif old != new:
                    for column, before, after in zip(keys, old, new, strict=True):
                        if before != after:
                            # Widths are recomputed only when a cell grew (it costs).
                            wider = _cell_len(after) > _cell_len(before)
                            self.update_cell(row_key, column, after, update_width=wider)
                            changed += 1
                self._cells[row_key] = new
            order = tuple(rows)
            if sort_column is not None and order != self._current_order():
                selected = self.selected_key()
                self.sort(sort_column, key=_sortable)
                if selected in rows:
                    self.move_cursor(row=self.get_row_index(selected), animate=False)
            self._order = order
        self.updates = changed
        return changed

    def _current_order(self) -> tuple[str, ...]:
        return tuple(str(row.key.value) for row in self.ordered_rows)


def _cell_len(value: Any) -> int:
    return len(getattr(value, "plain", None) or str(value))


def _sortable(value: Any) -> Any:
    """Cells may be Rich ``Text``; sort on their plain text, numbers before text."""
    plain = getattr(value, "plain", value)
    if isinstance(plain, int | float):
        return (0, plain, "")
    return (1, 0, str(plain))
