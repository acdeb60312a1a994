"""Checks for notebook 07, many tasks and many sources.

q1 the multi-task pieces: ``multitask_forward(trunk, heads, x)``, ``multitask_loss(outputs, targets, weights)``
and ``task_accuracies(outputs, targets)``.

The forward pass is checked by properties (small spy modules record what each head was given); the
loss and the metrics against values stored here, computed once on the fixed inputs below, and against
the values that each typical mistake gives on the same inputs.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ._core import Question, QuestionSet, Wrong
from ._core import keep_rng as _keep_rng

MISSING = -1


def _num(x) -> float:
    return float(torch.as_tensor(x).detach().double().reshape(()))


# ---------------------------------------------------------------- fixed inputs and stored values

# Logits of three tasks for a batch of 8 (rounded randn, seed 7), and their labels; -1 = no label.
# "size" has no label at all in this batch. Keys come in a different order in each dict on purpose.
_LOGITS = {
    "colour": [[-1.64, 0.79, 1.8], [-2.78, -0.33, 0.57], [-1.28, -1.79, -1.7], [-2.43, -0.16, 2.72],
               [-2.61, 0.17, -2.77], [1.01, -1.73, -1.13], [-4.11, -0.71, 2.19], [0.96, 2.8, 2.81]],
    "shape": [[-0.14, 0.75, 0.61, 1.87], [2.51, -1.25, 0.82, -1.07], [-1.64, 0.16, 0.4, -1.37],
              [-0.1, 0.24, 0.63, -0.09], [-0.38, -1.17, 0.36, -0.32], [-0.53, 0.3, -1.42, -0.16],
              [0.69, -0.14, 1.61, 1.57], [-0.94, -1.24, -0.06, 0.45]],
    "size": [[1.55, 0.6], [-0.64, -2.29], [-0.37, -0.88], [0.55, 0.15], [-0.76, 0.39], [0.75, 1.38],
             [1.29, 0.87], [-1.38, -0.96]],
}
_TARGETS = {"size": [-1] * 8, "shape": [3, -1, -1, 0, 2, -1, -1, 1], "colour": [0, 2, -1, 1, 1, -1, 2, 2]}
_WEIGHTS = {"shape": 3.0, "size": 2.0, "colour": 0.5}
# Computed once from the definitions in the notebook (mean cross-entropy over the labelled rows of each task).
_LOSS = {"colour": 1.3346621, "shape": 1.3619268, "size": 0.0}
_TOTAL = 4.7531114
_ACC = {"colour": 4 / 6, "shape": 2 / 4}
# What the typical mistakes give on the same inputs.
_UNWEIGHTED = 2.6965889
_WRONG_TOTALS = [
    (_UNWEIGHTED, "you summed the task losses without their weights. The tasks' losses live on different "
                  "scales (a 10-class cross-entropy starts near log 10 ≈ 2.3, a 4-class one near 1.4, a "
                  "regression loss can be in the thousands), so an unweighted sum lets the largest one drive "
                  "the shared trunk. Multiply each task's loss by `weights[task]` before adding."),
    (_UNWEIGHTED / 3, "you averaged the task losses without their weights. Use the weighted *sum* "
                      "Σ_t weights[t] · loss_t: the weights are how you decide how much each task counts."),
    (_TOTAL / 3, "you divided the weighted sum by the number of tasks. The total is the weighted *sum*: "
                 "dividing by the task count silently rescales every weight (and the learning rate)."),
    (_TOTAL / 5.5, "you normalised by the sum of the weights. The exercise asks for the plain weighted sum "
                   "Σ_t weights[t] · loss_t; with normalised weights, raising one task's weight also lowers all "
                   "the others, which is not what the weight sweep below measures."),
    (6.7278342, "the weights were paired with the wrong tasks: it looks as if you zipped `weights.values()` with "
                "the losses. Dicts built in different places need not list their keys in the same order; look "
                "each task's weight up by its name."),
    (2.5433885, "each task's loss was divided by the batch size instead of by the number of rows that have a "
                "label for that task. Unlabelled rows must not count at all: average over the labelled rows only."),
]


def _outputs(requires_grad: bool = False) -> dict[str, torch.Tensor]:
    return {k: torch.tensor(v, requires_grad=requires_grad) for k, v in _LOGITS.items()}


def _targets() -> dict[str, torch.Tensor]:
    return {k: torch.tensor(v) for k, v in _TARGETS.items()}


# ---------------------------------------------------------------- forward

class _Spy(nn.Module):
    """A module that records the inputs it was called with."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner, self.seen = inner, []

    def forward(self, x):
        self.seen.append(x)
        return self.inner(x)


def _spies(d: int = 5, seed: int = 3):
    torch.manual_seed(seed)
    trunk = _Spy(nn.Sequential(nn.Linear(d, d), nn.Tanh()))
    heads = nn.ModuleDict({"colour": _Spy(nn.Linear(d, 3)), "shape": _Spy(nn.Linear(d, 4)),
                           "size": _Spy(nn.Linear(d, 2))})
    return trunk, heads


def _check_forward(multitask_forward) -> None:
    trunk, heads = _spies()
    x = torch.randn(7, 5, generator=torch.Generator().manual_seed(11))  # features have the input's width on purpose
    out = multitask_forward(trunk, heads, x)
    if not isinstance(out, dict):
        raise Wrong(f"`multitask_forward` returned {type(out).__name__}; return a dict with one entry per task "
                    "(the keys of `heads`), each that head's logits.")
    if set(out) != set(heads):
        raise Wrong(f"`multitask_forward` returned the tasks {sorted(out)}; expected one entry for each head: "
                    f"{sorted(heads)}.")
    if not trunk.seen:
        raise Wrong("the trunk was never called: every head must work on the shared trunk's features, not on the "
                    "raw inputs.")
    features = trunk.inner(x)
    for name, head in heads.items():
        if not head.seen:
            raise Wrong(f"the head {name!r} was never called; its output must be `heads[{name!r}]` applied to the "
                        "trunk's features.")
        got = head.seen[-1]
        if tuple(got.shape) == tuple(x.shape) and torch.allclose(got, x):
            raise Wrong(f"the head {name!r} was applied to the raw inputs, not to the trunk's features: a head on "
                        "the wrong features. With a head on the inputs nothing is shared, and the trunk learns "
                        "nothing from that task.")
        if tuple(got.shape) != tuple(features.shape) or not torch.allclose(got, features, atol=1e-5):
            raise Wrong(f"the head {name!r} did not receive the trunk's features of the whole batch (it got a tensor "
                        f"of shape {tuple(got.shape)}). Compute `trunk(x)` and give the same features to every head.")
        value = out[name]
        if not isinstance(value, torch.Tensor):
            raise Wrong(f"the output for {name!r} is not a tensor of logits.")
        own = head.inner(features)
        if tuple(value.shape) != tuple(own.shape) or not torch.allclose(value, own, atol=1e-5):
            swapped = [o for o in heads if o != name and tuple(value.shape) == tuple(heads[o].inner(features).shape)
                       and torch.allclose(value, heads[o].inner(features), atol=1e-5)]
            raise Wrong(f"the output stored under {name!r} is not what the head {name!r} gives"
                        + (f" (it is head {swapped[0]!r}'s)" if swapped else "")
                        + ". Store each head's logits under that head's own task name.")
    if not any(v.requires_grad for v in out.values()) or out["colour"].grad_fn is None:
        raise Wrong("the outputs carry no autograd graph (a `torch.no_grad()`, `.detach()` or `.item()`): the "
                    "heads and the trunk could not learn from them.")
    trunk.zero_grad()
    out["colour"].sum().backward()
    grad = trunk.inner[0].weight.grad
    if grad is None or float(grad.abs().sum()) == 0.0:
        raise Wrong("no gradient reaches the trunk from a head: the features were detached before the heads. "
                    "The point of multi-task learning is that every task's loss trains the shared trunk.")


# ---------------------------------------------------------------- loss

def _check_loss(multitask_loss) -> None:
    outputs, targets = _outputs(requires_grad=True), _targets()
    try:
        result = multitask_loss(outputs, targets, dict(_WEIGHTS))
    except (IndexError, RuntimeError) as exc:
        if "out of bounds" in str(exc) or "-1" in str(exc):
            raise Wrong("the label -1 reached the cross-entropy. -1 means 'this image has no label for this task': "
                        "keep only the rows whose label is not -1 before computing each task's loss. "
                        f"(PyTorch said: {exc})") from None
        raise
    if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], dict)):
        raise Wrong("`multitask_loss` must return a pair `(total, losses)`: the weighted total (a scalar tensor) "
                    "and a dict with each task's own loss.")
    total, losses = result
    if set(losses) != set(_LOGITS):
        raise Wrong(f"the per-task losses cover {sorted(losses)}; expected one for every task in `outputs`: "
                    f"{sorted(_LOGITS)}.")
    if not isinstance(total, torch.Tensor) or total.numel() != 1:
        raise Wrong("the total must be a scalar tensor (so that `.backward()` works), not "
                    f"{type(total).__name__}{tuple(total.shape) if isinstance(total, torch.Tensor) else ''}.")
    if math.isnan(_num(total)) or math.isnan(_num(losses["size"])):
        raise Wrong("a task with no labelled row in the batch gave nan (the mean of nothing). Such a task "
                    "contributes 0 to this batch: check whether any row is labelled before averaging.")
    for name, want in _LOSS.items():
        got = losses[name]
        if not isinstance(got, torch.Tensor):
            raise Wrong(f"the loss of {name!r} is a {type(got).__name__}; keep each task's loss a tensor with its "
                        "graph (learned task weights, later in the notebook, train through it).")
        if abs(_num(got) - want) > 1e-4:
            hint = ""
            n_labelled = sum(label != MISSING for label in _TARGETS[name])
            if abs(_num(got) - want * n_labelled / len(_TARGETS[name])) < 1e-4:
                hint = " It looks as if you divided by the batch size rather than by the labelled rows."
            raise Wrong(f"on fixed logits the loss of task {name!r} is {_num(got):.5f}, expected {want:.5f}: the mean "
                        f"cross-entropy over the rows labelled for that task (label ≠ -1).{hint}")
    value = _num(total)
    if abs(value - _TOTAL) > 1e-4:
        for cand, message in _WRONG_TOTALS:
            if abs(value - cand) < 1e-4:
                raise Wrong(message)
        raise Wrong(f"on fixed inputs the total is {value:.5f}, expected {_TOTAL:.5f} = Σ_t weights[t] · loss_t "
                    f"with the per-task losses you returned.")
    if total.grad_fn is None:
        raise Wrong("the total has no autograd graph (`.item()`, `float()` or `.detach()` somewhere), so "
                    "`backward()` cannot train the network.")
    total.backward()
    g_colour = outputs["colour"].grad
    if g_colour is None or float(g_colour[[2, 5]].abs().sum()) != 0.0:
        raise Wrong("unlabelled rows (label -1) received a gradient: they must not take part in the loss at all.")
    # A weight change must move the total by exactly the change times that task's loss.
    heavier = dict(_WEIGHTS, colour=_WEIGHTS["colour"] + 2.0)
    total2, _ = multitask_loss(_outputs(), _targets(), heavier)
    if abs(_num(total2) - (_TOTAL + 2.0 * _LOSS["colour"])) > 1e-4:
        raise Wrong("raising the weight of one task by 2 did not raise the total by 2 × that task's loss: "
                    "the total must be the weighted sum Σ_t weights[t] · loss_t.")


# ---------------------------------------------------------------- metrics

def _check_metrics(task_accuracies) -> None:
    names = ("colour", "shape")
    outputs = {k: v for k, v in _outputs().items() if k in names}
    targets = {k: v for k, v in _targets().items() if k in names}
    acc = task_accuracies(outputs, targets)
    if not isinstance(acc, dict):
        raise Wrong(f"`task_accuracies` returned a {type(acc).__name__}; return a dict with one accuracy per task. "
                    "Averaging the accuracies of different tasks mixes numbers that mean different things (10 "
                    "classes against 4, different chance levels, different test sets): report each task on its own.")
    if set(acc) != set(names):
        raise Wrong(f"`task_accuracies` returned the keys {sorted(acc)}; expected one accuracy per task: "
                    f"{sorted(names)}.")
    for name, want in _ACC.items():
        got = _num(acc[name])
        if abs(got - want) < 1e-6:
            continue
        if abs(got - (want * (6 if name == "colour" else 4) / 8)) < 1e-6:
            raise Wrong(f"the accuracy of {name!r} counted the unlabelled rows (label -1) as errors: compute it "
                        "over the rows that have a label for that task only.")
        if abs(got - 7 / 12) < 1e-6 or abs(got - 0.375) < 1e-6:
            raise Wrong("every task got the same number: the tasks' accuracies were averaged. Report each task on "
                        "its own: a 10-class and a 4-class accuracy have different chance levels and mean "
                        "different things.")
        raise Wrong(f"on fixed logits the accuracy of {name!r} is {got:.4f}, expected {want:.4f}: the fraction of "
                    "labelled rows whose highest logit is the label.")


@_keep_rng
def _eval_q1(multitask_forward, multitask_loss, task_accuracies) -> None:
    _check_forward(multitask_forward)
    _check_loss(multitask_loss)
    _check_metrics(task_accuracies)


q1 = Question(
    "q1", "multi-task forward, loss and per-task metrics",
    ("multitask_forward", "multitask_loss", "task_accuracies"), _eval_q1,
    hints=(
        "Multi-task learning shares one network body between tasks: each task adds only a small head on top "
        "of the shared features, and the training objective is one number that mixes the tasks' losses with "
        "weights you choose.",
        "Look at what each argument holds: `heads` is a dict of modules keyed by task name, `targets` a dict of "
        "label tensors keyed the same way (with -1 for 'no label'), `weights` a dict of floats. Nothing says the "
        "dicts list their keys in the same order.",
        "Forward: run the trunk once, then give its output to every head. Loss: for each task keep the labelled "
        "rows, take the mean cross-entropy over them (zero when there are none), multiply by the task's weight "
        "and add them up; return the total and the unweighted per-task values. Metrics: one accuracy per task, "
        "over that task's labelled rows, never averaged across tasks.",
    ),
    why="every task's gradient now flows into one shared trunk, with a weight you control per task, and each "
        "task is measured on its own terms.",
)

questions = QuestionSet(q1)
