"""The flight recorder's store: hourly SQLite segments of compressed frames, one writer, any number of readers.

Layout (docs/STORE.md describes it for other tools): a directory of ``seg-<start unix time>.sqlite`` files. Each
segment stands alone: it starts with a key frame, the layout and the identities of every cgroup (written again
only when they change), so retention can delete whole segments. Within a segment a frame is encoded against
the previous one (``codec.FrameCodec``); every ``KEYFRAME_EVERY`` frames there is a key frame, so reading any
instant decodes at most that many frames.
Frames carry a CRC32 of their bytes: a frame that does not check ends decoding up to the next key frame.
"""

from __future__ import annotations

import json
import os
import sqlite3
import struct
import zlib
from collections.abc import Iterator, Mapping, Set
from dataclasses import asdict, dataclass, field

from ..errors import CtopError
from ..model.frame import Identity
from ..model.sample import HostSample
from .codec import (
    ROW_BYTES,
    SLOTS,
    CgroupCounters,
    CorruptFrame,
    FrameCodec,
    counters_from_values,
    pack_row,
    unpack_row,
)

FORMAT_VERSION = 1
SEGMENT_SECONDS = 3600
KEYFRAME_EVERY = 300
_HEADER = struct.Struct("<dqqiqqI")  # wall time, monotonic ns, host CPU ns, CPUs, memory total, eBPF ns, rows
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS layouts (id INTEGER PRIMARY KEY, body BLOB NOT NULL, crc INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS frames (seq INTEGER PRIMARY KEY, time REAL NOT NULL, key INTEGER NOT NULL,
    layout INTEGER NOT NULL, header BLOB NOT NULL, body BLOB NOT NULL, crc INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS frames_time ON frames (time);
CREATE TABLE IF NOT EXISTS identities (seq INTEGER PRIMARY KEY, time REAL NOT NULL, path TEXT NOT NULL,
    inode INTEGER NOT NULL, body TEXT NOT NULL, crc INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, time REAL NOT NULL, type TEXT NOT NULL,
    workload TEXT NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_time ON events (time);
CREATE INDEX IF NOT EXISTS identities_time ON identities (time);
"""
NO_DATA_HEADER = -1
# What reading a damaged segment can raise: SQLite errors, and undecodable text in them or in their messages.
_READ_ERRORS = (sqlite3.Error, ValueError, struct.error)


class StoreError(CtopError):
    """A store that cannot be used at all; the message is one sentence for the user."""


@dataclass(frozen=True)
class Attributes:
    """What is recorded about a cgroup once per change: who it is, and its text-valued settings."""

    identity: Identity = field(default_factory=Identity)
    cpuset_cpus: str | None = None


@dataclass(frozen=True)
class FrameRecord:
    """One refresh as recorded: host figures, every cgroup's raw counters, and their attributes."""

    host: HostSample
    mode: str
    cgroups: Mapping[str, CgroupCounters]
    attributes: Mapping[str, Attributes]
    ebpf_monotonic_s: float | None = None


@dataclass(frozen=True)
class Event:
    """Something that happened to a workload, at a time, with its figures."""

    time: float
    type: str
    workload: str
    figures: Mapping[str, object] = field(default_factory=dict)


def segment_start(wall_time: float, segment_s: int = SEGMENT_SECONDS) -> int:
    return int(wall_time // segment_s * segment_s)


def segment_path(directory: str, start: int) -> str:
    return os.path.join(directory, f"seg-{start}.sqlite")


def list_segments(directory: str) -> list[tuple[int, str]]:
    """(start time, path) of every segment in the directory, oldest first."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    except OSError as e:
        raise StoreError(f"Cannot read the store directory {directory}: {e.strerror}.") from None
    out = []
    for name in names:
        if name.startswith("seg-") and name.endswith(".sqlite"):
            try:
                out.append((int(name[4:-7]), os.path.join(directory, name)))
            except ValueError:
                continue
    return sorted(out)


def _crc(*parts: bytes) -> int:
    crc = 0
    for part in parts:
        crc = zlib.crc32(part, crc)
    return crc


def _identity_crc(path: str, inode: int, body: str) -> int:
    return _crc(f"{path}\0{inode}\0{body}".encode("utf-8", "surrogateescape"))


def _ns(seconds: float | None) -> int:
    return NO_DATA_HEADER if seconds is None else round(seconds * 1e9)


def _attributes_json(attributes: Attributes) -> str:
    ident = asdict(attributes.identity)
    return json.dumps({"identity": ident, "cpuset_cpus": attributes.cpuset_cpus}, separators=(",", ":"),
                      sort_keys=True)


def _attributes_from_json(text: str) -> Attributes:
    data = json.loads(text)
    ident = data.get("identity") or {}
    known = {k: v for k, v in ident.items() if k in Identity.__dataclass_fields__}
    return Attributes(identity=Identity(**known), cpuset_cpus=data.get("cpuset_cpus"))


_NO_ATTRIBUTES = Attributes()


class StoreWriter:
    """Appends frames and events. One per store directory (a lock file keeps a second writer out)."""

    def __init__(self, directory: str, *, retain_s: float = 7 * 86400, max_bytes: int = 1 << 30,
                 segment_s: int = SEGMENT_SECONDS) -> None:
        self.directory = directory
        self.retain_s = retain_s
        self.max_bytes = max_bytes
        self.segment_s = segment_s
        try:
            os.makedirs(directory, exist_ok=True)
        except OSError as e:
            raise StoreError(f"Cannot create the store directory {directory}: {e.strerror}.") from None
        self._lock_fd = self._lock()
        self._db: sqlite3.Connection | None = None
        self._segment = -1
        self._codec = FrameCodec()
        self._frames_since_key = 0
        self._layout: tuple[tuple[str, int], ...] | None = None  # None: write the next frame's layout
        self._layout_id = 0
        self._attributes: dict[tuple[str, int], Attributes] = {}
        self.frames_written = 0
        self.frames_dropped = 0
        self.last_error: str = ""

    def _lock(self) -> int:
        import fcntl

        fd = os.open(os.path.join(self.directory, "writer.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise StoreError(f"Another ctop is already recording into {self.directory}.") from None
        return fd

    def close(self) -> None:
        self._close_segment()
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def _close_segment(self) -> None:
        if self._db is not None:
            try:
                self._db.execute("PRAGMA journal_mode=DELETE")  # readers without write access need no -shm
            except sqlite3.Error:
                pass
            self._db.close()
            self._db = None

    def _open_segment(self, start: int) -> sqlite3.Connection:
        self._close_segment()
        db = sqlite3.connect(segment_path(self.directory, start), isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA page_size=65536")  # frames of a few KiB fill pages instead of overflowing them
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
        version = db.execute("SELECT value FROM meta WHERE key='format_version'").fetchone()
        if version is not None and int(version[0]) != FORMAT_VERSION:
            db.close()
            raise StoreError(f"Segment {start} of {self.directory} has format {version[0]}; "
                             f"this ctop writes format {FORMAT_VERSION}: record into another directory.")
        db.execute("INSERT OR IGNORE INTO meta VALUES ('format_version', ?), ('slots', ?), ('start', ?)",
                   (str(FORMAT_VERSION), json.dumps(SLOTS), str(start)))
        self._db = db
        self._segment = start
        self._reset_stream()
        self._layout_id = db.execute("SELECT COALESCE(MAX(id), 0) FROM layouts").fetchone()[0]
        self._apply_retention(start)
        return db

    def _reset_stream(self) -> None:
        """The next frame is a key frame that repeats layout and attributes."""
        self._codec.reset()
        self._frames_since_key = KEYFRAME_EVERY
        self._layout = None
        self._attributes = {}

    def append(self, record: FrameRecord) -> bool:
        """Write one frame; False (and the reason in ``last_error``) when it could not be written."""
        try:
            start = segment_start(record.host.wall_time_s, self.segment_s)
            if start != self._segment or self._db is None:
                self._open_segment(start)
            assert self._db is not None
            self._write(self._db, record)
        except (sqlite3.Error, OSError) as e:
            self.frames_dropped += 1
            self.last_error = str(e)
            self._reset_stream()
            if self._db is not None and self._db.in_transaction:
                try:
                    self._db.execute("ROLLBACK")
                except sqlite3.Error:
                    self._close_segment()
            return False
        self.frames_written += 1
        self.last_error = ""
        return True

    def _write(self, db: sqlite3.Connection, record: FrameRecord) -> None:
        time = record.host.wall_time_s
        keys = tuple((path, c.sample.inode) for path, c in record.cgroups.items())
        key_frame = self._frames_since_key >= KEYFRAME_EVERY
        db.execute("BEGIN")
        if keys != self._layout:
            body = zlib.compress(json.dumps(keys, separators=(",", ":")).encode())
            layout_id = self._layout_id + 1
            db.execute("INSERT INTO layouts VALUES (?, ?, ?)", (layout_id, body, _crc(body)))
        else:
            layout_id = self._layout_id
        attributes: dict[tuple[str, int], Attributes] = {}
        previous = self._attributes
        for path, inode in keys:
            current = record.attributes.get(path) or _NO_ATTRIBUTES
            if previous.get((path, inode)) != current:
                text = _attributes_json(current)
                db.execute("INSERT INTO identities (time, path, inode, body, crc) VALUES (?, ?, ?, ?, ?)",
                           (time, path, inode, text, _identity_crc(path, inode, text)))
            attributes[(path, inode)] = current
        if key_frame:
            self._codec.reset()
        rows = b"".join([pack_row(c) for c in record.cgroups.values()])
        host = record.host
        header = _HEADER.pack(time, _ns(host.monotonic_s), host.cpu_time_ns if host.cpu_time_ns is not None else -1,
                              host.online_cpus, host.memory_total_bytes if host.memory_total_bytes is not None
                              else -1, _ns(record.ebpf_monotonic_s), len(keys))
        body = self._codec.encode(keys, rows)  # on failure append() resets the codec: a key frame follows
        db.execute("INSERT INTO frames (time, key, layout, header, body, crc) VALUES (?, ?, ?, ?, ?, ?)",
                   (time, int(key_frame), layout_id, header, body, _crc(header, body)))
        db.execute("INSERT OR REPLACE INTO meta VALUES ('mode', ?)", (record.mode,))
        db.execute("COMMIT")
        self._layout, self._layout_id = keys, layout_id
        self._attributes = attributes
        self._frames_since_key = 1 if key_frame else self._frames_since_key + 1

    def add_event(self, event: Event) -> bool:
        """Record one event in the current segment (opening one if needed)."""
        try:
            start = segment_start(event.time, self.segment_s)
            db = self._db if self._db is not None and start == self._segment else self._open_segment(start)
            db.execute("INSERT INTO events (time, type, workload, body) VALUES (?, ?, ?, ?)",
                       (event.time, event.type, event.workload, json.dumps(dict(event.figures), default=str)))
        except (sqlite3.Error, OSError) as e:
            self.last_error = str(e)
            return False
        return True

    def _apply_retention(self, current: int) -> None:
        segments = list_segments(self.directory)
        oldest_allowed = current - self.retain_s
        keep = []
        for i, (start, path) in enumerate(segments):
            end = segments[i + 1][0] if i + 1 < len(segments) else None
            if start != current and end is not None and end <= oldest_allowed:
                _remove_segment(path)
            else:
                keep.append((start, path))
        total = sum(_segment_bytes(p) for _, p in keep)
        for start, path in keep:
            if total <= self.max_bytes or start == current:
                break
            total -= _segment_bytes(path)
            _remove_segment(path)


def _segment_bytes(path: str) -> int:
    size = 0
    for suffix in ("", "-wal", "-shm"):
        try:
            size += os.stat(path + suffix).st_size
        except OSError:
            pass
    return size


def _remove_segment(path: str) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        try:
            os.unlink(path + suffix)
        except FileNotFoundError:
            pass


@dataclass(frozen=True)
class RecordedFrame:
    """One frame read back: what was recorded, keyed by cgroup path."""

    host: HostSample
    mode: str
    cgroups: dict[str, CgroupCounters]
    attributes: dict[str, Attributes]
    ebpf_monotonic_s: float | None


class StoreReader:
    """Reads a store, also while its writer is appending. Damage is skipped and counted in ``problems``."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        if not os.path.isdir(directory):
            raise StoreError(f"No ctop recording in {directory}: start one with 'ctop record --dir {directory}'.")
        self.problems: list[str] = []
        self._problem_keys: set[str] = set()
        self._dbs: dict[str, sqlite3.Connection] = {}

    def close(self) -> None:
        for db in self._dbs.values():
            db.close()
        self._dbs.clear()

    def _db(self, path: str) -> sqlite3.Connection | None:
        db = self._dbs.get(path)
        if db is not None:
            return db
        try:
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
            db.text_factory = lambda b: b.decode("utf-8", "surrogateescape")
            version = db.execute("SELECT value FROM meta WHERE key='format_version'").fetchone()
        except _READ_ERRORS as e:
            self._problem(f"Skipped {path}: {e}.", path)
            return None
        if version is None:
            db.close()
            return None
        if int(version[0]) > FORMAT_VERSION:
            db.close()
            raise StoreError(f"{path} was written by a newer ctop (store format {version[0]}, this ctop reads "
                             f"up to {FORMAT_VERSION}): replay it with that version.")
        self._dbs[path] = db
        return db

    def _problem(self, text: str, where: str = "") -> None:
        """Remember one sentence per damaged file (the first), so damage is said once, not once per frame."""
        key = where or text
        if key not in self._problem_keys:
            self._problem_keys.add(key)
            self.problems.append(text)

    def segments(self) -> list[tuple[int, str]]:
        return list_segments(self.directory)

    def time_range(self) -> tuple[float, float] | None:
        """First and last recorded frame time; None for an empty store."""
        first = last = None
        for _, path in self.segments():
            db = self._db(path)
            if db is None:
                continue
            try:
                lo, hi = db.execute("SELECT MIN(time), MAX(time) FROM frames").fetchone()
            except _READ_ERRORS as e:
                self._problem(f"Skipped {path}: {e}.", path)
                continue
            if lo is None:
                continue
            first = lo if first is None else min(first, lo)
            last = hi if last is None else max(last, hi)
        return None if first is None or last is None else (first, last)

    def frames(self, start: float, end: float, paths: Set[str] | None = None) -> Iterator[RecordedFrame]:
        """Every frame with ``start <= time <= end``, oldest first; only the cgroups in ``paths`` if given."""
        segments = self.segments()
        for i, (seg_start, path) in enumerate(segments):
            if seg_start > end:
                break
            if i + 1 < len(segments) and segments[i + 1][0] <= start:
                continue  # the next segment starts before the range: nothing here is in it
            db = self._db(path)
            if db is not None:
                yield from self._segment_frames(db, path, start, end, paths)

    def frame_at(self, when: float) -> RecordedFrame | None:
        """The last frame recorded at or before ``when``; None when there is none."""
        for seg_start, path in reversed(self.segments()):
            if seg_start > when:
                continue
            db = self._db(path)
            if db is None:
                continue
            try:
                row = db.execute("SELECT time FROM frames WHERE time <= ? ORDER BY time DESC LIMIT 1",
                                 (when,)).fetchone()
                start = None if row is None else row[0]
            except _READ_ERRORS as e:  # a damaged index: read the segment in write order instead
                self._problem(f"Skipped damaged parts of {path}: {e}.", path)
                start = float("-inf")
            if start is None:
                continue
            last = None
            for last in self._segment_frames(db, path, start, when):  # noqa: B007 - the last one is wanted
                pass
            if last is not None:
                return last
        return None

    def neighbours(self, when: float) -> tuple[float | None, float | None]:
        """The frame times just before and just after ``when`` (None at either end)."""
        before = after = None
        for _, path in self.segments():
            db = self._db(path)
            if db is None:
                continue
            try:
                b = db.execute("SELECT MAX(time) FROM frames WHERE time < ?", (when,)).fetchone()[0]
                a = db.execute("SELECT MIN(time) FROM frames WHERE time > ?", (when,)).fetchone()[0]
            except _READ_ERRORS:
                continue
            if b is not None and (before is None or b > before):
                before = b
            if a is not None and (after is None or a < after):
                after = a
        return before, after

    def events(self, start: float, end: float) -> Iterator[Event]:
        for _, path in self.segments():
            db = self._db(path)
            if db is None:
                continue
            try:
                rows = db.execute("SELECT time, type, workload, body FROM events WHERE time >= ? AND time <= ? "
                                  "ORDER BY time", (start, end)).fetchall()
            except _READ_ERRORS as e:
                self._problem(f"Skipped events of {path}: {e}.", path)
                continue
            for time, kind, workload, body in rows:
                try:
                    figures = json.loads(body)
                except ValueError:
                    self._problem(f"Skipped a damaged event in {path}.", path)
                    continue
                yield Event(time, kind, workload, figures if isinstance(figures, dict) else {})

    def _first(self, db: sqlite3.Connection, path: str, sql: str, params: tuple[object, ...]) -> tuple | None:
        """The first row of a query, or None (and a notice) when the segment is damaged there."""
        try:
            row: tuple | None = db.execute(sql, params).fetchone()
            return row
        except _READ_ERRORS as e:
            self._problem(f"Skipped damaged parts of {path}: {e}.", path)
            return None

    def _segment_frames(self, db: sqlite3.Connection, path: str, start: float, end: float,
                        paths: Set[str] | None = None) -> Iterator[RecordedFrame]:
        """Decode from the key frame before ``start`` up to ``end``; damage skips to the next key frame, and a
        damaged index or table ends the segment where the damage starts (frames are read in write order)."""
        key_row = self._first(db, path, "SELECT seq FROM frames WHERE key = 1 AND time <= ? ORDER BY seq DESC "
                                         "LIMIT 1", (start,))
        first = key_row[0] if key_row is not None else 0
        mode_row = self._first(db, path, "SELECT value FROM meta WHERE key='mode'", ())
        pending = self._identity_rows(db, path, end)  # written at the segment's start and on every change
        try:
            cursor = db.execute("SELECT seq, time, key, layout, header, body, crc FROM frames NOT INDEXED "
                                "WHERE seq >= ? ORDER BY seq", (first,))
        except _READ_ERRORS as e:
            self._problem(f"Skipped {path}: {e}.", path)
            return
        mode = mode_row[0] if mode_row else ""
        codec = FrameCodec()
        layouts: dict[int, list[tuple[str, int]]] = {}
        attributes: dict[tuple[str, int], Attributes] = {}
        applied = 0
        synced = False
        try:
            for _seq, time, key, layout_id, header, body, crc in cursor:
                if time > end:
                    break
                if key:
                    codec.reset()
                    synced = True
                if not synced:
                    continue
                if _crc(header, body) != crc:
                    self._problem(f"Skipped damaged frames in {path} from {time:.0f}.", path)
                    synced = False
                    continue
                keys = layouts.get(layout_id)
                if keys is None:
                    keys = self._layout(db, layout_id)
                    if keys is None:
                        self._problem(f"Skipped damaged frames in {path} from {time:.0f}.", path)
                        synced = False
                        continue
                    layouts[layout_id] = keys
                try:
                    rows = codec.decode(keys, body)
                except CorruptFrame:
                    self._problem(f"Skipped damaged frames in {path} from {time:.0f}.", path)
                    synced = False
                    continue
                while applied < len(pending) and pending[applied][0] <= time:
                    self._apply_identity(attributes, pending[applied])
                    applied += 1
                if time < start:
                    continue
                yield self._frame(header, mode, keys, rows, attributes, paths)
        except _READ_ERRORS as e:
            self._problem(f"Skipped the rest of {path}: {e}.", path)

    def _layout(self, db: sqlite3.Connection, layout_id: int) -> list[tuple[str, int]] | None:
        row = db.execute("SELECT body, crc FROM layouts WHERE id = ?", (layout_id,)).fetchone()
        if row is None or _crc(row[0]) != row[1]:
            return None
        try:
            return [(str(p), int(i)) for p, i in json.loads(zlib.decompress(row[0]))]
        except (ValueError, TypeError, zlib.error):
            return None

    def _identity_rows(self, db: sqlite3.Connection, path: str,
                       end: float) -> list[tuple[float, str, int, str, int]]:
        """The identity records of a segment up to ``end``, in the order written (those before any damage)."""
        rows: list[tuple[float, str, int, str, int]] = []
        try:
            for row in db.execute("SELECT time, path, inode, body, crc FROM identities NOT INDEXED ORDER BY seq"):
                if row[0] > end:
                    break
                rows.append(row)
        except _READ_ERRORS as e:
            self._problem(f"Skipped damaged parts of {path}: {e}.", path)
        return rows

    def _apply_identity(self, attributes: dict[tuple[str, int], Attributes],
                        row: tuple[float, str, int, str, int]) -> None:
        _, path, inode, body, crc = row
        try:
            if _identity_crc(path, inode, body) != crc:
                raise ValueError("checksum")
            attributes[(path, inode)] = _attributes_from_json(body)
        except (ValueError, TypeError, AttributeError):
            self._problem("Skipped a damaged identity record: some cgroups show without names.")

    def _frame(self, header: bytes, mode: str, keys: list[tuple[str, int]], block: bytes,
               attributes: dict[tuple[str, int], Attributes], paths: Set[str] | None) -> RecordedFrame:
        wall, mono_ns, cpu_ns, cpus, mem_total, ebpf_ns, _n = _HEADER.unpack(header)
        host = HostSample(monotonic_s=mono_ns / 1e9, wall_time_s=wall, cpu_time_ns=None if cpu_ns < 0 else cpu_ns,
                          online_cpus=cpus, memory_total_bytes=None if mem_total < 0 else mem_total)
        cgroups: dict[str, CgroupCounters] = {}
        attrs: dict[str, Attributes] = {}
        for i, (path, inode) in enumerate(keys):
            if paths is not None and path not in paths:
                continue
            row = block[i * ROW_BYTES:(i + 1) * ROW_BYTES]
            a = attributes.get((path, inode))
            if a is None:
                self._problem("Skipped a damaged identity record: some cgroups show without names.")
                a = Attributes()
            cgroups[path] = counters_from_values(path, inode, unpack_row(row), a.cpuset_cpus)
            attrs[path] = a
        return RecordedFrame(host=host, mode=mode, cgroups=cgroups, attributes=attrs,
                             ebpf_monotonic_s=None if ebpf_ns == NO_DATA_HEADER else ebpf_ns / 1e9)
