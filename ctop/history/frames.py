"""Between live Frames and recorded ones: what a Frame is stored as, and the Frame a replay shows.

Replay rebuilds the snapshot and the enrichment a live refresh had and hands them to the collector's own
``build_frame``, so every rate in replay is computed by the same code, from the same counters, as it was live.
"""

from __future__ import annotations

from ..collector import Enrichment, build_frame
from ..model.derive import net_totals
from ..model.ebpf import EbpfCgroupCounters, EbpfReading
from ..model.frame import Frame, NetCounters
from ..model.sample import Snapshot
from .codec import CgroupCounters
from .store import Attributes, FrameRecord

NET_TOTAL = "all"  # the one interface a replayed row has: the totals the live row summed (loopback excluded)


def record_of(frame: Frame) -> FrameRecord:
    """What is stored of one live Frame: raw counters, names, and the time of its eBPF reading."""
    cgroups: dict[str, CgroupCounters] = {}
    attributes: dict[str, Attributes] = {}
    for path, row in frame.rows.items():
        totals = net_totals(row.net)
        cgroups[path] = CgroupCounters(row.sample, totals[0] if totals else None, totals[1] if totals else None,
                                       row.ebpf)
        attributes[path] = Attributes(row.identity, row.sample.cpuset_cpus)
    return FrameRecord(host=frame.snapshot.host, mode=frame.snapshot.mode, cgroups=cgroups, attributes=attributes,
                       ebpf_monotonic_s=frame.ebpf_monotonic_s)


def _parts(recorded: FrameRecord) -> tuple[Snapshot, Enrichment]:
    samples = {path: c.sample for path, c in recorded.cgroups.items()}
    net = {path: {NET_TOTAL: NetCounters(rx_bytes=c.net_rx_bytes, tx_bytes=c.net_tx_bytes)}
           for path, c in recorded.cgroups.items() if c.net_rx_bytes is not None and c.net_tx_bytes is not None}
    reading = None
    if recorded.ebpf_monotonic_s is not None:
        reading = EbpfReading(monotonic_time=recorded.ebpf_monotonic_s, unattributed=EbpfCgroupCounters(),
                              by_cgroup={p: c.ebpf for p, c in recorded.cgroups.items() if c.ebpf is not None})
    identities = {path: a.identity for path, a in recorded.attributes.items()}
    return (Snapshot(host=recorded.host, cgroups=samples, mode=recorded.mode),
            Enrichment(identities=identities, net=net, ebpf=reading))


def replayed_frame(current: FrameRecord, previous: FrameRecord | None) -> Frame:
    """The Frame the live view showed at ``current``, with rates against ``previous`` (None: no rates)."""
    snapshot, enrichment = _parts(current)
    if previous is None:
        frame = build_frame(snapshot, None, enrichment, None)
    else:
        prev_snapshot, prev_enrichment = _parts(previous)
        frame = build_frame(snapshot, prev_snapshot, enrichment, prev_enrichment)
    return Frame(snapshot=frame.snapshot, rows=frame.rows, interval_s=frame.interval_s,
                 ebpf_state="ready" if current.ebpf_monotonic_s is not None else "off",
                 ebpf_monotonic_s=current.ebpf_monotonic_s)
