"""One row of the headline table: a method against its baseline over the same seeds, with the paired gain."""
from __future__ import annotations

import statistics
from typing import Any, Sequence


def comparison(experiment: str, setting: str, baseline: str, method: str, baseline_acc: Sequence[float],
               method_acc: Sequence[float], seconds: float, chance: float | None = None) -> dict[str, Any]:
    """Both sides per seed, their mean ± sample std, and the paired gain (method minus baseline, same seed).

    A single baseline value (chance, say) is compared with every seed of the method.
    """
    b, m = [float(x) for x in baseline_acc], [float(x) for x in method_acc]
    if not m:
        raise ValueError(f"{experiment}/{method}: no results")
    sd = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0  # noqa: E731
    row = {"experiment": experiment, "setting": setting, "baseline": baseline, "method": method,
           "baseline_acc": b, "method_acc": m, "seeds": len(m),
           "baseline_mean": statistics.fmean(b) if b else None, "baseline_std": sd(b) if b else None,
           "method_mean": statistics.fmean(m), "method_std": sd(m), "seconds": float(seconds), "chance": chance}
    gains = [x - y for x, y in zip(m, b)] if len(b) == len(m) else [x - b[0] for x in m]
    row.update(gains=gains, gain_mean=statistics.fmean(gains), gain_std=sd(gains),
               gain_positive=sum(g > 0 for g in gains))
    return row
