"""The columns of the main list, derived from the field table: their order, widths, priorities and cell text."""

from __future__ import annotations

from dataclasses import dataclass

from ..model import fields
from ..model.fields import Field, Level, SortValue, format_value
from ..model.frame import CgroupRow
from .text import inert

HIDDEN_PRIORITY = 10  # a column the user added from the chooser goes first when the terminal is narrow


@dataclass(frozen=True, eq=False)
class Column:
    """One column of the main list: a field of the table with its width and narrow-terminal priority.

    ``priority``: lower is kept longer when the terminal is narrow (0 is never dropped).
    """

    field: Field
    width: int
    priority: int

    @property
    def key(self) -> str:
        return self.field.key

    @property
    def header(self) -> str:
        return self.field.header

    @property
    def description(self) -> str:
        return self.field.description

    @property
    def descending(self) -> bool:
        return self.field.sorts_descending

    @property
    def align(self) -> str:
        return "left" if self.field.unit == "" else "right"

    def text(self, row: CgroupRow) -> str:
        return inert(format_value(self.field, self.field.get(row)))

    def sort(self, row: CgroupRow) -> SortValue:
        return self.field.sort_key(row)

    def level(self, row: CgroupRow) -> Level:
        return fields.level(self.field, row)


def _column(f: Field) -> Column:
    priority = HIDDEN_PRIORITY if f.priority is None else f.priority
    return Column(f, max(f.width, len(f.header) + 1), priority)


# Every column the chooser offers, left to right: the default ones in their places, then the rest in table order.
COLUMNS: tuple[Column, ...] = tuple(_column(f) for f in sorted(
    (f for f in fields.FIELDS if f.listable), key=lambda f: (f.place is None, f.place or 0)))
COLUMNS_BY_KEY: dict[str, Column] = {c.key: c for c in COLUMNS}
DEFAULT_COLUMNS: tuple[Column, ...] = tuple(c for c in COLUMNS if c.field.place is not None)
NAME = COLUMNS_BY_KEY[fields.DISPLAY_NAME.key]


def sort_column(order: Field) -> Column:
    """The list column an ``--order`` field sorts by; CPU % when the list cannot show that field."""
    return COLUMNS_BY_KEY.get(order.key, COLUMNS_BY_KEY[fields.CPU_PERCENT.key])


def colour_rule(f: Field) -> str:
    """The colour rule of a field in words ("yellow from 80.0, red from 95.0"); empty when it has none."""
    rule = f.colour
    if rule is None:
        return ""
    judged = [fields.FIELDS_BY_KEY[k] for k in rule.on] or [f]
    on = " or ".join(j.header for j in judged) + " " if rule.on else ""
    warn, crit = format_value(judged[0], rule.warn), format_value(judged[0], rule.crit)
    return f"red from {on}{crit}" if rule.warn >= rule.crit else f"yellow from {on}{warn}, red from {crit}"


def legend(columns: list[Column]) -> list[tuple[str, str]]:
    """(header, meaning and colour rule) of each column, for the help screen."""
    return [(c.header, c.description + (f" ({rule})" if (rule := colour_rule(c.field)) else "")) for c in columns]


NAME_MIN = 20  # the NAME column's narrowest width before other columns are dropped


def fit_columns(visible: list[Column], width: int, name_min: int = NAME_MIN) -> list[tuple[Column, int]]:
    """The columns that fit ``width`` with their widths: low-priority ones dropped first, NAME takes the rest."""
    kept = list(visible)

    def needed(cols: list[Column]) -> int:
        return sum(c.width for c in cols if c is not NAME) + max(0, len(cols) - 1)

    name_want = name_min if NAME in kept else 0
    while needed(kept) + name_want > width:
        droppable = [c for c in kept if c.priority > 0]
        if not droppable:
            break
        worst = max(droppable, key=lambda c: (c.priority, kept.index(c)))
        kept.remove(worst)
    rest = max(1, width - needed(kept))
    return [(c, rest if c is NAME else c.width) for c in kept]


def extra_width(visible: list[Column], col: Column, width: int) -> int:
    """How many more terminal columns ``col`` (one of ``visible``) needs to be shown; 0 when it is shown already."""
    def shown(w: int) -> bool:
        return any(c is col for c, _ in fit_columns(visible, w))

    if shown(width):
        return 0
    low, high = width, width + NAME_MIN + sum(c.width + 1 for c in visible)  # nothing is dropped at ``high``
    while high - low > 1:  # more width never drops more columns: the first width that shows it
        middle = (low + high) // 2
        if shown(middle):
            high = middle
        else:
            low = middle
    return high - width
