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
    from tlcourse.lessons import many_tasks as mt

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


def _source_weights(target_probs, y, temperature):
    """Per-source weights: softmax over sources of minus the mean target NLL of each source's classifier / T."""
    import torch

    nll = {s: float(-torch.log(p[torch.arange(len(y)), y].clamp_min(1e-12)).mean()) for s, p in target_probs.items()}
    z = torch.tensor([-nll[s] / temperature for s in target_probs])
    return dict(zip(target_probs, z.softmax(0).tolist()))


def multi_source(seeds, sizes) -> list[dict]:
    """MNIST-5k and printed digits (matplotlib's fonts) → sklearn digits: each source alone, the naive union,
    equal and target-weighted combinations of the per-source classifiers, target-only and oracle."""
    import torch

    from tlcourse.lessons import many_tasks as mt

    kw = dict(steps=sizes["steps"], batch_size=sizes["batch_size"], width=sizes["width"], lr=sizes["lr"])
    acc, seconds = {}, {}

    def score(name, probs, y, t0):
        acc.setdefault(name, []).append(float((probs.argmax(1) == y).float().mean()))
        seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - t0

    for seed in seeds:
        sd = mt.load_sources(sizes["printed"], sizes["target_per_class"], seed=seed)
        models = {}
        for name, (x, y) in {**{f"{s} only": xy for s, xy in sd.sources.items()}, "naive union": sd.union(),
                             "target only": (sd.target_x, sd.target_y), "oracle": (sd.oracle_x, sd.oracle_y)}.items():
            t0 = time.perf_counter()
            models[name] = mt.train_classifier(x, y, seed=seed, **kw)
            score(name, mt.probabilities(models[name], sd.test_x), sd.test_y, t0)
        t0 = time.perf_counter()
        test = {s: mt.probabilities(models[f"{s} only"], sd.test_x) for s in sd.sources}
        small = {s: mt.probabilities(models[f"{s} only"], sd.target_x) for s in sd.sources}
        weights = _source_weights(small, sd.target_y, sizes["source_temperature"])
        score("equal combination", sum(p / len(test) for p in test.values()), sd.test_y, t0)
        score("weighted combination", sum(weights[s] * p for s, p in test.items()), sd.test_y, t0)
    setting = (f"MNIST-5k + {sizes['printed']} printed digits → sklearn digits, MLP, {sizes['steps']} steps; "
               f"{sizes['target_per_class']} target labels/class")
    base = "MNIST only"
    methods = ("printed only", "naive union", "equal combination", "weighted combination", "target only", "oracle")
    rows = [comparison("multi-source transfer", setting, base, m, acc[base], acc[m], seconds[m] + seconds[base],
                       chance=0.1) for m in methods]
    rows.append(comparison("multi-source transfer", setting + " (weighting vs its control)", "equal combination",
                           "weighted combination", acc["equal combination"], acc["weighted combination"],
                           seconds["weighted combination"], chance=0.1))
    return rows


def negative_transfer(seeds, sizes) -> list[dict]:
    """MNIST pretraining with true and with shuffled labels, moved to the few labelled sklearn digits three
    ways (frozen trunk, fine-tuned, fine-tuned at lr/10), each against the same MLP trained from scratch on
    them; and the leave-one-out nearest-neighbour probe on the few labelled target images (the diagnostic)
    against the same probe on pixels."""
    from tlcourse.lessons import many_tasks as mt

    kw = dict(steps=sizes["steps"], batch_size=sizes["batch_size"], width=sizes["width"], lr=sizes["lr"])
    t0 = time.perf_counter()
    acc, probe = mt.negative_transfer_runs(seeds, sizes["target_per_class"], sizes["pretrain_steps"], **kw)
    seconds = time.perf_counter() - t0
    setting = (f"MNIST-5k pretraining ({sizes['pretrain_steps']} steps) → sklearn digits, "
               f"{sizes['target_per_class']} labels/class, MLP, {sizes['steps']} steps")
    rows = [comparison("negative transfer", setting, "scratch", f"pretrained on {name}", acc["scratch"], acc[name],
                       seconds, chance=0.1) for name in acc if name != "scratch"]
    rows += [comparison("negative transfer: the diagnostic", setting + " (leave-one-out 1-NN probe on the labelled target)",
                        "probe on pixels", f"probe on {name} features", probe["pixels"], probe[name], seconds,
                        chance=0.1) for name in probe if name != "pixels"]
    return rows


EXPERIMENTS = {"multi_task": multi_task, "multi_source": multi_source, "negative_transfer": negative_transfer}

# No PUBLISHED entry: Kendall et al. (2018) report segmentation IoU and depth error on CityScapes, and
# Ganin & Lempitsky (2015) use SynDigits → SVHN, not MNIST + printed digits → sklearn digits; Maennel et al.
# (NeurIPS 2020) find that pretraining on random labels can help or hurt downstream training depending on the
# setting, with no figure for ours. None is an accuracy that could sit beside these rows.
