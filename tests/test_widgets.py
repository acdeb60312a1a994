"""tlcourse.widgets: the frontend decision and the shared widget plumbing (the explorers are tested with their
lessons, in test_feature_extraction.py and test_fine_tuning_widgets.py)."""
from __future__ import annotations

import re
import sys
import types

import matplotlib.pyplot as plt
import pytest

from tlcourse import widgets
from tlcourse.widgets import widget_frontend


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# ---------------------------------------------------------------- widget_frontend

def _fake_shell(monkeypatch, allow_stdin):
    parent = {"content": {"code": "x", "allow_stdin": allow_stdin}}
    kernel = types.SimpleNamespace(get_parent=lambda: parent)
    shell = types.SimpleNamespace(kernel=kernel)
    import IPython
    monkeypatch.setattr(IPython, "get_ipython", lambda: shell)


def test_no_kernel_means_no_widgets(monkeypatch):
    monkeypatch.delenv(widgets.WIDGETS_ENV, raising=False)
    assert widget_frontend() is False


@pytest.mark.parametrize("allow_stdin, expected", [(True, True), (False, False)])
def test_frontend_is_judged_from_the_execute_request(monkeypatch, allow_stdin, expected):
    monkeypatch.delenv(widgets.WIDGETS_ENV, raising=False)
    _fake_shell(monkeypatch, allow_stdin)
    assert widget_frontend() is expected


def test_environment_overrides_the_request(monkeypatch):
    _fake_shell(monkeypatch, allow_stdin=True)
    monkeypatch.setenv(widgets.WIDGETS_ENV, "static")
    assert widget_frontend() is False
    _fake_shell(monkeypatch, allow_stdin=False)
    monkeypatch.setenv(widgets.WIDGETS_ENV, "interactive")
    assert widget_frontend() is True


def test_bad_environment_value_says_what_to_do(monkeypatch):
    monkeypatch.setenv(widgets.WIDGETS_ENV, "sometimes")
    with pytest.raises(ValueError, match="auto, interactive, static"):
        widget_frontend()


def test_real_kernel_headless_and_interactive_requests():
    """In a real ipykernel: an executor's request (allow_stdin=False) gets the static path, a person's does not."""
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3")
    try:
        def run(code, allow_stdin):
            msg_id = kc.execute(code, allow_stdin=allow_stdin)
            text = []
            while True:
                msg = kc.get_iopub_msg(timeout=60)
                if msg["parent_header"].get("msg_id") != msg_id:
                    continue
                if msg["msg_type"] == "stream":
                    text.append(msg["content"]["text"])
                elif msg["msg_type"] == "error":
                    raise AssertionError("\n".join(msg["content"]["traceback"]))
                elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                    return "".join(text).strip()

        setup = "import os; os.environ.pop('TLCOURSE_WIDGETS', None); from tlcourse.widgets import widget_frontend"
        run(setup, False)
        assert run("print(widget_frontend())", allow_stdin=False) == "False"
        assert run("print(widget_frontend())", allow_stdin=True) == "True"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_module_imports_without_ipython_display(monkeypatch):
    # _display must be a no-op, not an error, when IPython.display is unavailable
    monkeypatch.setitem(sys.modules, "IPython.display", None)
    widgets._display(object())


def test_slider_explorer_redraws_figure_and_summary_when_the_slider_moves():
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    from tlcourse.widgets import slider_explorer

    calls = []

    def render(v):
        calls.append(v)
        fig, ax = plt.subplots(figsize=(1, 1))
        ax.plot([0, v])
        return f"<b>value {v}</b>", fig

    slider = widgets.IntSlider(value=2, min=0, max=5)
    box = slider_explorer(slider, render, layout="summary-first")
    slider_w, summary, image = box.children
    assert slider_w is slider and calls == [2] and summary.value == "<b>value 2</b>"
    first = bytes(image.value)
    assert first.startswith(b"\x89PNG")
    slider.value = 4
    assert calls == [2, 4] and summary.value == "<b>value 4</b>" and bytes(image.value) != first
    side = slider_explorer(widgets.IntSlider(value=1), render)  # default: figure and summary side by side
    assert isinstance(side.children[1], widgets.HBox)
    with pytest.raises(ValueError, match="choose one of side, summary-first, figure-first"):
        slider_explorer(widgets.IntSlider(), render, layout="grid")


def test_slider_explorer_with_two_sliders_renders_both_values():
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    from tlcourse.widgets import slider_explorer

    calls = []

    def render(a, b):
        calls.append((a, b))
        return f"{a}/{b}", plt.subplots(figsize=(1, 1))[0]

    a, b = widgets.IntSlider(value=1), widgets.FloatSlider(value=0.5)
    box = slider_explorer([a, b], render, layout="figure-first")
    row, image, summary = box.children
    assert list(row.children) == [a, b] and summary.value == "1/0.5"
    b.value = 0.75
    a.value = 3
    assert calls == [(1, 0.5), (1, 0.75), (3, 0.75)] and summary.value == "3/0.75"


def test_the_detection_threshold_explorer_follows_both_sliders():
    import torch

    from tlcourse.lessons.object_detection import threshold_explorer

    boxes = torch.tensor([[0, 0, 20, 20], [1, 1, 21, 21], [40, 40, 60, 60]], dtype=torch.float)
    scores, classes = torch.tensor([0.9, 0.5, 0.3]), torch.zeros(3, dtype=torch.long)

    def greedy_nms(b, s, c, iou_thr):  # keeps a box unless it overlaps a kept one by more than iou_thr
        from torchvision.ops import box_iou
        keep = []
        for i in s.argsort(descending=True).tolist():
            if all(box_iou(b[i:i + 1], b[j:j + 1]).item() <= iou_thr for j in keep):
                keep.append(i)
        return keep

    box = threshold_explorer(torch.rand(3, 64, 64), boxes, scores, classes, greedy_nms, ["tree"], interactive=True)
    (score, iou), summary = box.children[0].children, box.children[2]

    def row():  # score threshold, IoU threshold, candidates, boxes after NMS
        return re.findall(r"<td[^>]*>([^<]*)</td>", summary.value)
    assert row() == ["0.25", "0.45", "3", "2"]
    iou.value = 1.0  # nothing suppressed
    assert row() == ["0.25", "1.00", "3", "3"]
    score.value = 0.6  # one candidate left
    assert row() == ["0.60", "1.00", "1", "1"]


def test_every_lesson_slider_explorer_draws_interactively():
    """The explorers built on slider_explorer, each driven once past its first value."""
    from tlcourse.lessons import classical_transfer as ct, many_tasks as mt, self_taught as st

    res = [{"MF, target only": {1: (1.0, 0.8), 3: (0.9, 0.8)}, "CMF, shared user factors": {1: (0.9, 0.9), 3: (0.8, 0.9)}},
           {"MF, target only": {1: (1.1, 0.8), 3: (1.0, 0.8)}, "CMF, shared user factors": {1: (1.3, 0.7), 3: (0.9, 0.9)}}]
    sweep = {0.5: {"fine": [0.6, 0.62], "coarse": [0.8, 0.82]}, 1.0: {"fine": [0.63, 0.61], "coarse": [0.85, 0.8]}}
    runs = [{"a_before": 0.9, "progressive": {"A": [0.9, 0.9], "B": [0.5, 0.6]},
             "fine-tune": {"A": [0.8, 0.7], "B": [0.5, 0.7]}, "fresh column": {"B": [0.4, 0.5]}}]
    for box in (ct.cold_start_explorer(res, interactive=True), mt.weight_explorer(sweep, [0.6, 0.6], interactive=True),
                st.forgetting_explorer(runs, interactive=True)):
        slider = box.children[0]
        before = [bytes(w.value) if hasattr(w.value, "tobytes") else w.value for w in _leaves(box)[1:]]
        values = [v for _, v in slider.options] if getattr(slider, "options", None) else [slider.min, slider.max]
        slider.value = next(v for v in values if v != slider.value)
        after = [bytes(w.value) if hasattr(w.value, "tobytes") else w.value for w in _leaves(box)[1:]]
        assert all(a != b for a, b in zip(before, after)), type(box)


def _leaves(box):
    out = []
    for w in box.children:
        out += _leaves(w) if hasattr(w, "children") else [w]
    return out
