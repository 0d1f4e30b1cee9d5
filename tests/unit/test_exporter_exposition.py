"""The /metrics body is made once per collection and encoding, whatever the number of concurrent scrapes."""

from __future__ import annotations

import dataclasses
import gzip
import http.client
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from ctop.exporters.collector import FrameCollector, SharedFrames
from ctop.exporters.exposition import Exposition, render_encoded
from ctop.exporters.families import Family
from ctop.exporters.forecast import ScrapeForecast
from ctop.exporters.server import ExporterServer, ListenError, make_server
from ctop.exporters.webconfig import WebConfig
from unit.test_exporter_families import APP, make_frame, samples

from ctop.model.frame import Frame

PORTS = range(19300, 19350)  # this suite's loopback ports


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def frame_with_threads(threads: int) -> Frame:
    """The test frame with ``threads`` as the app container's thread count (to tell collections apart)."""
    frame = make_frame()
    rows = dict(frame.rows)
    row = rows[APP]
    rows[APP] = dataclasses.replace(row, sample=dataclasses.replace(row.sample, threads=threads))
    return Frame(frame.snapshot, rows, frame.interval_s)


@contextmanager
def serving(exposition: Exposition) -> Iterator[ExporterServer]:
    """The real HTTP server on a free port of this suite's range, stopped and closed afterwards."""
    server = None
    for port in PORTS:
        try:
            server = make_server(f"127.0.0.1:{port}", exposition, WebConfig())
            break
        except ListenError:
            continue
    if server is None:
        pytest.skip("no free port in 19300-19349")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        exposition.close()


def scrape(port: int, gz: bool) -> tuple[int, bytes, str | None]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/metrics", headers={"Accept-Encoding": "gzip"} if gz else {})
        resp = conn.getresponse()
        return resp.status, resp.read(), resp.getheader("Content-Encoding")
    finally:
        conn.close()


def app_threads(text: str) -> float:
    return next(v for labels, v in samples(text)["container_threads"] if labels["id"] == APP)


def test_concurrent_scrapes_over_http_share_one_render_per_encoding():
    calls = []

    def source() -> Frame:
        calls.append(1)
        time.sleep(0.2)  # the scrapes pile up behind the collection
        return make_frame()

    exposition = Exposition(FrameCollector(SharedFrames(source, max_age_s=60)))
    with serving(exposition) as server:
        port = server.server_address[1]
        results: list[tuple[int, bytes, str | None]] = []
        lock = threading.Lock()

        def one(gz: bool) -> None:
            result = scrape(port, gz)
            with lock:
                results.append(result)

        threads = [threading.Thread(target=one, args=(i % 2 == 0,)) for i in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(results) == 20 and all(status == 200 for status, _, _ in results)
    assert len(calls) == 1
    assert exposition.renders == 1 and exposition.compressions == 1
    plain = {data for _, data, enc in results if enc is None}
    zipped = {data for _, data, enc in results if enc == "gzip"}
    assert len(plain) == 1 and len(zipped) == 1
    assert gzip.decompress(zipped.pop()) == plain.pop()


def test_a_new_collection_is_rendered_afresh_and_served_to_every_encoding():
    clock = Clock()
    frames = [frame_with_threads(7), frame_with_threads(9)]
    exposition = Exposition(FrameCollector(SharedFrames(lambda: frames.pop(0), max_age_s=1.0, clock=clock)),
                            clock=clock, prefetch=False)
    with serving(exposition) as server:
        port = server.server_address[1]
        first_plain, first_gz = scrape(port, False)[1], scrape(port, True)[1]
        assert app_threads(first_plain.decode()) == 7 and gzip.decompress(first_gz) == first_plain
        assert scrape(port, False)[1] == first_plain  # the same collection: the cached body
        clock.now += 1.5  # the collection is too old now
        second_gz = scrape(port, True)[1]
        second_plain = scrape(port, False)[1]
    assert app_threads(second_plain.decode()) == 9 and gzip.decompress(second_gz) == second_plain
    assert exposition.renders == 2 and exposition.compressions == 2


def test_gzip_made_alongside_the_text_is_the_text():
    families = []
    for i in range(40):  # several chunks for the compressing thread
        family = Family(f"m{i}_total", "counter", "help")
        for j in range(2000):
            family.add(f'id="/c{j}"', j * i)
        families.append(family)
    plain, zipped = render_encoded(families, True)
    assert zipped is not None and gzip.decompress(zipped) == plain
    assert render_encoded(families, False) == (plain, None)
    assert plain.count(b"\n") == 40 * 2002


def test_steady_bursts_are_forecast_and_back_to_back_scrapes_are_not():
    forecast = ScrapeForecast(max_age_s=1.0)
    for t in (0.0, 15.0, 30.0):
        assert forecast.observe(t, gzipped=True)
        assert not forecast.observe(t + 0.01, gzipped=True)  # the rest of the burst
    plan = forecast.plan(30.5)
    assert plan is not None and plan.due_at == 45.0
    assert 45.0 - 1.0 < plan.start_at < 45.0 and plan.gzipped and not plan.plain
    forecast.taken(plan)
    assert forecast.plan(44.95) is None  # one prefetch per burst
    assert forecast.observe(45.02, gzipped=False)
    assert forecast.plan(45.1) is not None

    uneven = ScrapeForecast(max_age_s=1.0)
    for t in (0.0, 7.0, 15.0):
        uneven.observe(t, gzipped=True)
    assert uneven.plan(15.1) is None

    back_to_back = ScrapeForecast(max_age_s=1.0)
    starts = [back_to_back.observe(i * 0.05, gzipped=True) for i in range(200)]
    assert starts.count(True) == 1 and back_to_back.plan(10.0) is None


def test_a_forecast_burst_is_answered_from_a_collection_made_before_it():
    clock = Clock()
    made: list[float] = []

    def source() -> Frame:
        made.append(clock.now)
        return frame_with_threads(len(made))

    frames = SharedFrames(source, max_age_s=1.0, clock=clock)
    exposition = Exposition(FrameCollector(frames), clock=clock)
    try:
        for burst in range(3):
            clock.now = 100.0 + 10 * burst
            for _ in range(3):
                exposition.render("gzip")
        assert len(made) == 3 and exposition.renders == 3 and exposition.prefetches == 0
        clock.now = 129.95  # within the lead of the burst due at 130
        deadline = time.monotonic() + 30
        while exposition.prefetches == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert exposition.prefetches == 1 and made[-1] == 129.95 and exposition.renders == 4
        clock.now = 130.0
        body = exposition.render("gzip")
        assert len(made) == 4 and exposition.renders == 4  # served what the prefetch made
        assert app_threads(gzip.decompress(body.data).decode()) == 4
    finally:
        exposition.close()
