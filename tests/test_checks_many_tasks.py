"""The notebook-07 check accepts correct multi-task code written different ways and rejects each
plausible mistake with a message that names it."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from tlcourse.checks.many_tasks import q1

# ---------------------------------------------------------------- correct answers, two ways each


def forward_dict(trunk, heads, x):
    features = trunk(x)
    return {task: head(features) for task, head in heads.items()}


def forward_loop(trunk, heads, x):
    out = {}
    shared = trunk(x)
    for name in heads.keys():
        out[name] = heads[name](shared)
    return out


def loss_masked(outputs, targets, weights):
    losses = {}
    for task, logits in outputs.items():
        keep = targets[task] != -1
        losses[task] = F.cross_entropy(logits[keep], targets[task][keep]) if keep.any() else logits.sum() * 0
    return sum(weights[t] * v for t, v in losses.items()), losses


def loss_ignore_index(outputs, targets, weights):
    losses, total = {}, torch.zeros(())
    for task in outputs:
        y = targets[task]
        if (y >= 0).sum() == 0:
            losses[task] = torch.tensor(0.0)
        else:
            losses[task] = F.cross_entropy(outputs[task], y, ignore_index=-1)
        total = total + weights[task] * losses[task]
    return total, losses


def acc_mask(outputs, targets):
    return {t: (z[targets[t] != -1].argmax(1) == targets[t][targets[t] != -1]).float().mean().item()
            for t, z in outputs.items()}


def acc_counts(outputs, targets):
    result = {}
    for task, logits in outputs.items():
        y = targets[task]
        n = int((y >= 0).sum())
        result[task] = float(((logits.argmax(1) == y) & (y >= 0)).sum()) / n
    return result


@pytest.mark.parametrize("forward", [forward_dict, forward_loop])
@pytest.mark.parametrize("loss", [loss_masked, loss_ignore_index])
@pytest.mark.parametrize("acc", [acc_mask, acc_counts])
def test_q1_accepts_correct_answers(forward, loss, acc):
    v = q1.verdict(forward, loss, acc)
    assert v.correct, v.message


# ---------------------------------------------------------------- mistakes, each named


def forward_on_inputs(trunk, heads, x):
    trunk(x)
    return {t: h(x) for t, h in heads.items()}


def forward_detached(trunk, heads, x):
    f = trunk(x).detach()
    return {t: h(f) for t, h in heads.items()}


def forward_swapped(trunk, heads, x):
    f = trunk(x)
    names = list(heads)
    return {names[0]: heads[names[0]](f), names[1]: heads[names[2]](f), names[2]: heads[names[1]](f)}


def forward_no_trunk(trunk, heads, x):
    return {t: h(x) for t, h in heads.items()}


def loss_unweighted(outputs, targets, weights):
    _, losses = loss_masked(outputs, targets, weights)
    return sum(losses.values()), losses


def loss_mean_of_weighted(outputs, targets, weights):
    total, losses = loss_masked(outputs, targets, weights)
    return total / len(losses), losses


def loss_zipped_weights(outputs, targets, weights):
    _, losses = loss_masked(outputs, targets, weights)
    return sum(w * v for w, v in zip(weights.values(), losses.values())), losses


def loss_over_batch(outputs, targets, weights):
    losses = {}
    for task, z in outputs.items():
        keep = targets[task] != -1
        losses[task] = F.cross_entropy(z[keep], targets[task][keep], reduction="sum") / len(z)
    return sum(weights[t] * v for t, v in losses.items()), losses


def loss_nan_for_empty(outputs, targets, weights):
    losses = {t: F.cross_entropy(z[targets[t] != -1], targets[t][targets[t] != -1]) for t, z in outputs.items()}
    return sum(weights[t] * v for t, v in losses.items()), losses


def loss_no_mask(outputs, targets, weights):
    losses = {t: F.cross_entropy(z, targets[t]) for t, z in outputs.items()}
    return sum(weights[t] * v for t, v in losses.items()), losses


def loss_floats(outputs, targets, weights):
    total, losses = loss_masked(outputs, targets, weights)
    return total.item(), losses


def acc_averaged(outputs, targets):
    per = acc_mask(outputs, targets)
    return sum(per.values()) / len(per)


def acc_all_rows(outputs, targets):
    return {t: (z.argmax(1) == targets[t]).float().mean().item() for t, z in outputs.items()}


def acc_same_average(outputs, targets):
    per = acc_mask(outputs, targets)
    mean = sum(per.values()) / len(per)
    return {t: mean for t in per}


MISTAKES = {
    "head on inputs": ((forward_on_inputs, loss_masked, acc_mask), "wrong features"),
    "features detached": ((forward_detached, loss_masked, acc_mask), "no gradient reaches the trunk"),
    "heads swapped": ((forward_swapped, loss_masked, acc_mask), "head 'size'"),
    "no trunk": ((forward_no_trunk, loss_masked, acc_mask), "trunk was never called"),
    "unweighted sum": ((forward_dict, loss_unweighted, acc_mask), "without their weights"),
    "mean of weighted": ((forward_dict, loss_mean_of_weighted, acc_mask), "number of tasks"),
    "weights zipped": ((forward_dict, loss_zipped_weights, acc_mask), "wrong tasks"),
    "divided by batch": ((forward_dict, loss_over_batch, acc_mask), "batch size"),
    "nan for empty task": ((forward_dict, loss_nan_for_empty, acc_mask), "nan"),
    "no mask": ((forward_dict, loss_no_mask, acc_mask), "-1"),
    "float total": ((forward_dict, loss_floats, acc_mask), "scalar tensor"),
    "accuracy averaged": ((forward_dict, loss_masked, acc_averaged), "averaging the accuracies"),
    "accuracy over all rows": ((forward_dict, loss_masked, acc_all_rows), "unlabelled rows"),
    "same average per task": ((forward_dict, loss_masked, acc_same_average), "averaged"),
}


@pytest.mark.parametrize("name", MISTAKES)
def test_q1_names_each_mistake(name):
    answers, keyword = MISTAKES[name]
    v = q1.verdict(*answers)
    assert v.status == "wrong", name
    assert keyword.lower() in v.message.lower(), v.message


def test_q1_not_attempted_and_rng_untouched():
    def todo(*args):
        raise NotImplementedError()

    assert q1.verdict(todo, todo, todo).status == "not_attempted"
    torch.manual_seed(5)
    before = torch.rand(3)
    torch.manual_seed(5)
    q1.verdict(forward_dict, loss_masked, acc_mask)
    assert torch.equal(torch.rand(3), before), "the check moved the notebook's random state"


def test_hints_are_words_not_code():
    hints = [q1.hint(level) for level in (1, 2, 3)]
    for text in hints:
        for snippet in ("cross_entropy(", "trunk(x)", "weights[task] *", "argmax(", "!= -1", "for task in"):
            assert snippet not in text, (snippet, text)


# ---------------------------------------------------------------- q3: source weights and their combination

from tlcourse.checks.many_tasks import q3  # noqa: E402


def weights_softmax(target_probs, y, temperature):
    names = list(target_probs)
    nll = torch.stack([-torch.log(target_probs[s][torch.arange(len(y)), y]).mean() for s in names])
    return dict(zip(names, (-nll / temperature).softmax(0).tolist()))


def weights_loop(target_probs, y, temperature):
    scores = {}
    for source, p in target_probs.items():
        picked = p.gather(1, y[:, None]).squeeze(1)
        scores[source] = float(picked.log().mean()) / temperature  # minus the NLL, over T
    top = max(scores.values())
    expd = {s: math.exp(v - top) for s, v in scores.items()}
    total = sum(expd.values())
    return {s: v / total for s, v in expd.items()}


def combine_sum(probs, weights):
    return sum(weights[s] * p for s, p in probs.items())


def combine_stack(probs, weights):
    names = sorted(probs)
    w = torch.tensor([weights[s] for s in names], dtype=probs[names[0]].dtype)
    return torch.einsum("s,snc->nc", w, torch.stack([probs[s] for s in names]))


@pytest.mark.parametrize("weights", [weights_softmax, weights_loop])
@pytest.mark.parametrize("combine", [combine_sum, combine_stack])
def test_q3_accepts_correct_answers(weights, combine):
    v = q3.verdict(weights, combine)
    assert v.correct, v.message


def _nll(target_probs, y):
    return {s: float(-torch.log(p[torch.arange(len(y)), y]).mean()) for s, p in target_probs.items()}


def _softmax(scores):
    z = torch.tensor(list(scores.values()))
    return dict(zip(scores, z.softmax(0).tolist()))


def weights_reversed(tp, y, t):
    return _softmax({s: v / t for s, v in _nll(tp, y).items()})


def weights_unnormalised(tp, y, t):
    return {s: math.exp(-v / t) for s, v in _nll(tp, y).items()}


def weights_times_t(tp, y, t):
    return _softmax({s: -v * t for s, v in _nll(tp, y).items()})


def weights_no_t(tp, y, t):
    return _softmax({s: -v for s, v in _nll(tp, y).items()})


def weights_sum_nll(tp, y, t):
    return _softmax({s: -v * len(y) / t for s, v in _nll(tp, y).items()})


def weights_accuracy(tp, y, t):
    return _softmax({s: float((p.argmax(1) == y).float().mean()) / t for s, p in tp.items()})


def weights_mean_prob(tp, y, t):
    return _softmax({s: float(p[torch.arange(len(y)), y].mean()) / t for s, p in tp.items()})


def combine_zipped(probs, weights):
    return sum(w * p for w, p in zip(weights.values(), probs.values()))


def combine_mean(probs, weights):
    return sum(probs.values()) / len(probs)


def combine_geometric(probs, weights):
    g = torch.exp(sum(weights[s] * torch.log(p.clamp_min(1e-12)) for s, p in probs.items()))
    return g / g.sum(1, keepdim=True)


@pytest.mark.parametrize("wrong, message", [
    (weights_reversed, "reversed"),
    (weights_unnormalised, "do not sum to 1"),
    (weights_times_t, "multiplied by the temperature"),
    (weights_no_t, "temperature was not used"),
    (weights_sum_nll, "summed the negative log-likelihood"),
    (weights_accuracy, "weighted by accuracy"),
    (weights_mean_prob, "averaged the probabilities"),
])
def test_q3_names_each_weighting_mistake(wrong, message):
    v = q3.verdict(wrong, combine_sum)
    assert not v.correct and message in v.message, v.message


@pytest.mark.parametrize("wrong, message", [
    (combine_zipped, "zipped"),
    (combine_mean, "weights were not used"),
    (combine_geometric, "log-probabilities"),
])
def test_q3_names_each_combination_mistake(wrong, message):
    v = q3.verdict(weights_softmax, wrong)
    assert not v.correct and message in v.message, v.message


def test_q3_hints_hold_no_code():
    for hint in q3.hints:
        assert "softmax(" not in hint and "log(" not in hint and "def " not in hint and "torch." not in hint
