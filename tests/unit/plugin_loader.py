"""Load a plugin file of the repository (filter_plugins/NAME.py) as a module, for the tests."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def load_plugin(name: str, folder: str = "filter_plugins") -> ModuleType:
    """The module of REPO/folder/name.py, loaded from its path (plugins are not a package)."""
    spec = importlib.util.spec_from_file_location(name, REPO / folder / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def filters_of(name: str) -> dict[str, Callable[..., Any]]:
    """The filters a filter plugin file declares."""
    return load_plugin(name).FilterModule().filters()
