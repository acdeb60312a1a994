"""Notebook 01, feature extraction: the label-budget explorer.

- :func:`label_budget_explorer`: accuracy against labels per class, and how
  many labels training from scratch needs to match the pretrained probe
  (a slider where widgets work, a static figure and table otherwise);
- :func:`labels_to_match`, :func:`budget_rows`: the numbers behind it.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

from ..plots import plot_label_efficiency
from ..tables import text_table
from ..widgets import _html_table, _use_widgets, slider_explorer


def _curve(by_budget: Mapping[int, Sequence[float]]) -> dict[int, float]:
    return {int(k): float(np.mean(v)) for k, v in sorted(by_budget.items()) if len(v)}


def labels_to_match(curve: Mapping[int, float], target: float) -> tuple[float | None, str]:
    """Labels per class at which ``curve`` (budget -> accuracy) first reaches ``target``.

    Interpolates linearly in log(budget) between measured budgets. Returns
    ``(budget, how)`` with ``how`` one of ``"at most"`` (already there at the
    smallest budget), ``"about"`` (interpolated), or ``"more than"`` with the
    largest budget (never reached in the measured range).
    """
    ks = sorted(curve)
    if not ks:
        raise ValueError("labels_to_match needs at least one measured budget")
    if curve[ks[0]] >= target:
        return float(ks[0]), "at most"
    for k0, k1 in zip(ks, ks[1:]):
        a0, a1 = curve[k0], curve[k1]
        if a1 >= target > a0:
            frac = (target - a0) / (a1 - a0)
            return float(math.exp(math.log(k0) + frac * (math.log(k1) - math.log(k0)))), "about"
    return float(ks[-1]), "more than"


def budget_rows(results: Mapping[str, Mapping[int, Sequence[float]]], budget: int,
                reference: str, baseline: str) -> tuple[list[list[str]], str]:
    """The table rows (method, mean, min-max) at ``budget`` and a sentence on the labels saved."""
    rows = []
    for name, by_budget in results.items():
        accs = np.asarray(by_budget.get(budget, []), dtype=float)
        rows.append([name, f"{accs.mean():.3f}" if accs.size else "-",
                     f"{accs.min():.3f}-{accs.max():.3f}" if accs.size > 1 else ""])
    target = _curve(results[reference])[budget]
    needed, how = labels_to_match(_curve(results[baseline]), target)
    if how == "more than":
        verdict = (f"{baseline} never reached {target:.3f} in the measured range: it would need more than "
                   f"{needed:.0f} labels per class.")
    else:
        verdict = (f"{baseline} needs {how} {needed:.0f} labels per class to match {reference} "
                   f"with {budget} ({target:.3f}): "
                   + (f"{needed / budget:.1f}x the labels." if needed > budget else "no saving at this budget."))
    return rows, verdict


def _plot_budget(results, budget: int | None, reference: str, baseline: str, chance: float | None, title: str):
    fig = plot_label_efficiency(results, chance=chance, title=title)
    ax = fig.axes[0]
    budgets = [budget] if budget is not None else sorted(_curve(results[reference]))
    for k in budgets:
        target = _curve(results[reference])[k]
        needed, how = labels_to_match(_curve(results[baseline]), target)
        ax.axvline(k, color="k", lw=0.8, alpha=0.5)
        if how == "about" and needed > k:  # the horizontal distance is the labels transfer saves
            ax.annotate("", xy=(needed, target), xytext=(k, target),
                        arrowprops=dict(arrowstyle="->", color="k", lw=1))
            ax.text(math.sqrt(k * needed), target + 0.01, f"{needed / k:.1f}x labels", ha="center", fontsize=8)
    return fig


def label_budget_explorer(results: Mapping[str, Mapping[int, Sequence[float]]],
                          reference: str = "pretrained features + linear head",
                          baseline: str = "CNN from scratch", chance: float | None = None,
                          title: str = "test accuracy against labels per class",
                          interactive: bool | None = None):
    """A label-budget slider on the label-efficiency curve; a static figure and table when headless.

    ``results`` is ``{method: {labels_per_class: [accuracy per seed]}}`` as
    notebook 01 builds it. At the chosen budget the explorer shows every
    method's accuracy and how many labels per class ``baseline`` needs to
    match ``reference`` there. Returns the widget (interactive) or the figure.
    """
    for name in (reference, baseline):
        if name not in results:
            raise KeyError(f"{name!r} is not in results (methods: {list(results)}); "
                           "pass reference=/baseline= with one of those names")
    budgets = sorted(_curve(results[reference]))
    missing = [k for k in budgets if k not in results[baseline]]
    if missing:
        raise ValueError(f"{baseline!r} has no result at budgets {missing}; measure every budget for both")
    header = ["method", "accuracy", "min-max over seeds"]
    if not _use_widgets(interactive):
        for k in budgets:
            rows, verdict = budget_rows(results, k, reference, baseline)
            print(f"{k} labels per class\n{text_table(header, rows)}\n{verdict}\n")
        return _plot_budget(results, None, reference, baseline, chance, title)

    import ipywidgets as widgets

    slider = widgets.SelectionSlider(options=[(str(k), k) for k in budgets], value=budgets[0],
                                     description="labels/class", continuous_update=False,
                                     style={"description_width": "initial"})

    def render(budget: int):
        rows, verdict = budget_rows(results, budget, reference, baseline)
        return (f"<b>{budget} labels per class</b>{_html_table(header, rows)}<p>{verdict}</p>",
                _plot_budget(results, budget, reference, baseline, chance, title))

    return slider_explorer(slider, render, layout="side")
