"""Every field is a list column and a sort key; the chooser says which ticked columns are off screen; help has all."""

from __future__ import annotations

import dataclasses
import json
import random
import re

import pytest
import urwid
from click.testing import CliRunner
from support.trees import tree
from unit.test_ui_frames import make_frame, make_row
from unit.test_ui_widgets import press, screen, toggle

from ctop.batch import BatchOptions
from ctop.cli import cli
from ctop.model import fields
from ctop.model.ebpf_rates import EbpfRates
from ctop.model.frame import CgroupRow
from ctop.model.sample import CgroupSample, Pressure
from ctop.ui.app import App
from ctop.ui.columns import COLUMNS, COLUMNS_BY_KEY, DEFAULT_COLUMNS, extra_width, fit_columns

V2 = tree("v2-k8s-systemd")


def rich_row(i: int, rng: random.Random) -> CgroupRow:
    """A container row with a value in every field (numbers drawn from ``rng``)."""
    base = make_row(f"/docker/c{i:02d}", "container", name=f"c{i:02d}", namespace=f"ns{rng.randrange(3)}",
                    pod=f"pod{rng.randrange(5)}", qos=rng.choice(["burstable", "besteffort"]),
                    memory=rng.randrange(1, 2**30), limit=2**30)
    numbers = {f.name: rng.randrange(0, 10**6) for f in dataclasses.fields(CgroupSample)
               if f.type in ("int | None",) and f.name not in ("inode",)}
    sample = dataclasses.replace(base.sample, **numbers, cpuset_cpus=f"0-{rng.randrange(8)}",
                                 **{f"pressure_{r}": Pressure(rng.random() * 100, 1, rng.random() * 100, 1)
                                    for r in ("cpu", "memory", "io")})
    rates: dict[str, float | int] = {f.name: rng.random() * 100 for f in dataclasses.fields(CgroupRow)
                                     if f.type == "float | None"}
    rates.update({f.name: rng.randrange(100) for f in dataclasses.fields(CgroupRow) if f.type == "int | None"})
    ebpf = EbpfRates(**{f.name: rng.random() for f in dataclasses.fields(EbpfRates)})
    ebpf = dataclasses.replace(ebpf, oom_kills=rng.randrange(9))
    return dataclasses.replace(base, sample=sample, net={}, ebpf_rates=ebpf, **rates)


def rich_frame() -> list[CgroupRow]:
    rng = random.Random(12)
    return [*(rich_row(i, rng) for i in range(12)), make_row("/docker/empty", "container", name="empty")]


def test_every_ebpf_psi_and_throttling_field_is_a_list_column_and_a_sort_key() -> None:
    wanted = [f for f in fields.FIELDS if (f.description.startswith("eBPF:") or f.key.startswith("psi_")
                                           or "throttl" in f.key) and f is not fields.PREEMPTED_BY]
    # (preempted_by is an object of rates by culprit: no column; top_preemptor, its first name, is one)
    assert len(wanted) >= 18
    for f in wanted:
        assert f.listable and f.sortable and f.key in COLUMNS_BY_KEY, f.key


SORTABLE = [c for c in COLUMNS if c.field.sortable]


@pytest.mark.parametrize("col", SORTABLE, ids=[c.key for c in SORTABLE])
def test_the_list_sorts_by_every_sortable_column_both_ways(col) -> None:
    app = App(BatchOptions(), 1.0)
    app.apply_frame(make_frame(rich_frame()))
    if app.sort_key != col.key:  # (CPU % is the default: choosing it again would reverse it)
        app.do_sort_column(col.key)
    for descending in (col.descending, not col.descending):
        values = [col.sort(d.row) for d in app.displayed]
        present = [v for v in values if v is not None]
        assert values[:len(present)] == present and len(present) >= 12  # no data last; the rich rows have data
        assert present == sorted(present, reverse=descending), col.key
        assert f"sort {col.header}{'▼' if descending else '▲'}" in screen(app, (200, 24))[-1]
        press(app, "r")


@pytest.mark.parametrize("f", [f for f in fields.FIELDS if f.sortable], ids=lambda f: f.key)
def test_every_sortable_key_is_an_order_of_the_command_line(f) -> None:
    args = ["--cgroup-root", V2[0], "--proc-root", V2[1], "-b", "--json", "-n", "1", "-d", "0.05", "--order", f.key]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.output)) > 5


def wide_app() -> App:
    """The default columns and every eBPF one ticked, at 80 columns."""
    app = App(BatchOptions(), 1.0)
    app.apply_frame(make_frame(rich_frame()))
    press(app, "c")
    for header in ("RQWAIT", "PREEMPT/s", "FORK/s", "EXEC/s"):
        toggle(app, header)
    return app


def test_the_chooser_says_which_ticked_columns_are_not_on_screen_and_how_much_width_they_need() -> None:
    app = wide_app()
    assert "ticked, not shown: needs" in "\n".join(screen(app, (80, 80)))
    labels = [w.label for w in app.chooser if isinstance(w, urwid.CheckBox)]
    notes = {label.split()[0]: m.group(1) for label in labels
             if (m := re.search(r"ticked, not shown: needs (\d+) more columns; widen the terminal or untick another$",
                                label))}
    on_screen = screen(app, (80, 80))[0]
    assert "CPU%" in on_screen and "QOS" not in on_screen and "EXEC/s" not in on_screen
    press(app, "esc")
    for header, more in notes.items():
        need = int(more)
        assert header not in screen(app, (80 + need - 1, 20))[0].split()
        assert header in screen(app, (80 + need, 20))[0].split(), header  # exactly that much more shows it


def test_the_chooser_notes_follow_the_terminal_width() -> None:
    app = wide_app()
    assert "ticked, not shown" in "\n".join(screen(app, (80, 80)))
    assert "ticked, not shown" not in "\n".join(screen(app, (400, 80)))
    toggle(app, "PSIIOF")  # ticked now: shown at 400 columns
    press(app, "esc")
    assert "PSIIOF" in screen(app, (400, 20))[0]


def test_extra_width_is_zero_for_a_shown_column_and_exact_for_a_dropped_one() -> None:
    visible = list(COLUMNS)
    for col, _ in fit_columns(visible, 100):
        assert extra_width(visible, col, 100) == 0
    dropped = [c for c in visible if c not in {c for c, _ in fit_columns(visible, 100)}]
    for col in dropped:
        more = extra_width(visible, col, 100)
        assert col in {c for c, _ in fit_columns(visible, 100 + more)}
        assert col not in {c for c, _ in fit_columns(visible, 100 + more - 1)}


def test_s_in_the_chooser_sorts_by_any_column_even_one_not_shown() -> None:
    app = App(BatchOptions(), 1.0)
    app.apply_frame(make_frame(rich_frame()))
    press(app, "c")
    listbox = app.top.original_widget.top_w.original_widget.body
    while not (hasattr(listbox.focus, "label") and listbox.focus.label.startswith("EXEC/s ")):
        press(app, "down")
    press(app, "s")
    assert "(the sort column)" in listbox.focus.label
    press(app, "esc")
    assert app.sort_key == "execs_per_s" and "sort EXEC/s▼" in screen(app, (120, 24))[-1]
    values = [fields.EXECS_PER_S.get(d.row) for d in app.displayed][:12]
    assert values == sorted(values, reverse=True)  # type: ignore[type-var]


def test_help_explains_every_column_those_on_screen_first() -> None:
    app = App(BatchOptions(), 1.0)
    app.apply_frame(make_frame(rich_frame()))
    press(app, "?", size=(200, 300))  # the width when help opens decides what is on screen
    lines = [line.strip("│ ") for line in screen(app, (200, 300))]
    text = "\n".join(lines)
    shown_at = lines.index(next(line for line in lines if line.startswith("Columns on screen")))
    others_at = lines.index(next(line for line in lines if line.startswith("Other columns")))
    for col in COLUMNS:
        at = next(i for i, line in enumerate(lines) if re.match(re.escape(col.header) + " +" +
                                                                 re.escape(col.description[:30]), line))
        assert (shown_at < at < others_at) == (col in DEFAULT_COLUMNS), col.key
    assert "Filter (/ and --filter): space-separated terms" in text and "image=" in text
