"""The flight recorder's store: hourly append-only segment files of checksummed records, one writer, many readers.

Layout (docs/STORE.md is the contract): a directory of ``seg-<start unix time>.ctr`` files. A segment is a
sequence of records, each a fixed header (magic, type, flags, length, time, CRC-32) and a payload. Each segment
stands alone: a writer starts it (and every later session in it) with the layout, the identities of every cgroup
and a key frame, and writes layouts and identities again only when they change, so retention deletes whole
segments. Frames are encoded against the previous one (``codec.FrameCodec``); every ``KEYFRAME_EVERY`` frames
there is a key frame, so reading any instant decodes at most that many frames.

Damage is contained: a record whose CRC does not match is skipped and reading resumes at the next record that
checks (frames at the next key frame); a file cut short is read up to the cut. ``kill -9`` of the writer loses at
most the record being written; the next writer cuts that partial record off before appending.
"""

from __future__ import annotations

import bisect
import fcntl
import json
import mmap
import os
import struct
import zlib
from collections.abc import Iterator, Mapping, Set
from dataclasses import asdict, dataclass, field

from ..errors import CtopError
from ..model.events import Event
from ..model.frame import Identity
from ..model.sample import HostSample
from .codec import (
    CURRENT_SLOTS,
    SLOTS,
    CgroupCounters,
    CorruptFrame,
    FrameCodec,
    SlotMap,
    counters_from_values,
    pack_row,
)

FORMAT_VERSION = 1
SEGMENT_SECONDS = 3600
KEYFRAME_EVERY = 300
SUFFIX = ".ctr"
MAGIC = 0x31525443  # "CTR1" little-endian
# magic, type, flags, reserved, payload length, time, CRC-32 of the payload, CRC-32 of this header from type to
# the payload's CRC. Scanning checks headers only; a payload is checked when it is used.
_RECORD = struct.Struct("<IBBHIdII")
_HEADER_CRC_SPAN = slice(4, _RECORD.size - 4)
_MAGIC_BYTES = struct.pack("<I", MAGIC)
META, LAYOUT, IDENTITY, FRAME, EVENT = 1, 2, 3, 4, 5
KEY = 1  # flag: a key frame
# frame number in its stream, layout id, wall time, monotonic ns, host CPU ns, CPUs, memory total, eBPF ns, rows
_FRAME_HEADER = struct.Struct("<IIdqqiqqI")
MAX_PAYLOAD = 1 << 30
NO_DATA = -1


class StoreError(CtopError):
    """A store that cannot be used at all; the message is one sentence for the user."""


@dataclass(frozen=True)
class Attributes:
    """What is recorded about a cgroup once per change: who it is, and its text-valued settings."""

    identity: Identity = field(default_factory=Identity)
    cpuset_cpus: str | None = None


@dataclass(frozen=True)
class FrameRecord:
    """One refresh as recorded (and as read back): host figures, every cgroup's raw counters, and their attributes."""

    host: HostSample
    mode: str
    cgroups: Mapping[str, CgroupCounters]
    attributes: Mapping[str, Attributes]
    ebpf_monotonic_s: float | None = None


_NO_ATTRIBUTES = Attributes()


def segment_start(wall_time: float, segment_s: int = SEGMENT_SECONDS) -> int:
    return int(wall_time // segment_s * segment_s)


def segment_path(directory: str, start: int) -> str:
    return os.path.join(directory, f"seg-{start}{SUFFIX}")


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
        if name.startswith("seg-") and name.endswith(SUFFIX):
            try:
                out.append((int(name[4:-len(SUFFIX)]), os.path.join(directory, name)))
            except ValueError:
                continue
    return sorted(out)


def encode_record(kind: int, time: float, payload: bytes, flags: int = 0) -> bytes:
    """One record: its header (with the payload's CRC and its own) and the payload."""
    head = _RECORD.pack(MAGIC, kind, flags, 0, len(payload), time, zlib.crc32(payload), 0)
    return head[:-4] + struct.pack("<I", zlib.crc32(head[_HEADER_CRC_SPAN])) + payload


def _ns(seconds: float | None) -> int:
    return NO_DATA if seconds is None else round(seconds * 1e9)


def _json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str).encode()


def _attributes_value(attributes: Attributes) -> dict[str, object]:
    return {"identity": asdict(attributes.identity), "cpuset_cpus": attributes.cpuset_cpus}


def _attributes_from(data: object) -> Attributes:
    if not isinstance(data, dict):
        raise ValueError("not an object")
    ident = data.get("identity") or {}
    if not isinstance(ident, dict):
        raise ValueError("identity is not an object")
    known = {k: v for k, v in ident.items() if k in Identity.__dataclass_fields__}
    cpuset = data.get("cpuset_cpus")
    return Attributes(identity=Identity(**known), cpuset_cpus=cpuset if isinstance(cpuset, str) else None)


@dataclass(frozen=True, slots=True)
class Entry:
    """Where one record of a segment is: its type, flags, time, and payload offset and length."""

    kind: int
    flags: int
    time: float
    offset: int  # of the payload
    length: int
    crc: int  # of the payload


def scan(data: bytes | mmap.mmap, start: int = 0) -> tuple[list[Entry], int, bool]:
    """The records of a segment from ``start``: (entries, end of the last whole record, damage seen).

    A header whose CRC does not match counts as damage: scanning goes on at the next magic number whose header
    checks. Payloads are checked when they are read (``payload``). An incomplete record at the very end is not
    damage (it may be being written): the returned end stops before it.
    """
    entries: list[Entry] = []
    size = len(data)
    offset = start
    good_end = start
    damaged = False
    header = _RECORD.size
    crc32, unpack = zlib.crc32, _RECORD.unpack_from
    while offset + header <= size:
        magic, kind, flags, _, length, time, crc, header_crc = unpack(data, offset)
        if magic == MAGIC and crc32(data[offset + 4:offset + header - 4]) == header_crc:
            end = offset + header + length
            if end > size:
                break  # the last record is not all there (yet)
            entries.append(Entry(kind, flags, time, offset + header, length, crc))
            offset = good_end = end
            continue
        damaged = True
        found = data.find(_MAGIC_BYTES, offset + 1)
        if found < 0:
            offset = size
            break
        offset = found
    return entries, good_end, damaged


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
        self._fd = -1
        self._segment = -1
        self._size = 0
        self._codec = FrameCodec()
        self._frames_since_key = KEYFRAME_EVERY
        self._frame_number = 0  # within the stream since the last key frame: a reader checks they follow
        self._layout: tuple[tuple[str, int], ...] | None = None
        self._layout_id = 0
        self._attributes: dict[tuple[str, int], Attributes] = {}
        self._mode = ""
        self.frames_written = 0
        self.frames_dropped = 0
        self.last_error = ""

    def _lock(self) -> int:
        try:
            fd = os.open(os.path.join(self.directory, "writer.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise StoreError(f"Cannot record into {self.directory}: {e.strerror}.") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise StoreError(f"Another ctop is already recording into {self.directory}.") from None
        return fd

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def _reset_stream(self) -> None:
        """The next frame is a key frame that repeats layout and attributes."""
        self._codec.reset()
        self._frames_since_key = KEYFRAME_EVERY
        self._layout = None
        self._attributes = {}
        self._mode = ""

    def _open_segment(self, start: int) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        path = segment_path(self.directory, start)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            with open(path, "rb") as f:
                data = f.read()
            _, end, _ = scan(data)
            if end < len(data):
                os.ftruncate(fd, end)  # a record cut short by a crash (or damage past the last good record)
            os.lseek(fd, end, os.SEEK_SET)
        except BaseException:
            os.close(fd)
            raise
        self._fd, self._segment, self._size = fd, start, end
        self._reset_stream()
        self._layout_id = 0
        self._apply_retention(start)

    def _write(self, data: bytes) -> None:
        """Append ``data`` whole, or leave the file as it was (a failed write is cut off again)."""
        try:
            written = os.write(self._fd, data)
            if written != len(data):
                raise OSError(28, "No space left on device")
        except OSError:
            try:
                os.ftruncate(self._fd, self._size)
                os.lseek(self._fd, self._size, os.SEEK_SET)
            except OSError:
                pass
            raise
        self._size += len(data)

    def append(self, record: FrameRecord) -> bool:
        """Write one frame; False (and the reason in ``last_error``) when it could not be written."""
        try:
            start = segment_start(record.host.wall_time_s, self.segment_s)
            if start != self._segment or self._fd < 0:
                self._open_segment(start)
            self._write(self._encode(record))
        except OSError as e:
            self.frames_dropped += 1
            self.last_error = f"{e.strerror or e}"
            self._reset_stream()
            return False
        self.frames_written += 1
        self.last_error = ""
        return True

    def _encode(self, record: FrameRecord) -> bytes:
        """The records of one frame (meta, layout, identities as needed), advancing the stream's state."""
        time = record.host.wall_time_s
        out: list[bytes] = []
        if record.mode != self._mode:
            out.append(encode_record(META, time, _json({"format_version": FORMAT_VERSION, "slots": SLOTS,
                                                        "mode": record.mode, "segment_s": self.segment_s})))
        keys = tuple((path, c.sample.inode) for path, c in record.cgroups.items())
        if keys != self._layout:
            self._layout_id += 1
            out.append(encode_record(LAYOUT, time, struct.pack("<I", self._layout_id)
                                     + zlib.compress(_json(keys))))
        attributes: dict[tuple[str, int], Attributes] = {}
        previous = self._attributes
        for key in keys:
            current = record.attributes.get(key[0]) or _NO_ATTRIBUTES
            if previous.get(key) != current:
                out.append(encode_record(IDENTITY, time, _json([key[0], key[1], _attributes_value(current)])))
            attributes[key] = current
        key_frame = self._frames_since_key >= KEYFRAME_EVERY
        if key_frame:
            self._codec.reset()
        block = b"".join([pack_row(c) for c in record.cgroups.values()])
        host = record.host
        if key_frame:
            self._frame_number = 0
        cpu_ns = NO_DATA if host.cpu_time_ns is None else host.cpu_time_ns
        memory = NO_DATA if host.memory_total_bytes is None else host.memory_total_bytes
        header = _FRAME_HEADER.pack(self._frame_number, self._layout_id, time, _ns(host.monotonic_s), cpu_ns,
                                    host.online_cpus, memory, _ns(record.ebpf_monotonic_s), len(keys))
        out.append(encode_record(FRAME, time, header + self._codec.encode(keys, block), KEY if key_frame else 0))
        # On a failed write append() resets all of this: the next frame starts a new key frame.
        self._mode, self._layout, self._attributes = record.mode, keys, attributes
        self._frames_since_key = 1 if key_frame else self._frames_since_key + 1
        self._frame_number += 1
        return b"".join(out)

    def add_event(self, event: Event) -> bool:
        """Record one event in the current segment (opening one if needed)."""
        try:
            start = segment_start(event.time, self.segment_s)
            if start != self._segment or self._fd < 0:
                self._open_segment(start)
            self._write(encode_record(EVENT, event.time, _json({"type": event.type, "workload": event.workload,
                                                                "figures": dict(event.figures)})))
        except OSError as e:
            self.last_error = f"{e.strerror or e}"
            return False
        return True

    def _apply_retention(self, current: int) -> None:
        segments = list_segments(self.directory)
        oldest_allowed = current - self.retain_s
        keep = []
        for i, (start, path) in enumerate(segments):
            end = segments[i + 1][0] if i + 1 < len(segments) else None
            if start != current and end is not None and end <= oldest_allowed:
                _remove(path)
            else:
                keep.append((start, path))
        total = sum(_size(p) for _, p in keep)
        for start, path in keep:
            if total <= self.max_bytes or start == current:
                break
            total -= _size(path)
            _remove(path)


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


@dataclass
class _Segment:
    """A segment as a reader knows it: its bytes (mapped) and the records found in them so far."""

    path: str
    data: bytes | mmap.mmap
    entries: list[Entry]
    frame_times: list[float]  # time of each FRAME entry, in file order
    frame_index: list[int]  # position in ``entries`` of each FRAME entry
    end: int
    damaged: bool
    version: int = 0


class StoreReader:
    """Reads a store, also while its writer is appending. Damage is skipped and said once per file."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        if not os.path.isdir(directory):
            raise StoreError(f"No ctop recording in {directory}: start one with 'ctop record --dir {directory}'.")
        self.problems: list[str] = []
        self._problem_paths: set[str] = set()
        self._segments: dict[str, _Segment] = {}
        self._wanted_cache: tuple[list[tuple[str, int]], Set[str], list[tuple[int, tuple[str, int]]]] | None = None

    def close(self) -> None:
        for seg in self._segments.values():
            if isinstance(seg.data, mmap.mmap):
                seg.data.close()
        self._segments.clear()

    def _problem(self, path: str, text: str) -> None:
        if path not in self._problem_paths:
            self._problem_paths.add(path)
            self.problems.append(text)

    def segments(self) -> list[tuple[int, str]]:
        return list_segments(self.directory)

    def _open(self, path: str) -> _Segment | None:
        """The segment at ``path``, scanned up to its current end (re-scanned from where it was if it grew)."""
        seg = self._segments.get(path)
        try:
            size = os.path.getsize(path)
        except OSError:
            return None
        if seg is not None and len(seg.data) == size:
            return seg
        try:
            with open(path, "rb") as f:
                data: bytes | mmap.mmap = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        except (OSError, ValueError) as e:
            self._problem(path, f"Skipped {path}: {getattr(e, 'strerror', None) or e}.")
            return None
        start = seg.end if seg is not None else 0
        entries, end, damaged = scan(data, start)
        if seg is None:
            seg = _Segment(path, data, [], [], [], 0, False)
        elif isinstance(seg.data, mmap.mmap):
            seg.data.close()
        seg.data, seg.end, seg.damaged = data, end, seg.damaged or damaged
        for entry in entries:
            if entry.kind == FRAME:
                seg.frame_times.append(entry.time)
                seg.frame_index.append(len(seg.entries))
            elif entry.kind == META:
                self._check_version(seg, entry)
            seg.entries.append(entry)
        if damaged:
            self._problem(path, f"Skipped damaged records in {path}; the rest of it was read.")
        elif end < len(data) and not self._being_written(path):
            self._problem(path, f"{path} ends in a partly written record (cut short or the recorder died "
                                "while writing): read up to it.")
        self._segments[path] = seg
        return seg

    def _being_written(self, path: str) -> bool:
        """Whether a recorder holds the store's lock and ``path`` is its newest segment (its tail may be moving)."""
        segments = self.segments()
        if not segments or segments[-1][1] != path:
            return False
        try:
            fd = os.open(os.path.join(self.directory, "writer.lock"), os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return True
        finally:
            os.close(fd)  # also drops the shared lock if it was taken
        return False

    def _payload(self, seg: _Segment, entry: Entry, what: str) -> bytes | None:
        """The payload of ``entry`` if its CRC checks; None (said once per file) if it does not."""
        payload = seg.data[entry.offset:entry.offset + entry.length]
        if zlib.crc32(payload) != entry.crc:
            self._problem(seg.path, f"Skipped damaged {what} in {seg.path}; the rest of it was read.")
            return None
        return payload

    def _check_version(self, seg: _Segment, entry: Entry) -> None:
        payload = self._payload(seg, entry, "records")
        if payload is None:
            return
        try:
            meta = json.loads(payload)
            version = int(meta.get("format_version", 0))
        except (ValueError, TypeError, AttributeError):
            return
        if version > FORMAT_VERSION:
            raise StoreError(f"{seg.path} was written by a newer ctop (store format {version}, this ctop reads up "
                             f"to {FORMAT_VERSION}): replay it with that version.")
        seg.version = max(seg.version, version)

    def time_range(self) -> tuple[float, float] | None:
        """First and last recorded frame time; None for an empty store."""
        times = [t for _, path in self.segments() if (seg := self._open(path)) for t in seg.frame_times[:1]]
        last = [seg.frame_times[-1] for _, path in self.segments() if (seg := self._open(path)) and seg.frame_times]
        return (min(times), max(last)) if times and last else None

    def _overlapping(self, start: float, end: float) -> Iterator[_Segment]:
        """The segments that can hold records from ``start`` to ``end``, oldest first (the others are not read)."""
        segments = self.segments()
        for i, (seg_start, path) in enumerate(segments):
            if seg_start > end:
                break
            if i + 1 < len(segments) and segments[i + 1][0] <= start:
                continue  # the next segment starts before the range: nothing here is in it
            seg = self._open(path)
            if seg is not None:
                yield seg

    def frames(self, start: float, end: float, paths: Set[str] | None = None) -> Iterator[FrameRecord]:
        """Every frame with ``start <= time <= end``, oldest first; only the cgroups in ``paths`` if given."""
        for seg in self._overlapping(start, end):
            yield from self._decode(seg, start, end, paths)

    def frame_at(self, when: float) -> FrameRecord | None:
        """The last frame recorded at or before ``when``; None when there is none."""
        for seg_start, path in reversed(self.segments()):
            if seg_start > when:
                continue
            seg = self._open(path)
            if seg is None:
                continue
            i = bisect.bisect_right(seg.frame_times, when)
            if i == 0:
                continue
            last = None
            for last in self._decode(seg, seg.frame_times[i - 1], when):  # noqa: B007 - the last one is wanted
                pass
            if last is not None:
                return last
        return None

    def neighbours(self, when: float) -> tuple[float | None, float | None]:
        """The frame times just before and just after ``when`` (None at either end)."""
        before = after = None
        for _, path in self.segments():
            seg = self._open(path)
            if seg is None or not seg.frame_times:
                continue
            times = seg.frame_times
            i = bisect.bisect_left(times, when)
            if i > 0 and (before is None or times[i - 1] > before):
                before = times[i - 1]
            j = bisect.bisect_right(times, when)
            if j < len(times) and (after is None or times[j] < after):
                after = times[j]
        return before, after

    def events(self, start: float, end: float) -> Iterator[Event]:
        """Every event with ``start <= time <= end``, oldest first."""
        for seg in self._overlapping(start, end):
            path = seg.path
            for entry in seg.entries:
                if entry.kind != EVENT or not start <= entry.time <= end:
                    continue
                payload = self._payload(seg, entry, "events")
                if payload is None:
                    continue
                try:
                    data = json.loads(payload)
                    figures = data["figures"]
                    yield Event(entry.time, str(data["type"]), str(data["workload"]),
                                figures if isinstance(figures, dict) else {})
                except (ValueError, TypeError, KeyError):
                    self._problem(path, f"Skipped a damaged event in {path}.")

    def _decode(self, seg: _Segment, start: float, end: float,
                paths: Set[str] | None = None) -> Iterator[FrameRecord]:
        """Frames from ``start`` to ``end``: decoding begins at the last key frame at or before ``start``."""
        times = seg.frame_times
        first = bisect.bisect_right(times, start) - 1
        while first > 0 and not seg.entries[seg.frame_index[first]].flags & KEY:
            first -= 1
        first_entry = seg.frame_index[first] if first >= 0 else 0
        layouts: dict[int, list[tuple[str, int]]] = {}
        attributes: dict[tuple[str, int], Attributes] = {}
        mode, slots = "", CURRENT_SLOTS
        for entry in seg.entries[:first_entry]:  # what was in force when decoding starts
            if entry.kind == IDENTITY:
                self._apply_identity(seg, entry, attributes)
            elif entry.kind == LAYOUT:
                self._apply_layout(seg, entry, layouts)
            elif entry.kind == META:
                mode, slots = self._meta(seg, entry, mode, slots)
        codec = FrameCodec(row_bytes=slots.row_bytes)
        synced = False
        expected = 0
        for entry in seg.entries[first_entry:]:
            if entry.time > end and entry.kind == FRAME:
                break
            if entry.kind == IDENTITY:
                self._apply_identity(seg, entry, attributes)
                continue
            if entry.kind == LAYOUT:
                self._apply_layout(seg, entry, layouts)
                continue
            if entry.kind == META:
                mode, slots = self._meta(seg, entry, mode, slots)
                if codec.row_bytes != slots.row_bytes:
                    codec, synced = FrameCodec(row_bytes=slots.row_bytes), False  # rows of another width follow
                continue
            if entry.kind != FRAME:
                continue
            if entry.flags & KEY:
                codec.reset()
                synced = True
            if not synced:
                continue
            payload = self._payload(seg, entry, "frames up to the next key frame")
            try:
                if payload is None:
                    raise CorruptFrame("checksum")
                number, layout_id, *host_fields = _FRAME_HEADER.unpack_from(payload)
                if number != (0 if entry.flags & KEY else expected):
                    raise CorruptFrame("a frame is missing before this one")  # its base is not what we decoded
                expected = number + 1
                keys = layouts[layout_id]
                block = codec.decode(keys, payload[_FRAME_HEADER.size:])
            except (struct.error, KeyError, CorruptFrame):
                self._problem(seg.path, f"Skipped damaged frames in {seg.path} up to its next key frame.")
                synced = False
                continue
            if entry.time >= start:
                yield self._frame(seg.path, host_fields, mode, slots, keys, block, attributes, paths)

    def _apply_identity(self, seg: _Segment, entry: Entry, attributes: dict[tuple[str, int], Attributes]) -> None:
        payload = self._payload(seg, entry, "identity records")
        if payload is None:
            return
        try:
            path, inode, value = json.loads(payload)
            attributes[(str(path), int(inode))] = _attributes_from(value)
        except (ValueError, TypeError):
            self._problem(seg.path, f"Skipped a damaged identity record in {seg.path}.")

    def _apply_layout(self, seg: _Segment, entry: Entry, layouts: dict[int, list[tuple[str, int]]]) -> None:
        payload = self._payload(seg, entry, "layout records")
        if payload is None:
            return
        try:
            (layout_id,) = struct.unpack_from("<I", payload)
            layouts[layout_id] = [(str(p), int(i)) for p, i in json.loads(zlib.decompress(payload[4:]))]
        except (struct.error, ValueError, TypeError, zlib.error):
            self._problem(seg.path, f"Skipped a damaged layout record in {seg.path}.")

    def _meta(self, seg: _Segment, entry: Entry, mode: str, slots: SlotMap) -> tuple[str, SlotMap]:
        """The cgroup layout mode and the row slots a META record sets (what was in force if it is damaged)."""
        payload = self._payload(seg, entry, "records")
        if payload is None:
            return mode, slots
        try:
            meta = json.loads(payload)
            written = meta.get("slots")
            if isinstance(written, list) and all(isinstance(n, str) for n in written) and written:
                slots = CURRENT_SLOTS if tuple(written) == SLOTS else SlotMap(written)
            return str(meta.get("mode", mode)), slots
        except (ValueError, AttributeError):
            return mode, slots

    def _wanted(self, keys: list[tuple[str, int]],
                paths: Set[str] | None) -> list[tuple[int, tuple[str, int]]] | enumerate[tuple[str, int]]:
        """(row number, key) of the cgroups to build: all, or those in ``paths`` (worked out once per layout)."""
        if paths is None:
            return enumerate(keys)
        cached = self._wanted_cache
        if cached is None or cached[0] is not keys or cached[1] is not paths:
            cached = self._wanted_cache = (keys, paths, [(i, k) for i, k in enumerate(keys) if k[0] in paths])
        return cached[2]

    def _frame(self, path: str, host_fields: list[object], mode: str, slots: SlotMap, keys: list[tuple[str, int]],
               block: bytes, attributes: dict[tuple[str, int], Attributes], paths: Set[str] | None) -> FrameRecord:
        wall, mono_ns, cpu_ns, cpus, mem_total, ebpf_ns, _rows = host_fields
        assert isinstance(wall, float) and isinstance(mono_ns, int) and isinstance(cpu_ns, int)
        assert isinstance(cpus, int) and isinstance(mem_total, int) and isinstance(ebpf_ns, int)
        host = HostSample(monotonic_s=mono_ns / 1e9, wall_time_s=wall, cpu_time_ns=None if cpu_ns < 0 else cpu_ns,
                          online_cpus=cpus, memory_total_bytes=None if mem_total < 0 else mem_total)
        cgroups: dict[str, CgroupCounters] = {}
        attrs: dict[str, Attributes] = {}
        for i, (cgroup, inode) in self._wanted(keys, paths):
            a = attributes.get((cgroup, inode))
            if a is None:
                self._problem(path, f"Skipped a damaged identity record in {path}: some cgroups show without names.")
                a = _NO_ATTRIBUTES
            row = slots.row_bytes
            cgroups[cgroup] = counters_from_values(cgroup, inode, slots.values(block[i * row:(i + 1) * row]),
                                                   a.cpuset_cpus)
            attrs[cgroup] = a
        return FrameRecord(host=host, mode=mode, cgroups=cgroups, attributes=attrs,
                             ebpf_monotonic_s=None if ebpf_ns == NO_DATA else ebpf_ns / 1e9)
