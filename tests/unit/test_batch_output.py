"""Batch JSON and CSV keep every float at full precision (a 30 us latency is not 0.0) and stay compact."""

from __future__ import annotations

import csv
import io
import json

from unit.test_ui_frames import make_frame, make_row

from ctop.batch import BatchOptions, render_csv, render_json
from ctop.model.ebpf_rates import EbpfRates

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
