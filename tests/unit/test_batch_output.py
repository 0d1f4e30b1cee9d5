"""Batch JSON and CSV keep every float at full precision (a 30 us latency is not 0.0) and stay compact."""

from __future__ import annotations

import csv
import dataclasses
import io
import json

from unit.test_ui_frames import make_frame, make_row

from ctop.batch import _BY_IDENTITY, BatchOptions, render_csv, render_json, row_values, select_rows
from ctop.model.culprits import CulpritRates
from ctop.model.ebpf_rates import EbpfRates
from ctop.model.fields import JSON_FIELDS, TIME_KEY
from ctop.model.frame import Frame
from ctop.model.safe_text import _JSON_ESCAPES, json_text_safe

P50 = 17.25e-6  # rounded to 4 places this printed as 0.0
P99 = 3.1234567e-5


def frame():
    rates = EbpfRates(runq_latency_p50_seconds=P50, runq_latency_p99_seconds=P99, runq_wait_seconds_per_s=1 / 3)
    return make_frame([make_row("/app", cpu_percent=12.345678912, ebpf_rates=rates)])


def test_json_keeps_full_precision_on_one_compact_line() -> None:
    text = render_json(frame(), BatchOptions())
    (row,) = json.loads(text)
    assert row["runq_latency_p50_seconds"] == P50 and row["runq_latency_p99_seconds"] == P99
    assert row["runq_wait_seconds_per_s"] == 1 / 3 and row["cpu_percent"] == 12.345678912
    assert "\n" not in text and ", " not in text and '": ' not in text
    assert "1.725e-05" in text  # the shortest repr, not a padded decimal


def test_csv_keeps_full_precision() -> None:
    lines = list(csv.DictReader(io.StringIO(render_csv(frame(), BatchOptions(), header=True))))
    assert float(lines[0]["runq_latency_p50_seconds"]) == P50
    assert float(lines[0]["runq_latency_p99_seconds"]) == P99
    assert float(lines[0]["cpu_percent"]) == 12.345678912


def _as_json_dumps(frame: Frame) -> str:
    """What render_json printed before it was built column by column: json.dumps of one dict per row."""
    keys = [TIME_KEY, *(f.key for f in JSON_FIELDS)]
    stamp = round(frame.snapshot.host.wall_time_s, 3)
    rows = [dict(zip(keys, [stamp, *row_values(r)])) for r in select_rows(frame, BatchOptions())]
    return json_text_safe(json.dumps(rows, separators=(",", ":"), ensure_ascii=False))


def test_json_is_the_text_of_json_dumps_whatever_the_values() -> None:
    """Strings that hold the column separator (NUL), quotes, %, commas, controls and non-UTF-8 bytes; objects, NaN,
    None and huge numbers: the text is exactly json.dumps', and parses back to the same rows."""
    culprits = CulpritRates({"a,\"b\"": 2.5, "host": 1.0})
    rows = [
        make_row("/a\x00b", "container", name='n"%s,%d\\', pod="p\u2028\x9b", namespace="\udcff",
                 cpu_percent=float("nan"), ebpf_rates=EbpfRates(preempted_by=culprits, top_preemptor="host")),
        make_row("/x]\x00[y", name="{}", cpu_percent=1e300, ebpf_rates=EbpfRates(preempted_by=CulpritRates())),
        make_row("/", "root", memory=2**63, cpu_percent=0.1 + 0.2),
    ]
    frame = make_frame(rows)
    text = render_json(frame, BatchOptions())
    assert text == _as_json_dumps(frame)
    parsed = json.loads(text)
    assert [r["id"] for r in parsed] == [r.path for r in select_rows(frame, BatchOptions())]
    assert {r["id"]: r["preempted_by"] for r in parsed}["/a\x00b"] == {"a,\"b\"": 2.5, "host": 1.0}
    assert all(list(r) == [TIME_KEY, *(f.key for f in JSON_FIELDS)] for r in parsed)


def test_json_of_one_row_and_of_none() -> None:
    one = make_frame([make_row("/only", cpu_percent=3.0)])
    assert render_json(one, BatchOptions()) == _as_json_dumps(one)
    assert render_json(make_frame([]), BatchOptions()) == "[]"


def test_json_text_safe_escapes_exactly_the_characters_it_did() -> None:
    """Every code point, alone and beside others: the same text as the str.translate it replaced."""
    every = "".join(map(chr, range(0x110000)))
    assert json_text_safe(every) == every.translate(_JSON_ESCAPES)
    assert json_text_safe('{"a":"caf\u00e9\u2028\x9b\udcff"}') == '{"a":"caf\u00e9\\u2028\\u009b\ufffd"}'
    assert json_text_safe('{"a":"\x7f"}') == '{"a":"\\u007f"}'


def test_json_names_a_path_afresh_when_its_identity_changes() -> None:
    """The text of id..depth is kept by path only while the row's Identity is the same object: a renamed container,
    or another container under a path that went and came back, prints its own name."""
    web = make_row("/docker/c1", "container", name="web", cpu_percent=1.0)
    first = make_frame([web])
    assert render_json(first, BatchOptions()) == _as_json_dumps(first)
    same = make_frame([dataclasses.replace(web, cpu_percent=2.0)])  # the same Identity object, new figures
    assert json.loads(render_json(same, BatchOptions()))[0]["cpu_percent"] == 2.0
    renamed = make_frame([make_row("/docker/c1", "container", name="web-2", pod="p")])
    assert render_json(renamed, BatchOptions()) == _as_json_dumps(renamed)
    assert json.loads(render_json(renamed, BatchOptions()))[0]["name"] == "web-2"
    assert json.loads(render_json(make_frame([]), BatchOptions())) == []
    back = make_frame([make_row("/docker/c1", "container", name="db", namespace="\x9b")])
    assert render_json(back, BatchOptions()) == _as_json_dumps(back)


def test_the_fields_kept_by_identity_say_only_what_path_and_identity_say() -> None:
    """Rows of one path and Identity with different samples and rates give the same values for those fields."""
    one = make_row("/kubepods/pod1/c1", "container", name="web", pod="p", namespace="n", qos="burstable",
                   memory=5, cpu_percent=1.0)
    other = dataclasses.replace(
        one, sample=dataclasses.replace(one.sample, inode=99, memory_usage_bytes=7, cpu_usage_ns=3, threads=4,
                                        first_pid=12), cpu_percent=50.0, tasks_recursive=9, restarts=2)
    for field in _BY_IDENTITY:
        assert field.get(one) == field.get(other), field.key


def test_a_row_printed_before_keeps_its_text_and_takes_the_new_time() -> None:
    """The collector keeps an idle cgroup's row object from one refresh to the next: its text is printed again
    with the refresh's own time, beside rows printed afresh, and a new row object under its path is printed anew."""
    idle, busy = make_row("/idle", cpu_percent=0.0), make_row("/busy", cpu_percent=5.0)
    first = make_frame([idle, busy])
    assert render_json(first, BatchOptions()) == _as_json_dumps(first)
    later = dataclasses.replace(first, snapshot=dataclasses.replace(
        first.snapshot, host=dataclasses.replace(first.snapshot.host, wall_time_s=first.snapshot.host.wall_time_s + 1)),
        rows={"/idle": idle, "/busy": dataclasses.replace(busy, cpu_percent=7.5)})
    text = render_json(later, BatchOptions())
    assert text == _as_json_dumps(later)
    assert {r["id"]: (r[TIME_KEY], r["cpu_percent"]) for r in json.loads(text)} == {
        "/idle": (round(later.snapshot.host.wall_time_s, 3), 0.0),
        "/busy": (round(later.snapshot.host.wall_time_s, 3), 7.5)}
    moved = dataclasses.replace(later, rows={"/idle": dataclasses.replace(idle, cpu_percent=1.0), "/busy": busy})
    assert render_json(moved, BatchOptions()) == _as_json_dumps(moved)
