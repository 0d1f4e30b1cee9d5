"""A real terminal for end-to-end tests: a private tmux server per session, screen reads, keys, resizes, cleanup."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from .env import need, patience

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Tmux:
    """One detached tmux session on its own server socket (``-L``), so nothing else's tmux is ever touched."""

    def __init__(self, command: Sequence[str], width: int = 120, height: int = 40,
                 env: dict[str, str] | None = None) -> None:
        self.name = f"ctop-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.command = list(command)
        self.width, self.height = width, height
        self.env = dict(env or {})
        # Each session starts from ctop's default settings (the interactive view saves them) unless told otherwise.
        self.config_home = "" if "XDG_CONFIG_HOME" in self.env else tempfile.mkdtemp(prefix=self.name + "-config-")
        if self.config_home:
            self.env["XDG_CONFIG_HOME"] = self.config_home
        self.started_at = 0.0
        self.status_file = os.path.join(tempfile.gettempdir(), self.name + ".status")

    def tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(["tmux", "-L", self.name, *args], capture_output=True, text=True, timeout=20,
                              check=check)

    def start(self) -> None:
        env_args: list[str] = []
        for key, value in self.env.items():
            env_args += ["-e", f"{key}={value}"]
        self.tmux("-f", "/dev/null", "new-session", "-d", "-s", self.name, "-x", str(self.width), "-y",
                  str(self.height), *env_args,
                  f"{shlex.join(self.command)}; echo $? > {shlex.quote(self.status_file)}")
        self.started_at = time.monotonic()
        # Keep the pane after the program exits, to read its last screen and exit status.
        self.tmux("set-option", "-t", self.name, "remain-on-exit", "on")

    def stop(self) -> None:
        """Kill this session's server (it holds only this session); the program gets SIGHUP."""
        self.tmux("kill-server", check=False)
        if self.config_home:
            shutil.rmtree(self.config_home, ignore_errors=True)
        try:
            os.unlink(self.status_file)
        except OSError:
            pass

    def screen(self, escapes: bool = False) -> str:
        args = ["capture-pane", "-p", "-t", self.name]
        if escapes:
            args.append("-e")
        return self.tmux(*args).stdout

    def lines(self) -> list[str]:
        return self.screen().splitlines()

    def send(self, *keys: str) -> None:
        """tmux key names (``Enter``, ``Escape``, ``q``); one send-keys call each, in order."""
        for key in keys:
            self.tmux("send-keys", "-t", self.name, key)

    def type(self, text: str) -> None:
        self.tmux("send-keys", "-t", self.name, "-l", text)

    def resize(self, width: int, height: int) -> None:
        self.tmux("resize-window", "-t", self.name, "-x", str(width), "-y", str(height))
        self.width, self.height = width, height

    def pane(self, fmt: str) -> str:
        return self.tmux("display-message", "-p", "-t", self.name, fmt).stdout.strip()

    def dead(self) -> bool:
        return self.pane("#{pane_dead}") == "1"

    def exit_status(self, timeout: float = 3.0) -> int | None:
        """The program's exit status, written by the wrapping shell (tmux forgets it after a resize-window)."""
        deadline = time.monotonic() + patience(timeout)
        while True:
            try:
                with open(self.status_file) as f:
                    text = f.read().strip()
                if text:
                    return int(text)
            except (OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                return None
            time.sleep(0.05)

    def pid(self) -> int:
        return int(self.pane("#{pane_pid}"))

    def wait_for(self, predicate: Callable[[str], bool], timeout: float = 10.0, what: str = "") -> str:
        """Poll the screen until ``predicate(screen)`` holds (an AssertionError, LookupError or ValueError it raises
        means "not yet"); AssertionError with the last screen when ``timeout`` (stretched by ``patience``) passes."""
        deadline = time.monotonic() + patience(timeout)
        text, error = "", ""
        while time.monotonic() < deadline:
            text = self.screen()
            try:
                if predicate(text):
                    return text
            except (AssertionError, LookupError, ValueError) as e:  # the screen is not there yet
                error = f" ({e.__class__.__name__}: {str(e).splitlines()[0] if str(e) else ''})"
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what or predicate}{error}; screen:\n{text}")

    def wait_text(self, needle: str, timeout: float = 10.0) -> str:
        return self.wait_for(lambda s: needle in s, timeout, repr(needle))


@contextmanager
def tmux_session(command: Sequence[str], width: int = 120, height: int = 40,
                 env: dict[str, str] | None = None) -> Iterator[Tmux]:
    """A started session, always stopped afterwards (skips, or fails in CI, without tmux)."""
    need(shutil.which("tmux"), "the tmux binary")
    session = Tmux(command, width, height, env)
    session.start()
    try:
        yield session
    finally:
        session.stop()


SGR = re.compile(r"\x1b\[([0-9;]*)m")


def colour_codes(escaped: str) -> set[str]:
    """SGR parameters in a screen captured with escapes that set a colour (30-37, 38, 40-47, 48, 90-97, 100-107)."""
    out = set()
    for params in SGR.findall(escaped):
        for p in params.split(";"):
            if p.isdigit() and (30 <= int(p) <= 38 or 40 <= int(p) <= 48 or 90 <= int(p) <= 107):
                out.add(p)
    return out
