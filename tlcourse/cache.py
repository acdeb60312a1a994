"""The one on-disk cache: tensors computed once (features, embeddings, logits), keyed by what made them.

Entries live under ``cache_root()/<kind>/<key>.pt``. The key hashes every
input that changes the result (model weights, transform, data fingerprint,
lengths ...), so a changed input misses the cache and nothing stale is ever
returned. Writes go through :func:`tlcourse._io.atomic_open`: an interrupted
run leaves no half-written entry, and an unreadable entry is deleted and
recomputed.

>>> path = cache_path("embeddings", "minilm-l6", "48", dataset.fingerprint())
>>> saved = load_cached(path)            # None on a miss
>>> if saved is None:
...     saved = save_cached(path, {"mean": mean, "labels": labels})
"""
from __future__ import annotations

import hashlib
import pathlib
from typing import Any

import torch

from ._io import atomic_open
from .assets import cache_root


def cache_dir(kind: str) -> pathlib.Path:
    """The folder of one kind of entry (``features``, ``embeddings``, ``text_embeddings`` ...)."""
    return cache_root() / kind


def cache_path(kind: str, *parts: str) -> pathlib.Path:
    """The entry for ``parts`` (strings that together determine the result)."""
    key = hashlib.sha256("|".join(parts).encode()).hexdigest()[:24]
    return cache_dir(kind) / f"{key}.pt"


def load_cached(path: pathlib.Path) -> Any | None:
    """The saved tensors (a tensor or a dict of tensors), or None when absent or unreadable."""
    if not path.exists():
        return None
    try:
        return torch.load(path, weights_only=True)
    except Exception:  # a corrupt or foreign entry: drop it and recompute
        path.unlink(missing_ok=True)
        return None


def save_cached(path: pathlib.Path, value: Any) -> Any:
    """Write ``value`` atomically with ``torch.save``; return it."""
    with atomic_open(path, "wb") as fh:
        torch.save(value, fh)
    return value
