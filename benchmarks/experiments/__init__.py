"""The benchmark experiments, one module per lesson: ``benchmarks/experiments/<topic>.py``.

Each module defines
    NOTEBOOK = "07"                         # the notebook whose quick-profile sizes it reads
    EXPERIMENTS = {"key": fn, ...}          # fn(seeds, sizes) -> list of rows made by _rows.comparison
    PUBLISHED = {"key": {...}}              # optional: a paper's numbers beside ours (see transfer_gains.py)
and nothing else is needed: ``discover()`` finds it. This code is not installed with
tlcourse, so no graded answer written here for a benchmark can be imported by a student.
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import Callable


def discover() -> tuple[dict[str, Callable[..., list[dict]]], dict[str, str], dict[str, dict]]:
    """(experiments by key, notebook by key, published figures by key), over every lesson module."""
    experiments: dict[str, Callable[..., list[dict]]] = {}
    notebook: dict[str, str] = {}
    published: dict[str, dict] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{__name__}.{info.name}")
        for key, fn in getattr(mod, "EXPERIMENTS", {}).items():
            if key in experiments:
                raise ValueError(f"experiment key {key!r} is defined twice (second time in {info.name})")
            experiments[key] = fn
            notebook[key] = mod.NOTEBOOK
        published.update(getattr(mod, "PUBLISHED", {}))
    return experiments, notebook, published
