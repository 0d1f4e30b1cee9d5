"""The project's scripts outside the package (bench/, guest/) as modules, loaded from this checkout."""

from __future__ import annotations

import importlib.util
import os
import sys
from types import ModuleType

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_script(relative: str, name: str) -> ModuleType:
    """The file ``relative`` to the checkout (``bench/run.py``) as module ``name`` (kept in sys.modules: dataclasses
    look their module up there)."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, relative))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
