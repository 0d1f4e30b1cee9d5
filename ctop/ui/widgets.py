"""urwid widgets of the main list: the column layout, a table row, the clickable header and the sparkline."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import urwid

from ..model.fields import Level
from .columns import NAME, Column, fit_columns
from .history import sparkline
from .table import DisplayRow, label
from .text import fit, pad
from .themes import FOCUS_MAP

Size = tuple[()] | tuple[int] | tuple[int, int]  # what urwid passes to render, keypress and mouse_event


def columns_of(size: Size) -> int:
    """The width urwid renders a flow widget at (a fixed-size widget has none)."""
    if len(size) == 0:
        raise ValueError("ctop's widgets are flow widgets: urwid must give them a width")
    return size[0]


class Layout:
    """The columns the user chose, fitted to each width asked for (cached), plus the sort column to mark."""

    def __init__(self, visible: Sequence[Column]) -> None:
        self._visible = list(visible)
        self._cache: dict[int, list[tuple[Column, int]]] = {}
        self.sort_key = ""
        self.descending = True

    @property
    def visible(self) -> list[Column]:
        return list(self._visible)

    def set_visible(self, visible: Sequence[Column]) -> None:
        self._visible = list(visible)
        self._cache.clear()

    def fit(self, width: int) -> list[tuple[Column, int]]:
        if width not in self._cache:
            self._cache[width] = fit_columns(self._visible, width)
        return self._cache[width]


def _cell(text: str, col: Column, width: int, prefix: str = "") -> str:
    if col is NAME:  # names and paths keep their start and end (the end tells containers apart); tree guides stay
        room = width - len(prefix)
        if room < 3:
            return pad(text, width)
        return pad(prefix + fit(text[len(prefix):], room, "middle"), width)
    return pad(text, width, "left" if col.align == "left" else "right")


class RowWidget(urwid.Widget):
    """One listed cgroup; lays its cells out for whatever width it is rendered at."""

    _selectable = True
    _sizing = frozenset([urwid.Sizing.FLOW])

    def __init__(self, display: DisplayRow, layout: Layout) -> None:
        super().__init__()
        self.display = display
        self.layout = layout
        self._cells: dict[str, tuple[str, Level]] = {}

    def cell(self, col: Column) -> tuple[str, Level]:
        """The text and colour level of one column (computed once per row)."""
        if col.key not in self._cells:
            row = self.display.row
            text = label(self.display) if col is NAME else col.text(row)
            self._cells[col.key] = (text, col.level(row))
        return self._cells[col.key]

    @property
    def path(self) -> str:
        return self.display.path

    def rows(self, size: tuple[int], focus: bool = False) -> int:
        return 1

    def markup(self, width: int, focus: bool) -> list[tuple[str | None, str]]:
        parts: list[tuple[str | None, str]] = []
        base: str | None = "context" if self.display.context else None
        for i, (col, w) in enumerate(self.layout.fit(width)):
            text, level = self.cell(col)
            attr = level or base
            if focus:
                attr = FOCUS_MAP.get(attr, "focus")
            if i:
                parts.append(("focus" if focus else base, " "))
            parts.append((attr, _cell(text, col, w, self.display.prefix)))
        return parts

    def render(self, size: Size, focus: bool = False) -> urwid.Canvas:
        maxcol = columns_of(size)
        markup = self.markup(maxcol, focus)
        used = sum(urwid.calc_width(t, 0, len(t)) for _, t in markup)
        if used < maxcol:
            markup.append(("focus" if focus else None, " " * (maxcol - used)))
        canvas = urwid.Text(markup, wrap="clip").render((maxcol,))
        if not focus:
            return canvas
        focused = urwid.CompositeCanvas(canvas)
        focused.cursor = None
        return focused

    def keypress(self, size: Size, key: str) -> str:
        return key


class MessageRow(urwid.Text):
    """A line in the list that is not a cgroup (nothing found, still collecting)."""


class HeaderWidget(urwid.Widget):
    """Column headings; the sort column is marked with its direction; a click on a heading sorts by it."""

    _sizing = frozenset([urwid.Sizing.FLOW])

    def __init__(self, layout: Layout, on_click: Callable[[str], None]) -> None:
        super().__init__()
        self.layout = layout
        self.on_click = on_click

    def rows(self, size: tuple[int], focus: bool = False) -> int:
        return 1

    def changed(self) -> None:
        self._invalidate()

    def render(self, size: Size, focus: bool = False) -> urwid.Canvas:
        maxcol = columns_of(size)
        parts: list[tuple[str, str]] = []
        for i, (col, w) in enumerate(self.layout.fit(maxcol)):
            title = col.header
            attr = "header"
            if col.key == self.layout.sort_key:
                title = title + ("▼" if self.layout.descending else "▲")
                attr = "header_sort"
            if i:
                parts.append(("header", " "))
            parts.append((attr, _cell(title, col, w)))
        used = sum(urwid.calc_width(t, 0, len(t)) for _, t in parts)
        if used < maxcol:
            parts.append(("header", " " * (maxcol - used)))
        return urwid.Text(parts, wrap="clip").render((maxcol,))

    def column_at(self, width: int, x: int) -> str | None:
        start = 0
        for col, w in self.layout.fit(width):
            if start <= x < start + w + 1:
                return col.key
            start += w + 1
        return None

    def mouse_event(self, size: Size, event: str, button: int, col: int, row: int, focus: bool) -> bool:
        if event == "mouse press" and button == 1:
            key = self.column_at(columns_of(size), col)
            if key is not None:
                self.on_click(key)
                return True
        return False


class Sparkline(urwid.Widget):
    """``label`` then the most recent values that fit the width, scaled to ``top`` (or their maximum)."""

    _sizing = frozenset([urwid.Sizing.FLOW])

    def __init__(self, label_text: str, values: Sequence[float | None], top: float | None = None) -> None:
        super().__init__()
        self.label_text = label_text
        self.values = list(values)
        self.top = top

    def rows(self, size: tuple[int], focus: bool = False) -> int:
        return 1

    def render(self, size: Size, focus: bool = False) -> urwid.Canvas:
        maxcol = columns_of(size)
        head = pad(self.label_text, min(maxcol, len(self.label_text)))
        room = maxcol - len(head)
        markup: list[tuple[str | None, str]] = [(None, head), ("spark", sparkline(self.values, room, self.top))]
        return urwid.Text(markup, wrap="clip").render((maxcol,))
