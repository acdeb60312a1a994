"""Notebook 01's headline comparison: a linear probe on frozen pretrained features vs from scratch, per label budget."""
from __future__ import annotations

import time
from typing import Any, Mapping, Sequence

from tlcourse.device import seed_everything

from ._rows import comparison
from ._sizes import sizes as merged_sizes

NOTEBOOK = "01"


def label_efficiency(seeds: Sequence[int] = (0, 1, 2), sizes: Mapping[str, Any] | None = None,
                     progress: bool = False) -> list[dict]:
    """Frozen pretrained MobileNetV2 + linear head vs a SmallCNN trained from scratch, per label budget.

    Both see the same ``k`` labelled Fashion-MNIST images per class (the same
    stratified draw per seed); the CNN trains for ``scratch_steps`` optimizer
    steps as in notebook 01. A random-weight MobileNetV2 probe is a second
    baseline: same architecture, no pretraining.
    """
    from tlcourse.backbones import load_backbone
    from tlcourse.data import load_fashion_mnist, stratified_indices
    from tlcourse.features import extract_features, standardize
    from tlcourse.train import train_linear_head
    from tlcourse.models import SmallCNN
    from tlcourse.train import accuracy, fit, make_loader

    s = merged_sizes("01", sizes)
    t0 = time.perf_counter()
    pool = load_fashion_mnist("train", n=s["pool"])
    test = load_fashion_mnist("test", n=s["test"])
    feats = {}
    for name, pretrained in (("pretrained", True), ("random", False)):
        bb = load_backbone("mobilenet_v2", pretrained=pretrained, image_size=s["image_size"])
        tr, ytr = extract_features(bb, pool, progress=progress)
        te, yte = extract_features(bb, test, progress=progress)
        feats[name] = standardize(tr, te)
    x_test = test.tensor()

    def scratch(rows, seed):
        seed_everything(seed)
        model = SmallCNN(10)
        loader = make_loader(pool.subset(rows), batch_size=32, shuffle=True, seed=seed)
        fit(model, loader, epochs=max(1, round(s["scratch_steps"] / len(loader))), lr=3e-3, progress=False)
        return accuracy(model, x_test, yte)

    out = []
    for k in s["label_budgets"]:
        accs: dict[str, list[float]] = {"scratch": [], "pretrained": [], "random": []}
        tk = time.perf_counter()
        for seed in seeds:
            rows = stratified_indices(pool.labels, per_class=k, seed=seed)
            for name, (tr, te) in feats.items():
                head = train_linear_head(tr[rows], ytr[rows], 10, seed=seed)
                accs[name].append(accuracy(head, te, yte))
            accs["scratch"].append(scratch(rows, seed))
        seconds = time.perf_counter() - tk
        setting = f"Fashion-MNIST, {k} labels/class"
        out.append(comparison("linear probe vs from scratch", setting, "SmallCNN from scratch",
                              "pretrained MobileNetV2 + linear head", accs["scratch"], accs["pretrained"],
                              seconds, chance=0.1))
        out.append(comparison("linear probe vs from scratch", setting, "random-weight MobileNetV2 + linear head",
                              "pretrained MobileNetV2 + linear head", accs["random"], accs["pretrained"],
                              seconds, chance=0.1))
    out[0]["setup_seconds"] = time.perf_counter() - t0
    return out


EXPERIMENTS = {"label_efficiency": label_efficiency}
