"""The notebook-12 checks accept correct answers written different ways and reject each plausible mistake
with a message that names it; their stored expected values match the reference implementation."""
from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from capstone_reference import (LR_VARIANTS, STOP_VARIANTS, SUGGEST_VARIANTS, early_stop, expected_values,
                                lr_range_test, suggest_lr)
from tlcourse.checks import capstone as C


def test_stored_expected_values_match_the_reference():
    assert expected_values() == C.expected()


def test_every_named_mistake_is_stored_somewhere():
    stored = C.expected()
    assert set(LR_VARIANTS) <= {k for e in stored["lr_range_test"].values() for k in e}
    assert set(SUGGEST_VARIANTS) <= {k for e in stored["suggest_lr"].values() for k in e}
    assert set(STOP_VARIANTS) <= {k for e in stored["early_stop"].values() for k in e}


# ---------------------------------------------------------------- correct answers, written differently

def _lr_geomspace(model, batches, optimizer, lr_min=1e-5, lr_max=1.0, num_steps=50, diverge=4.0):
    """Rates precomputed with numpy, zero_grad(set_to_none), a running best."""
    rates = np.geomspace(lr_min, lr_max, num_steps)
    lrs, losses, best = [], [], float("inf")
    for i, lr in enumerate(rates):
        for group in optimizer.param_groups:
            group["lr"] = float(lr)
        x, y = batches[i % len(batches)]
        optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.CrossEntropyLoss()(model(x), y)
        loss.backward()
        optimizer.step()
        lrs.append(float(lr))
        losses.append(loss.item())
        best = min(best, loss.item())
        if math.isnan(loss.item()) or math.isinf(loss.item()) or loss.item() > diverge * best:
            break
    return lrs, losses


def _lr_lambda_scheduler(model, batches, optimizer, lr_min=1e-5, lr_max=1.0, num_steps=50, diverge=4.0):
    """Through a LambdaLR scheduler on top of lr_min, returning tensors."""
    for g in optimizer.param_groups:
        g["lr"] = lr_min
        g["initial_lr"] = lr_min
    factor = (lr_max / lr_min) ** (1 / (num_steps - 1))
    sched = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: factor ** step)
    lrs, losses = [], []
    for i in range(num_steps):
        x, y = batches[i % len(batches)]
        out = model(x)
        loss = F.cross_entropy(out, y)
        optimizer.zero_grad()
        loss.backward()
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        sched.step()
        losses.append(float(loss.detach()))
        if not torch.isfinite(loss) or losses[-1] > diverge * min(losses):
            break
    return torch.tensor(lrs), torch.tensor(losses, dtype=torch.float64)


@pytest.mark.parametrize("answer", [lr_range_test, _lr_geomspace, _lr_lambda_scheduler])
def test_correct_lr_range_tests_pass(answer):
    assert C.q1.verdict(answer).correct, C.q1.verdict(answer)


def _suggest_numpy(lrs, losses):
    losses = np.array(losses, dtype=float)
    losses[~np.isfinite(losses)] = np.inf
    return np.array(lrs)[losses.argmin()] / 10


def _suggest_python(lrs, losses):
    finite = [(loss, lr) for lr, loss in zip(lrs, losses) if math.isfinite(loss)]
    return min(finite)[1] * 0.1


@pytest.mark.parametrize("answer", [suggest_lr, _suggest_numpy, _suggest_python])
def test_correct_suggestions_pass(answer):
    assert C.q2.verdict(answer).correct, C.q2.verdict(answer)


def _stop_loop(scores, patience, mode="min"):
    best, best_epoch = None, 0
    for epoch, s in enumerate(scores):
        if best is None or (s < best if mode == "min" else s > best):
            best, best_epoch = s, epoch
    return best_epoch, len(scores) - 1 - best_epoch >= patience


def _stop_index(scores, patience, mode="min"):
    target = min(scores) if mode == "min" else max(scores)
    best = scores.index(target)
    return best, len(scores) - best > patience


def _stop_numpy(scores, patience, mode="min"):
    key = np.array(scores) * (1 if mode == "min" else -1)
    best = np.argmin(key)  # a numpy integer, and a numpy bool below
    return best, np.arange(len(key))[-1] - best >= patience


@pytest.mark.parametrize("answer", [early_stop, _stop_loop, _stop_index, _stop_numpy])
def test_correct_stopping_rules_pass(answer):
    assert C.q3.verdict(answer).correct, C.q3.verdict(answer)


# ---------------------------------------------------------------- each mistake, named

LR_MESSAGES = {"first_group_only": "every** group", "no_zero_grad": "accumulate", "loss_after_step": "after the update",
               "lr_after_step": "previous step's learning rate", "stop_before_record": "without recording it"}


@pytest.mark.parametrize("variant", LR_VARIANTS)
def test_lr_mistakes_are_named(variant):
    v = C.q1.verdict(functools.partial(lr_range_test, variant=variant))
    assert v.status == "wrong" and LR_MESSAGES[variant] in v.message, v


def _lr_linear(model, batches, optimizer, lr_min=1e-5, lr_max=1.0, num_steps=50, diverge=4.0):
    lrs, losses = [], []
    for i, lr in enumerate(np.linspace(lr_min, lr_max, num_steps)):
        for g in optimizer.param_groups:
            g["lr"] = lr
        x, y = batches[i % len(batches)]
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(); loss.backward(); optimizer.step()
        lrs.append(lr); losses.append(loss.item())
        if loss.item() > diverge * min(losses):
            break
    return lrs, losses


def _lr_endpoint(model, batches, optimizer, lr_min=1e-5, lr_max=1.0, num_steps=50, diverge=4.0):
    return lr_range_test(model, batches, optimizer, lr_min, lr_min * (lr_max / lr_min) ** ((num_steps - 1) / num_steps),
                         num_steps, diverge)


def _lr_never_stops(model, batches, optimizer, lr_min=1e-5, lr_max=1.0, num_steps=50, diverge=4.0):
    return lr_range_test(model, batches, optimizer, lr_min, lr_max, num_steps, diverge=float("inf"))


def _lr_stops_on_increase(model, batches, optimizer, lr_min=1e-5, lr_max=1.0, num_steps=50, diverge=4.0):
    return lr_range_test(model, batches, optimizer, lr_min, lr_max, num_steps, diverge=1.0)


@pytest.mark.parametrize("answer, words", [(_lr_linear, "linearly"), (_lr_endpoint, "num_steps - 1"),
                                           (_lr_never_stops, "kept going"), (_lr_stops_on_increase, "not divergence")])
def test_other_lr_mistakes_are_named(answer, words):
    v = C.q1.verdict(answer)
    assert v.status == "wrong" and words in v.message, v


def test_lr_not_attempted_and_bad_returns():
    def stub(*a, **k):
        raise NotImplementedError()
    assert C.q1.verdict(stub).status == "not_attempted"
    assert "tuple" in C.q1.verdict(lambda *a, **k: [1.0]).message


SUGGEST_MESSAGES = {"at_min": "ten times smaller", "last": "last learning rate", "nan_not_ignored": "not finite",
                    "times_ten": "multiplied by ten", "smallest_lr": "smallest learning rate"}


@pytest.mark.parametrize("variant", SUGGEST_VARIANTS)
def test_suggest_mistakes_are_named(variant):
    v = C.q2.verdict(functools.partial(suggest_lr, variant=variant))
    assert v.status == "wrong" and SUGGEST_MESSAGES[variant] in v.message, v


STOP_MESSAGES = {"last_epoch": "newest epoch", "ties_latest": "tie", "off_by_one_late": "one epoch late",
                 "off_by_one_early": "one epoch early", "vs_previous": "the one before it", "mode_ignored": "`mode`"}


@pytest.mark.parametrize("variant", STOP_VARIANTS)
def test_stop_mistakes_are_named(variant):
    v = C.q3.verdict(functools.partial(early_stop, variant=variant))
    assert v.status == "wrong" and STOP_MESSAGES[variant] in v.message, v


def test_stop_rule_must_not_modify_scores():
    def pops(scores, patience, mode="min"):
        out = early_stop(scores, patience, mode)
        scores.pop()
        return out
    assert "changed the list" in C.q3.verdict(pops).message


def test_hints_hold_no_code():
    for q in (C.q1, C.q2, C.q3):
        assert len(q.hints) == 3
        for h in q.hints:
            assert not any(code in h for code in ("def ", " = ", "for i in", "np.", "torch."))
