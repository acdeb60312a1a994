"""Interactive explorers that fall back to a static figure when nobody can interact.

A notebook cell that calls an explorer shows

- in JupyterLab, Notebook 7, VS Code or Colab: a slider whose figure and
  numbers update as it moves (ipywidgets);
- when the notebook is executed headless (nbval, ``tlcourse grade``,
  ``nbconvert --execute``, the course site): one static figure and a printed
  table that carry the same message, so a saved or graded notebook still
  shows it.

:func:`widget_frontend` makes that decision and is meant for every widget in
the course; :func:`slider_explorer` (a slider driving a figure and a summary),
:func:`figure_png` and the table helpers are shared by the explorers, which
live with their lessons
(:func:`tlcourse.lessons.feature_extraction.label_budget_explorer`,
:func:`tlcourse.lessons.fine_tuning.trainable_layers_explorer`,
:func:`tlcourse.lessons.distillation.temperature_widget`).
"""
from __future__ import annotations

import io
import os
from typing import Any, Callable, Sequence

import matplotlib.pyplot as plt

WIDGETS_ENV = "TLCOURSE_WIDGETS"
_MODES = ("auto", "interactive", "static")


# ---------------------------------------------------------------- frontend detection

def widget_frontend() -> bool:
    """True when a person's frontend can render and drive ipywidgets in this kernel.

    ``$TLCOURSE_WIDGETS`` overrides: ``static`` never shows widgets,
    ``interactive`` always does (inside a kernel with ipywidgets), ``auto``
    (the default) decides from the running cell's execute request. Frontends
    people use (JupyterLab, Notebook, VS Code, Colab) allow ``input()``, so
    they send ``allow_stdin=True``; headless executors (nbclient under
    nbgrader and nbconvert, nbval) send ``allow_stdin=False``. A kernel alone
    is not enough: nbval and grading run one too.
    """
    mode = os.environ.get(WIDGETS_ENV, "auto").strip().lower() or "auto"
    if mode not in _MODES:
        raise ValueError(f"{WIDGETS_ENV}={os.environ[WIDGETS_ENV]!r} is not one of {', '.join(_MODES)}; "
                         f"unset it or choose one, e.g. `export {WIDGETS_ENV}=static`.")
    if mode == "static":
        return False
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    kernel = getattr(shell, "kernel", None)
    if kernel is None:
        return False
    if mode == "interactive":
        return True
    return _request_allows_stdin(kernel)


def _request_allows_stdin(kernel) -> bool:
    try:
        parent = kernel.get_parent()  # the execute_request of the running cell
        content = parent.get("content") or {}
        if "allow_stdin" in content:
            return bool(content["allow_stdin"])
    except Exception:  # an unusual kernel: fall back to what ipykernel recorded
        pass
    return bool(getattr(kernel, "_allow_stdin", False))


def _use_widgets(interactive: bool | None) -> bool:
    return widget_frontend() if interactive is None else bool(interactive)


def figure_png(fig) -> bytes:
    """The figure as PNG bytes (for an ``ipywidgets.Image``); closes it so it is not shown twice."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def _display(widget) -> None:
    try:
        from IPython.display import display
    except ImportError:  # plain Python: nothing to show on
        return
    display(widget)


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th style='text-align:left;padding:0 8px'>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td style='padding:0 8px'>{c}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"




_LAYOUTS = ("side", "summary-first", "figure-first")


def slider_explorer(slider, render: Callable[..., tuple[str, Any]], layout: str = "side"):
    """Show ``slider`` with a figure and an HTML summary that follow it; return the box.

    ``render(value)`` returns ``(summary_html, matplotlib_figure)`` for a slider value; it
    runs once now and again whenever the slider settles on a new value. ``slider`` may be a
    list of sliders, shown in a row: then ``render`` gets one value per slider. ``layout``: the
    figure and summary ``"side"`` by side, or stacked under the slider,
    ``"summary-first"`` or ``"figure-first"``.
    """
    import ipywidgets as widgets

    if layout not in _LAYOUTS:
        raise ValueError(f"layout={layout!r}: choose one of {', '.join(_LAYOUTS)}")
    sliders = list(slider) if isinstance(slider, (list, tuple)) else [slider]
    image, summary = widgets.Image(format="png"), widgets.HTML()

    def draw(_=None) -> None:
        html, fig = render(*(s.value for s in sliders))
        summary.value, image.value = html, figure_png(fig)

    for s in sliders:
        s.observe(draw, names="value")
    draw()
    body = {"side": [widgets.HBox([image, summary])], "summary-first": [summary, image],
            "figure-first": [image, summary]}[layout]
    box = widgets.VBox([sliders[0] if len(sliders) == 1 else widgets.HBox(sliders), *body])
    _display(box)
    return box
