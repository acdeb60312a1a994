"""Notebook 06's comparison: text zero-shot sentiment and DeViSE on unseen classes, each vs chance."""
from __future__ import annotations

import time
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._rows import comparison
from ._sizes import sizes as merged_sizes

NOTEBOOK = "06"


def _devise_step(projection: nn.Module, optimizer: torch.optim.Optimizer, features: torch.Tensor,
                targets: torch.Tensor, class_embeddings: torch.Tensor, temperature: float) -> float:
    """Cross-entropy over cosine similarities / temperature between projected images and class embeddings."""
    logits = F.normalize(projection(features), dim=1) @ F.normalize(class_embeddings, dim=1).T / temperature
    loss = F.cross_entropy(logits, targets)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def _cosine_predict(x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return (F.normalize(x, dim=1) @ F.normalize(labels, dim=1).T).argmax(1)


def zero_shot(seeds: Sequence[int] = (0, 1, 2), sizes: Mapping[str, Any] | None = None) -> list[dict]:
    """Text zero-shot sentiment (MiniLM, phrasing chosen on validation) and DeViSE on unseen classes, vs chance."""
    from tlcourse.backbones import load_backbone
    from tlcourse.data import FASHION_CLASSES, load_fashion_mnist, load_rotten_tomatoes, stratified_indices
    from tlcourse.features import extract_features, standardize
    from tlcourse.lessons import zero_shot as zs
    from tlcourse.text import embed_texts

    s = merged_sizes("06", sizes, extra=("unseen",))
    t0 = time.perf_counter()
    test, val = load_rotten_tomatoes("test", n=s["text_test"]), load_rotten_tomatoes("val", n=s["text_val"])
    test_emb, val_emb = embed_texts(test.texts), embed_texts(val.texts)
    val_acc = {name: float((_cosine_predict(val_emb, embed_texts(list(p))).numpy() == val.labels).mean())
               for name, p in zs.SENTIMENT_PHRASINGS.items()}
    best = max(val_acc, key=val_acc.get)
    text_acc = float((_cosine_predict(test_emb, embed_texts(list(zs.SENTIMENT_PHRASINGS[best]))).numpy()
                      == test.labels).mean())
    out = [comparison("zero-shot vs chance", f"Rotten Tomatoes, {len(test)} reviews, 0 labels (phrasing chosen on "
                      f"validation: {best!r})", "chance", "MiniLM text zero-shot", [0.5], [text_acc],
                      time.perf_counter() - t0, chance=0.5)]
    t0 = time.perf_counter()
    test_acc = {name: float((_cosine_predict(test_emb, embed_texts(list(p))).numpy() == test.labels).mean())
                for name, p in zs.SENTIMENT_PHRASINGS.items()}
    out.append(comparison("zero-shot vs chance", f"Rotten Tomatoes, {len(test)} reviews, 0 labels: each of the "
                          f"{len(test_acc)} single phrasings (the spread is over phrasings, not seeds)", "chance",
                          "MiniLM text zero-shot, one phrasing", [0.5], list(test_acc.values()),
                          time.perf_counter() - t0, chance=0.5))
    t0 = time.perf_counter()
    pool = load_rotten_tomatoes("train", n=s["text_pool"])
    center = embed_texts(pool.texts).mean(dim=0)  # unlabelled reviews: no label is used
    pairs = zs.SENTIMENT_ENSEMBLE
    centred = lambda protos: float((_cosine_predict(test_emb - center, protos - center).numpy()
                                    == test.labels).mean())
    halves = [centred(zs.label_prototypes([pairs[j] for j in
                                           np.random.default_rng(seed).choice(len(pairs), len(pairs) // 2,
                                                                              replace=False)]))
              for seed in seeds]
    out.append(comparison("zero-shot vs chance", f"Rotten Tomatoes, {len(test)} reviews, 0 labels: prompt ensemble of "
                          f"{len(pairs) // 2} of {len(pairs)} wordings per seed, centred on {len(pool)} unlabelled "
                          "reviews", "one phrasing chosen on validation", "MiniLM zero-shot, centred half-ensemble",
                          [text_acc], halves, time.perf_counter() - t0, chance=0.5))
    out.append(comparison("zero-shot vs chance", f"Rotten Tomatoes, {len(test)} reviews, 0 labels: all "
                          f"{len(pairs)} wordings, centred on {len(pool)} unlabelled reviews", "chance",
                          "MiniLM zero-shot, centred full ensemble", [0.5],
                          [centred(zs.label_prototypes(pairs))], time.perf_counter() - t0, chance=0.5))

    t0 = time.perf_counter()
    seen, unseen = zs.seen_unseen_split(s.get("unseen", zs.DEFAULT_UNSEEN))
    pool, test_set = load_fashion_mnist("train"), load_fashion_mnist("test")
    pool = pool.subset(stratified_indices(pool.labels, per_class=s["per_class"], seed=0))
    test_set = test_set.subset(stratified_indices(test_set.labels, per_class=s["test_per_class"], seed=0))
    backbone = load_backbone("mobilenet_v2", image_size=s["image_size"])
    train_x, train_y = extract_features(backbone, pool, progress=False)
    test_x, test_y = extract_features(backbone, test_set, progress=False)
    keep = torch.isin(train_y, torch.tensor(seen))
    seen_x, test_x = standardize(train_x[keep], test_x)
    label_emb = embed_texts(list(zs.FASHION_DESCRIPTIONS))
    unseen_t = torch.tensor(unseen)
    mask = torch.isin(test_y, unseen_t)
    accs = []
    for seed in seeds:
        proj, _ = zs.fit_projection(_devise_step, seen_x, train_y[keep], label_emb, epochs=s["epochs"], seed=seed)
        pred = unseen_t[_cosine_predict(zs.project(proj, test_x[mask]), label_emb[unseen_t])]
        accs.append(float((pred == test_y[mask]).float().mean()))
    names = ", ".join(FASHION_CLASSES[c] for c in unseen)
    out.append(comparison("zero-shot vs chance", f"Fashion-MNIST, {len(unseen)} unseen classes ({names}), "
                          "class descriptions", "chance", "DeViSE projection (MobileNetV2 → MiniLM)",
                          [1 / len(unseen)], accs, time.perf_counter() - t0, chance=1 / len(unseen)))
    return out


EXPERIMENTS = {"zero_shot": zero_shot}
