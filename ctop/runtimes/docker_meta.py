"""Docker metadata kept fresh in a background thread: container list + inspect, woken early by /events."""

from __future__ import annotations

import calendar
import re
import threading
from collections.abc import Mapping

from ..model.safe_text import short_reason
from .docker_api import DockerClient, DockerUnavailable
from .meta import COMPOSE_PROJECT, COMPOSE_SERVICE, ContainerMeta, clean_labels, clean_str, kubernetes_fields

_TIME = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def parse_docker_time(value: object) -> float | None:
    """Docker's RFC 3339 time with nanoseconds ("2024-01-02T03:04:05.123456789Z") as epoch seconds."""
    if not isinstance(value, str):
        return None
    m = _TIME.match(value.strip())
    if not m:
        return None
    year, mon, day, hh, mm, ss = (int(m.group(i)) for i in range(1, 7))
    if year <= 1:  # "0001-01-01T00:00:00Z": never started
        return None
    if not (1 <= mon <= 12 and 1 <= day <= 31 and hh < 24 and mm < 60 and ss <= 60):
        return None
    try:
        seconds = calendar.timegm((year, mon, day, hh, mm, ss, 0, 0, 0))
    except (ValueError, OverflowError):
        return None
    frac = float("0" + m.group(7)) if m.group(7) else 0.0
    zone = m.group(8)
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return seconds + frac


def meta_from_list_entry(entry: object) -> ContainerMeta | None:
    """One element of GET /containers/json as ContainerMeta (without pid/start time); None if malformed."""
    if not isinstance(entry, dict):
        return None
    cid = clean_str(entry.get("Id"))
    if not cid:
        return None
    names = entry.get("Names")
    name = ""
    if isinstance(names, list):
        for n in names:
            if isinstance(n, str) and n.strip("/") and "/" not in n.strip("/"):
                name = n.strip("/")
                break
    labels = clean_labels(entry.get("Labels"))
    return ContainerMeta(
        runtime="docker", container_id=cid, name=name, image=clean_str(entry.get("Image")), labels=labels,
        state=clean_str(entry.get("State")), compose_project=labels.get(COMPOSE_PROJECT, ""),
        compose_service=labels.get(COMPOSE_SERVICE, ""), source="docker-api", **kubernetes_fields(labels),
    )


def apply_inspect(meta: ContainerMeta, data: object) -> ContainerMeta:
    """Add pid, start time and state from GET /containers/<id>/json; malformed data changes nothing."""
    if not isinstance(data, dict):
        return meta
    state = data.get("State")
    if not isinstance(state, dict):
        return meta
    pid = state.get("Pid")
    pid = pid if isinstance(pid, int) and not isinstance(pid, bool) and pid > 0 else None
    status = clean_str(state.get("Status")) or meta.state
    return meta.with_changes(pid=pid, started_at=parse_docker_time(state.get("StartedAt")), state=status)


class DockerWatcher:
    """Keeps ``containers`` (id -> ContainerMeta) current; never raises, reports trouble in ``notice``."""

    def __init__(self, client: DockerClient, refresh_s: float = 5.0, explicit: bool = False) -> None:
        self.client = client
        self.refresh_s = refresh_s
        self.explicit = explicit
        self.containers: Mapping[str, ContainerMeta] = {}
        self.notice: str = ""
        self.answered_once = False
        self.generation = 0
        self._inspected: dict[str, tuple[str, ContainerMeta]] = {}
        self._busy = False
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._done = threading.Condition()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        if self._threads:
            return
        for target, name in ((self._poll_loop, "ctop-docker-poll"), (self._event_loop, "ctop-docker-events")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self.client.close_stream()
        for t in self._threads:
            t.join(timeout=self.client.timeout_s + 1)
        self._threads.clear()

    def refresh(self, timeout_s: float = 5.0) -> bool:
        """Ask for a re-list now and wait until one finished (True) or the timeout passed (False)."""
        with self._done:
            if not self._threads:
                target = self.generation + 1
            else:  # a poll already under way may have listed before this request
                target = self.generation + (2 if self._busy else 1)
            self._wake.set()
        if not self._threads:
            self.poll_once()
            return True
        with self._done:
            return self._done.wait_for(lambda: self.generation >= target, timeout=timeout_s)

    def poll_once(self) -> None:
        """List (and inspect what is new), then publish the result or the reason there is none."""
        with self._done:
            self._busy = True
        try:
            entries = self.client.list_containers()
            if not isinstance(entries, list):
                raise DockerUnavailable(f"Docker daemon at {self.client.socket_path} answered an unexpected list")
            fresh: dict[str, ContainerMeta] = {}
            for entry in entries:
                meta = meta_from_list_entry(entry)
                if meta is None:
                    continue
                fresh[meta.container_id] = self._with_inspect(meta)
            self._inspected = {k: v for k, v in self._inspected.items() if k in fresh}
            self.containers = fresh
            self.answered_once = True
            self.notice = ""
        except DockerUnavailable as e:
            self.containers = {}
            self._inspected = {}
            reason = str(e)
            if self.answered_once and reason.startswith("no Docker socket"):
                reason = f"Docker daemon at {self.client.socket_path} went away (its socket is gone)"
            if self.answered_once or self.explicit or not reason.startswith("no Docker socket"):
                self.notice = f"{_capitalize(reason)}: container names are missing."
        except Exception as e:  # an answer no check above foresaw: names go, the thread and ctop stay
            self.containers = {}
            self._inspected = {}
            self.notice = (f"Docker daemon at {self.client.socket_path} gave an answer ctop cannot use "
                           f"({short_reason(e)}): container names are missing.")
        with self._done:
            self._busy = False
            self.generation += 1
            self._done.notify_all()

    def _with_inspect(self, meta: ContainerMeta) -> ContainerMeta:
        cached = self._inspected.get(meta.container_id)
        if cached is not None and cached[0] == meta.state:
            return cached[1].with_changes(name=meta.name, labels=meta.labels)
        try:
            full = apply_inspect(meta, self.client.inspect(meta.container_id))
        except DockerUnavailable:
            return meta  # the list answered; try inspect again next time
        self._inspected[meta.container_id] = (meta.state, full)
        return full

    def _poll_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            self.poll_once()
            self._wake.wait(self.refresh_s)

    def _event_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.client.stream_events(self._on_event)
            except DockerUnavailable:
                pass
            self._stop.wait(self.refresh_s)

    def _on_event(self, event: object) -> None:
        if isinstance(event, dict) and event.get("Action") in ("start", "die", "destroy", "rename", "pause",
                                                                  "unpause", "create", "stop", "kill"):
            self._wake.set()


def _capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]
