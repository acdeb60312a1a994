"""Notebook 01's headline comparison: a linear probe on frozen pretrained features vs from scratch, per label budget."""
from __future__ import annotations

import math
import time
from typing import Any, Mapping, Sequence

import numpy as np

from tlcourse.device import one_thread, seed_everything

from ._rows import comparison
from ._sizes import sizes as merged_sizes

NOTEBOOK = "01"
BENCHMARK_SCRATCH = dict(scratch_max_epochs=100, scratch_patience_steps=150, scratch_patience_epochs=10)


def label_efficiency(seeds: Sequence[int] = (0, 1, 2), sizes: Mapping[str, Any] | None = None,
                     progress: bool = False) -> list[dict]:
    """Frozen pretrained MobileNetV2 + linear head vs a SmallCNN trained from scratch, per label budget.

    Both see the same ``k`` labelled Fashion-MNIST images per class (the same
    stratified draw per seed). The CNN is trained with the same care at every
    budget: a fifth of its labelled images (stratified) is held out, and it
    trains until the validation accuracy has not improved for
    ``scratch_patience_steps`` optimizer steps and ``scratch_patience_epochs``
    epochs, whichever is longer (at most ``scratch_max_epochs``),
    keeping the best weights, so its number of steps grows with the data
    instead of being fixed. (Validation *loss* stopped it at chance at 10
    labels per class: on 20 held-out images it rises from the first epochs,
    as the network grows confident, while the accuracy still climbs.) A fixed step
    count under-trains it at the larger budgets (issue 19). A random-weight
    MobileNetV2 probe is a second baseline: same architecture, no pretraining.
    """
    from tlcourse.backbones import load_backbone
    from tlcourse.data import holdout_split, load_fashion_mnist, stratified_indices
    from tlcourse.features import extract_features, standardize
    from tlcourse.train import train_linear_head
    from tlcourse.models import SmallCNN
    from tlcourse.train import accuracy, fit, make_loader

    # the benchmark's from-scratch control trains with more patience than the quick notebook's (which must
    # fit its time budget): at most 100 epochs, patience max(10 epochs, 150 steps)
    s = {**merged_sizes("01", sizes), **{k: v for k, v in BENCHMARK_SCRATCH.items() if k not in (sizes or {})}}
    t0 = time.perf_counter()
    pool = load_fashion_mnist("train", n=s["pool"])
    test = load_fashion_mnist("test", n=s["test"])
    feats = {}
    for name, pretrained in (("pretrained", True), ("random", False)):
        bb = load_backbone("mobilenet_v2", pretrained=pretrained, image_size=s["image_size"],
                           seed=None if pretrained else 0)  # the random-weight control: the same in every run
        tr, ytr = extract_features(bb, pool, progress=progress)
        te, yte = extract_features(bb, test, progress=progress)
        feats[name] = standardize(tr, te)
    x_test = test.tensor()

    def scratch(rows, seed):
        seed_everything(seed)
        model = SmallCNN(10)
        train, held = holdout_split(rows, pool.labels, seed)
        loader = make_loader(pool.subset(train), batch_size=32, shuffle=True, seed=seed)
        val = make_loader(pool.subset(held), batch_size=256, shuffle=False)
        # patience: at least scratch_patience_steps steps (tiny budgets have few steps per epoch) and at least
        # scratch_patience_epochs epochs (large budgets: a few epochs are too noisy to call a plateau)
        patience = max(s["scratch_patience_epochs"], math.ceil(s["scratch_patience_steps"] / len(loader)))
        with one_thread():  # a small CNN: one thread is faster on a shared 2-core machine
            history = fit(model, loader, val, epochs=s["scratch_max_epochs"], lr=3e-3, progress=False,
                          early_stopping=patience, monitor="val_acc")
        best_epochs.append(int(np.argmax(history["val_acc"])) + 1)
        return accuracy(model, x_test, yte)

    out = []
    for k in s["label_budgets"]:
        accs: dict[str, list[float]] = {"scratch": [], "pretrained": [], "random": []}
        best_epochs: list[int] = []
        tk = time.perf_counter()
        for seed in seeds:
            rows = stratified_indices(pool.labels, per_class=k, seed=seed)
            for name, (tr, te) in feats.items():
                head = train_linear_head(tr[rows], ytr[rows], 10, seed=seed)
                accs[name].append(accuracy(head, te, yte))
            accs["scratch"].append(scratch(rows, seed))
        seconds = time.perf_counter() - tk
        setting = f"Fashion-MNIST, {k} labels/class"
        out.append(comparison("linear probe vs from scratch", setting,
                              "SmallCNN from scratch (early stopping on a held-out fifth)",
                              "pretrained MobileNetV2 + linear head", accs["scratch"], accs["pretrained"],
                              seconds, chance=0.1))
        out[-1]["scratch_best_epochs"] = best_epochs
        out.append(comparison("linear probe vs from scratch", setting, "random-weight MobileNetV2 + linear head",
                              "pretrained MobileNetV2 + linear head", accs["random"], accs["pretrained"],
                              seconds, chance=0.1))
    out[0]["setup_seconds"] = time.perf_counter() - t0
    return out


EXPERIMENTS = {"label_efficiency": label_efficiency}
