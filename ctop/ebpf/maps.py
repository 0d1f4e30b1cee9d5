"""Reads ctop's BPF maps in one batch per refresh and turns kernel cgroup ids into paths: an EbpfReading."""

from __future__ import annotations

import collections
import ctypes
import dataclasses
import os
import struct
import time
from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass
from typing import NamedTuple, TypeVar, cast

from ..model.ebpf import (
    ARGS_TRUNCATED,
    RUNQ_SLOTS,
    EbpfCgroupCounters,
    EbpfReading,
    ExecRecord,
    MapFill,
    OomKill,
    added_counters,
)
from . import bcc_types as bt
from . import hybrid
from .layout import Header, LayoutError, ctypes_members, read_header, word_columns
from .loader import Loaded, LoadError
from .slots import CgroupIndex, GoneIds

EXECS_PER_CGROUP = 32       # recent execs kept per cgroup in user space
OOM_KILLS_KEPT = 64
UNNAMED_KEPT_READS = 1 << 30  # ids taken back for want of a name are remembered for good (bounded by count)
UNNAMED_WALK_EVERY_S = 1.0  # an id without a name is checked by a fresh walk of the hierarchies at most this often
RecordT = TypeVar("RecordT", bound=bt.Logged)
HIST_WORD_BYTES = 4  # u32 run-queue slots (bpf/ctop.h)
HIST_MASK = (1 << 32) - 1


class CounterColumns(NamedTuple):
    """Where each member of struct cgroup_counters starts, in words of one CPU's copy (from the compiled map).

    Field names after ``width`` (words in one copy) and ``fmt`` (struct format of one copy) are the C member names.
    """

    width: int
    fmt: str
    runq_hist: int
    runq_sum_ns: int
    runq_max_ns: int
    nvcsw: int
    nivcsw: int
    preempted_by_others: int
    preempted_by_host: int
    culprit_id: int
    culprit_count: int
    forks: int
    execs: int
    exits: int
    oom_kills: int

    @classmethod
    def of(cls, record: type[ctypes.Structure]) -> CounterColumns:
        """The columns of a compiled ``struct cgroup_counters`` (raises LayoutError when it is not what ctop reads)."""
        members = ctypes_members(record)
        wide = [m.name for m in members if m.name != "runq_hist" and m.size != 8]
        if wide:
            raise LayoutError(f"struct cgroup_counters: member {', '.join(wide)} is not a 64-bit word.")
        columns, fmt = word_columns("cgroup_counters", members)
        hist = next((m for m in members if m.name == "runq_hist"), None)
        if hist is None or hist.count != RUNQ_SLOTS:
            raise LayoutError(f"struct cgroup_counters has {hist.count if hist else 'no'} run-queue slots where ctop "
                              f"reads {RUNQ_SLOTS}.")
        if hist.size != HIST_WORD_BYTES:
            raise LayoutError(f"struct cgroup_counters has {hist.size}-byte run-queue slots where ctop reads "
                              f"{HIST_WORD_BYTES}-byte ones.")
        missing = [name for name in cls._fields[2:] if name not in columns]
        if missing:
            raise LayoutError(f"struct cgroup_counters has no member {', '.join(missing)}.")
        slots = {m.name: m.count for m in members if m.name in ("culprit_id", "culprit_count")}
        if columns["culprit_count"] - columns["culprit_id"] != slots["culprit_id"] or len(set(slots.values())) != 1:
            raise LayoutError("struct cgroup_counters: culprit_count does not follow culprit_id with as many slots.")
        if struct.calcsize(fmt) != ctypes.sizeof(record):
            raise LayoutError("struct cgroup_counters has padding ctop does not read.")
        width = sum(m.count for m in members)
        return cls(width, fmt, *(columns[name] for name in cls._fields[2:]))

    def unpacker(self) -> struct.Struct:
        """Unpacks one CPU's copy (native byte order, as the kernel wrote it)."""
        return struct.Struct(self.fmt)


class HistogramWrap:
    """Follows each cgroup's u32 histogram slots across reads: the CPUs' copies added modulo 2^32 only ever grow by
    less than 2^32 between two reads, so the counts since the programs were loaded are exact."""

    def __init__(self) -> None:
        self._last: dict[int, tuple[tuple[int, ...], tuple[int, ...]]] = {}  # id -> (sums mod 2^32, counts)

    def counts(self, cgroup_id: int, sums: tuple[int, ...]) -> tuple[int, ...]:
        """The counts of cgroup ``cgroup_id`` whose slots now add up to ``sums`` (over every CPU)."""
        wrapped = tuple(v & HIST_MASK for v in sums)
        last = self._last.get(cgroup_id)
        if last is None:
            counts = wrapped
        elif last[0] == wrapped:
            counts = last[1]
        else:
            counts = tuple(c + ((w - lw) & HIST_MASK) for c, w, lw in zip(last[1], wrapped, last[0]))
        self._last[cgroup_id] = (wrapped, counts)
        return counts

    def keep_only(self, cgroup_ids: Iterable[int]) -> None:
        """Forget the cgroups not read this time (their index was taken back)."""
        live = set(cgroup_ids)
        self._last = {k: v for k, v in self._last.items() if k in live}


@dataclass(frozen=True)
class Slots:
    """Indices of the ``counters`` and ``seqs`` arrays, as bpf/ctop.h defines them."""

    cgroup_map_full: int
    thread_map_full: int
    threads_added: int
    threads_removed: int
    events_unattributed: int
    n_counters: int
    seq_exec: int
    seq_oom: int
    seq_cgroup: int

    @classmethod
    def of(cls, header: Header) -> Slots:
        """The slots bpf/ctop.h defines (raises LayoutError when one is missing)."""
        d = header.defines
        try:
            return cls(d["C_CGROUP_MAP_FULL"], d["C_THREAD_MAP_FULL"], d["C_THREADS_ADDED"], d["C_THREADS_REMOVED"],
                       d["C_EVENTS_UNATTRIBUTED"], d["N_COUNTERS"], d["SEQ_EXEC"], d["SEQ_OOM"], d["SEQ_CGROUP"])
        except KeyError as e:
            raise LayoutError(f"bpf/ctop.h does not define {e.args[0]}.") from None


def _text(raw: bytes) -> str:
    return bytes(raw).split(b"\0", 1)[0].decode("utf-8", "replace")


def raw_member(record: object, name: str) -> bytes:
    """Every byte of a char-array member of a ctypes record (reading the member stops at its first NUL)."""
    if not isinstance(record, ctypes.Structure):
        return bytes(getattr(record, name))
    member = getattr(type(record), name)
    return ctypes.string_at(ctypes.addressof(record) + member.offset, member.size)


def exec_args(raw: bytes, total: int) -> str:
    """argv as the exec program read it (``raw``: NUL-separated, ``total`` bytes in the process, of which ``raw``
    holds the first ones) joined by spaces; cut argv ends in ARGS_TRUNCATED; "" when nothing was read."""
    kept = bytes(raw)[:max(total, 0)]
    if not kept:
        return ""
    words = kept.split(b"\0")
    if total <= len(kept) and words and not words[-1]:
        words.pop()  # the terminating NUL of the last argument
    text = " ".join(w.decode("utf-8", "replace") for w in words)
    return text.rstrip() + ARGS_TRUNCATED if total > len(kept) else text


def sum_counters(raw: bytes, columns: CounterColumns, unpacker: struct.Struct, cgroup_id: int,
                 wrap: HistogramWrap | None = None) -> EbpfCgroupCounters:
    """Add up the per-CPU copies of one cgroup's counters (``raw``: the copies back to back); max is a max. The
    histogram's u32 slots are followed across reads by ``wrap`` (without it: the plain sums, for one read)."""
    copies = tuple(zip(*unpacker.iter_unpack(raw)))
    if not copies:
        return EbpfCgroupCounters(cgroup_id=cgroup_id)
    total = list(map(sum, copies))
    c = columns
    buckets = tuple(total[c.runq_hist:c.runq_hist + RUNQ_SLOTS])
    if wrap is not None:
        buckets = wrap.counts(cgroup_id, buckets)
    return EbpfCgroupCounters(
        cgroup_id=cgroup_id,
        runq_buckets=buckets,
        runq_sum_seconds=total[c.runq_sum_ns] / 1e9,
        runq_count=sum(buckets),
        runq_max_seconds=max(copies[c.runq_max_ns]) / 1e9,
        nvcsw=total[c.nvcsw],
        nivcsw=total[c.nivcsw],
        preempted_by_others=total[c.preempted_by_others],
        preempted_by_host=total[c.preempted_by_host],
        forks=total[c.forks],
        execs=total[c.execs],
        exits=total[c.exits],
        oom_kills=total[c.oom_kills],
    )


def slot_culprits(raw: bytes, columns: CounterColumns, unpacker: struct.Struct,
                  victim_id: int) -> list[tuple[int, int, int]]:
    """The (victim id, culprit id, count) pairs one cgroup's per-CPU copies count in their culprit slots (the rest
    of each pair's count is in the `culprits` map; see bpf/ctop.h)."""
    c = columns
    slots = c.culprit_count - c.culprit_id
    pairs = []
    for copy in unpacker.iter_unpack(raw):
        for i in range(slots):
            culprit, count = copy[c.culprit_id + i], copy[c.culprit_count + i]
            if culprit and count:
                pairs.append((victim_id, culprit, count))
    return pairs


def add_counters(a: EbpfCgroupCounters, b: EbpfCgroupCounters) -> EbpfCgroupCounters:
    """Two cgroups' counters counted as one: a cgroup2 cgroup and the v1 cpu cgroup of the same path, whose tagged id
    is the larger; the cgroup2 id names them, so a tagged entry that appears later does not look like a new cgroup."""
    return added_counters(a, b, min(a.cgroup_id, b.cgroup_id))


def culprits_by_path(pairs: Iterable[tuple[int, int, int]],
                     path_of: Callable[[int], str | None]) -> dict[str, tuple[tuple[str, int], ...]]:
    """(victim id, culprit id, count) pairs as victim path -> ((culprit path, count), ...), largest first; pairs
    with an id that has no name are left out, and so are the two ids of one path on hybrid hosts (its cgroup2 and
    its tagged v1 cpu cgroup: a task moving in counts under the one, then the other), which are no culprit."""
    out: dict[str, dict[str, int]] = {}
    for victim_id, culprit_id, count in pairs:
        victim, culprit = path_of(victim_id), path_of(culprit_id)
        if victim is None or culprit is None or count <= 0 or victim == culprit:
            continue
        by = out.setdefault(victim, {})
        by[culprit] = by.get(culprit, 0) + count
    return {v: tuple(sorted(by.items(), key=lambda kv: (-kv[1], kv[0]))) for v, by in out.items()}


def unnamed_to_take_back(ids: Iterable[int], named: Container[int], taken_before: Container[int]) -> list[int]:
    """Of the ids that hold counters without a name, those to take back: not named by a walk begun after they were
    seen, and not already taken back once (one that counts again after that belongs to a live cgroup)."""
    return [i for i in ids if i not in named and i not in taken_before]


class MapReader:
    """Keeps what one reading needs from the previous one: id->path names, log positions, recent execs."""

    def __init__(self, loaded: Loaded) -> None:
        self.loaded = loaded
        bpf = loaded.bpf
        self._cgroups = cast(bt.PerCpuArrayTable, bpf[b"cgroups"])
        self._index = CgroupIndex(bpf[b"cgroup_index"], self._cgroups, bpf[b"free_indices"])
        self._culprits = cast(bt.CulpritTable, bpf[b"culprits"])
        self._counters = cast(bt.PerCpuCounters, bpf[b"counters"])
        self._seqs = cast(bt.ArrayTable[bt.Counter], bpf[b"seqs"])
        self._exec_log = cast(bt.ArrayTable[bt.ExecRecord], bpf[b"exec_log"])
        self._oom_log = cast(bt.ArrayTable[bt.OomRecord], bpf[b"oom_log"])
        self._cgroup_log = cast(bt.ArrayTable[bt.CgroupRecord], bpf[b"cgroup_log"])
        try:
            self._columns = CounterColumns.of(self._cgroups.sLeaf)
            self._slots = Slots.of(read_header())
        except (LayoutError, OSError) as e:
            raise LoadError(f"eBPF fields are off because ctop's programs do not match its reader: {e}") from e
        self._unpacker = self._columns.unpacker()
        self._wrap = HistogramWrap()
        self._paths: dict[int, str] = {}
        self._walk_started_at = 0.0  # when the latest walk began: it names every cgroup alive then
        # From the first record on: the programs were attached before this reader existed, and a cgroup removed in
        # between must still give its counters' index back (its record is still in the log).
        self._last_seq = [0] * self._seqs.max_entries
        self._execs: dict[str, collections.deque[ExecRecord]] = {}
        self._ooms: collections.deque[OomKill] = collections.deque(maxlen=OOM_KILLS_KEPT)
        self._gone = GoneIds()  # ids of removed cgroups of the last reads
        self._unnamed_taken = GoneIds(reads=UNNAMED_KEPT_READS)  # ids taken back because no walk named them
        self._dropped_logs = {"exec_log_overwritten": 0, "oom_log_overwritten": 0, "cgroup_log_overwritten": 0}
        self._walk()

    # -- cgroup ids -> paths ---------------------------------------------------------------------------------
    def _walk(self, replace: bool = False) -> None:
        """Name every cgroup id from the tracking hierarchy (on hybrid hosts also the v1 cpu one, whose ids are
        tagged); ``replace`` also forgets ids that are gone."""
        started = time.monotonic()
        tracking = self.loaded.tracking
        paths = {tracking.root_id: "/"}
        trees = [(tracking.root, 0)] + ([(tracking.v1.root, hybrid.v1_tag())] if tracking.v1 else [])
        for root, tag in trees:
            for dirpath, _dirs, _files in os.walk(root):
                if dirpath == root:
                    continue
                try:
                    paths[tag | os.stat(dirpath).st_ino] = dirpath[len(root):]
                except OSError:
                    continue
        if replace:
            self._paths = paths
            live = set(paths.values())
            self._execs = {p: d for p, d in self._execs.items() if p in live}
        else:
            self._paths.update(paths)
        self._walk_started_at = started

    def path_of(self, cgroup_id: int) -> str | None:
        path = self._paths.get(cgroup_id)
        if path is None and time.monotonic() - self._walk_started_at > 0.5:
            self._walk()
            path = self._paths.get(cgroup_id)
        return path

    # -- logs ------------------------------------------------------------------------------------------------
    def _new_records(self, table: bt.ArrayTable[RecordT], which: int, name: str) -> list[RecordT]:
        """Records logged since the previous read, oldest first; ``which`` is the log's slot in ``seqs``."""
        size = table.max_entries
        seq_now = int(self._seqs[ctypes.c_int(which)].value)
        first = self._last_seq[which] + 1
        self._last_seq[which] = seq_now
        if seq_now < first:
            return []
        if seq_now - first + 1 > size:
            self._dropped_logs[name] += seq_now - first + 1 - size
            first = seq_now - size + 1
        records = []
        for seq in range(first, seq_now + 1):
            rec = table[ctypes.c_int((seq - 1) % size)]
            if rec.seq == seq:
                records.append(rec)
        return records

    def _cgroup_changes(self) -> tuple[list[str], list[str], list[int]]:
        """(created paths, removed paths, removed ids) from the cgroup log; created ids are named at once."""
        created: list[str] = []
        removed: list[str] = []
        removed_ids: list[int] = []
        for rec in self._new_records(self._cgroup_log, self._slots.seq_cgroup, "cgroup_log_overwritten"):
            path = _text(rec.path) or "/"
            if rec.kind == 1:
                self._paths[int(rec.cgroup_id)] = path
                created.append(path)
            else:
                removed_ids.append(int(rec.cgroup_id))
                removed.append(path)
        return created, removed, removed_ids

    def _counters_by_path(self, removed: set[int]) -> tuple[dict[str, EbpfCgroupCounters], EbpfCgroupCounters, int,
                                                           list[int], list[tuple[int, int, int]]]:
        """(counters by cgroup path, unattributed counters, entries in the map, ids in it that have no name, the
        culprit pairs counted in the cgroups' slots); cgroups ``removed`` since the previous read are left out."""
        by_cgroup: dict[str, EbpfCgroupCounters] = {}
        unattributed = EbpfCgroupCounters()
        used = 0
        unresolved: list[int] = []
        slot_pairs: list[tuple[int, int, int]] = []
        columns, unpacker = self._columns, self._unpacker
        raw_by_id = self._index.raw_by_id()
        used = len(raw_by_id)
        self._wrap.keep_only(raw_by_id)
        for cgroup_id, raw in raw_by_id.items():
            counters = sum_counters(raw, columns, unpacker, cgroup_id, self._wrap)
            if cgroup_id == 0:
                unattributed = counters
                continue
            if cgroup_id in removed:
                continue
            if counters.preempted_by_others or counters.preempted_by_host:  # slots count both kinds
                slot_pairs.extend(slot_culprits(raw, columns, unpacker, cgroup_id))
            path = self.path_of(cgroup_id)
            if path is None:
                if cgroup_id in self._gone:  # counted again by a task that was ending: take the index back again
                    self._index.take_back(cgroup_id)
                else:
                    unresolved.append(cgroup_id)
                continue
            other = by_cgroup.get(path)  # hybrid hosts: the cgroup2 and the v1 cpu cgroup of one path
            by_cgroup[path] = counters if other is None else add_counters(other, counters)
        return by_cgroup, unattributed, used, unresolved, slot_pairs

    def _forget_unnamed(self, ids: list[int], index_read_at: float) -> list[int]:
        """Ids that held counters but had no name: a cgroup made and removed while its log records were being
        overwritten. A walk begun after the index was read names every cgroup then alive (its directory existed
        before its id could count): the ids it does not name are gone. At most one walk a second. An id that
        counts again after that is left alone: a live cgroup no walk can name keeps its index, which its threads
        remember (taking it back again and again would hand their counts to another cgroup). Returns the ids taken
        back."""
        if not ids:
            return []
        if self._walk_started_at < index_read_at:
            if time.monotonic() - self._walk_started_at < UNNAMED_WALK_EVERY_S:
                return []  # looked at again by a later read
            self._walk()
        taken = unnamed_to_take_back(ids, self._paths, self._unnamed_taken)
        for cgroup_id in taken:
            self._unnamed_taken.add(cgroup_id)
            self._index.take_back(cgroup_id)
        return taken

    def _forget(self, cgroup_id: int) -> None:
        """A removed cgroup: its counters' index goes back (only ids known to be gone: a live cgroup that cannot be
        named keeps its index, which its threads remember)."""
        self._gone.add(cgroup_id)
        self._index.take_back(cgroup_id)

    def _culprit_pairs(self) -> list[tuple[int, int, int]]:
        """The `culprits` map's (victim id, culprit id, count over every CPU) pairs."""
        return [(int(key.victim), int(key.culprit), sum(int(c) for c in counts))
                for key, counts in self._culprits.items_lookup_batch()]

    def _with_culprits(self, by_cgroup: dict[str, EbpfCgroupCounters], pairs: list[tuple[int, int, int]]) -> None:
        """Put each cgroup's preemptions by culprit path into its counters, from the map's ``pairs`` and those
        counted in the cgroups' slots (a pair's count is the two added, see bpf/ctop.h)."""
        for victim, counts in culprits_by_path(pairs, self.path_of).items():
            counters = by_cgroup.get(victim)
            if counters is not None:
                by_cgroup[victim] = dataclasses.replace(counters, preempted_by=counts)

    def _drop_culprit_pairs(self, pairs: list[tuple[int, int, int]], gone: set[int]) -> int:
        """Delete the map's pairs whose victim or culprit is ``gone`` (their last counts were read); returns how many.
        The LRU map would keep them until full, and every read would copy them: under container churn thousands."""
        dropped = 0
        for victim, culprit, _count in pairs:
            if victim in gone or culprit in gone:
                try:
                    del self._culprits[self._culprits.Key(victim=victim, culprit=culprit)]
                    dropped += 1
                except KeyError:
                    continue  # evicted meanwhile
        return dropped

    def _log_execs(self, boot_to_unix: float) -> None:
        """Keep the execs logged since the previous read, by cgroup path."""
        for rec in self._new_records(self._exec_log, self._slots.seq_exec, "exec_log_overwritten"):
            path = self.path_of(int(rec.cgroup_id)) if rec.cgroup_id else None
            record = ExecRecord(pid=int(rec.pid), ppid=int(rec.ppid), comm=_text(rec.comm),
                                filename=_text(rec.filename), unix_time=boot_to_unix + rec.time_ns / 1e9,
                                args=exec_args(raw_member(rec, "args"), int(rec.args_len)))
            self._execs.setdefault(path or "", collections.deque(maxlen=EXECS_PER_CGROUP)).append(record)

    def _log_oom_kills(self, boot_to_unix: float) -> None:
        """Keep the OOM kills logged since the previous read."""
        for rec in self._new_records(self._oom_log, self._slots.seq_oom, "oom_log_overwritten"):
            path = self.path_of(int(rec.cgroup_id)) if rec.cgroup_id else None
            self._ooms.append(OomKill(cgroup=path, pid=int(rec.pid), comm=_text(rec.comm),
                                      unix_time=boot_to_unix + rec.time_ns / 1e9))

    def read(self) -> EbpfReading:
        """One reading: the cgroup log, every cgroup's counters, then the exec and OOM logs since the previous read."""
        now_mono = time.monotonic()
        boot_to_unix = time.time() - now_mono  # bpf_ktime_get_ns() is CLOCK_MONOTONIC
        lost_before = self._dropped_logs["cgroup_log_overwritten"]
        new_cgroups, removed, removed_ids = self._cgroup_changes()
        index_read_at = time.monotonic()
        by_cgroup, unattributed, used, unresolved, slot_pairs = self._counters_by_path(set(removed_ids))
        culprit_pairs = self._culprit_pairs()
        self._with_culprits(by_cgroup, culprit_pairs + slot_pairs)
        self._log_execs(boot_to_unix)
        self._log_oom_kills(boot_to_unix)
        for path in removed:
            self._execs.pop(path, None)
        gone = set(removed_ids)
        for cgroup_id in removed_ids:  # forgotten only after this read has named their last events
            self._paths.pop(cgroup_id, None)
            self._forget(cgroup_id)
        if self._dropped_logs["cgroup_log_overwritten"] > lost_before:
            named = set(self._paths)
            self._walk(replace=True)  # removals were lost with the overwritten records: forget what is gone
            for cgroup_id in named - set(self._paths):
                self._forget(cgroup_id)
                gone.add(cgroup_id)
        gone.update(self._forget_unnamed(unresolved, index_read_at))
        culprits_left = len(culprit_pairs) - self._drop_culprit_pairs(culprit_pairs, gone)
        self._index.next_read()
        self._gone.next_read()
        self._unnamed_taken.next_read()

        slot = self._slots
        counter_sums = [sum(int(c) for c in self._counters[ctypes.c_int(i)]) for i in range(slot.n_counters)]
        threads_used = (self.loaded.seeded_threads + counter_sums[slot.threads_added]
                        - counter_sums[slot.threads_removed])
        dropped = {
            "cgroup_map_full": counter_sums[slot.cgroup_map_full],
            "thread_map_full": counter_sums[slot.thread_map_full],
            "events_of_unknown_tasks": counter_sums[slot.events_unattributed],
            "unnamed_cgroup_ids": len(unresolved),
            **self._dropped_logs,
        }
        return EbpfReading(
            monotonic_time=now_mono,
            by_cgroup=by_cgroup,
            unattributed=unattributed,
            oom_kills=tuple(self._ooms),
            execs={p: tuple(d) for p, d in self._execs.items() if p},
            new_cgroups=tuple(dict.fromkeys(new_cgroups)),
            removed_cgroups=tuple(removed),
            map_fill={
                "cgroups": MapFill(used=used, capacity=self.loaded.cgroups_max),
                "threads": MapFill(used=max(threads_used, 0), capacity=self.loaded.threads.capacity),
                "culprits": MapFill(used=culprits_left, capacity=self.loaded.culprits_max),
            },
            dropped=dropped,
            runq_method=self.loaded.runq_method,
            covered=frozenset(self._paths.values()),
        )
