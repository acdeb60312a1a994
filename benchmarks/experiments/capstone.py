"""Notebook 12's comparisons: augmentation on vs off (MobileNetV2, last two blocks, one-cycle, early stopping),
and a few-shot linear probe on EfficientNet-Lite0 features vs a linear model on pixels.

Same protocol as the notebook, with the reference stopping rule and learning-rate range test kept here
(benchmark code is not installed with the package).
"""
from __future__ import annotations

import math
import pathlib
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

from ._rows import comparison

NOTEBOOK = "12"


def _early_stop(scores, patience, mode="min"):
    key = np.asarray(scores) if mode == "min" else -np.asarray(scores)
    best = int(np.argmin(key))
    return best, len(scores) - 1 - best >= patience


def _range_test_lr(model, batches, optimizer, lr_min, lr_max, steps, diverge=4.0):
    lrs, losses = [], []
    for i in range(steps):
        lr = lr_min * (lr_max / lr_min) ** (i / (steps - 1))
        for g in optimizer.param_groups:
            g["lr"] = lr
        x, y = batches[i % len(batches)]
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        lrs.append(lr)
        losses.append(loss.item())
        if not math.isfinite(losses[-1]) or losses[-1] > diverge * min(losses):
            break
    finite = [(v, r) for r, v in zip(lrs, losses) if math.isfinite(v)]
    return min(finite)[1]  # the rate at the loss minimum: the one-cycle peak (10 x the notebook's chosen_lr)


def augmentation(seeds, sizes) -> list[dict]:
    from tlcourse import load_fashion_mnist
    from tlcourse.device import one_thread
    from tlcourse.lessons import capstone as L

    pool = load_fashion_mnist("train", n=sizes["pool"])
    test = load_fashion_mnist("test", n=sizes["test"])
    train, val = L.train_val_split(pool, sizes["val_fraction"], seed=0)
    t0 = time.perf_counter()
    finder = L.build_classifier(10, sizes["image_size"], train_blocks=sizes["train_blocks"], seed=0).train()
    opt = torch.optim.AdamW([p for p in finder.parameters() if p.requires_grad], weight_decay=1e-4)
    with one_thread():
        peak = _range_test_lr(finder, L.finder_batches(train, sizes["batch_size"], sizes["finder_steps"]), opt,
                              *sizes["finder_range"], sizes["finder_steps"])
    acc = {"none": [], "aug": []}
    for seed in seeds:
        for arm, data in (("none", train), ("aug", train.with_transform(L.augmentation()))):
            model = L.build_classifier(10, sizes["image_size"], train_blocks=sizes["train_blocks"], seed=seed)
            L.train_with_early_stopping(model, data, val, stop_rule=_early_stop, max_epochs=sizes["max_epochs"],
                                        patience=sizes["patience"], lr=peak, batch_size=sizes["batch_size"],
                                        checkpoint=pathlib.Path(tempfile.gettempdir()) / f"tlcourse_bench_12_{arm}_{seed}.pt",
                                        seed=seed)
            acc[arm].append(L.test_accuracy(model, test))
    setting = (f"Fashion-MNIST {len(train)}+{len(val)} val @{sizes['image_size']}px, MobileNetV2 last "
               f"{sizes['train_blocks']} blocks, one-cycle peak {peak:.1e}, early stopping")
    return [comparison("capstone_augmentation", setting, "no augmentation", "flip + affine augmentation",
                       acc["none"], acc["aug"], time.perf_counter() - t0, 0.1)]


def probe_vs_pixels(seeds, sizes) -> list[dict]:
    from tlcourse import extract_features, load_backbone, load_fashion_mnist
    from tlcourse.data import stratified_indices
    from tlcourse.device import one_thread
    from tlcourse.train import accuracy, train_linear_head

    pool = load_fashion_mnist("train", n=sizes["pool"])
    test = load_fashion_mnist("test", n=sizes["test"])
    t0 = time.perf_counter()
    backbone = load_backbone("efficientnet_lite0", image_size=sizes["image_size"])
    with one_thread():
        (fx, fy), (tx, ty) = (extract_features(backbone, d, progress=False) for d in (pool, test))
    px, tpx = pool.tensor().flatten(1), test.tensor().flatten(1)
    acc = {"pixels": [], "probe": []}
    k = sizes["project_shots"]
    for seed in seeds:
        idx = stratified_indices(pool.labels, per_class=k, seed=seed)
        with one_thread():
            acc["pixels"].append(accuracy(train_linear_head(px[idx], fy[idx], 10, steps=sizes["probe_steps"],
                                                            seed=seed), tpx, ty))
            acc["probe"].append(accuracy(train_linear_head(fx[idx], fy[idx], 10, steps=sizes["probe_steps"],
                                                           seed=seed), tx, ty))
    setting = f"Fashion-MNIST {k} labels/class @{sizes['image_size']}px"
    return [comparison("capstone_probe", setting, "linear model on pixels", "EfficientNet-Lite0 linear probe",
                       acc["pixels"], acc["probe"], time.perf_counter() - t0, 0.1)]


EXPERIMENTS = {"capstone_augmentation": augmentation, "capstone_probe": probe_vs_pixels}
