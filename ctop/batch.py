"""Batch output (``ctop -b``): one table, JSON array or CSV block per refresh, from Frames only."""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

from .model.fields import (
    BATCH_FIELDS,
    CONTAINER,
    CONTAINER_ID,
    CPU_PERCENT,
    DEPTH,
    ID,
    IMAGE,
    JSON_FIELDS,
    KIND,
    NAME,
    NAMESPACE,
    POD,
    QOS_CLASS,
    RUNTIME,
    TIME_KEY,
    Field,
    format_value,
    sort_rows,
)
from .model.filters import RowFilter
from .model.frame import CgroupRow, Frame, Identity
from .model.notices import Notice
from .model.safe_text import inert, json_text_safe


@dataclass(frozen=True)
class BatchOptions:
    """What to print and how."""

    order: Field = CPU_PERCENT
    reverse: bool = False
    max_depth: int | None = None
    output: str = "text"  # text, json or csv
    columns: tuple[Field, ...] = BATCH_FIELDS  # of the text table
    row_filter: RowFilter = field(default_factory=RowFilter)


def select_rows(frame: Frame, options: BatchOptions) -> list[CgroupRow]:
    """The rows to print, in order."""
    rows = [r for r in frame.rows.values()
            if (options.max_depth is None or r.sample.depth <= options.max_depth) and options.row_filter(r)]
    return sort_rows(rows, options.order.sort_key, options.order.sorts_descending != options.reverse)


def row_values(row: CgroupRow, fields: Sequence[Field] = JSON_FIELDS) -> list[object]:
    """Every JSON field's value of a row, floats at full precision (their shortest repr; the hot path of -b output)."""
    return [f.get(row) for f in fields]


def render_json(frame: Frame, options: BatchOptions) -> str:
    """One JSON array of row objects, on one line: the text ``json.dumps`` gives for a list of dicts (made safe by
    json_text_safe), built column by column (one json.dumps call per field, each value with its key before it) and
    joined row by row. A row object printed last time (an idle cgroup's, kept by the collector) keeps its text."""
    global _row_texts
    rows = select_rows(frame, options)
    if not rows:
        return "[]"
    known, texts = _row_texts, {}
    fresh = []
    for row in rows:
        path = row.sample.path
        printed = known.get(path)
        if printed is not None and printed[0] is row:
            texts[path] = printed
        else:
            fresh.append(row)
    if fresh:
        columns = [_identity_column(fresh)] + [_keyed_column("," + key, f, fresh) for key, f in _OTHER_FIELDS]
        for row, line in zip(fresh, map("".join, zip(*columns)), strict=True):
            texts[row.sample.path] = (row, line)
    _row_texts = texts
    # Each row starts with "},{" (the previous row's end) and its time: the first row's "}," is cut off below.
    start = "},{" + _ENCODER.encode(TIME_KEY) + ":" + _ENCODER.encode(round(frame.snapshot.host.wall_time_s, 3)) + ","
    text = start + start.join([texts[row.sample.path][1] for row in rows])
    return "[" + text[2:] + "}]"


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_KEYS = [_ENCODER.encode(f.key) + ":" for f in JSON_FIELDS]  # each key as JSON text with its colon
_SCALARS = frozenset({str, int, float, bool, type(None)})
# Between the items of a column encoded in one call: json.dumps writes a NUL inside a string only as \u0000.
_SEPARATOR = "\x00"
_COLUMN_ENCODER = json.JSONEncoder(separators=(_SEPARATOR, ":"), ensure_ascii=False)


# The first JSON fields (id to depth) say nothing but what a row's path and Identity say: their text is kept by path
# while the row's Identity is the same object (the collector keeps a cgroup's unchanged Identity across refreshes).
_BY_IDENTITY = (ID, NAME, KIND, RUNTIME, CONTAINER_ID, IMAGE, POD, NAMESPACE, CONTAINER, QOS_CLASS, DEPTH)
if JSON_FIELDS[:len(_BY_IDENTITY)] != _BY_IDENTITY:
    raise ImportError("ctop.batch: the JSON fields no longer start with the fields of a row's path and Identity")
_OTHER_FIELDS = list(zip(_KEYS[len(_BY_IDENTITY):], JSON_FIELDS[len(_BY_IDENTITY):]))
_identity_texts: dict[str, tuple[Identity, str]] = {}  # path -> (Identity, its fields' text), of the latest rows
_row_texts: dict[str, tuple[CgroupRow, str]] = {}  # path -> (row, the text of all its fields), of the latest rows


def _identity_column(rows: list[CgroupRow]) -> list[str]:
    """The text of the fields of _BY_IDENTITY, for each row."""
    global _identity_texts
    known, kept = _identity_texts, {}
    out = []
    for row in rows:
        path, identity = row.sample.path, row.identity
        text = known.get(path)
        if text is None or text[0] is not identity:
            text = (identity, ",".join([key + json_text_safe(_ENCODER.encode(f.get(row)))
                                        for key, f in zip(_KEYS, _BY_IDENTITY)]))
        kept[path] = text
        out.append(text[1])
    _identity_texts = kept
    return out


def _keyed_column(prefix: str, field: Field, rows: list[CgroupRow]) -> list[str]:
    """``prefix`` followed by the JSON text of the field's value, for each row: a column of scalars is encoded in one
    json.dumps call and split at a separator that no encoded string holds."""
    values = [field.get(r) for r in rows]
    if not _SCALARS.issuperset(map(type, values)):  # an object (preempted_by) or something else: one at a time
        return [prefix + json_text_safe(_ENCODER.encode(v)) for v in values]
    text = json_text_safe(_COLUMN_ENCODER.encode(values))  # a column at a time: most are numbers, ASCII
    return (prefix + text[1:-1].replace(_SEPARATOR, _SEPARATOR + prefix)).split(_SEPARATOR)


def render_csv(frame: Frame, options: BatchOptions, header: bool) -> str:
    """CSV lines with every field, and a header line when asked."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow([TIME_KEY, *(f.key for f in JSON_FIELDS)])
    stamp = round(frame.snapshot.host.wall_time_s, 3)
    for r in select_rows(frame, options):
        writer.writerow([stamp, *("" if v is None else inert(v) if type(v) is str else v for v in row_values(r))])
    return out.getvalue().rstrip("\n")


def render_text(frame: Frame, options: BatchOptions, width: int | None = None) -> str:
    """A table like ``systemd-cgtop -b``: the first column takes what the others leave."""
    fields = options.columns
    rows = select_rows(frame, options)
    cells = [[inert(format_value(f, f.get(r))) for f in fields] for r in rows]
    widths = [max([len(f.header)] + [len(c[i]) for c in cells]) for i, f in enumerate(fields)]
    if width is not None:
        other = sum(widths[1:]) + len(widths) - 1
        widths[0] = max(len(fields[0].header), min(widths[0], width - other))
    lines = [_line([f.header for f in fields], widths)]
    lines.extend(_line(c, widths) for c in cells)
    return "\n".join(lines)


def _line(values: list[str], widths: list[int]) -> str:
    first = values[0]
    if len(first) > widths[0]:
        first = "…" + first[-(widths[0] - 1):]
    parts = [first.ljust(widths[0])] + [v.rjust(w) for v, w in zip(values[1:], widths[1:])]
    return " ".join(parts).rstrip()


def render(frame: Frame, options: BatchOptions, first: bool) -> str:
    """One refresh as batch mode prints it: a JSON array, CSV lines (a header before the first) or the table."""
    if options.output == "json":
        return render_json(frame, options)
    if options.output == "csv":
        return render_csv(frame, options, header=first)
    width = os.get_terminal_size().columns if sys.stdout.isatty() else None
    return render_text(frame, options, width) + "\n"


def new_notices(frame: Frame, told: set[Notice]) -> list[Notice]:
    """The frame's notices not said before (each is said once, on stderr); adds them to ``told``."""
    fresh = [n for n in dict.fromkeys(frame.notices) if n not in told]
    told.update(fresh)
    return fresh
