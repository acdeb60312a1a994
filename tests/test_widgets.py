"""tlcourse.widgets: the frontend decision, the label-budget and trainable-layers explorers.

The explorers are exercised both ways: headless (a static figure and a
printed table) and interactive (ipywidgets built without a frontend; moving
the slider must change the numbers and the picture).
"""
from __future__ import annotations

import math
import sys
import types

import matplotlib.pyplot as plt
import pytest
import torch
from torch import nn

from tlcourse import widgets
from tlcourse.lessons.feature_extraction import label_budget_explorer, labels_to_match
from tlcourse.lessons.fine_tuning import UnfreezingProfiler, default_unfreeze_points, trainable_layers_explorer
from tlcourse.widgets import widget_frontend

RESULTS = {
    "pretrained features + linear head": {10: [0.72, 0.74], 50: [0.79, 0.80], 200: [0.84, 0.83]},
    "pixels + linear head": {10: [0.70, 0.69], 50: [0.74, 0.75], 200: [0.77, 0.78]},
    "CNN from scratch": {10: [0.50], 50: [0.70], 200: [0.85]},
}


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


# ---------------------------------------------------------------- label budget

def test_labels_to_match_interpolates_in_log_budget():
    curve = {10: 0.5, 100: 0.7}
    k, how = labels_to_match(curve, 0.6)
    assert how == "about" and k == pytest.approx(math.sqrt(10 * 100))
    assert labels_to_match(curve, 0.4) == (10.0, "at most")
    assert labels_to_match(curve, 0.9) == (100.0, "more than")
    # a dip in the curve: the first crossing counts
    assert labels_to_match({10: 0.5, 50: 0.8, 200: 0.6}, 0.65)[1] == "about"


def test_label_budget_explorer_headless_prints_every_budget(capsys):
    fig = label_budget_explorer(RESULTS, chance=0.1, interactive=False)
    text = capsys.readouterr().out
    assert isinstance(fig, plt.Figure)
    for k in (10, 50, 200):
        assert f"{k} labels per class" in text
    # pretrained at 10 labels: 0.73; scratch reaches it between 50 (0.70) and 200 (0.85)
    expected = math.exp(math.log(50) + (0.73 - 0.70) / (0.85 - 0.70) * (math.log(200) - math.log(50)))
    assert f"needs about {expected:.0f} labels per class" in text
    assert f"{expected / 10:.1f}x the labels" in text


def test_label_budget_explorer_slider_updates_numbers_and_picture():
    box = label_budget_explorer(RESULTS, interactive=True)
    slider, (image, summary) = box.children[0], box.children[1].children
    first_html, first_png = summary.value, bytes(image.value)
    assert "10 labels per class" in first_html and first_png.startswith(b"\x89PNG")
    slider.value = 200
    assert "200 labels per class" in summary.value and "0.835" in summary.value
    assert bytes(image.value) != first_png


def test_label_budget_explorer_names_the_methods_it_knows():
    with pytest.raises(KeyError, match="pixels"):
        label_budget_explorer(RESULTS, reference="no such method", interactive=False)


# ---------------------------------------------------------------- trainable layers

class Tiny(nn.Module):
    """torchvision layout: ``features`` (the body blocks) and ``classifier`` (the head)."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 8, 3, padding=1),
                                      nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8)))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(8 * 8 * 8, 3))

    def forward(self, x):
        return self.classifier(self.features(x))


def _batch(n=6):
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, 1, 8, 8, generator=g), torch.randint(0, 3, (n,), generator=g)


def _sizes(net):
    return [sum(p.numel() for p in b.parameters()) for b in net.features]


def test_profiler_counts_trainable_parameters_exactly():
    net = Tiny()
    prof = UnfreezingProfiler(net, net.classifier, *_batch(), steps=1)
    blocks, head = _sizes(net), sum(p.numel() for p in net.classifier.parameters())
    assert prof.n_blocks == 3
    assert prof.trainable(0) == head
    assert prof.trainable(1) == head + blocks[2]
    assert prof.trainable(3) == head + sum(blocks) == prof.total
    with pytest.raises(ValueError, match="between 0"):
        prof.trainable(4)


def test_profiler_trains_only_the_last_blocks_and_leaves_the_callers_network_alone():
    net = Tiny()
    net.features[0].weight.requires_grad_(False)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    flags = [p.requires_grad for p in net.parameters()]
    prof = UnfreezingProfiler(net, net.classifier, *_batch(), steps=2)
    speed = prof.images_per_second(1)
    assert math.isfinite(speed) and speed > 0
    # in the private copy: frozen blocks got no gradient, the last block and the head did
    assert all(p.grad is None for b in prof.blocks[:2] for p in b.parameters())
    assert all(p.grad is not None for p in prof.blocks[2].parameters())
    assert all(p.grad is not None for p in prof.head.parameters())
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "the caller's weights changed"
    assert [p.requires_grad for p in net.parameters()] == flags, "the caller's flags changed"
    assert prof.images_per_second(1) == speed  # cached, not measured again


def test_profiler_rejects_a_head_from_elsewhere_and_mismatched_batches():
    net = Tiny()
    x, y = _batch()
    with pytest.raises(ValueError, match="submodule"):
        UnfreezingProfiler(net, nn.Linear(2, 2), x, y)
    with pytest.raises(ValueError, match="one label per image"):
        UnfreezingProfiler(net, net.classifier, x, y[:2])


def test_trainable_layers_explorer_headless_and_interactive(capsys):
    net = Tiny()
    fig, rows = trainable_layers_explorer(net, net.classifier, *_batch(), ks=[0, 3], steps=1,
                                         interactive=False)
    assert isinstance(fig, plt.Figure)
    assert [r["k"] for r in rows] == [0, 3] and rows[1]["share"] == pytest.approx(1.0)
    assert "3 body blocks" in capsys.readouterr().out

    box = trainable_layers_explorer(net, net.classifier, *_batch(), ks=[0, 3], steps=1, interactive=True)
    slider, summary, image = box.children
    first_png = bytes(image.value)
    slider.value = 1
    head = sum(p.numel() for p in net.classifier.parameters())
    assert f"{head + _sizes(net)[2]:,} of" in summary.value
    assert bytes(image.value) != first_png


def test_default_unfreeze_points_cover_both_ends():
    ks = default_unfreeze_points(19)
    assert ks[0] == 0 and ks[-1] == 19 and len(ks) >= 5 and ks == sorted(set(ks))


def test_module_imports_without_ipython_display(monkeypatch):
    # _display must be a no-op, not an error, when IPython.display is unavailable
    monkeypatch.setitem(sys.modules, "IPython.display", None)
    widgets._display(object())
