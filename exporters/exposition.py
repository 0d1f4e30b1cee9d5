"""The /metrics body: rendered once per collection and encoding, shared by every scrape of that collection."""

from __future__ import annotations

import queue
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from .collector import Collected, FrameCollector, build_families
from .families import CONTENT_TYPE, Family, render
from .forecast import Plan, ScrapeForecast

GZIP_LEVEL = 1  # a scrape is read once: speed matters more than the last percent of size
GZIP_WBITS = 31  # zlib's gzip container (header and CRC), one member
CHUNK_BYTES = 256 * 1024  # rendered text handed to the compressing thread at a time
PREFETCH_POLL_S = 0.5  # a waiting prefetch looks at the clock at least this often


@dataclass(frozen=True)
class Body:
    content_type: str
    data: bytes
    gzipped: bool


class _Bodies:
    """The bodies of one collection: each encoding is made once, by the first scrape that asks for it."""

    def __init__(self, collected: Collected) -> None:
        self.collected = collected
        self.lock = threading.Lock()  # held while an encoding is being made: later scrapes wait for it
        self.plain: Body | None = None
        self.gzipped: Body | None = None


def render_encoded(families: list[Family], gzipped: bool) -> tuple[bytes, bytes | None]:
    """The text exposition of ``families``, and its gzip when asked.

    The gzip is made by a second thread while the text is still being rendered (zlib runs without the
    interpreter lock), so a compressed body costs about what the text alone does.
    """
    if not gzipped:
        return render(families), None
    chunks: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
    compressed: list[bytes] = []
    failed: list[BaseException] = []

    def compress() -> None:
        deflate = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, GZIP_WBITS)
        try:
            while (chunk := chunks.get()) is not None:
                compressed.append(deflate.compress(chunk))
            compressed.append(deflate.flush())
        except BaseException as exc:  # handed to the rendering thread, which raises it
            failed.append(exc)
            while chunks.get() is not None:
                pass

    worker = threading.Thread(target=compress, name="ctop-exposition-gzip", daemon=True)
    worker.start()
    parts: list[bytes] = []
    pending: list[bytes] = []
    pending_size = 0
    try:
        for family in families:
            text = render([family])
            parts.append(text)
            pending.append(text)
            pending_size += len(text)
            if pending_size >= CHUNK_BYTES:
                chunks.put(b"".join(pending))
                pending, pending_size = [], 0
        if pending:
            chunks.put(b"".join(pending))
    finally:
        chunks.put(None)
        worker.join()
    if failed:
        raise failed[0]
    return b"".join(parts), b"".join(compressed)


class Exposition:
    """Renders the collector's families in the text format (0.0.4), once per collection and encoding.

    Concurrent scrapes of one collection share its bodies: the first one that wants an encoding makes it and
    the others wait for it. While scrapes come at a steady interval longer than the collections' maximum age
    (Prometheus scrapes every 15 s), the next collection and its bodies are made just before the next scrape is
    due (see forecast.py), so that scrape is answered from them at once; data is never older than the maximum
    age either way.
    """

    def __init__(self, collector: FrameCollector, clock: Callable[[], float] = time.monotonic,
                 prefetch: bool = True) -> None:
        self.collector = collector
        self._clock = clock
        self._lock = threading.Lock()
        self._bodies: _Bodies | None = None
        self.renders = 0  # text expositions rendered (one per collection scraped, and per prefetch)
        self.compressions = 0  # gzip bodies made
        self.prefetches = 0  # collections made ahead of a forecast scrape
        self.forecast = ScrapeForecast(collector.frames.max_age_s)
        self._prefetch = prefetch and collector.frames.max_age_s > 0
        self._wake = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self._closed = False

    def render(self, accept_encoding: str = "") -> Body:
        """The body of one scrape (gzip when ``accept_encoding`` allows it)."""
        gz = "gzip" in (accept_encoding or "").lower()
        with self._lock:
            if self.forecast.observe(self._clock(), gz) and self._prefetch:
                self._start_prefetching()
                self._wake.notify_all()
        collected = self.collector.frames.get()
        return self._encode(self._bodies_of(collected), gz)

    def close(self) -> None:
        """Stop making bodies ahead of forecast scrapes."""
        with self._lock:
            self._closed = True
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _bodies_of(self, collected: Collected) -> _Bodies:
        with self._lock:
            bodies = self._bodies
            if bodies is None or bodies.collected.generation != collected.generation:
                if bodies is not None and bodies.collected.generation > collected.generation:
                    return _Bodies(collected)  # an older collection than the cached one: not kept
                bodies = _Bodies(collected)
                self._bodies = bodies  # only the newest collection's bodies are kept
            return bodies

    def _encode(self, bodies: _Bodies, gz: bool) -> Body:
        with bodies.lock:
            if bodies.plain is None or (gz and bodies.gzipped is None):
                if bodies.plain is None:
                    started = self._clock()
                    families = build_families(bodies.collected, self.collector.cgroup_filter)
                    plain, compressed = render_encoded(families, gz)
                    self.renders += 1
                    bodies.plain = Body(CONTENT_TYPE, plain, False)
                    with self._lock:  # how early a prefetch must start: its collection and this render
                        collecting = bodies.collected.health.collection_duration_s or 0.0
                        self.forecast.took(collecting + self._clock() - started)
                else:
                    compressed = zlib.compress(bodies.plain.data, GZIP_LEVEL, GZIP_WBITS)
                if compressed is not None:
                    self.compressions += 1
                    bodies.gzipped = Body(CONTENT_TYPE, compressed, True)
            body = bodies.gzipped if gz else bodies.plain
            assert body is not None
            return body

    def _start_prefetching(self) -> None:
        if self._thread is None and not self._closed:
            self._thread = threading.Thread(target=self._prefetch_loop, name="ctop-exposition-prefetch",
                                            daemon=True)
            self._thread.start()

    def _prefetch_loop(self) -> None:
        """Makes the collection and bodies of each forecast burst just before it is due."""
        while (plan := self._next_plan()) is not None:
            try:
                bodies = self._bodies_of(self.collector.frames.refresh())
                if plan.gzipped:
                    self._encode(bodies, True)
                if plan.plain:
                    self._encode(bodies, False)
            except Exception:  # a failed prefetch leaves the burst to collect as it would without one
                continue
            with self._lock:
                self.prefetches += 1

    def _next_plan(self) -> Plan | None:
        """Waits until a plan's start; None once closed."""
        with self._lock:
            while not self._closed:
                plan = self.forecast.plan(self._clock())
                if plan is None:
                    self._wake.wait()
                    continue
                wait = plan.start_at - self._clock()
                if wait > 0:
                    self._wake.wait(timeout=min(wait, PREFETCH_POLL_S))
                    continue
                self.forecast.taken(plan)
                return plan
            return None
