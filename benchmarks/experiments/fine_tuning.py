"""Notebook 02's fine-tuning regimes (head-only, full, discriminative LR, gradual unfreezing), each vs from scratch."""
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
    from tlcourse.data import load_fashion_mnist
    from tlcourse.features import extract_features
    from tlcourse.lessons.fine_tuning import (body_blocks, keep_bn_eval, set_trainable, stage_schedule, train_head_on_features,
                           train_schedule, with_input_transform)
    from tlcourse.models import SmallCNN

    s = merged_sizes("02", sizes)
    train_set = load_fashion_mnist("train", n=s["train"])
    test_set = load_fashion_mnist("test", n=s["test"])
    pretrained, _, _ = load_imagenet_classifier("mobilenet_v2")
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
        _, model = fresh(seed)
        return train_schedule(model, train_set, test_set, optimizer=torch.optim.AdamW(model.parameters(), lr=s["lr"]),
                              seed=seed, **common)["acc"]

    def discriminative(seed):
        net, model = fresh(seed)
        opt = torch.optim.AdamW(_discriminative_groups(model, net.classifier, s["lr"], s["head_lr"]))
        return train_schedule(model, train_set, test_set, optimizer=opt, seed=seed, **common)["acc"]

    def gradual(seed):
        net, model = fresh(seed)
        blocks = body_blocks(net)
        set_trainable(net, False)
        set_trainable(net.classifier, True)
        opt = torch.optim.AdamW(net.classifier.parameters(), lr=s["head_lr"])
        schedule = stage_schedule(s["epochs"], s["unfreeze"])
        return train_schedule(model, train_set, test_set, optimizer=opt, seed=seed,
                              on_epoch=lambda e: _unfreeze_last_blocks(blocks, schedule[e], opt, s["lr"]),
                              **common)["acc"]

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
    return out


EXPERIMENTS = {"fine_tuning": fine_tune_variants}
