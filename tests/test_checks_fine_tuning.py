"""The notebook-02 checks accept correct answers written in different ways and
reject each plausible mistake with a message that names it."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from tlcourse.checks import fine_tuning as ft


def _wrong(q, fn, *words):
    v = q.verdict(fn)
    assert v.status == "wrong", f"expected wrong, got {v}"
    low = v.message.lower()
    assert all(w.lower() in low for w in words), v.message
    return v


def _not_attempted(*args):
    raise NotImplementedError()


@pytest.mark.parametrize("q", [ft.q1, ft.q2, ft.q3])
def test_not_attempted(q):
    assert q.verdict(_not_attempted).status == "not_attempted"


# ---------------------------------------------------------------- q1

def replace_a(model, num_classes):
    model.classifier[-1] = nn.Linear(model.classifier[-1].in_features, num_classes)
    return model


def replace_b(model, num_classes):  # finds the last Linear by its index
    last = max(i for i, m in enumerate(model.classifier) if isinstance(m, nn.Linear))
    model.classifier[last] = nn.Linear(model.classifier[last].in_features, num_classes)
    return model


def replace_c(model, num_classes):  # rebuilds the classifier: every layer but the last, then a new one
    *keep, old = model.classifier
    model.classifier = nn.Sequential(*keep, nn.Linear(old.weight.shape[1], num_classes))
    return model


@pytest.mark.parametrize("fn", [replace_a, replace_b, replace_c])
def test_q1_correct(fn):
    assert ft.q1.verdict(fn).correct


def test_q1_wrong_input_dim_from_out_features():
    def f(model, n):
        model.classifier[-1] = nn.Linear(model.classifier[-1].out_features, n)
        return model
    _wrong(ft.q1, f, "input dimension", "outputs")


def test_q1_wrong_hard_coded_1280():
    def f(model, n):
        model.classifier[-1] = nn.Linear(1280, n)
        return model
    _wrong(ft.q1, f, "input dimension", "hard-coded")


def test_q1_wrong_hard_coded_classes():
    def f(model, n):
        model.classifier[-1] = nn.Linear(model.classifier[-1].in_features, 10)
        return model
    _wrong(ft.q1, f, "outputs", "num_classes")


def test_q1_wrong_stacked_on_old_layer():
    def f(model, n):
        model.classifier.append(nn.Linear(model.classifier[-1].out_features, n))
        return model
    _wrong(ft.q1, f, "still in the classifier")


def test_q1_wrong_no_return():
    def f(model, n):
        model.classifier[-1] = nn.Linear(model.classifier[-1].in_features, n)
    _wrong(ft.q1, f, "return")


def test_q1_wrong_softmax():
    def f(model, n):
        model.classifier[-1] = nn.Sequential(nn.Linear(model.classifier[-1].in_features, n), nn.Softmax(1))
        return model
    _wrong(ft.q1, f, "softmax")


def test_q1_wrong_frozen_head():
    def f(model, n):
        model.classifier[-1] = nn.Linear(model.classifier[-1].in_features, n).requires_grad_(False)
        return model
    _wrong(ft.q1, f, "requires_grad")


def test_q1_wrong_position_1_reads_a_relu():
    """`classifier[1]` is the last layer of MobileNetV2's two-element head, not of a longer one."""
    def f(model, n):
        old = model.classifier[1]
        model.classifier[1] = nn.Linear(old.in_features, n)
        return model
    _wrong(ft.q1, f, "in_features", "[-1]")


def test_q1_wrong_position_1_written():
    def f(model, n):
        model.classifier[1] = nn.Linear(model.classifier[-1].in_features, n)
        return model
    _wrong(ft.q1, f, "still in the classifier")


def test_q1_wrong_whole_classifier_replaced_on_a_deep_head():
    def f(model, n):  # right for MobileNetV2 (Dropout, Linear), wrong when the head has hidden layers
        model.classifier = nn.Linear(model.classifier[-1].in_features, n)
        return model
    _wrong(ft.q1, f, "more than its last layer")


def test_q1_wrong_freezes_the_body():
    """Freezing inside the surgery used to pass q1 and lose points only in q2's test."""
    def f(model, n):
        for p in model.parameters():
            p.requires_grad_(False)
        model.classifier[-1] = nn.Linear(model.classifier[-1].in_features, n)
        return model
    _wrong(ft.q1, f, "froze the body", "requires_grad=False")


# ---------------------------------------------------------------- q2

def groups_a(model, head, body_lr, head_lr):
    head_ids = {id(p) for p in head.parameters()}
    body = [p for p in model.parameters() if id(p) not in head_ids]
    return [{"params": body, "lr": body_lr}, {"params": list(head.parameters()), "lr": head_lr}]


def groups_b(model, head, body_lr, head_lr):  # by name, trainable only, generators
    prefix = next(n for n, m in model.named_modules() if m is head)
    head_names = {f"{prefix}.{n}" for n, _ in head.named_parameters()}
    body = (p for n, p in model.named_parameters() if n not in head_names and p.requires_grad)
    return [dict(params=head.parameters(), lr=head_lr), dict(params=body, lr=body_lr)]


def groups_c(model, head, body_lr, head_lr):  # frozen parameters left out, as the exercise allows
    head_ids = set(map(id, head.parameters()))
    trainable = [p for p in model.parameters() if p.requires_grad]
    return [{"params": [p for p in trainable if id(p) in head_ids], "lr": head_lr},
            {"params": [p for p in trainable if id(p) not in head_ids], "lr": body_lr}]


@pytest.mark.parametrize("fn", [groups_a, groups_b, groups_c])
def test_q2_correct(fn):
    assert ft.q2.verdict(fn).correct


def test_q2_wrong_features_only_leaves_out_neck():
    def f(model, head, body_lr, head_lr):
        return [{"params": model.features.parameters(), "lr": body_lr},
                {"params": head.parameters(), "lr": head_lr}]
    _wrong(ft.q2, f, "left out of every group", "neck")


def test_q2_wrong_head_in_two_groups():
    def f(model, head, body_lr, head_lr):
        return [{"params": model.parameters(), "lr": body_lr}, {"params": head.parameters(), "lr": head_lr}]
    _wrong(ft.q2, f, "present in two groups")


def test_q2_wrong_swapped_lrs():
    def f(model, head, body_lr, head_lr):
        return groups_a(model, head, head_lr, body_lr)
    _wrong(ft.q2, f, "swapped")


def test_q2_wrong_missing_lr():
    def f(model, head, body_lr, head_lr):
        g = groups_a(model, head, body_lr, head_lr)
        del g[0]["lr"]
        return g
    _wrong(ft.q2, f, "no 'lr'")


def test_q2_wrong_head_only():
    def f(model, head, body_lr, head_lr):
        return [{"params": head.parameters(), "lr": head_lr}]
    _wrong(ft.q2, f, "left out of every group")


def test_q2_wrong_modules_not_params():
    def f(model, head, body_lr, head_lr):
        return [{"params": [model.features, model.neck], "lr": body_lr}, {"params": [head], "lr": head_lr}]
    _wrong(ft.q2, f, "modules")


def test_q2_wrong_single_dict():
    def f(model, head, body_lr, head_lr):
        return {"params": model.parameters(), "lr": body_lr}
    _wrong(ft.q2, f, "list")


def test_q2_wrong_last_parameters_as_head():
    """Ignores `head`: takes the model's last two tensors (right only for one Linear at the end)."""
    def f(model, head, body_lr, head_lr):
        ps = [p for p in model.parameters() if p.requires_grad]
        return [{"params": ps[:-2], "lr": body_lr}, {"params": ps[-2:], "lr": head_lr}]
    _wrong(ft.q2, f, "head group is not the head", "position")


def test_q2_wrong_head_by_position_with_right_count():
    """Counts the head's tensors but still takes them from the end of the parameter order."""
    def f(model, head, body_lr, head_lr):
        n, ps = len(list(head.parameters())), list(model.parameters())
        return [{"params": [p for p in ps[:-n] if p.requires_grad], "lr": body_lr},
                {"params": ps[-n:], "lr": head_lr}]
    _wrong(ft.q2, f, "head group is not the head", "head.parameters()")


def test_q2_wrong_reads_model_classifier_not_head():
    def f(model, head, body_lr, head_lr):
        return groups_a(model, model.classifier, body_lr, head_lr)
    _wrong(ft.q2, f, "model.classifier", "head")


def test_q2_probes_include_a_multi_layer_head_that_is_not_last():
    model = ft._HeadFirstNet()
    names = [n for n, _ in model.named_parameters()]
    head = [f"head.{n}" for n, _ in model.head.named_parameters()]
    assert len(head) > 2 and names[-len(head):] != head and not hasattr(model, "classifier")


def test_q2_tensor_membership_crash_is_reported():
    def f(model, head, body_lr, head_lr):
        hp = list(head.parameters())
        return [{"params": [p for p in model.parameters() if p not in hp], "lr": body_lr},
                {"params": hp, "lr": head_lr}]
    v = ft.q2.verdict(f)
    assert v.status == "wrong" and "raised" in v.message


# ---------------------------------------------------------------- q3

def unfreeze_a(blocks, k, optimizer, lr):
    n = len(blocks)
    for i, block in enumerate(blocks):
        for p in block.parameters():
            p.requires_grad_(i >= n - k)
    have = {id(p) for g in optimizer.param_groups for p in g["params"]}
    new = [p for b in blocks for p in b.parameters() if p.requires_grad and id(p) not in have]
    if new:
        optimizer.add_param_group({"params": new, "lr": lr})
    return optimizer


def unfreeze_b(blocks, k, optimizer, lr):
    k = max(0, min(k, len(blocks)))
    frozen, trainable = blocks[:len(blocks) - k], blocks[len(blocks) - k:]
    for b in frozen:
        b.requires_grad_(False)
    for b in trainable:
        b.requires_grad_(True)
    in_opt = set()
    for g in optimizer.param_groups:
        in_opt.update(map(id, g["params"]))
    for b in trainable:
        params = [p for p in b.parameters() if id(p) not in in_opt]
        if params:
            optimizer.add_param_group({"params": params, "lr": lr})


@pytest.mark.parametrize("fn", [unfreeze_a, unfreeze_b])
def test_q3_correct(fn):
    assert ft.q3.verdict(fn).correct


def _set_only(blocks, k):
    for i, b in enumerate(blocks):
        b.requires_grad_(i >= len(blocks) - k)


def test_q3_wrong_end():
    def f(blocks, k, optimizer, lr):
        for i, b in enumerate(blocks):
            b.requires_grad_(i < k)
        have = {id(p) for g in optimizer.param_groups for p in g["params"]}
        new = [p for b in blocks for p in b.parameters() if p.requires_grad and id(p) not in have]
        if new:
            optimizer.add_param_group({"params": new, "lr": lr})
    _wrong(ft.q3, f, "*input* end", "output end")


def test_q3_wrong_forgets_optimizer():
    def f(blocks, k, optimizer, lr):
        _set_only(blocks, k)
    _wrong(ft.q3, f, "not in the optimizer", "add_param_group")


def test_q3_wrong_new_optimizer():
    def f(blocks, k, optimizer, lr):
        _set_only(blocks, k)
        return torch.optim.AdamW([p for b in blocks for p in b.parameters() if p.requires_grad], lr=lr)
    _wrong(ft.q3, f, "not in the optimizer")


def test_q3_wrong_adds_duplicates():
    def f(blocks, k, optimizer, lr):
        _set_only(blocks, k)
        optimizer.add_param_group({"params": [p for b in blocks for p in b.parameters() if p.requires_grad],
                                   "lr": lr})
    _wrong(ft.q3, f, "more than one parameter group")


def test_q3_wrong_minus_zero_slice():
    def g(blocks, k, optimizer, lr):
        for b in blocks:
            b.requires_grad_(False)
        for b in blocks[-k:]:
            b.requires_grad_(True)
        have = {id(p) for gr in optimizer.param_groups for p in gr["params"]}
        new = [p for b in blocks[-k:] for p in b.parameters() if id(p) not in have]
        if new:
            optimizer.add_param_group({"params": new, "lr": lr})
    _wrong(ft.q3, g, "k=0", "blocks[-k:]")


def test_q3_wrong_does_not_refreeze():
    def f(blocks, k, optimizer, lr):
        for b in blocks[len(blocks) - k:]:
            b.requires_grad_(True)
        have = {id(p) for g in optimizer.param_groups for p in g["params"]}
        new = [p for b in blocks for p in b.parameters() if p.requires_grad and id(p) not in have]
        if new:
            optimizer.add_param_group({"params": new, "lr": lr})
    _wrong(ft.q3, f, "frozen")


def test_q3_wrong_lr_for_new_group():
    def f(blocks, k, optimizer, lr):
        return unfreeze_a(blocks, k, optimizer, lr * 10)
    _wrong(ft.q3, f, "learning rate")


# ---------------------------------------------------------------- delegation to the library's own version

from delegation import assert_loses_points as _assert_loses_points  # noqa: E402
from delegation import library as _library  # noqa: E402


def test_q3_delegating_to_the_library_loses_its_points():
    set_trainable = _library(ft.q3, "set_trainable")

    def unfreeze_last(blocks, k, optimizer, lr):
        n = len(blocks)
        for i, block in enumerate(blocks):
            set_trainable(block, i >= n - k)
        held = {id(p) for g in optimizer.param_groups for p in g["params"]}
        new = [p for b in blocks for p in b.parameters() if p.requires_grad and id(p) not in held]
        if new:
            optimizer.add_param_group({"params": new, "lr": lr})

    _assert_loses_points(ft.q3, unfreeze_last)
