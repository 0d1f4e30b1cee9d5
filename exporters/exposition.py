"""The /metrics body: rendered once per collection, shared by concurrent scrapes, gzipped when asked."""

from __future__ import annotations

import gzip
import threading
from dataclasses import dataclass

from .collector import FrameCollector, build_families
from .families import CONTENT_TYPE, render


@dataclass(frozen=True)
class Body:
    content_type: str
    data: bytes
    gzipped: bool


class Exposition:
    """Renders the collector's families in the text format (0.0.4), caching the body per collection."""

    def __init__(self, collector: FrameCollector) -> None:
        self.collector = collector
        self._lock = threading.Lock()
        self._cache: dict[tuple[int, bool], Body] = {}

    def render(self, accept_encoding: str = "") -> Body:
        gz = "gzip" in (accept_encoding or "").lower()
        collected = self.collector.frames.get()
        key = (collected.generation, gz)
        with self._lock:
            body = self._cache.get(key)
            if body is not None:
                return body
            plain_key = (collected.generation, False)
            plain = self._cache.get(plain_key)
            if plain is None:
                data = render(build_families(collected, self.collector.cgroup_filter))
                plain = Body(CONTENT_TYPE, data, False)
            body = Body(CONTENT_TYPE, gzip.compress(plain.data, compresslevel=1), True) if gz else plain
            # Keep only the newest collection's bodies.
            self._cache = {k: v for k, v in self._cache.items() if k[0] == collected.generation}
            self._cache[plain_key] = plain
            self._cache[key] = body
            return body
