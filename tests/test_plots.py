"""Every plotting helper returns a Figure holding what it was given."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from PIL import Image  # noqa: E402

from tlcourse import plots  # noqa: E402
from tlcourse.train import History  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_plot_history_splits_losses_and_accuracies():
    hist = History()
    for e in range(4):
        hist.log(train_loss=1.0 / (e + 1), val_loss=1.2 / (e + 1), train_acc=0.5 + 0.1 * e, val_acc=0.4 + 0.1 * e,
                 lr=1e-3, epoch_time=0.1)
    fig = plots.plot_history(hist, title="run")
    assert isinstance(fig, Figure)
    loss_ax, acc_ax = fig.axes[:2]
    assert sorted(line.get_label() for line in loss_ax.lines) == ["train_loss", "val_loss"]
    assert sorted(line.get_label() for line in acc_ax.lines) == ["train_acc", "val_acc"]  # lr not drawn
    x, y = loss_ax.lines[0].get_data()
    assert list(x) == [1, 2, 3, 4] and list(y) == pytest.approx(hist[loss_ax.lines[0].get_label()])
    fig2 = plots.plot_history({"train_loss": [1.0, 0.5]}, keys=["train_loss"])
    assert len(fig2.axes[0].lines) == 1 and not fig2.axes[1].lines


@pytest.mark.parametrize("normalize", [True, False])
def test_plot_confusion_matrix(normalize):
    y_true = torch.tensor([0, 0, 1, 1, 2, 2, 2])
    y_pred = np.array([0, 1, 1, 1, 2, 0, 2])
    fig = plots.plot_confusion_matrix(y_true, y_pred, ["a", "b", "c"], normalize=normalize)
    assert isinstance(fig, Figure)
    cm = fig.axes[0].images[0].get_array()
    counts = np.array([[1, 1, 0], [0, 2, 0], [1, 0, 2]], dtype=float)
    expected = counts / counts.sum(1, keepdims=True) if normalize else counts
    assert np.allclose(cm, expected)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["a", "b", "c"]


@pytest.mark.parametrize("kind", ["grey-tensor", "rgb-tensor", "hw-tensor", "pil", "array"])
def test_show_images_accepts_each_input_kind(kind):
    g = torch.Generator().manual_seed(0)
    images = {
        "grey-tensor": lambda: torch.rand(5, 1, 8, 8, generator=g),
        "rgb-tensor": lambda: torch.rand(5, 3, 8, 8, generator=g),
        "hw-tensor": lambda: torch.rand(5, 8, 8, generator=g),
        "pil": lambda: [Image.new("RGB", (10, 12), (i * 40, 0, 0)) for i in range(5)],
        "array": lambda: list(np.random.default_rng(0).random((5, 8, 8))),
    }[kind]()
    fig = plots.show_images(images, labels=[0, 1, 2, 0, 1], classes=["x", "y", "z"], ncols=3)
    assert isinstance(fig, Figure)
    drawn = [ax for ax in fig.axes if ax.images]
    assert len(fig.axes) == 6 and len(drawn) == 5
    assert [ax.get_title() for ax in drawn] == ["x", "y", "z", "x", "y"]


def test_show_images_marks_wrong_predictions():
    fig = plots.show_images(torch.rand(3, 1, 4, 4), labels=[0, 1, 2], preds=[0, 2, 2], classes=["a", "b", "c"])
    titles = [ax.title for ax in fig.axes if ax.images]
    assert [t.get_text() for t in titles] == ["a\n(a)", "c\n(b)", "c\n(c)"]
    colours = [matplotlib.colors.to_hex(t.get_color()) for t in titles]
    assert colours == ["#008000", "#ff0000", "#008000"]


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_plot_embeddings(method):
    rng = np.random.default_rng(0)
    feats = np.concatenate([rng.normal(0, 1, (20, 16)), rng.normal(5, 1, (20, 16))]).astype(np.float32)
    labels = np.repeat([0, 1], 20)
    domains = np.tile([0, 1], 20)
    fig = plots.plot_embeddings(torch.from_numpy(feats), labels, classes=["cat", "dog"], method=method,
                                domains=domains)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    by_class = fig.axes[0]
    assert [c.get_label() for c in by_class.collections] == ["cat", "dog"]
    assert sum(len(c.get_offsets()) for c in by_class.collections) == 40
    assert method.upper() in by_class.get_title()


def test_plot_embeddings_subsamples_and_rejects_unknown_method():
    feats, labels = np.random.default_rng(1).normal(size=(300, 4)), np.arange(300) % 3
    fig = plots.plot_embeddings(feats, labels, max_points=100)
    assert sum(len(c.get_offsets()) for c in fig.axes[0].collections) == 100
    with pytest.raises(ValueError, match="'pca' or 'tsne'"):
        plots.plot_embeddings(feats, labels, method="umap")


def test_plot_label_efficiency():
    results = {"linear probe": {1: [0.3, 0.35], 10: [0.6, 0.62], 100: [0.8, 0.81]},
               "fine-tune": {1: [0.2, 0.3], 10: [0.5, 0.7], 100: [0.85, 0.9]}}
    fig = plots.plot_label_efficiency(results, chance=0.1)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.lines]
    assert labels == ["linear probe", "fine-tune", "chance"]
    x, y = ax.lines[0].get_data()
    assert list(x) == [1, 10, 100] and list(y) == pytest.approx([0.325, 0.61, 0.805])
    assert ax.get_xscale() == "log" and len(ax.collections) == 2  # one min-max band per method


def test_plot_embeddings_legend_without_class_names():
    feats = np.random.default_rng(0).normal(size=(20, 4))
    fig = plots.plot_embeddings(feats, np.repeat([1, 2], 10), domains=np.repeat([3, 5], 10))
    assert [c.get_label() for c in fig.axes[0].collections] == ["class 1", "class 2"]
    assert [c.get_label() for c in fig.axes[1].collections] == ["domain 3", "domain 5"]
