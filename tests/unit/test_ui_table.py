"""The UI's pure parts: inert text, fitting, column layout, views, filter, sort, tree, sparklines, key table."""

from __future__ import annotations

import pytest
from unit.test_ui_frames import POD_A, POD_B, make_frame, make_row, node_rows

from ctop.model import fields
from ctop.model.ebpf import RUNQ_BUCKET_LOWER_SECONDS, RUNQ_BUCKET_UPPER_SECONDS, RUNQ_SLOTS
from ctop.model.filters import parse_filter_text as F
from ctop.ui import keys
from ctop.ui.app import DELAYS, App, _nearest_delay
from ctop.ui.columns import COLUMNS, COLUMNS_BY_KEY, DEFAULT_COLUMNS, NAME, fit_columns
from ctop.ui.detail import bucket_bound, bucket_label, histogram_lines, runq_buckets
from ctop.ui.history import History, sparkline
from ctop.ui.table import VIEWS_BY_KEY, label, select
from ctop.ui.text import fit, format_duration, inert, width


def paths(displayed):
    return [d.path for d in displayed]


def cpu():
    col = COLUMNS_BY_KEY[fields.CPU_PERCENT.key]
    return col.sort


def test_inert_replaces_escape_and_control_characters():
    assert inert("\x1b[31mred\x07") == "?[31mred?"
    assert inert("a\x9bb\x7fc\nd\re\tf") == "a?b?c?d?e?f"
    assert inert("evil\u202etxt.exe") == "evil?txt.exe"  # a bidi override would reverse what follows
    assert inert("nginx-ünïcode-日本") == "nginx-ünïcode-日本"


def test_fit_cuts_with_an_ellipsis_at_the_end_or_middle_and_counts_wide_characters():
    assert fit("abcdefghij", 5) == "abcd…"
    assert fit("/process_api/0822c2d9e46dd483", 11, "middle") == "/proc…dd483"
    assert fit("short", 10) == "short"
    assert width(fit("日本語のコンテナ名", 7)) <= 7
    assert fit("日本語のコンテナ名", 7).endswith("…")


def test_format_duration_picks_a_readable_unit():
    assert [format_duration(v) for v in (None, 850e-9, 12e-6, 3.4e-3, 1.2)] == ["-", "850ns", "12us", "3.4ms",
                                                                              "1.20s"]


@pytest.mark.parametrize("cols", [40, 60, 80, 100, 132, 200])
def test_columns_fill_the_width_exactly_and_keep_name_cpu_and_memory(cols):
    fitted = fit_columns(list(DEFAULT_COLUMNS), cols)
    keys_ = [c.field for c, _ in fitted]
    assert {fields.DISPLAY_NAME, fields.CPU_PERCENT, fields.MEMORY_WORKING_SET_BYTES} <= set(keys_)
    assert sum(w for _, w in fitted) + len(fitted) - 1 == cols or cols < 40


def test_narrow_terminals_drop_low_priority_columns_first():
    at80 = [c.field for c, _ in fit_columns(list(DEFAULT_COLUMNS), 80)]
    at200 = [c.field for c, _ in fit_columns(list(DEFAULT_COLUMNS), 200)]
    assert set(at200) == {c.field for c in DEFAULT_COLUMNS}
    assert fields.QOS_CLASS not in at80 and fields.NAMESPACE_POD not in at80  # priorities 7 and 6 go first
    assert fields.MEMORY_LIMIT_PERCENT in at80 and fields.MEMORY_OOM_KILLS in at80
    dict80 = dict((c.field, w) for c, w in fit_columns(list(DEFAULT_COLUMNS), 80))
    assert dict80[fields.DISPLAY_NAME] >= 20 and fields.RUNQ_LATENCY_P99_SECONDS in dict80


def test_a_column_added_from_the_chooser_is_dropped_first():
    extra = COLUMNS_BY_KEY[fields.PSI_CPU_SOME_AVG10.key]
    assert extra not in DEFAULT_COLUMNS
    fitted = [c for c, _ in fit_columns([*DEFAULT_COLUMNS, extra], 184)]
    assert extra not in fitted and len(fitted) == len(DEFAULT_COLUMNS)
    assert extra in [c for c, _ in fit_columns([*DEFAULT_COLUMNS, extra], 280)]


def test_views_select_rows_by_identity_kind():
    frame = make_frame(node_rows())
    by = {v: paths(select(frame, VIEWS_BY_KEY[v], F(""), cpu(), True, False)) for v in VIEWS_BY_KEY}
    assert by["containers"] == ["/kubepods/burstable/poda1/c1", "/docker/abc", "/kubepods/burstable/poda1/c2",
                                "/kubepods/besteffort/podb2/c3"]  # CPU descending, no data last
    assert by["pods"] == [POD_A, POD_B]
    assert by["qos"] == ["/kubepods/burstable", "/kubepods/besteffort"]
    assert by["units"] == ["/system.slice", "/system.slice/cron.service"]
    assert len(by["cgroups"]) == len(node_rows())


def test_sort_puts_rows_without_data_last_in_both_directions():
    rows = [make_row("/a", cpu_percent=None), make_row("/b", cpu_percent=1.0), make_row("/c", cpu_percent=9.0)]
    assert [r.path for r in fields.sort_rows(rows, cpu(), True)] == ["/c", "/b", "/a"]
    assert [r.path for r in fields.sort_rows(rows, cpu(), False)] == ["/b", "/c", "/a"]


def test_filter_matches_name_pod_namespace_and_path_case_insensitively():
    frame = make_frame(node_rows())
    view = VIEWS_BY_KEY["containers"]
    assert paths(select(frame, view, F("NGI"), cpu(), True, False)) == [POD_A + "/c1"]
    assert paths(select(frame, view, F("web-7d9"), cpu(), True, False)) == [POD_A + "/c1", POD_A + "/c2"]
    assert paths(select(frame, view, F("jobs"), cpu(), True, False)) == [POD_B + "/c3"]
    assert paths(select(frame, view, F("/docker/"), cpu(), True, False)) == ["/docker/abc"]
    assert select(frame, view, F("nothing-like-this"), cpu(), True, False) == []


def test_container_tree_is_qos_then_pod_then_container():
    frame = make_frame(node_rows())
    shown = select(frame, VIEWS_BY_KEY["containers"], F(""), cpu(), True, True)
    lines = [label(d) for d in shown]
    assert lines == ["burstable", "└─web-7d9", "  ├─nginx", "  └─sidecar",
                     "redis",
                     "besteffort", "└─batch-x", "  └─cruncher"]
    assert [d.context for d in shown] == [True, True, False, False, False, True, True, False]


def test_tree_with_a_filter_keeps_only_the_ancestors_of_matches():
    frame = make_frame(node_rows())
    shown = select(frame, VIEWS_BY_KEY["containers"], F("cruncher"), cpu(), True, True)
    assert [label(d) for d in shown] == ["besteffort", "└─batch-x", "  └─cruncher"]


def test_unit_tree_is_slice_then_service_and_all_cgroups_is_the_path_tree():
    frame = make_frame(node_rows())
    units = [label(d) for d in select(frame, VIEWS_BY_KEY["units"], F(""), cpu(), True, True)]
    assert units == ["system.slice", "└─cron.service"]
    everything = select(frame, VIEWS_BY_KEY["cgroups"], F(""), cpu(), True, True)
    assert everything[0].path == "/" and everything[0].depth == 0
    depth = {d.path: d.depth for d in everything}
    assert all(d.path.startswith(d.parent.rstrip("/") + "/") and d.depth == depth[d.parent] + 1
               for d in everything[1:])
    assert next(d for d in everything if d.path == "/docker/abc").parent == "/"  # /docker was not read
    assert len(everything) == len(node_rows())


def test_sparkline_scales_to_the_top_and_shows_gaps():
    assert sparkline([0.0, 50.0, 100.0], 3, 100.0) == "▁▅█"
    assert sparkline([None, 10.0], 4) == "   █"
    assert sparkline([1.0] * 10, 4) == "████"


def test_history_keeps_a_bounded_series_per_cgroup_and_forgets_removed_ones():
    history = History(length=3)
    for value in (1.0, 2.0, 3.0, 4.0):
        history.add(make_frame([make_row("/a", cpu_percent=value, memory=10)]))
    assert list(history.cpu["/a"]) == [2.0, 3.0, 4.0]
    history.add(make_frame([make_row("/b", cpu_percent=1.0)]))
    assert "/a" not in history.cpu and list(history.memory["/b"]) == [None]


def test_runq_histogram_buckets_follow_the_bpf_slot_layout():
    hist = [0] * RUNQ_SLOTS
    hist[0], hist[13] = 5, 10  # below 256 ns; [5 * 2^10, 6 * 2^10) ns
    buckets = runq_buckets(hist)
    assert buckets[0] == (0.0, 256e-9, 5) and buckets[-1] == (5120e-9, 6144e-9, 10) and len(buckets) == 14
    lines = histogram_lines(hist)
    assert lines[-1].endswith(" 10") and "█" * 30 in lines[-1]
    assert histogram_lines(None) == ["-"]


def test_runq_histogram_labels_come_from_the_bucket_bounds():
    hist = [0] * RUNQ_SLOTS
    hist[0], hist[1], hist[40], hist[-1] = 4, 3, 2, 1
    lines = histogram_lines(hist)
    labels = [line.split("█")[0].strip() for line in lines if "█" in line]
    assert labels[0] == "0 - 256ns"  # the first bucket holds every wait below its upper bound, 0 included
    assert labels[2] == "524us - 655us"  # [2**19, 1.25 * 2**19) ns
    assert labels[-1] == ">= 120s"  # the last bucket (from 1.75 * 2**36 ns) takes every longer wait
    assert len({line.index("█") for line in lines if "█" in line}) == 1  # bars start in one column
    every = [bucket_label(lo, hi) for lo, hi in zip(RUNQ_BUCKET_LOWER_SECONDS, RUNQ_BUCKET_UPPER_SECONDS)]
    assert len(set(every)) == len(every) and all(a != b for a, _, b in (x.partition(" - ") for x in every[:-1]))
    assert bucket_label(2.048e-6, 2.435e-6) == "2.05us - 2.44us"
    assert bucket_bound(0.0) == "0" and bucket_bound(999e-9) == "999ns" and bucket_bound(1.5) == "1.5s"


def test_key_table_has_no_duplicates_and_every_action_exists():
    seen: dict[tuple[str, str], str] = {}
    for b in keys.BINDINGS:
        assert hasattr(App, "do_" + b.action), b.action
        for k in b.keys:
            assert (k, b.where) not in seen, k
            seen[(k, b.where)] = b.action
        if b.action == "sort_column":
            assert b.arg in COLUMNS_BY_KEY
    assert keys.lookup("q", "detail").action == "quit"
    assert keys.lookup("P", "list").action == "sort_column"
    assert len(keys.help_lines(replay=True)) == len(keys.BINDINGS)
    live = [b for b in keys.BINDINGS if not b.replay]
    assert len(keys.help_lines()) == len(live)
    # The replay keys are free everywhere: no live binding of any screen uses them.
    assert not {k for b in keys.BINDINGS if b.replay for k in b.keys} & {k for b in live for k in b.keys}
    assert keys.lookup("[", "list") is None and keys.lookup("[", "detail", replay=True).action == "replay_step"


def test_refresh_delay_steps():
    assert _nearest_delay(1.0, -1) == 0.5 and _nearest_delay(1.0, 1) == 2.0
    assert _nearest_delay(DELAYS[0], -1) == DELAYS[0] and _nearest_delay(1.5, 1) == 2.0


def test_name_column_is_first_and_never_dropped():
    assert COLUMNS[0] is NAME and DEFAULT_COLUMNS[0] is NAME
    assert [c.field for c, _ in fit_columns(list(DEFAULT_COLUMNS), 20)] == [
        fields.DISPLAY_NAME, fields.CPU_PERCENT, fields.MEMORY_WORKING_SET_BYTES]
