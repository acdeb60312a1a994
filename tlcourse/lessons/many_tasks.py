"""Helpers for notebook 07 (many tasks and many sources): task data, the multi-task wrapper that lets
``tlcourse.train.fit`` train a shared trunk with several heads, evaluation and the task-weight explorer;
for the sources part, the printed-digit renderer, the source/target data and a plain classifier.

The notebook's students write the multi-task forward pass, loss and per-task metrics, and the source
weights and their combination, themselves; everything here takes their functions as arguments (or
returns probabilities for them) and never computes a task loss or a source weight on its own.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from ..data import FASHION_CLASSES, load_fashion_mnist, stratified_indices
from ..device import one_thread, pick_device
from ..domains import load_domain_pair
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


@one_thread()  # small networks: one CPU thread is several times faster (device.one_thread)
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
    from ..widgets import _html_table, _use_widgets, slider_explorer

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

    def render(w: float):
        r = sweep[w]
        return (f"<b>coarse weight {w:g}</b>{_html_table(header, _sweep_rows({w: r}))}"
                f"<p>fine task alone: {mean_std(fine_alone)}; gain of sharing at this weight: "
                f"{paired(r['fine'], fine_alone)}</p>", _plot_sweep(sweep, fine_alone, w))

    return slider_explorer(slider, render, layout="side")


# ---------------------------------------------------------------- many sources: MNIST and printed digits → digits

# Fonts that matplotlib ships (DejaVu, STIX, Computer Modern): the printed-digit source needs no download.
PRINTED_FONTS = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSansMono.ttf",
                 "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf", "STIXGeneral.ttf",
                 "STIXGeneralBol.ttf", "STIXGeneralItalic.ttf", "cmr10.ttf", "cmss10.ttf", "cmtt10.ttf", "cmb10.ttf")


def render_printed_digits(n: int, image_size: int = 16, seed: int = 0, cell: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` printed digits (balanced classes) drawn with matplotlib's fonts: float (n, 1, S, S) in [0, 1], labels.

    Each digit gets a random font, size, rotation (±15°), stroke width and a small shift: the idea of
    SynDigits (Ganin & Lempitsky, ICML 2015), made here on the fly. All digits are drawn on one canvas,
    cut into ``cell``-pixel squares, shrunk to 8x8 (the target's resolution) and resized to ``image_size``,
    so rendering takes seconds, not minutes.
    """
    import pathlib

    import matplotlib
    from matplotlib import patheffects
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties

    if n < 10:
        raise ValueError(f"n={n}: ask for at least 10 printed digits (one per class)")
    g = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    g.shuffle(labels)
    cols = 50
    rows = -(-n // cols)
    ttf = pathlib.Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    fonts = [FontProperties(fname=str(ttf / name)) for name in PRINTED_FONTS]
    fig = Figure(figsize=(cols * cell / 100, rows * cell / 100), dpi=100, facecolor="black")
    for i, digit in enumerate(labels):
        r, c = divmod(i, cols)
        stroke = g.uniform(0, 2.5)
        fig.text((c + 0.5 + g.uniform(-0.06, 0.06)) / cols, 1 - (r + 0.5 + g.uniform(-0.06, 0.06)) / rows, str(digit),
                 fontproperties=fonts[g.integers(len(fonts))], size=g.uniform(18, 24), rotation=g.uniform(-15, 15),
                 ha="center", va="center", color="white",
                 path_effects=[patheffects.withStroke(linewidth=stroke, foreground="white")] if stroke > 0.5 else None)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    sheet = np.asarray(canvas.buffer_rgba())[: rows * cell, : cols * cell, 0].astype(np.float32) / 255
    cells = sheet.reshape(rows, cell, cols, cell).transpose(0, 2, 1, 3).reshape(-1, 1, cell, cell)[:n]
    # like the target's scans: each digit's ink box centred to fill the frame, then through 8x8 (its resolution)
    boxes = [_fill_frame(c[0], cell) for c in cells]
    small = resize(torch.from_numpy(np.stack(boxes)[:, None]), 8)
    return resize(small, image_size) if image_size != 8 else small, torch.from_numpy(labels).long()


def _fill_frame(image: np.ndarray, size: int) -> np.ndarray:
    """One image's ink box, centred on a square with a thin margin (aspect kept), resized to ``size`` (nearest)."""
    rows, cols = np.flatnonzero(image.max(1) > 0.2), np.flatnonzero(image.max(0) > 0.2)
    if len(rows) == 0:
        return image
    box = image[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    side = int(max(box.shape) * 1.15) + 1
    square = np.zeros((side, side), dtype=image.dtype)
    top, left = (side - box.shape[0]) // 2, (side - box.shape[1]) // 2
    square[top:top + box.shape[0], left:left + box.shape[1]] = box
    pick = np.minimum((np.arange(size) * side) // size, side - 1)
    return square[np.ix_(pick, pick)]


@dataclass
class SourcesData:
    """Labelled source domains and the sklearn-digits target of notebook 05.

    ``target_x/y``: the few labelled target images (for weighting the sources and the target-only
    baseline); ``oracle_x/y``: every image of the target's adapt split with its label (the upper bound);
    ``test_x/y``: the target test split.
    """

    sources: dict[str, tuple[torch.Tensor, torch.Tensor]]
    target_x: torch.Tensor
    target_y: torch.Tensor
    oracle_x: torch.Tensor
    oracle_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor

    def union(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All source images pooled, as they come (the naive union)."""
        return (torch.cat([x for x, _ in self.sources.values()]), torch.cat([y for _, y in self.sources.values()]))

    def __repr__(self) -> str:
        src = ", ".join(f"{name} {len(y)}" for name, (_, y) in self.sources.items())
        return (f"SourcesData(sources: {src}; target: {len(self.target_y)} labelled, {len(self.oracle_y)} for the "
                f"oracle, {len(self.test_y)} test; {tuple(self.test_x.shape[1:])})")


def load_sources(printed: int = 2000, target_per_class: int = 10, image_size: int = 16, seed: int = 0) -> SourcesData:
    """MNIST-5k (4,000 training images, borders cropped as in notebook 05) and ``printed`` rendered digits as
    sources; sklearn's digits as the target, with ``target_per_class`` labelled images per class drawn with ``seed``."""
    pair = load_domain_pair(image_size=image_size, source_crop=4)
    keep = torch.as_tensor(stratified_indices(pair.target_y.numpy(), per_class=target_per_class, seed=seed))
    sources = {"MNIST": (pair.source_x, pair.source_y)}
    if printed:  # printed=0: MNIST alone, without the cost of drawing digits
        sources["printed"] = render_printed_digits(printed, image_size, seed=seed)
    return SourcesData(sources,
                       pair.target_x[keep], pair.target_y[keep], pair.target_x, pair.target_y,
                       pair.target_test_x, pair.target_test_y)


@one_thread()  # small networks: one CPU thread is several times faster (device.one_thread)
def train_classifier(x: torch.Tensor, y: torch.Tensor, steps: int = 200, batch_size: int = 64, width: int = 128,
                     lr: float = 3e-3, seed: int = 0, init: nn.Sequential | None = None,
                     freeze_trunk: bool = False) -> nn.Sequential:
    """The MLP trunk with a 10-way head, trained with ``tlcourse.fit`` for ``steps`` batches drawn with ``seed``
    from ``(x, y)`` (every classifier gets the same budget, whatever its data's size).

    ``init``: a classifier from this function whose trunk is copied as the starting point (transfer);
    the head is always new. ``freeze_trunk=True`` trains the head only (feature extraction).
    """
    if len(y) == 0:
        raise ValueError("train_classifier got no training images")
    if freeze_trunk and init is None:
        raise ValueError("freeze_trunk=True needs a pretrained classifier as init=")
    torch.manual_seed(seed)
    trunk = copy.deepcopy(init[0]).cpu() if init is not None else make_trunk(x.shape[-1], width)
    model = nn.Sequential(trunk, nn.Linear(width, 10))
    trunk.requires_grad_(not freeze_trunk)
    idx = torch.as_tensor(np.random.default_rng(seed).integers(0, len(y), steps * batch_size))
    batches = [(x[i], y[i]) for i in idx.split(batch_size)]
    device = pick_device()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    fit(model, make_loader(batches, batch_size=None, device=device), epochs=1, optimizer=opt, scheduler=sched,
        device=device, progress=False)
    return model.eval()


def shuffled_labels(y: torch.Tensor, seed: int) -> torch.Tensor:
    """The same labels in a random order: each image keeps a label, but the label says nothing about it."""
    return y[torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))]


@torch.no_grad()
def trunk_features(model: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """The frozen trunk's features (N, width) of a classifier from :func:`train_classifier`, on the CPU."""
    model.eval()
    return model[0](x.to(next(model.parameters()).device)).float().cpu()


def leave_one_out_probe(features: torch.Tensor, y: torch.Tensor) -> float:
    """Leave-one-out accuracy of a 1-nearest-neighbour probe on ``features``: each labelled image gets the
    label of its nearest other image. A check that needs nothing but the few labelled target images and
    no training: features that separate the classes put same-class images next to each other."""
    f = torch.as_tensor(features).flatten(1).float()
    if len(f) < 2:
        raise ValueError("leave_one_out_probe needs at least two labelled images")
    dist = torch.cdist(f, f)
    dist.fill_diagonal_(float("inf"))  # an image may not be its own neighbour
    return float((torch.as_tensor(y)[dist.argmin(dim=1)] == torch.as_tensor(y)).float().mean())


NEGATIVE_TRANSFER_WAYS = {"frozen trunk": dict(freeze_trunk=True), "fine-tuned": {},
                          "fine-tuned, lr/10": dict(lr_factor=0.1)}


def negative_transfer_runs(seeds: Sequence[int], target_per_class: int, pretrain_steps: int,
                           **clf_kw) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Notebook 07's negative-transfer experiment, paired over ``seeds``.

    The MLP is pretrained on MNIST twice, with its labels and with the labels shuffled, then moved to the
    few labelled target images three ways (:data:`NEGATIVE_TRANSFER_WAYS`), against the same MLP trained on
    them from scratch with the same steps. Returns ``(accuracy, diagnostic)``: test accuracy per method, and
    per kind of features (pixels or each pretrained trunk) the leave-one-out nearest-neighbour accuracy on
    the few labelled target images, the check a practitioner could run before training on the target.
    """
    accuracy: dict[str, list[float]] = {}
    diagnostic: dict[str, list[float]] = {}
    for seed in seeds:
        data = load_sources(0, target_per_class, seed=seed)
        mnist_x, mnist_y = data.sources["MNIST"]
        pre_kw = {**clf_kw, "steps": pretrain_steps}
        pretrained = {"MNIST labels": train_classifier(mnist_x, mnist_y, seed=seed, **pre_kw),
                      "shuffled labels": train_classifier(mnist_x, shuffled_labels(mnist_y, seed), seed=seed, **pre_kw)}
        x, y = data.target_x, data.target_y

        def test_accuracy(model: nn.Module) -> float:
            return float((probabilities(model, data.test_x).argmax(1) == data.test_y).float().mean())

        accuracy.setdefault("scratch", []).append(test_accuracy(train_classifier(x, y, seed=seed, **clf_kw)))
        diagnostic.setdefault("pixels", []).append(leave_one_out_probe(x, y))
        for source, model in pretrained.items():
            diagnostic.setdefault(source, []).append(leave_one_out_probe(trunk_features(model, x), y))
            for way, options in NEGATIVE_TRANSFER_WAYS.items():
                kw = {**clf_kw, "lr": clf_kw.get("lr", 3e-3) * options.get("lr_factor", 1.0)}
                model_t = train_classifier(x, y, seed=seed, init=model,
                                           freeze_trunk=options.get("freeze_trunk", False), **kw)
                accuracy.setdefault(f"{source}: {way}", []).append(test_accuracy(model_t))
    return accuracy, diagnostic


@torch.no_grad()
def probabilities(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Softmax probabilities (N, 10) of ``model`` on ``x``, on the CPU."""
    model.eval()
    device = next(model.parameters()).device
    return model(x.to(device)).float().softmax(dim=1).cpu()
