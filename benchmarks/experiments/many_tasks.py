"""Notebook 07's headline comparison: a shared trunk trained on a data-poor task beside a data-rich one,
against the data-poor task alone with the same budget, at two or more label budgets, with the w=0 control
and learned weights.

The forward pass and loss are written here in plain reference form (the notebook asks students to
write them); benchmark code is not installed with tlcourse, so no student can import them.
"""
from __future__ import annotations

import time

import torch.nn.functional as F

from ._rows import comparison

NOTEBOOK = "07"


def _forward(trunk, heads, x):
    features = trunk(x)
    return {task: head(features) for task, head in heads.items()}


def _loss(outputs, targets, weights):
    losses = {}
    for task, logits in outputs.items():
        keep = targets[task] >= 0
        losses[task] = F.cross_entropy(logits[keep], targets[task][keep]) if keep.any() else logits.sum() * 0.0
    return sum(weights[t] * v for t, v in losses.items()), losses


def _accuracies(outputs, targets):
    return {t: (z[targets[t] >= 0].argmax(1) == targets[t][targets[t] >= 0]).float().mean().item()
            for t, z in outputs.items()}


def multi_task(seeds, sizes) -> list[dict]:
    """Fine-task test accuracy (Fashion-MNIST, few labels per class) alone vs joint with the coarse task,
    at each label budget; at the smallest budget also learned (uncertainty) weights."""
    from tlcourse.device import set_threads
    from tlcourse.lessons import many_tasks as mt

    set_threads(1)  # as the notebook: the MLP is too small for two threads to help
    kw = dict(steps=sizes["steps"], batch_size=sizes["batch_size"], width=sizes["width"], lr=sizes["lr"])
    few = sizes["label_budgets"][0]
    runs = {"fine task alone": dict(tasks=("fine",)),
            "joint, w=0 (same batches)": dict(weights={"fine": 1.0, "coarse": 0.0}),
            "joint, w=1": dict(weights={"fine": 1.0, "coarse": 1.0}),
            "joint, uncertainty weights": dict(uncertainty=True)}
    rows = []
    for n in sizes["label_budgets"]:
        names = [name for name in runs if n == few or name != "joint, uncertainty weights"]
        acc = {name: [] for name in names}
        seconds = {name: 0.0 for name in names}
        for seed in seeds:
            data = mt.load_fashion_tasks(sizes["image_size"], n, seed=seed)
            for name in names:
                t0 = time.perf_counter()
                model = mt.train_tasks(data, _forward, _loss, seed=seed, **kw, **runs[name])
                acc[name].append(mt.evaluate_tasks(model, data, _accuracies)["fine"])
                seconds[name] += time.perf_counter() - t0
        setting = (f"Fashion-MNIST fine task, {n} labels/class, + coarse task on all images, MLP trunk, "
                   f"{sizes['steps']} steps")
        rows += [comparison("multi-task learning", setting, "fine task alone", name, acc["fine task alone"],
                            acc[name], seconds[name] + seconds["fine task alone"], chance=0.1)
                 for name in ("joint, w=1", "joint, uncertainty weights") if name in acc]
        rows.append(comparison("multi-task learning", setting + " (control: same batches)",
                               "joint, w=0 (same batches)", "joint, w=1", acc["joint, w=0 (same batches)"],
                               acc["joint, w=1"], seconds["joint, w=1"] + seconds["joint, w=0 (same batches)"],
                               chance=0.1))
    return rows


EXPERIMENTS = {"multi_task": multi_task}

# No PUBLISHED entry: Kendall et al. (2018) report segmentation IoU and depth error on CityScapes,
# not an accuracy that could sit beside ours.
