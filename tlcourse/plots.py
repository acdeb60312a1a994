"""General-purpose figures any notebook can use (training history, confusion matrix, image grid,
2-D embedding, label efficiency). Each returns the matplotlib Figure.

A figure made for one notebook's story lives in that notebook's lesson module
(``tlcourse.lessons.<topic>``).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch


def _np(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def plot_history(history: Mapping[str, Sequence[float]], keys: Sequence[str] | None = None, title: str = ""):
    """Loss curves on the left, accuracy curves on the right."""
    keys = keys or [k for k in history if k.endswith(("loss", "acc"))]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for k in keys:
        ax = axes[0] if k.endswith("loss") else axes[1]
        ax.plot(range(1, len(history[k]) + 1), history[k], marker="o", ms=3, label=k)
    for ax, name in zip(axes, ("loss", "accuracy")):
        ax.set_xlabel("epoch"), ax.set_ylabel(name), ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_confusion_matrix(y_true, y_pred, classes: Sequence[str], normalize: bool = True, title: str = ""):
    """Rows are true classes, columns predicted; normalised per row by default."""
    y_true, y_pred = _np(y_true).astype(int), _np(y_pred).astype(int)
    n = len(classes)
    cm = np.zeros((n, n), dtype=float)
    np.add.at(cm, (y_true, y_pred), 1)
    if normalize:
        cm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(0.6 * n + 2, 0.6 * n + 1.5))
    im = ax.imshow(cm, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    ax.set_xticks(range(n), classes, rotation=45, ha="right"), ax.set_yticks(range(n), classes)
    ax.set_xlabel("predicted"), ax.set_ylabel("true"), ax.set_title(title)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{cm[i, j]:.2f}" if normalize else int(cm[i, j]), ha="center", va="center",
                    fontsize=7, color="white" if cm[i, j] > 0.5 * cm.max() else "black")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def show_images(images, labels=None, classes: Sequence[str] | None = None, ncols: int = 8,
                title: str = "", preds=None):
    """A grid of images: tensors (N, C, H, W) or (N, H, W) in [0, 1], arrays, or PIL images."""
    if isinstance(images, torch.Tensor):
        images = images.detach().cpu()
        images = [im.permute(1, 2, 0).squeeze(-1).numpy() if im.ndim == 3 else im.numpy() for im in images]
    n = len(images)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.5 * ncols, 1.7 * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        im = np.asarray(images[i])
        ax.imshow(im, cmap="gray" if im.ndim == 2 else None)
        if labels is not None:
            name = classes[int(labels[i])] if classes else str(int(labels[i]))
            if preds is not None:
                guess = classes[int(preds[i])] if classes else str(int(preds[i]))
                ok = int(preds[i]) == int(labels[i])
                ax.set_title(f"{guess}\n({name})", fontsize=7, color="green" if ok else "red")
            else:
                ax.set_title(name, fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_embeddings(features, labels, classes: Sequence[str] | None = None, method: str = "pca",
                    domains=None, title: str = "", seed: int = 0, max_points: int = 2000):
    """2-D PCA or t-SNE of ``features``, coloured by class (and by domain if given)."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    x, y = _np(features).astype(np.float32), _np(labels).astype(int)
    d = None if domains is None else _np(domains).astype(int)
    if len(x) > max_points:
        keep = np.random.default_rng(seed).choice(len(x), max_points, replace=False)
        x, y, d = x[keep], y[keep], (None if d is None else d[keep])
    if method == "pca":
        xy = PCA(n_components=2, random_state=seed).fit_transform(x)
    elif method == "tsne":
        xy = TSNE(n_components=2, random_state=seed, init="pca", perplexity=min(30, len(x) // 4)).fit_transform(x)
    else:
        raise ValueError(f"method={method!r}; use 'pca' or 'tsne'")
    panels = [("class", y)] + ([("domain", d)] if d is not None else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.5), squeeze=False)
    for ax, (what, c) in zip(axes.flat, panels):
        names = classes if what == "class" and classes else ()
        for i in np.unique(c):
            m = c == i
            ax.scatter(xy[m, 0], xy[m, 1], s=6, alpha=0.7, label=names[i] if i < len(names) else f"{what} {i}")
        ax.set_title(f"{method.upper()} coloured by {what}"), ax.set_xticks([]), ax.set_yticks([])
        ax.legend(fontsize=7, markerscale=2, loc="best")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_label_efficiency(results: Mapping[str, Mapping[int, Sequence[float]]], xlabel: str = "labels per class",
                          chance: float | None = None, title: str = ""):
    """Accuracy against label budget, one line per method, mean with min-max band over seeds."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for method, by_budget in results.items():
        ks = sorted(by_budget)
        acc = [np.asarray(by_budget[k], dtype=float) for k in ks]
        mean = np.array([a.mean() for a in acc])
        ax.plot(ks, mean, marker="o", label=method)
        ax.fill_between(ks, [a.min() for a in acc], [a.max() for a in acc], alpha=0.2)
    if chance is not None:
        ax.axhline(chance, ls="--", c="gray", label="chance")
    ax.set_xscale("log"), ax.set_xlabel(xlabel), ax.set_ylabel("test accuracy"), ax.grid(alpha=0.3)
    ax.legend(), ax.set_title(title)
    fig.tight_layout()
    return fig
