"""The interactive view's saved settings (columns, sort, view, filter, tree), like htop's htoprc: one small INI file.

The file is ``$XDG_CONFIG_HOME/ctop/config.ini`` (``~/.config/ctop/config.ini`` by default) or ``--config FILE``.
It is read once at start and written when the user changes a setting. A file that cannot be read or parsed is one
sentence and the defaults (and is never overwritten); unknown keys are ignored; a column or sort key that is no
longer a list field is dropped. INI (configparser) rather than TOML: tomllib is not in Python 3.10.
"""

from __future__ import annotations

import configparser
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace

from .model.fields import FIELDS_BY_KEY

FILE_NAME = "config.ini"
SECTION = "list"
HEADER = """\
# ctop: the interactive view's settings, written when you change them there (ctop --config FILE uses another file).
# columns: field keys of 'ctop fields' separated by spaces; sort: a field key; reverse: flips its natural direction;
# view: containers, pods, qos, units or cgroups; filter: what '/' and --filter accept. Unknown keys are ignored.
"""


@dataclass(frozen=True)
class Settings:
    """What the file says; None where it says nothing (the command line or the default applies)."""

    columns: tuple[str, ...] | None = None  # field keys of list columns
    sort: str | None = None  # a sortable list field key
    reverse: bool | None = None
    view: str | None = None
    filter: str | None = None
    tree: bool | None = None

    def with_values(self, **values: object) -> Settings:
        return replace(self, **values)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Loaded:
    """The settings read, one sentence when something was wrong (empty otherwise), and whether saving may overwrite."""

    settings: Settings
    warning: str = ""
    writable: bool = True


def default_path(env: Mapping[str, str] | None = None) -> str:
    """``$XDG_CONFIG_HOME/ctop/config.ini``; ``~/.config/ctop/config.ini`` when unset or not absolute."""
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME", "")
    if not os.path.isabs(base):
        base = os.path.join(env.get("HOME") or os.path.expanduser("~"), ".config")
    return os.path.join(base, "ctop", FILE_NAME)


BOOLEANS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}


def _columns(text: str) -> tuple[str, ...] | None:
    """The column keys still in the field table (stale ones dropped); None when none is left."""
    kept = []
    for key in text.split():
        f = FIELDS_BY_KEY.get(key)
        if f is not None and f.listable:
            kept.append(key)
    return tuple(kept) or None


def _sort(text: str) -> str | None:
    f = FIELDS_BY_KEY.get(text.strip())
    return f.key if f is not None and f.listable and f.sortable else None


def _boolean(text: str) -> bool:
    return BOOLEANS[text.strip().lower()]


PARSERS: dict[str, Callable[[str], object]] = {
    "columns": _columns, "sort": _sort, "reverse": _boolean, "view": str.strip, "filter": str.strip, "tree": _boolean,
}


def settings_from(section: Mapping[str, str], path: str) -> Loaded:
    """Settings from the [list] section: a value that does not parse keeps its default (the first one is named)."""
    values: dict[str, object] = {}
    bad = []
    for key, parse in PARSERS.items():
        if key in section:
            try:
                values[key] = parse(section[key])
            except KeyError:
                bad.append(key)
    warning = ""
    if bad:
        warning = (f"In the settings file {path}, '{bad[0]}' should be true or false"
                   f"{' (and more is wrong)' if len(bad) > 1 else ''}: using the default for it.")
    return Loaded(Settings(**values), warning)  # type: ignore[arg-type]


def load(path: str) -> Loaded:
    """The settings in ``path``; none (and no warning) when it does not exist yet."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as f:
            parser.read_file(f)
    except (FileNotFoundError, NotADirectoryError):  # not written yet (saving says why if it cannot be)
        return Loaded(Settings())
    except OSError as e:
        return Loaded(Settings(), f"Cannot read the settings file {path} ({e.strerror or e}): starting with the "
                                  "default settings.", writable=False)
    except (configparser.Error, UnicodeDecodeError) as e:
        problem = str(e).splitlines()[0].rstrip(".:")
        return Loaded(Settings(), f"The settings file {path} cannot be parsed ({problem}): starting with the default "
                                  "settings and leaving the file as it is.", writable=False)
    section = parser[SECTION] if parser.has_section(SECTION) else {}
    return settings_from(section, path)


def _ini_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return " ".join(value)
    return " ".join(str(value).split())  # one line: a filter's terms are separated by spaces anyway


def render(settings: Settings) -> str:
    """The file's text: a comment, then the [list] section with the settings that are set."""
    lines = [HEADER, f"[{SECTION}]"]
    for f in fields(settings):
        value = getattr(settings, f.name)
        if value is not None:
            lines.append(f"{f.name} = {_ini_value(value)}".rstrip())
    return "\n".join(lines) + "\n"


def save(path: str, settings: Settings) -> str:
    """Write ``settings`` to ``path`` (atomically, creating its directory); one sentence on failure, else empty."""
    try:
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".ctop-", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(render(settings))
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as e:
        return f"Cannot save the settings to {path} ({e.strerror or e}): they last until ctop exits."
    return ""


class SettingsFile:
    """One settings file: ``load`` once at start, ``save`` on changes (never over a file that could not be read)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.writable = True

    def load(self) -> Loaded:
        loaded = load(self.path)
        self.writable = loaded.writable
        return loaded

    def save(self, settings: Settings) -> str:
        return save(self.path, settings) if self.writable else ""
