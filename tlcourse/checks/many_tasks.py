"""Checks for notebook 07, many tasks and many sources.

q1 the multi-task pieces: ``multitask_forward(trunk, heads, x)``, ``multitask_loss(outputs, targets, weights)``
and ``task_accuracies(outputs, targets)``.
q3 the source weighting: ``source_weights(target_probs, y, temperature)`` and ``combine_sources(probs, weights)``.

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


# ---------------------------------------------------------------- q3: weighting the sources

# Three sources' classifiers on 6 labelled target images (probabilities over 4 classes, rows sum to 1), the labels,
# and the temperature. Stored values computed once from the notebook's definitions.
_SRC_PROBS = {
    "MNIST": [[0.872, 0.12, 0.004, 0.004], [0.928, 0.03, 0.037, 0.005], [0.9411, 0.01, 0.032, 0.017],
              [0.293, 0.369, 0.04, 0.298], [0.698, 0.239, 0.039, 0.024], [0.165, 0.359, 0.289, 0.187]],
    "printed": [[0.422, 0.174, 0.303, 0.101], [0.113, 0.3, 0.348, 0.239], [0.093, 0.326, 0.268, 0.313],
                [0.332, 0.36, 0.148, 0.16], [0.38, 0.131, 0.266, 0.223], [0.057, 0.171, 0.569, 0.203]],
    "street": [[0.023, 0.084, 0.889, 0.004], [0.1471, 0.035, 0.7918, 0.026], [0.671, 0.002, 0.021, 0.306],
               [0.7512, 0.002, 0.2468, 0.0], [0.5075, 0.4164, 0.0631, 0.013], [0.4775, 0.4885, 0.03, 0.004]],
}
_SRC_Y = [2, 0, 3, 1, 1, 2]
_SRC_T = 0.7
_SRC_WEIGHTS = {"MNIST": 0.1875905, "printed": 0.6448965, "street": 0.1675131}
_SRC_WRONG_WEIGHTS = [
    ({"MNIST": 0.4148103, "printed": 0.120662, "street": 0.4645278},
     "the weights are reversed: the source whose classifier fits the labelled target images worst got the largest "
     "weight. A small negative log-likelihood means a good source, so the softmax must be taken over *minus* the "
     "NLL divided by the temperature."),
    ({"MNIST": 0.0417413, "printed": 0.1434979, "street": 0.0372738},
     "the weights do not sum to 1: you exponentiated minus the NLL over the temperature but did not normalise over "
     "the sources (divide by their sum, i.e. a softmax). Unnormalised weights shrink every combined probability."),
    ({"MNIST": 0.2647313, "printed": 0.4848217, "street": 0.250447},
     "you multiplied by the temperature instead of dividing by it. A *low* temperature must sharpen the weights "
     "towards the best source, a high one flatten them towards equal weights."),
    ({"MNIST": 0.2327014, "printed": 0.5523247, "street": 0.2149738},
     "the temperature was not used: these are the weights at temperature 1. Divide minus the NLL by `temperature`."),
    ({"MNIST": 0.0006052, "printed": 0.9990879, "street": 0.0003069},
     "you summed the negative log-likelihood over the target images instead of averaging it: the weights then "
     "depend on how many labelled images you happen to have. Use the mean over the labelled images."),
    ({"MNIST": 0.3586636, "printed": 0.3586636, "street": 0.2826727},
     "you weighted by accuracy on the labelled target images. With a handful of images accuracy moves in big "
     "steps and ties are common (two sources got the same number here); the exercise asks for the mean negative "
     "log-likelihood of the true label, which also counts how confident each source is."),
    ({"MNIST": 0.3363161, "printed": 0.3317827, "street": 0.3319012},
     "you averaged the probabilities of the true labels rather than their logarithms. Take minus the mean of "
     "log p_s(y | x) over the labelled images: the negative log-likelihood."),
]
_COMBINE_WEIGHTS = {"street": 0.2, "MNIST": 0.5, "printed": 0.3}  # not in the probabilities' key order, on purpose
_COMBINED = [[0.5672, 0.129, 0.2707, 0.0331], [0.52732, 0.112, 0.28126, 0.0794], [0.63265, 0.1032, 0.1006, 0.1636],
             [0.39634, 0.2929, 0.11376, 0.197], [0.5645, 0.24208, 0.11192, 0.0815], [0.1951, 0.3285, 0.3212, 0.1552]]
_WRONG_COMBINED = [
    ([[0.3923, 0.1362, 0.419, 0.0525], [0.28623, 0.1665, 0.41894, 0.1283], [0.43602, 0.1656, 0.1467, 0.2517],
      [0.44996, 0.2544, 0.15604, 0.1396], [0.48185, 0.23822, 0.15973, 0.1202], [0.20475, 0.30385, 0.3513, 0.1401]],
     "each source's probabilities were multiplied by another source's weight: it looks as if you zipped "
     "`weights.values()` with `probs.values()`. The two dicts need not list the sources in the same order; look "
     "each weight up by the source's name."),
    ([[0.439, 0.126, 0.39867, 0.03633], [0.39603, 0.12167, 0.39227, 0.09], [0.56837, 0.11267, 0.107, 0.212],
      [0.45873, 0.24367, 0.14493, 0.15267], [0.5285, 0.26213, 0.1227, 0.08667], [0.23317, 0.3395, 0.296, 0.13133]],
     "the weights were not used: this is the plain mean of the sources' probabilities, the equal combination the "
     "notebook uses as the control. Multiply each source's probabilities by its weight."),
    ([[0.65491, 0.24132, 0.08341, 0.02036], [0.61064, 0.11043, 0.23926, 0.03968], [0.74686, 0.03505, 0.09462, 0.12347],
      [0.6302, 0.22139, 0.14626, 0.00215], [0.61556, 0.25154, 0.08616, 0.04674], [0.19318, 0.398, 0.29314, 0.11568]],
     "you combined log-probabilities (a weighted geometric mean). That is a different, valid scheme, but the "
     "exercise asks for the mixture Σ_s weights[s] · probs[s], whose rows are probabilities without renormalising."),
]


def _src_probs() -> dict[str, torch.Tensor]:
    return {k: torch.tensor(v) for k, v in _SRC_PROBS.items()}


def _as_weights(result, what: str) -> dict[str, float]:
    if not isinstance(result, dict):
        raise Wrong(f"`source_weights` returned a {type(result).__name__}; return a dict {{source: weight}} for {what}.")
    if set(result) != set(_SRC_PROBS):
        raise Wrong(f"`source_weights` returned the sources {sorted(result)}; expected one weight for each source in "
                    f"`target_probs`: {sorted(_SRC_PROBS)}.")
    try:
        return {k: _num(v) for k, v in result.items()}
    except (TypeError, ValueError, RuntimeError):
        raise Wrong("each weight must be a number (a float or a 0-d tensor).") from None


def _check_weights(source_weights) -> None:
    got = _as_weights(source_weights(_src_probs(), torch.tensor(_SRC_Y), _SRC_T), "the fixed inputs")
    if any(math.isnan(v) for v in got.values()):
        raise Wrong("a weight is nan: take the logarithm of the probability of each image's true label (all are > 0 "
                    "here) and average over the images.")
    if any(abs(got[k] - v) > 1e-4 for k, v in _SRC_WEIGHTS.items()):
        for cand, message in _SRC_WRONG_WEIGHTS:
            if all(abs(got[k] - v) < 1e-4 for k, v in cand.items()):
                raise Wrong(message)
        raise Wrong(f"on fixed inputs the weights are {({k: round(v, 4) for k, v in got.items()})}, expected "
                    f"{({k: round(v, 4) for k, v in _SRC_WEIGHTS.items()})}: a softmax over the sources of minus each "
                    "source's mean negative log-likelihood on the labelled target images, divided by the temperature.")
    # Properties: a very high temperature flattens the weights; a very low one picks the best source.
    flat = _as_weights(source_weights(_src_probs(), torch.tensor(_SRC_Y), 1e6), "a huge temperature")
    if any(abs(v - 1 / 3) > 1e-3 for v in flat.values()):
        raise Wrong("at a huge temperature the weights should all be about equal (1/3 each here); they are not.")
    sharp = _as_weights(source_weights(_src_probs(), torch.tensor(_SRC_Y), 0.01), "a tiny temperature")
    if sharp["printed"] < 0.99:
        raise Wrong("at a tiny temperature nearly all the weight should go to the source with the lowest NLL.")


def _check_combine(combine_sources) -> None:
    out = combine_sources(_src_probs(), dict(_COMBINE_WEIGHTS))
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (6, 4):
        raise Wrong("`combine_sources` must return one tensor of shape (N, C), the combined probabilities, got "
                    f"{type(out).__name__}{tuple(out.shape) if isinstance(out, torch.Tensor) else ''}.")
    out = out.detach().double()
    if torch.allclose(out, torch.tensor(_COMBINED, dtype=torch.float64), atol=1e-4):
        return
    for cand, message in _WRONG_COMBINED:
        if torch.allclose(out, torch.tensor(cand, dtype=torch.float64), atol=1e-4):
            raise Wrong(message)
    raise Wrong("on fixed inputs the combined probabilities differ from Σ_s weights[s] · probs[s] (first row "
                f"{[round(float(v), 4) for v in out[0]]}, expected {_COMBINED[0]}).")


@_keep_rng
def _eval_q3(source_weights, combine_sources) -> None:
    _check_weights(source_weights)
    _check_combine(combine_sources)


q3 = Question(
    "q3", "weighting the sources by how well they fit a few target labels",
    ("source_weights", "combine_sources"), _eval_q3,
    hints=(
        "A source is worth listening to in proportion to how well its classifier explains the few target images "
        "whose labels you know; a softmax turns those scores into weights that are positive and sum to one, and "
        "a temperature decides how strongly the best source dominates.",
        "For each source, look up in its probability matrix the column of each image's true label; the score is "
        "about the logarithm of those numbers. Both functions receive dicts keyed by source name: nothing says "
        "they list the sources in the same order.",
        "Weights: for each source, the mean over the labelled images of minus the log-probability of the true label "
        "(its NLL); divide minus the NLL by the temperature and take a softmax across the sources. Combination: add "
        "up each source's probability matrix times that source's weight.",
    ),
    why="a source that explains the target badly gets little say, and the temperature lets you move between "
        "trusting the best source and averaging them all.",
)

questions = QuestionSet(q1, q3)
