"""Reference answers for notebook 12's checks (and their named mistakes); writes the stored expected values.

Not installed with the package. ``python tests/capstone_reference.py`` rewrites
tlcourse/checks/capstone_expected.json; test_checks_capstone.py checks that the stored values
still match these references.
"""
from __future__ import annotations

import json
import math
import pathlib
import sys

import numpy as np
import torch
import torch.nn.functional as F

ROOT = pathlib.Path(__file__).resolve().parents[1]

LR_VARIANTS = ("first_group_only", "no_zero_grad", "loss_after_step", "lr_after_step", "stop_before_record")
SUGGEST_VARIANTS = ("at_min", "last", "nan_not_ignored", "times_ten", "smallest_lr")
STOP_VARIANTS = ("last_epoch", "ties_latest", "off_by_one_late", "off_by_one_early", "vs_previous", "mode_ignored")


def lr_range_test(model, batches, optimizer, lr_min=1e-5, lr_max=1.0, num_steps=50, diverge=4.0,
                  variant="correct"):
    lrs, losses = [], []
    pending = None
    for i in range(num_steps):
        lr = lr_min * (lr_max / lr_min) ** (i / (num_steps - 1))
        groups = optimizer.param_groups[:1] if variant == "first_group_only" else optimizer.param_groups
        if variant == "lr_after_step":
            pending = lr
        else:
            for g in groups:
                g["lr"] = lr
        x, y = batches[i % len(batches)]
        loss = F.cross_entropy(model(x), y)
        if variant != "no_zero_grad":
            optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if variant == "lr_after_step":
            for g in groups:
                g["lr"] = pending
        value = loss.item()
        if variant == "loss_after_step":
            with torch.no_grad():
                value = F.cross_entropy(model(x), y).item()
        diverged = not math.isfinite(value) or value > diverge * min(losses + [value])
        if diverged and variant == "stop_before_record":
            break
        lrs.append(lr)
        losses.append(value)
        if diverged:
            break
    return lrs, losses


def suggest_lr(lrs, losses, variant="correct"):
    lrs, losses = np.asarray(lrs, float), np.asarray(losses, float)
    if variant == "last":
        return float(lrs[-1])
    if variant == "smallest_lr":
        return float(lrs.min())
    masked = losses if variant == "nan_not_ignored" else np.where(np.isfinite(losses), losses, np.inf)
    at = float(lrs[int(np.argmin(masked))])
    return {"at_min": at, "times_ten": at * 10}.get(variant, at / 10)


def early_stop(scores, patience, mode="min", variant="correct"):
    s = np.asarray(scores, float)
    if variant == "mode_ignored":
        mode = "min"
    signed = s if mode == "min" else -s
    if variant == "last_epoch":
        best = len(s) - 1
    elif variant == "ties_latest":
        best = len(s) - 1 - int(np.argmin(signed[::-1]))
    else:
        best = int(np.argmin(signed))
    stale = len(s) - 1 - best
    if variant == "vs_previous":
        stale = 0
        for a, b in zip(signed, signed[1:]):
            stale = stale + 1 if b >= a else 0
    limit = {"off_by_one_late": patience + 1, "off_by_one_early": patience - 1}.get(variant, patience)
    return best, bool(stale >= limit)


def expected_values() -> dict:
    from tlcourse.checks import capstone as C
    out = {"lr_range_test": {}, "suggest_lr": {}, "early_stop": {}}
    for name in C.LR_PROBLEMS:
        entry = {"fingerprint": C.lr_problem_fingerprint(name)}
        for variant in ("correct",) + LR_VARIANTS:
            model, batches, optimizer, lr_min, lr_max, steps, diverge = C.lr_problem(name)
            lrs, losses = lr_range_test(model, batches, optimizer, lr_min, lr_max, steps, diverge, variant)
            if variant != "correct" and losses == entry["correct"]["losses"]:
                continue  # this mistake makes no difference on this problem
            entry[variant] = {"lrs": lrs, "losses": losses} if variant == "correct" else {"losses": losses}
        out["lr_range_test"][name] = entry
    for name, (lrs, losses) in C.SUGGEST_PROBLEMS.items():
        entry = {"correct": suggest_lr(lrs, losses)}
        for variant in SUGGEST_VARIANTS:
            v = suggest_lr(lrs, losses, variant)
            if not math.isclose(v, entry["correct"]):
                entry[variant] = v
        out["suggest_lr"][name] = entry
    for name, (scores, patience, mode) in C.STOP_SEQUENCES.items():
        runs = {v: [list(early_stop(scores[:t], patience, mode, v)) for t in range(1, len(scores) + 1)]
                for v in ("correct",) + STOP_VARIANTS}
        out["early_stop"][name] = {v: r for v, r in runs.items() if v == "correct" or r != runs["correct"]}
    return out


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    from tlcourse.checks import capstone as C
    C.EXPECTED_PATH.write_text(json.dumps(expected_values(), indent=1) + "\n")
    print("wrote", C.EXPECTED_PATH)
