"""tlcourse.lessons.fine_tuning: the trainable-layers explorer and its profiler, headless and interactive."""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import pytest
import torch
from torch import nn

from tlcourse.lessons.fine_tuning import UnfreezingProfiler, default_unfreeze_points, trainable_layers_explorer


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")



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
