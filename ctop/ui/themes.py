"""Palettes: colours that mean something (warn, crit) on dark and light terminals, and plain text under NO_COLOR."""

from __future__ import annotations

import os
from collections.abc import Mapping

# name -> (foreground, background, monochrome). Colour entries pair a foreground with its own background so they
# read the same on dark and light terminals; text without meaning keeps the terminal's default colours.
COLOUR: dict[str, tuple[str, str, str]] = {
    "header": ("black", "light gray", "standout"),
    "header_sort": ("white,bold", "dark blue", "standout,underline"),
    "focus": ("black", "dark cyan", "standout"),
    "warn": ("black", "brown", "bold"),
    "crit": ("white,bold", "dark red", "bold,underline"),
    "focus_warn": ("black,underline", "brown", "standout,bold"),
    "focus_crit": ("white,bold,underline", "dark red", "standout,underline"),
    "context": ("dark gray", "default", "default"),
    "focus_context": ("black", "dark cyan", "standout"),
    "status": ("black", "light gray", "standout"),
    "notice": ("black", "brown", "standout,bold"),
    "title": ("default,bold", "default", "bold"),
    "key": ("default,bold", "default", "bold"),
    "spark": ("dark cyan", "default", "default"),
    "dialog": ("default", "default", "default"),
    "replay": ("white,bold", "dark magenta", "standout,bold"),
}

# Attributes a focused row maps its cells to.
FOCUS_MAP: Mapping[str | None, str] = {
    None: "focus", "warn": "focus_warn", "crit": "focus_crit", "context": "focus_context",
}


def no_color(environ: Mapping[str, str] | None = None) -> bool:
    """True when NO_COLOR is set to a non-empty value (no-color.org)."""
    env = os.environ if environ is None else environ
    return bool(env.get("NO_COLOR", ""))


def palette(plain: bool) -> list[tuple[str, str, str, str]]:
    """urwid palette entries; ``plain`` uses only bold, underline and reverse video on default colours."""
    if plain:
        return [(name, f"default,{mono}" if mono != "default" else "default", "default", mono)
                for name, (_, _, mono) in COLOUR.items()]
    return [(name, fg, bg, mono) for name, (fg, bg, mono) in COLOUR.items()]
