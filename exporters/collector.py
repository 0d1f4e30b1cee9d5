"""The Prometheus custom collector: one shared collection per scrape burst, families built from the latest Frame."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from ctop.model.frame import Frame

from .cadvisor import Labeled, cadvisor_families
from .ctop_families import Health, ebpf_families, health_families, info_families
from .families import Family, label_text, render
from .labels import CONTAINER_LABELS, CgroupFilter, container_labels, next_scrape

FrameSource = Callable[[], Frame]
BpfStats = Callable[[], tuple[dict[str, float], dict[str, float]]]


@dataclass(frozen=True)
class Collected:
    """The result a scrape uses: the latest Frame (None if none ever succeeded) and the health around it."""

    frame: Frame | None
    health: Health
    generation: int  # increases with every collection; equal generations mean the same data
    collected_at: float  # monotonic time of the collection


class SharedFrames:
    """Hands out the latest Frame; concurrent callers share one collection, and a Frame is reused for ``max_age_s``.

    ``source`` is the only thing that reads the system (the ctop collector). A failed collection keeps serving
    the previous Frame and is counted as an error.
    """

    def __init__(self, source: FrameSource, max_age_s: float = 1.0, bpf_stats: BpfStats | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._source = source
        self._max_age_s = max_age_s
        self._bpf_stats = bpf_stats
        self._clock = clock
        self._lock = threading.Lock()
        self._done = threading.Condition(self._lock)
        self._in_flight = False
        self._latest: Collected | None = None
        self._collections = 0
        self._errors = 0

    @property
    def max_age_s(self) -> float:
        """How long a collection is reused."""
        return self._max_age_s

    def latest(self) -> Collected | None:
        """The cached result without collecting (for the health endpoint)."""
        return self._latest

    def get(self) -> Collected:
        """The latest collection if it is younger than ``max_age_s``, else a new one (shared with concurrent calls)."""
        return self._get(force=False)

    def refresh(self) -> Collected:
        """A new collection now, whatever the age of the cached one (one at a time: a caller arriving while one
        is under way shares it)."""
        return self._get(force=True)

    def _get(self, force: bool) -> Collected:
        with self._lock:
            while True:
                cached = self._latest
                if not force and cached is not None and self._clock() - cached.collected_at < self._max_age_s:
                    return cached
                if not self._in_flight:
                    break
                self._done.wait()
                latest = self._latest
                if force and latest is not None and latest is not cached:
                    return latest  # the collection that was under way when called has just finished: share it
            self._in_flight = True
        try:
            result = self._collect(cached)
        finally:
            with self._lock:
                self._in_flight = False
                self._done.notify_all()
        return result

    def _collect(self, previous: Collected | None) -> Collected:
        start = self._clock()
        frame: Frame | None
        try:
            frame = self._source()
            ok = True
        except Exception:  # a failed collection must never fail the scrape; it is counted instead
            frame = previous.frame if previous is not None else None
            ok = False
        duration = self._clock() - start
        ns_per_event: dict[str, float] = {}
        map_fill: dict[str, float] = {}
        if self._bpf_stats is not None:
            try:
                ns_per_event, map_fill = self._bpf_stats()
            except Exception:
                ns_per_event, map_fill = {}, {}
        with self._lock:
            self._collections += 1
            self._errors += 0 if ok else 1
            health = Health(
                collection_duration_s=duration,
                collections_total=self._collections,
                collection_errors_total=self._errors,
                last_success=ok,
                bpf_ns_per_event=ns_per_event,
                bpf_map_fill=map_fill,
            )
            generation = (previous.generation + 1) if previous is not None else 1
            result = Collected(frame, health, generation, self._clock())
            self._latest = result
        return result


def select_rows(frame: Frame | None, cgroup_filter: CgroupFilter) -> list[Labeled]:
    """The exported cgroups with their escaped label text, sorted by id; a duplicate id is kept once."""
    if frame is None:
        return []
    out: list[Labeled] = []
    seen: set[str] = set()
    for path in sorted(frame.rows):
        row = frame.rows[path]
        if not cgroup_filter.accepts(row):
            continue
        values = container_labels(row)
        if values[0] in seen:  # two undecodable paths can clean to the same id
            continue
        seen.add(values[0])
        out.append((label_text(CONTAINER_LABELS, values), row))
    return out


def build_families(collected: Collected, cgroup_filter: CgroupFilter) -> list[Family]:
    """Every family of one scrape, from one collection."""
    next_scrape()
    frame = collected.frame
    rows = select_rows(frame, cgroup_filter)
    families: list[Family] = []
    if frame is not None:
        families.extend(cadvisor_families(frame, rows))
        families.extend(info_families(rows))
        families.extend(ebpf_families(rows, frame))
    families.extend(health_families(frame, collected.health, len(rows)))
    return families


class FrameCollector(Collector):
    """prometheus_client custom collector: fresh families at every scrape, no stored gauges, no timestamps.

    The HTTP server renders ``families()`` directly (fast path); ``collect()`` hands the same families to any
    prometheus_client registry, parsed back from that exposition so both can never disagree.
    """

    def __init__(self, frames: SharedFrames, cgroup_filter: CgroupFilter | None = None) -> None:
        self.frames = frames
        self.cgroup_filter = cgroup_filter or CgroupFilter()

    def describe(self) -> list[Metric]:
        return []  # registering must not trigger a collection

    def families(self) -> tuple[Collected, list[Family]]:
        collected = self.frames.get()
        return collected, build_families(collected, self.cgroup_filter)

    def collect(self) -> Iterator[Metric]:
        _, families = self.families()
        yield from text_string_to_metric_families(render(families).decode("utf-8"))
