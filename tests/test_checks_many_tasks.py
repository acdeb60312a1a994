"""The notebook-07 check accepts correct multi-task code written different ways and rejects each
plausible mistake with a message that names it."""
from __future__ import annotations

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
