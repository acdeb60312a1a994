"""Notebook 02's experiments: the fine-tuning regimes (head-only, full, discriminative LR, gradual
unfreezing) each vs from scratch, with the ImageNet accuracy each keeps (forgetting); BatchNorm
statistics updated by target batches vs kept; and where to cut the pretrained body."""
from __future__ import annotations

import copy
import time
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn

from tlcourse.device import seed_everything

from ._rows import comparison
from ._sizes import sizes as merged_sizes

NOTEBOOK = "02"


def _replace_classifier(model: nn.Module, num_classes: int) -> nn.Module:
    """Swap the last Linear of ``model.classifier`` (torchvision style) for a fresh one with ``num_classes``."""
    old = model.classifier[-1]
    model.classifier[-1] = nn.Linear(old.in_features, num_classes)
    return model


def _discriminative_groups(model: nn.Module, head: nn.Module, body_lr: float, head_lr: float) -> list[dict]:
    """Two optimizer parameter groups: the head at ``head_lr``, every other trainable parameter at ``body_lr``."""
    head_ids = {id(p) for p in head.parameters()}
    return [{"params": [p for p in model.parameters() if id(p) not in head_ids and p.requires_grad], "lr": body_lr},
            {"params": [p for p in head.parameters() if p.requires_grad], "lr": head_lr}]


def _unfreeze_last_blocks(blocks: Sequence[nn.Module], k: int, optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Make the last ``k`` blocks trainable (the others frozen) and hand newly trainable tensors to ``optimizer``."""
    n = len(blocks)
    for i, block in enumerate(blocks):
        for p in block.parameters():
            p.requires_grad_(i >= n - k)
    held = {id(p) for g in optimizer.param_groups for p in g["params"]}
    new = [p for b in blocks for p in b.parameters() if p.requires_grad and id(p) not in held]
    if new:
        optimizer.add_param_group({"params": new, "lr": lr})


def fine_tune_variants(seeds: Sequence[int] = (0, 1, 2), sizes: Mapping[str, Any] | None = None) -> list[dict]:
    """Notebook 02's five training regimes on the same images, epochs and batches; each vs from scratch."""
    from tlcourse.backbones import load_backbone, load_imagenet_classifier
    from tlcourse.data import load_fashion_mnist, load_imagenet_samples
    from tlcourse.features import extract_features
    from tlcourse.lessons.fine_tuning import (body_blocks, imagenet_top1, keep_bn_eval, set_trainable, stage_schedule,
                                              train_head_on_features, train_schedule, with_input_transform)
    from tlcourse.models import SmallCNN

    s = merged_sizes("02", sizes)
    train_set = load_fashion_mnist("train", n=s["train"])
    test_set = load_fashion_mnist("test", n=s["test"])
    pretrained, photo_transform, _ = load_imagenet_classifier("mobilenet_v2")
    imagenet_head = copy.deepcopy(pretrained.classifier)
    samples = load_imagenet_samples()
    photos = torch.stack([photo_transform(im) for im in samples.images])
    top1_before = imagenet_top1(pretrained, imagenet_head, photos, samples.labels)
    kept: dict[str, list[float]] = {}  # variant -> ImageNet top-1 of its body after fine-tuning, per seed

    def keeps(name, net, acc):
        kept.setdefault(name, []).append(imagenet_top1(net, imagenet_head, photos, samples.labels))
        return acc
    backbone = load_backbone("mobilenet_v2", image_size=s["image_size"])
    train_x, train_y = extract_features(backbone, train_set, progress=False)
    test_x, test_y = extract_features(backbone, test_set, progress=False)
    common = dict(epochs=s["epochs"], batch_size=s["batch_size"])

    def fresh(seed):
        seed_everything(seed)
        net = _replace_classifier(copy.deepcopy(pretrained), 10)
        model = with_input_transform(net, s["image_size"])
        keep_bn_eval(model, only_frozen=False)  # BatchNorm statistics stay ImageNet's, as in the notebook
        return net, model

    def scratch(seed):
        seed_everything(seed)
        model = SmallCNN(10)
        return train_schedule(model, train_set, test_set, optimizer=torch.optim.AdamW(model.parameters(),
                              lr=s["scratch_lr"]), seed=seed, **common)["acc"]

    def head_only(seed):
        net, _ = fresh(seed)
        return train_head_on_features(net.classifier, train_x, train_y, test_x, test_y, lr=s["head_only_lr"],
                                      seed=seed, **common)["acc"]

    def full(seed):
        net, model = fresh(seed)
        return keeps("full fine-tune", net, train_schedule(model, train_set, test_set, optimizer=torch.optim.AdamW(
            model.parameters(), lr=s["lr"]), seed=seed, **common)["acc"])

    def discriminative(seed):
        net, model = fresh(seed)
        opt = torch.optim.AdamW(_discriminative_groups(model, net.classifier, s["lr"], s["head_lr"]))
        return keeps("discriminative LR", net, train_schedule(model, train_set, test_set, optimizer=opt, seed=seed,
                                                              **common)["acc"])

    def gradual(seed):
        net, model = fresh(seed)
        blocks = body_blocks(net)
        set_trainable(net, False)
        set_trainable(net.classifier, True)
        opt = torch.optim.AdamW(net.classifier.parameters(), lr=s["head_lr"])
        schedule = stage_schedule(s["epochs"], s["unfreeze"])
        return keeps("gradual unfreezing", net, train_schedule(
            model, train_set, test_set, optimizer=opt, seed=seed,
            on_epoch=lambda e: _unfreeze_last_blocks(blocks, schedule[e], opt, s["lr"]), **common)["acc"])

    methods: dict[str, Callable[[int], float]] = {"head-only": head_only, "full fine-tune": full,
                                                  "discriminative LR": discriminative, "gradual unfreezing": gradual}
    t0 = time.perf_counter()
    base = [scratch(seed) for seed in seeds]
    base_seconds = time.perf_counter() - t0
    setting = f"Fashion-MNIST, {s['train']} images, {s['epochs']} epochs, {s['image_size']} px"
    out = []
    for name, fn in methods.items():
        t0 = time.perf_counter()
        accs = [fn(seed) for seed in seeds]
        out.append(comparison("fine-tune variants", setting, "SmallCNN from scratch", f"MobileNetV2 {name}",
                              base, accs, time.perf_counter() - t0 + base_seconds, chance=0.1))
    # forgetting: the fine-tuned body with the original ImageNet classifier reattached, on the 20 photos
    # (head-only leaves the body as it was: its top-1 is the "before" value)
    for name, top1 in kept.items():
        out.append(comparison("forgetting: ImageNet top-1 on 20 photos", setting, "pretrained body, before",
                              f"after {name}", [top1_before], top1, 0.0, chance=0.001))
    return out


def batchnorm_drift(seeds: Sequence[int] = (0, 1, 2), sizes: Mapping[str, Any] | None = None) -> list[dict]:
    """Notebook 02's section 5: a trained head on a frozen body; then 16 batches of 8 target images run
    through the body in training mode (no gradient, no step). BatchNorm statistics updated vs kept
    (``keep_bn_eval``): the same head's target accuracy and ImageNet top-1 with the original classifier."""
    from tlcourse.backbones import load_backbone, load_imagenet_classifier
    from tlcourse.data import load_fashion_mnist, load_imagenet_samples
    from tlcourse.features import extract_features
    from tlcourse.lessons.fine_tuning import (forward_in_train_mode, imagenet_top1, keep_bn_eval, set_trainable,
                                              train_head_on_features, with_input_transform)
    from tlcourse.train import evaluate, make_loader

    s = merged_sizes("02", sizes)
    train_set = load_fashion_mnist("train", n=s["train"])
    test_set = load_fashion_mnist("test", n=s["test"])
    test_loader = make_loader(test_set, batch_size=256)
    pretrained, photo_transform, _ = load_imagenet_classifier("mobilenet_v2")
    imagenet_head = copy.deepcopy(pretrained.classifier)
    samples = load_imagenet_samples()
    photos = torch.stack([photo_transform(im) for im in samples.images])
    backbone = load_backbone("mobilenet_v2", image_size=s["image_size"])
    train_x, train_y = extract_features(backbone, train_set, progress=False)
    test_x, test_y = extract_features(backbone, test_set, progress=False)
    t0 = time.perf_counter()
    acc = {"kept": [], "updated": []}
    top1 = {"kept": [], "updated": []}
    for seed in seeds:
        seed_everything(seed)
        net = _replace_classifier(copy.deepcopy(pretrained), 10)
        train_head_on_features(net.classifier, train_x, train_y, test_x, test_y, epochs=s["epochs"],
                               lr=s["head_only_lr"], seed=seed)
        for policy in acc:
            demo = with_input_transform(copy.deepcopy(net), s["image_size"])
            set_trainable(demo, False)
            if policy == "kept":
                keep_bn_eval(demo)
            forward_in_train_mode(demo, train_set, batch_size=8, batches=16, seed=seed)
            acc[policy].append(evaluate(demo, test_loader)["acc"])
            top1[policy].append(imagenet_top1(demo[1], imagenet_head, photos, samples.labels))
    seconds = time.perf_counter() - t0
    setting = f"Fashion-MNIST, {s['train']} images, {s['image_size']} px; 16 batches of 8 in train mode"
    kept, updated = "BatchNorm statistics kept (keep_bn_eval)", "BatchNorm statistics updated"
    return [comparison("BatchNorm drift: target accuracy", setting, kept, updated, acc["kept"], acc["updated"],
                       seconds / 2, chance=0.1),
            comparison("BatchNorm drift: ImageNet top-1 on 20 photos", setting, kept, updated, top1["kept"],
                       top1["updated"], seconds / 2, chance=0.001)]


CUT_BLOCKS = (4, 7, 11, 14, 17)  # blocks of MobileNetV2's body kept; the baseline keeps all 19


def cut_depth(seeds: Sequence[int] = (0, 1, 2), sizes: Mapping[str, Any] | None = None,
              per_class: int = 50) -> list[dict]:
    """Does a body cut earlier transfer better to a distant domain? Frozen MobileNetV2 features, globally
    average-pooled after the first k blocks, and a linear probe on ``per_class`` labelled Fashion-MNIST
    images per class (a fresh stratified draw per seed) at notebook 02's image size; each cut vs the whole
    body (19 blocks, 1,280 features)."""
    from tlcourse.backbones import load_imagenet_classifier
    from tlcourse.data import load_fashion_mnist, stratified_indices
    from tlcourse.features import extract_features, standardize
    from tlcourse.lessons.fine_tuning import with_input_transform
    from tlcourse.train import train_linear_head

    s = merged_sizes("02", sizes)
    pool = load_fashion_mnist("train", n=max(s["train"], 20 * per_class))
    test_set = load_fashion_mnist("test", n=s["test"])
    pretrained, _, _ = load_imagenet_classifier("mobilenet_v2")
    n_blocks = len(pretrained.features)

    def probe_accuracies(k: int) -> tuple[list[float], int, float]:
        t0 = time.perf_counter()
        body = nn.Sequential(copy.deepcopy(pretrained.features[:k]), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        model = with_input_transform(body, s["image_size"]).eval()
        tr, ytr = extract_features(model, pool, progress=False)
        te, yte = extract_features(model, test_set, progress=False)
        tr, te = standardize(tr, te)
        accs = []
        for seed in seeds:
            rows = stratified_indices(pool.labels, per_class=per_class, seed=seed)
            head = train_linear_head(tr[rows], ytr[rows], 10, seed=seed)
            with torch.no_grad():
                accs.append(float((head(te).argmax(1) == yte).float().mean()))
        return accs, tr.shape[1], time.perf_counter() - t0

    base, base_dim, base_seconds = probe_accuracies(n_blocks)
    setting = f"Fashion-MNIST, {per_class} labels per class, {s['image_size']} px, frozen features + linear probe"
    out = []
    for k in CUT_BLOCKS:
        accs, dim, seconds = probe_accuracies(k)
        out.append(comparison("where to cut the body", setting, f"all {n_blocks} blocks ({base_dim} features)",
                              f"first {k} blocks ({dim} features)", base, accs, seconds + base_seconds, chance=0.1))
    return out


EXPERIMENTS = {"fine_tuning": fine_tune_variants, "fine_tuning_bn": batchnorm_drift, "fine_tuning_cut": cut_depth}
