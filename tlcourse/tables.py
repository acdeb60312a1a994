"""The one results-table helper: rows of results in, a table out.

- :func:`results_table`: a pandas DataFrame from result rows (dicts), indexed
  by one column, with integer counts shown with thousands separators;
- :func:`text_table`: the same rows as aligned plain text, for headless output
  and for printing in a notebook;
- :func:`mean_std`: the mean and (population) standard deviation over seeds
  that every table of the course reports;
- :func:`paired_gain_table`: methods against one baseline over the same seeds,
  as markdown: mean ± std, the paired gain and the seeds won.

>>> results_table([{"method": "head only", "acc": 0.71, "trainable": 12810}], index="method")
>>> print(text_table(["method", "acc"], [["head only", "0.710"]]))
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """``(mean, std)`` of ``values`` (numpy's population std, as every table of the course reports)."""
    a = np.asarray(values, dtype=float)
    return float(a.mean()), float(a.std())


def results_table(rows: Sequence[Mapping[str, Any]], index: str | None = None, thousands: Sequence[str] = ()):
    """A pandas DataFrame of ``rows``, indexed by the ``index`` column when given.

    Each column named in ``thousands`` is shown as integers with thousands
    separators (``1,234``), empty where missing (NaN).
    """
    import pandas as pd

    df = pd.DataFrame(list(rows))
    for col in thousands:
        if col in df:
            df[col] = df[col].map(lambda v: f"{int(v):,}" if v == v else "")
    return df.set_index(index) if index is not None and index in df else df


def text_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Aligned plain text: a header line, a rule, one line per row (cells left-aligned)."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda cells: "  ".join(f"{str(c):<{w}}" for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def paired_gain_table(results: Mapping[str, Sequence[float]], baseline: str, metric: str = "accuracy") -> str:
    """A markdown table, one row per method: ``metric`` mean ± std over seeds, the paired gain over
    ``baseline`` (same seed, same position in each list) and on how many seeds the method won.

    >>> print(paired_gain_table({"scratch": [0.5, 0.6], "transfer": [0.7, 0.6]}, "scratch"))
    """
    if baseline not in results:
        raise KeyError(f"baseline {baseline!r} is not among the results: {', '.join(results)}")
    base = np.asarray(results[baseline], dtype=float)
    rows = [f"| method | {metric} (mean ± std) | paired gain over {baseline} | seeds won |", "|---|---|---|---|"]
    for name, values in results.items():
        a = np.asarray(values, dtype=float)
        if a.shape != base.shape:
            raise ValueError(f"{name!r} has {a.size} seeds and the baseline {base.size}: a paired gain needs the same seeds")
        gain = a - base
        mean, std = mean_std(a)
        g, won = ("", "") if name == baseline else (f"{gain.mean():+.3f} ± {gain.std():.3f}",
                                                    f"{int((gain > 0).sum())}/{a.size}")
        rows.append(f"| {name} | {mean:.3f} ± {std:.3f} | {g} | {won} |")
    return "\n".join(rows)
