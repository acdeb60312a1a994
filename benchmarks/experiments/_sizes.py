"""The sizes an experiment runs at: the quick profile's for its notebook, updated with the ones passed in."""
from __future__ import annotations

from typing import Any, Iterable, Mapping


def sizes(notebook: str, given: Mapping[str, Any] | None, extra: Iterable[str] = ()) -> dict[str, Any]:
    """The quick profile's sizes for ``notebook``, updated with ``given`` (tests pass tiny ones).

    ``extra`` names keys the profile does not hold but the experiment accepts (T, alpha, ...).
    """
    from tlcourse.profile import profile

    merged = dict(profile("quick")[notebook])
    unknown = set(given or {}) - set(merged) - set(extra)
    if unknown:
        raise KeyError(f"unknown size(s) {sorted(unknown)} for notebook {notebook}; known: {sorted(merged)}")
    merged.update(given or {})
    return merged
