"""The worker thread that collects Frames off the UI thread and posts them, and one-off `inspect` calls."""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial
from typing import Any

from ..model.frame import CgroupRow, Frame

Post = Callable[[tuple[Any, ...]], None]
FIRST_RATES_S = 0.5  # the second refresh comes this soon, so that rates show without waiting a full delay


def describe(error: BaseException) -> str:
    """One sentence about an unexpected error."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text.rstrip(".") + "."


class Feed:
    """Calls ``collect`` every ``delay`` seconds in a daemon thread and posts ("frame", Frame) or ("error", text).

    The UI thread changes the delay, pauses and stops it; a hung ``collect`` never blocks the UI, and a stopped
    feed posts nothing more.
    """

    def __init__(self, collect: Callable[[], Frame], delay: float, post: Post) -> None:
        self._collect = collect
        self._post = post
        self._delay = delay
        self._paused = False
        self._poked = False
        self._stopped = False
        self._wake = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="ctop-collect", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 0.2) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def set_delay(self, delay: float) -> None:
        with self._wake:
            self._delay = delay
            self._wake.notify_all()

    def set_paused(self, paused: bool) -> None:
        with self._wake:
            self._paused = paused
            self._wake.notify_all()

    def poke(self) -> None:
        """Collect once as soon as possible, also while paused (a replay moved)."""
        with self._wake:
            self._poked = True
            self._wake.notify_all()

    def _run(self) -> None:
        count = 0
        while True:
            with self._wake:
                while self._paused and not self._stopped and not self._poked:
                    self._wake.wait()
                if self._stopped:
                    return
                self._poked = False
            try:
                frame = self._collect()
            except Exception as e:  # any failure of a source must reach the status line, not kill the thread
                message: tuple[Any, ...] = ("error", f"Refresh failed: {describe(e)}")
            else:
                message = ("frame", frame)
            with self._wake:
                if self._stopped:
                    return
            self._post(message)
            count += 1
            with self._wake:
                wait = min(self._delay, FIRST_RATES_S) if count == 1 else self._delay
                delay_then = self._delay
                self._wake.wait_for(partial(self._woken, delay_then), timeout=wait)

    def _woken(self, delay_then: float) -> bool:
        """Whether the wait between refreshes should end early: stopped, poked, or the delay changed."""
        return self._stopped or self._poked or self._delay != delay_then


def inspect_async(inspect: Callable[[CgroupRow], Any], row: CgroupRow, post: Post,
                  kind: str = "inspect") -> threading.Thread:
    """Run ``inspect(row)`` in a daemon thread; post (kind, path, result) or (kind, path, error text)."""

    def run() -> None:
        try:
            result: Any = inspect(row)
        except Exception as e:  # inspect reads many sources; a failure is shown in the detail view
            result = f"{kind} failed: {describe(e)}"
        post((kind, row.sample.path, result))

    thread = threading.Thread(target=run, name=f"ctop-{kind}", daemon=True)
    thread.start()
    return thread
