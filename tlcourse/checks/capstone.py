"""Checks for notebook 12, the capstone.

q1 ``lr_range_test(model, batches, optimizer, lr_min, lr_max, num_steps, diverge)``;
q2 ``suggest_lr(lrs, losses)``; q3 ``early_stop(scores, patience, mode)``.

Each answer runs on small fixed problems built here (float64 networks, so CPU runs agree to
many digits), and its output is compared with expected outputs stored in capstone_expected.json
(computed once by tests/capstone_reference.py, which is not installed) for the correct answer
and for each named mistake, and with properties.
"""
from __future__ import annotations

import functools
import json
import math
import pathlib

import numpy as np
import torch
from torch import nn

from . import _expected
from ._core import Question, QuestionSet, Wrong, keep_rng

EXPECTED_PATH = pathlib.Path(__file__).with_name("capstone_expected.json")


@functools.lru_cache(maxsize=None)
def expected() -> dict:
    try:
        return json.loads(EXPECTED_PATH.read_text())
    except FileNotFoundError:
        raise _expected.StaleExpected(f"{EXPECTED_PATH} is missing; reinstall tlcourse, or regenerate it with "
                                      "`python tests/capstone_reference.py`") from None


# ---------------------------------------------------------------- q1: the LR range test

# name: (lr_min, lr_max, num_steps, diverge, two parameter groups)
LR_PROBLEMS = {
    "diverges": (1e-3, 1e3, 30, 4.0, False),
    "short": (1e-4, 1e-1, 6, 4.0, False),
    "two_groups": (1e-2, 1e3, 25, 3.0, True),
}


def lr_problem(name: str):
    """(model, batches, optimizer, lr_min, lr_max, num_steps, diverge): a fresh, seeded float64 problem."""
    lr_min, lr_max, steps, diverge, groups = LR_PROBLEMS[name]
    g = torch.Generator().manual_seed(sum(map(ord, name)))
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3)).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) * 0.5)
    batches = [(torch.randn(6, 5, generator=g, dtype=torch.float64) * 2, torch.randint(0, 3, (6,), generator=g))
               for _ in range(4)]
    if groups:
        optimizer = torch.optim.SGD([{"params": model[0].parameters()}, {"params": model[2].parameters(), "lr": 0.5}],
                                    lr=0.05)
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    return model, batches, optimizer, lr_min, lr_max, steps, diverge


def lr_problem_fingerprint(name: str) -> list[float]:
    model, batches, *_ = lr_problem(name)
    return _expected.fingerprint(*model.parameters(), *(t for b in batches for t in b))


_LR_MISTAKES = {
    "first_group_only": "only the first parameter group got the new learning rate; the others kept theirs. Set "
                        "`lr` in **every** group of `optimizer.param_groups`, or part of the model trains at a "
                        "rate the test never chose.",
    "no_zero_grad": "the gradients accumulate from step to step: clear them (`optimizer.zero_grad()`) before "
                    "each backward pass, or every step also replays all the earlier gradients.",
    "loss_after_step": "you recorded the loss after the update, computed again on the same batch. Record the loss "
                       "of the forward pass that the step used (before `optimizer.step()`): that is what the "
                       "curve plots against the learning rate of that step.",
    "lr_after_step": "each step used the previous step's learning rate: the first step ran at the optimizer's own "
                     "rate instead of `lr_min`. Set the learning rate *before* `optimizer.step()`.",
    "stop_before_record": "you stopped on the diverging loss without recording it: record it first, then stop, so "
                          "the curve shows where the loss blew up.",
}


def _as_floats(xs, what: str) -> list[float]:
    if isinstance(xs, torch.Tensor):
        xs = xs.detach().cpu().tolist()
    try:
        return [float(x) for x in xs]
    except (TypeError, ValueError):
        raise Wrong(f"the {what} must be a list of numbers (use `loss.item()` to turn a loss into a float); "
                    f"got {type(xs).__name__}") from None


def _close(a: list[float], b: list[float], rtol: float = 1e-6) -> bool:
    return len(a) == len(b) and all(
        (math.isnan(x) and math.isnan(y)) or x == y or abs(x - y) <= rtol * max(1.0, abs(y)) for x, y in zip(a, b))


def _check_lr(lr_range_test, name: str) -> None:
    want = expected()["lr_range_test"][name]
    if not _close(lr_problem_fingerprint(name), want["fingerprint"], 1e-9):
        raise _expected.StaleExpected(f"the probe problem {name!r} is not the one capstone_expected.json was computed "
                                      "on; a maintainer regenerates it with tests/capstone_reference.py")
    model, batches, optimizer, lr_min, lr_max, steps, diverge = lr_problem(name)
    out = lr_range_test(model, batches, optimizer, lr_min=lr_min, lr_max=lr_max, num_steps=steps, diverge=diverge)
    if not isinstance(out, tuple) or len(out) != 2:
        raise Wrong("`lr_range_test` must return a tuple `(lrs, losses)`: the learning rate of each step and "
                    "the loss that step computed.")
    lrs, losses = _as_floats(out[0], "learning rates"), _as_floats(out[1], "losses")
    if len(lrs) != len(losses):
        raise Wrong(f"{len(lrs)} learning rates but {len(losses)} losses: record one of each per step.")
    setting = f"(lr_min={lr_min:g}, lr_max={lr_max:g}, num_steps={steps}, diverge={diverge:g})"
    good_lrs, good_losses = want["correct"]["lrs"], want["correct"]["losses"]
    n = min(len(lrs), len(good_lrs))
    if n == 0:
        raise Wrong("`lr_range_test` recorded nothing; run the steps and append each learning rate and loss.")
    if not _close(lrs[:n], good_lrs[:n], 1e-6):
        if len(lrs) > 2 and abs((lrs[2] - lrs[1]) - (lrs[1] - lrs[0])) <= 1e-9 * max(lrs):
            raise Wrong("your learning rates grow linearly. A range test spans several orders of magnitude, so "
                        "it grows them **exponentially** (by the same factor each step): with a linear ramp almost "
                        "every step is spent near `lr_max` and the small rates are never tried.")
        if abs(lrs[0] - lr_min) > 1e-9 * lr_min:
            raise Wrong(f"the first step's learning rate is {lrs[0]:.3g}; it must be `lr_min` = {lr_min:g} {setting}.")
        ratio = lrs[1] / lrs[0] if lrs[0] else float("nan")
        if abs(ratio - (lr_max / lr_min) ** (1 / steps)) < 1e-9 * ratio:
            raise Wrong(f"your learning rates grow by (lr_max/lr_min)^(1/num_steps) per step, so the last step "
                        f"falls short of `lr_max`. With num_steps steps there are num_steps - 1 increases: step i "
                        f"runs at lr_min·(lr_max/lr_min)^(i/(num_steps-1)) {setting}.")
        raise Wrong(f"the learning rates differ from the expected exponential ramp from `lr_min` to `lr_max` "
                    f"{setting}: step 1 ran at {lrs[1] if len(lrs) > 1 else float('nan'):.4g}, expected "
                    f"{good_lrs[1]:.4g}.")
    if _close(losses, good_losses, 1e-6):
        return
    for mistake, message in _LR_MISTAKES.items():
        alt = want.get(mistake)
        if alt is not None and _close(losses, alt["losses"], 1e-6):
            raise Wrong(message + f" {setting}")
    if len(losses) == steps and len(good_losses) < steps and _close(losses[:len(good_losses)], good_losses, 1e-6):
        raise Wrong(f"the loss diverged at step {len(good_losses) - 1} (it exceeded {diverge:g} × the lowest loss "
                    f"so far) but you kept going. Stop there: beyond divergence the weights are ruined and the "
                    f"curve says nothing more {setting}.")
    if len(losses) < len(good_losses) and _close(losses, good_losses[:len(losses)], 1e-6):
        last, best = losses[-1], min(losses)
        raise Wrong(f"you stopped after {len(losses)} steps, at a loss of {last:.4g} while the lowest so far was "
                    f"{best:.4g}: that is not divergence. Stop only when a loss is not finite or exceeds `diverge` "
                    f"× the lowest loss recorded so far; a noisy curve goes up and down {setting}.")
    raise Wrong(f"the losses differ from the expected ones {setting}: expected {len(good_losses)} steps starting "
                f"{[round(x, 4) for x in good_losses[:3]]}, got {len(losses)} starting "
                f"{[round(x, 4) for x in losses[:3]]}. Each step: set the learning rate in every group, take the "
                "next batch (cycle through the list), compute the cross-entropy, clear the gradients, backward, "
                "step, record.")


@keep_rng
def _eval_lr(lr_range_test) -> None:
    for name in LR_PROBLEMS:
        _check_lr(lr_range_test, name)


q1 = Question(
    qid="q1", title="the learning-rate range test", answer_names=("lr_range_test",), evaluate=_eval_lr,
    hints=(
        "The range test (Smith 2017) trains for a few dozen steps while raising the learning rate from tiny to "
        "huge, recording the loss at each rate. The loss first barely moves, then falls fast, then blows up; "
        "good rates sit in the falling part.",
        "The rates grow by the same *factor* each step, so that every order of magnitude gets as many steps; "
        "the first step runs at `lr_min` and the last (if reached) at `lr_max`. An optimizer's rate lives in "
        "each dict of `optimizer.param_groups`.",
        "For each step i: compute its rate, write it into every parameter group, take batch i modulo the number "
        "of batches, compute the cross-entropy of the model's output, clear the gradients, backpropagate, step, "
        "and append the rate and the loss's float value. Then stop if that loss is not finite or is larger than "
        "`diverge` times the smallest loss recorded so far.",
    ),
    why="you can now find a working learning rate in a few seconds instead of a grid search. The curve depends "
        "on the batch size, the optimizer and which layers train, so rerun it when you change those.",
)


# ---------------------------------------------------------------- q2: choosing an LR from the curve

SUGGEST_PROBLEMS = {  # name: (lrs, losses); the expected answers are in capstone_expected.json
    "clean": ([1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0], [2.30, 2.29, 2.10, 0.90, 1.20, 9.0, 40.0]),
    "diverged_nan": ([1e-4, 1e-3, 1e-2, 1e-1, 1.0], [2.3, 1.1, 1.3, 1.9, float("nan")]),
    "inf_at_end": ([1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1], [1.9, 1.7, 1.2, 0.7, 1.5, float("inf")]),
}

_SUGGEST_MISTAKES = {
    "at_min": "you returned the learning rate at the loss minimum itself. There the loss is about to blow up: "
              "take a rate ten times smaller, still in the steep, falling part of the curve.",
    "last": "you returned the last learning rate tried, where the loss diverged.",
    "nan_not_ignored": "a non-finite loss (nan or inf, where the run diverged) was taken as the minimum "
                       "(`np.argmin` returns the position of a nan). Ignore losses that are not finite.",
    "times_ten": "you multiplied by ten; the suggestion is ten times *smaller* than the rate at the minimum.",
    "smallest_lr": "you returned the smallest learning rate tried: at such rates the model barely learns.",
}


def _check_suggest(suggest_lr, name: str) -> None:
    lrs, losses = SUGGEST_PROBLEMS[name]
    want = expected()["suggest_lr"][name]
    out = suggest_lr(list(lrs), list(losses))
    if isinstance(out, torch.Tensor) and out.numel() == 1:
        out = out.item()
    try:
        out = float(out)
    except (TypeError, ValueError):
        raise Wrong(f"`suggest_lr` must return one learning rate (a float); got {type(out).__name__}.") from None
    if math.isclose(out, want["correct"], rel_tol=1e-6):
        return
    for mistake, message in _SUGGEST_MISTAKES.items():
        if mistake in want and math.isclose(out, want[mistake], rel_tol=1e-6):
            raise Wrong(message + f" (curve {name!r}: expected {want['correct']:g}, got {out:g})")
    raise Wrong(f"on the curve {name!r} (lrs {lrs}, losses {losses}) the suggestion should be {want['correct']:g} "
                f"(a tenth of the rate where the finite loss is lowest); got {out:g}.")


def _eval_suggest(suggest_lr) -> None:
    for name in SUGGEST_PROBLEMS:
        _check_suggest(suggest_lr, name)


q2 = Question(
    qid="q2", title="choosing a learning rate from the curve", answer_names=("suggest_lr",), evaluate=_eval_suggest,
    hints=(
        "The best rate is not where the loss is lowest: there it is about to diverge. A common rule of thumb "
        "(fastai's) backs off by a factor of ten from the minimum.",
        "The curve may end in nan or inf where the run blew up; those points must not count as a minimum.",
        "Find the position of the smallest finite loss, read the learning rate at that position, and return a "
        "tenth of it as a float.",
    ),
    why="a rule you can apply to any range-test curve; look at the curve anyway, since a flat or noisy one "
        "means the test needs more steps or larger batches.",
)


# ---------------------------------------------------------------- q3: early stopping

STOP_SEQUENCES = {  # name: (scores per epoch, patience, mode)
    "loss_dip": ([1.0, 0.8, 0.85, 0.9, 0.95, 0.7, 0.75], 3, "min"),
    "loss_tie": ([0.9, 0.6, 0.6, 0.7, 0.6, 0.65, 0.5], 2, "min"),
    "acc_rise": ([0.3, 0.5, 0.5, 0.45, 0.6, 0.55, 0.58, 0.59], 2, "max"),
    "patience_1": ([2.0, 1.5, 1.6, 1.4], 1, "min"),
    "noisy_climb": ([0.5, 0.45, 0.48, 0.47, 0.49, 0.44], 3, "min"),
}

_STOP_MISTAKES = {
    "last_epoch": "you return the newest epoch as the best. Early stopping keeps the checkpoint with the best "
                  "validation score, which is usually a few epochs before the run stopped.",
    "ties_latest": "a tie counts as an improvement in your rule (`<=` or `>=`): a score equal to the best is not "
                   "better, so the earlier epoch stays the best and the patience keeps counting.",
    "off_by_one_late": "you stop one epoch late: with patience p, stop as soon as p epochs in a row have not "
                       "improved on the best, not p + 1.",
    "off_by_one_early": "you stop one epoch early: with patience p, the p-th epoch without improvement is the "
                        "one that stops training, not the (p-1)-th.",
    "vs_previous": "you compare each epoch with the one before it, not with the best so far. A score that "
                   "rises a little after a dip is not an improvement if it is still worse than the best epoch.",
    "mode_ignored": "the `mode` argument is ignored: with mode='max' (an accuracy) higher is better; with "
                    "mode='min' (a loss) lower is better.",
}


def _as_decision(out, where: str) -> tuple[int, bool]:
    if not isinstance(out, tuple) or len(out) != 2:
        raise Wrong(f"`early_stop` must return a tuple `(best_epoch, stop)`; got {out!r} {where}.")
    best, stop = out
    if isinstance(best, torch.Tensor):
        best = best.item()
    if isinstance(best, bool) or not float(best).is_integer():
        raise Wrong(f"best_epoch must be an epoch index (an int), got {best!r} {where}.")
    if isinstance(stop, torch.Tensor) and stop.numel() == 1 and stop.dtype == torch.bool:
        stop = stop.item()
    if not isinstance(stop, (bool, np.bool_)):
        raise Wrong(f"stop must be True or False, got {stop!r} {where}.")
    return int(best), bool(stop)


def _eval_stop(early_stop) -> None:
    table = expected()["early_stop"]
    for name, (scores, patience, mode) in STOP_SEQUENCES.items():
        got = []
        for t in range(1, len(scores) + 1):
            shown = list(scores[:t])
            got.append(_as_decision(early_stop(shown, patience, mode),
                                    f"(scores {shown}, patience {patience}, mode {mode!r})"))
            if shown != list(scores[:t]):
                raise Wrong("`early_stop` changed the list of scores it was given; read it, do not modify it.")
        want = [tuple(x) for x in table[name]["correct"]]
        if got == want:
            continue
        t = next(i for i, (g, w) in enumerate(zip(got, want)) if g != w)
        where = (f"after epoch {t} of {scores[:t + 1]} (patience {patience}, mode {mode!r}): expected "
                 f"(best_epoch, stop) = {want[t]}, got {got[t]}")
        for mistake, message in _STOP_MISTAKES.items():
            if mistake in table[name] and got == [tuple(x) for x in table[name][mistake]]:
                raise Wrong(f"{message} ({where})")
        raise Wrong(f"the decision is wrong {where}. best_epoch is the index of the first epoch with the best "
                    f"score; stop is True once `patience` epochs have passed since it.")


q3 = Question(
    qid="q3", title="early stopping with patience", answer_names=("early_stop",), evaluate=_eval_stop,
    hints=(
        "Early stopping watches a validation score after each epoch, remembers the best epoch, and stops when the "
        "score has not improved for `patience` epochs. The kept model is the best epoch's checkpoint, not the last.",
        "Only a strict improvement on the best score so far counts; compare with the best, never with the "
        "previous epoch. `mode` says whether lower (a loss) or higher (an accuracy) is better.",
        "Find the index of the first best score in the list; the number of epochs since it is the list's length "
        "minus one minus that index; stop when that number reaches `patience`. Return both.",
    ),
    why="with a validation split and this rule you choose the number of epochs from data, and you keep the "
        "best checkpoint instead of the last, without ever looking at the test set.",
)

questions = QuestionSet(q1, q2, q3)
