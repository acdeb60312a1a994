"""Helpers for notebook 07 (many tasks and many sources): task data, the multi-task wrapper that lets
``tlcourse.train.fit`` train a shared trunk with several heads, evaluation and the task-weight explorer.

The notebook's students write the multi-task forward pass, loss and per-task metrics themselves;
everything here takes their functions as arguments and never computes a task loss on its own.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from ..data import FASHION_CLASSES, load_fashion_mnist, stratified_indices
from ..device import pick_device
from ..methods.multitask import UncertaintyWeighting
from ..train import fit, make_loader

MISSING = -1  # the label of an image that has no label for a task
COARSE_GROUPS = {"top": (0, 2, 3, 4, 6), "bottom": (1,), "footwear": (5, 7, 9), "bag": (8,)}
COARSE_CLASSES = tuple(COARSE_GROUPS)
COARSE_OF = np.array([next(i for i, members in enumerate(COARSE_GROUPS.values()) if c in members)
                      for c in range(len(FASHION_CLASSES))])


def resize(images: torch.Tensor, image_size: int) -> torch.Tensor:
    """Float (N, 1, H, W) in [0, 1] resized to ``image_size`` (bilinear, antialiased)."""
    if images.shape[-1] == image_size:
        return images
    return F.interpolate(images, size=(image_size, image_size), mode="bilinear", antialias=True,
                         align_corners=False).clamp_(0, 1)


@dataclass
class TaskData:
    """Fashion-MNIST as two tasks on the same images.

    ``fine``: the 10 classes, labelled for only a few images per class (the rest are ``MISSING``);
    ``coarse``: 4 groups (top, bottom, footwear, bag), labelled for every training image.
    """

    train_x: torch.Tensor
    labels: dict[str, torch.Tensor]
    test_x: torch.Tensor
    test_labels: dict[str, torch.Tensor]
    fine_per_class: int

    @property
    def n_classes(self) -> dict[str, int]:
        return {"fine": len(FASHION_CLASSES), "coarse": len(COARSE_CLASSES)}

    def __repr__(self) -> str:
        n_fine = int((self.labels["fine"] != MISSING).sum())
        return (f"TaskData({len(self.train_x)} training images {tuple(self.train_x.shape[1:])}: coarse labels for "
                f"all, fine labels for {n_fine} ({self.fine_per_class} per class); {len(self.test_x)} test images)")


def load_fashion_tasks(image_size: int = 28, fine_per_class: int = 20, seed: int = 0) -> TaskData:
    """The quick Fashion-MNIST subset as a data-poor fine task and a data-rich coarse task.

    Which ``fine_per_class`` images keep their fine label is drawn with ``seed``
    (stratified), so each seed of an experiment is a different small labelled set.
    """
    train, test = load_fashion_mnist("train"), load_fashion_mnist("test")
    fine = torch.full((len(train),), MISSING, dtype=torch.long)
    keep = torch.as_tensor(stratified_indices(train.labels, per_class=fine_per_class, seed=seed))
    fine[keep] = train.targets[keep]
    coarse_of = torch.as_tensor(COARSE_OF)
    return TaskData(resize(train.tensor(), image_size), {"fine": fine, "coarse": coarse_of[train.targets]},
                    resize(test.tensor(), image_size),
                    {"fine": test.targets.clone(), "coarse": coarse_of[test.targets]}, fine_per_class)


# ---------------------------------------------------------------- the model fit() trains

class MultiTaskNet(nn.Module):
    """A shared trunk and one head per task, run by the student's ``forward_fn(trunk, heads, x) -> dict``.

    ``forward`` returns the heads' logits concatenated in ``tasks`` order, one tensor, which is
    what :func:`tlcourse.train.fit` expects; :meth:`split` turns it back into a dict.
    ``weighting`` (optional) holds learned task weights, so that they train and move with the model.
    """

    def __init__(self, trunk: nn.Module, heads: nn.ModuleDict, forward_fn: Callable,
                 weighting: nn.Module | None = None):
        super().__init__()
        self.trunk, self.heads, self.forward_fn, self.weighting = trunk, heads, forward_fn, weighting
        self.tasks = tuple(heads)
        self.sizes = [heads[t].out_features for t in self.tasks]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.forward_fn(self.trunk, self.heads, x)
        missing = [t for t in self.tasks if t not in out]
        if missing:
            raise KeyError(f"your forward function returned no output for task(s) {missing}")
        return torch.cat([out[t] for t in self.tasks], dim=1)

    def split(self, logits: torch.Tensor) -> dict[str, torch.Tensor]:
        return dict(zip(self.tasks, logits.split(self.sizes, dim=1)))


def make_trunk(image_size: int, width: int) -> nn.Sequential:
    """A two-layer MLP on the pixels: images (B, 1, S, S) → features (B, ``width``).

    Small on purpose: it trains in about a second per run on a laptop CPU, so the notebook can afford
    paired seeds, several label budgets and a weight sweep, and it starts from nothing, so every
    feature it has comes from the tasks it was trained on.
    """
    return nn.Sequential(nn.Flatten(), nn.Linear(image_size * image_size, width), nn.ReLU(),
                         nn.Linear(width, width), nn.ReLU())


def make_model(tasks: Mapping[str, int], forward_fn: Callable, width: int = 64, uncertainty: bool = False,
               seed: int = 0, image_size: int = 28) -> MultiTaskNet:
    """The MLP trunk (:func:`make_trunk`) and one linear head per task (``{name: n_classes}``)."""
    torch.manual_seed(seed)
    trunk = make_trunk(image_size, width)
    heads = nn.ModuleDict({t: nn.Linear(width, n) for t, n in tasks.items()})
    return MultiTaskNet(trunk, heads, forward_fn, UncertaintyWeighting(list(tasks)) if uncertainty else None)


class JointLoss:
    """``fit``'s loss: split the logits and float targets per task and call the student's loss.

    With fixed ``weights`` the total is the student's weighted sum; with the model's
    ``weighting`` module the student's per-task losses are combined by it instead.
    """

    def __init__(self, model: MultiTaskNet, loss_fn: Callable, weights: Mapping[str, float] | None = None):
        self.model, self.loss_fn = model, loss_fn
        self.weights = dict(weights or {t: 1.0 for t in model.tasks})

    def __call__(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        targets = {t: target[:, i].long() for i, t in enumerate(self.model.tasks)}
        total, losses = self.loss_fn(self.model.split(logits), targets, self.weights)
        if self.model.weighting is not None:
            return self.model.weighting(losses)
        return total


def schedule(data: TaskData, tasks: Sequence[str], steps: int, batch_size: int, seed: int,
             labelled_share: float = 0.5) -> TensorDataset:
    """The images and labels of ``steps`` batches, drawn with ``seed``: every run gets the same budget.

    Rows with a fine label make up ``labelled_share`` of each batch when the fine task is trained
    beside another one (otherwise they would be ~3% of a batch); trained alone, the fine task draws
    only from its labelled rows and the coarse task from all rows. Labels of tasks not in ``tasks``
    are left out.
    """
    g = np.random.default_rng(seed)
    n = steps * batch_size
    labelled = np.flatnonzero(data.labels["fine"].numpy() != MISSING)
    if tuple(tasks) == ("fine",):
        idx = g.choice(labelled, n)
    elif "fine" in tasks:
        idx = np.where(g.random(n) < labelled_share, g.choice(labelled, n), g.integers(0, len(data.train_x), n))
    else:
        idx = g.integers(0, len(data.train_x), n)
    idx = torch.as_tensor(idx)
    y = torch.stack([data.labels[t][idx] for t in tasks], dim=1).float()
    return TensorDataset(data.train_x[idx], y)


def train_tasks(data: TaskData, forward_fn: Callable, loss_fn: Callable, tasks: Sequence[str] = ("fine", "coarse"),
                weights: Mapping[str, float] | None = None, uncertainty: bool = False, steps: int = 100,
                batch_size: int = 64, width: int = 64, lr: float = 3e-3, seed: int = 0) -> MultiTaskNet:
    """Train a shared trunk with one head per task in ``tasks`` for ``steps`` batches with ``tlcourse.fit``.

    AdamW with a cosine learning rate; ``weights`` are the fixed task weights passed to the
    student's loss, ``uncertainty=True`` learns them instead (:class:`UncertaintyWeighting`).
    """
    model = make_model({t: data.n_classes[t] for t in tasks}, forward_fn, width, uncertainty, seed,
                       image_size=data.train_x.shape[-1])
    device = pick_device()
    x, y = schedule(data, tasks, steps, batch_size, seed).tensors
    batches = [(x[i:i + batch_size], y[i:i + batch_size]) for i in range(0, len(x), batch_size)]
    loader = make_loader(batches, batch_size=None, device=device)  # already batched: no per-image collation
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, len(loader))
    fit(model, loader, epochs=1, optimizer=opt, scheduler=sched, loss_fn=JointLoss(model, loss_fn, weights),
        device=device, progress=False)
    return model.eval()


@torch.no_grad()
def evaluate_tasks(model: MultiTaskNet, data: TaskData, metrics_fn: Callable) -> dict[str, float]:
    """The student's per-task metrics of ``model`` on the test images (eval mode, in one batch)."""
    model.eval()
    device = next(model.parameters()).device
    logits = model(data.test_x.to(device)).float().cpu()
    return {t: float(v) for t, v in metrics_fn(model.split(logits), {t: data.test_labels[t] for t in model.tasks}).items()}


# ---------------------------------------------------------------- tables and the weight explorer

def mean_std(values: Sequence[float]) -> str:
    v = np.asarray(values, dtype=float)
    return f"{v.mean():.3f} ± {v.std():.3f}"


def paired(method: Sequence[float], baseline: Sequence[float]) -> str:
    """The paired gain, per seed and on average, and on how many seeds the method won."""
    gains = np.asarray(method, dtype=float) - np.asarray(baseline, dtype=float)
    return (f"{gains.mean():+.3f} ± {gains.std():.3f} (won {int((gains > 0).sum())} of {len(gains)} seeds; "
            f"per seed {' '.join(f'{g:+.3f}' for g in gains)})")


def _sweep_rows(sweep: Mapping[float, Mapping[str, Sequence[float]]]) -> list[list[str]]:
    return [[f"{w:g}", mean_std(r["fine"]), mean_std(r["coarse"])] for w, r in sorted(sweep.items())]


def _plot_sweep(sweep, fine_alone: Sequence[float], chosen: float | None):
    import matplotlib.pyplot as plt

    ws = sorted(sweep)
    xs = np.arange(len(ws))
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for task, colour in (("fine", "C0"), ("coarse", "C1")):
        m = np.array([np.mean(sweep[w][task]) for w in ws])
        s = np.array([np.std(sweep[w][task]) for w in ws])
        ax.errorbar(xs, m, yerr=s, marker="o", c=colour, capsize=3, label=f"{task} task (test accuracy)")
    ax.axhline(np.mean(fine_alone), c="C0", ls="--", lw=1, label="fine task trained alone")
    if chosen is not None:
        ax.axvline(ws.index(chosen), c="k", lw=0.8, alpha=0.5)
    ax.set_xticks(xs, [f"{w:g}" for w in ws])
    ax.set_xlabel("weight of the coarse task's loss (fine task's weight = 1)")
    ax.set_ylabel("accuracy"), ax.legend(fontsize=8), ax.set_title("task-weight sweep (mean ± std over seeds)")
    fig.tight_layout()
    return fig


def weight_explorer(sweep: Mapping[float, Mapping[str, Sequence[float]]], fine_alone: Sequence[float],
                    interactive: bool | None = None):
    """A slider over the coarse task's weight: both tasks' accuracy there; a static table and figure when headless.

    ``sweep`` is ``{coarse_weight: {"fine": [acc per seed], "coarse": [...]}}``.
    """
    from ..tables import text_table
    from ..widgets import _display, _html_table, _use_widgets, figure_png

    header = ["coarse weight", "fine accuracy", "coarse accuracy"]
    if not _use_widgets(interactive):
        print(text_table(header, _sweep_rows(sweep)))
        print(f"fine task alone: {mean_std(fine_alone)}")
        return _plot_sweep(sweep, fine_alone, None)

    import ipywidgets as widgets

    ws = sorted(sweep)
    slider = widgets.SelectionSlider(options=[(f"{w:g}", w) for w in ws], value=ws[len(ws) // 2],
                                     description="coarse weight", continuous_update=False,
                                     style={"description_width": "initial"})
    image, summary = widgets.Image(format="png"), widgets.HTML()

    def draw(w: float) -> None:
        r = sweep[w]
        summary.value = (f"<b>coarse weight {w:g}</b>{_html_table(header, _sweep_rows({w: r}))}"
                         f"<p>fine task alone: {mean_std(fine_alone)}; gain of sharing at this weight: "
                         f"{paired(r['fine'], fine_alone)}</p>")
        image.value = figure_png(_plot_sweep(sweep, fine_alone, w))

    slider.observe(lambda change: draw(change["new"]), names="value")
    draw(slider.value)
    box = widgets.VBox([slider, widgets.HBox([image, summary])])
    _display(box)
    return box

