"""The checks of notebook 04 (knowledge distillation): right answers pass, each common mistake is named."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tlcourse.checks import distillation as D


# ---------------------------------------------------------------- q1: kd_loss

def kd_functional(s, t, y, T=4.0, alpha=0.9):
    soft = F.kl_div(F.log_softmax(s / T, dim=1), F.softmax(t / T, dim=1), reduction="batchmean") * T * T
    return alpha * soft + (1 - alpha) * F.cross_entropy(s, y)


def kd_modules(student_logits, teacher_logits, labels, T=4.0, alpha=0.9):
    kl = nn.KLDivLoss(reduction="batchmean", log_target=True)
    soft = kl(torch.log_softmax(student_logits / T, 1), torch.log_softmax(teacher_logits / T, 1))
    hard = nn.CrossEntropyLoss()(student_logits, labels)
    return T ** 2 * alpha * soft + (1.0 - alpha) * hard


def kd_manual(s, t, y, T=4.0, alpha=0.9):
    p_t = (t / T).softmax(-1)
    kl = (p_t * (p_t.log() - (s / T).log_softmax(-1))).sum(-1).mean()
    return alpha * T * T * kl + (1 - alpha) * F.nll_loss(s.log_softmax(-1), y)


@pytest.mark.parametrize("fn", [kd_functional, kd_modules, kd_manual])
def test_kd_loss_correct_answers_pass(fn):
    v = D.q1.verdict(fn)
    assert v.correct, v.message


def _wrong(kind):
    def fn(s, t, y, T=4.0, alpha=0.9):
        ce = F.cross_entropy(s, y)
        ls, pt = F.log_softmax(s / T, 1), F.softmax(t / T, 1)
        red = "batchmean"
        if kind == "no_T2":
            return alpha * F.kl_div(ls, pt, reduction=red) + (1 - alpha) * ce
        if kind == "reversed":
            return alpha * T * T * F.kl_div(F.log_softmax(t / T, 1), F.softmax(s / T, 1), reduction=red) + (1 - alpha) * ce
        if kind == "softmax":
            return alpha * T * T * F.kl_div(F.softmax(s / T, 1), pt, reduction=red) + (1 - alpha) * ce
        if kind == "teacher_no_T":
            return alpha * T * T * F.kl_div(ls, F.softmax(t, 1), reduction=red) + (1 - alpha) * ce
        if kind == "mean":
            return alpha * T * T * F.kl_div(ls, pt, reduction="mean") + (1 - alpha) * ce
        if kind == "sum":
            return alpha * T * T * F.kl_div(ls, pt, reduction="sum") + (1 - alpha) * ce
        if kind == "alpha_swapped":
            return (1 - alpha) * T * T * F.kl_div(ls, pt, reduction=red) + alpha * ce
        if kind == "no_hard":
            return alpha * T * T * F.kl_div(ls, pt, reduction=red)
        if kind == "student_no_T":
            return alpha * T * T * F.kl_div(F.log_softmax(s, 1), pt, reduction=red) + (1 - alpha) * ce
        if kind == "ce_softened":
            return alpha * T * T * F.kl_div(ls, pt, reduction=red) + (1 - alpha) * F.cross_entropy(s / T, y)
        if kind == "T_not_T2":
            return alpha * T * F.kl_div(ls, pt, reduction=red) + (1 - alpha) * ce
        if kind == "item":
            return (alpha * T * T * F.kl_div(ls, pt, reduction=red) + (1 - alpha) * ce).item()
        if kind == "per_example":
            return alpha * T * T * F.kl_div(ls, pt, reduction="none").sum(1) + (1 - alpha) * F.cross_entropy(s, y, reduction="none")
        if kind == "detached":
            return (alpha * T * T * F.kl_div(ls, pt, reduction=red) + (1 - alpha) * ce).detach()
        if kind == "odd":
            return alpha * T * T * F.kl_div(ls, pt, reduction=red) + (1 - alpha) * ce + 0.1 * alpha * (1 - alpha)
        raise AssertionError(kind)
    return fn


@pytest.mark.parametrize("kind, keyword", [
    ("no_T2", "T²"), ("reversed", "reversed"), ("softmax", "log-softmax"), ("teacher_no_T", "teacher"),
    ("mean", "batchmean"), ("sum", "batchmean"), ("alpha_swapped", "alpha"), ("no_hard", "cross-entropy"),
    ("student_no_T", "student"), ("ce_softened", "softened"), ("T_not_T2", "multiplied by T"),
    ("item", "scalar torch tensor"), ("per_example", "one number"), ("detached", "autograd"), ("odd", "mixed"),
])
def test_kd_loss_mistakes_are_named(kind, keyword):
    v = D.q1.verdict(_wrong(kind))
    assert v.status == "wrong", kind
    assert keyword in v.message, (kind, v.message)


def test_kd_loss_not_attempted():
    def kd_loss(s, t, y, T=4.0, alpha=0.9):
        raise NotImplementedError()
    assert D.q1.verdict(kd_loss).status == "not_attempted"


def test_stored_losses_match_torch():
    # the stored values were computed by scripts/make_check_expected.py with explicit sums; torch agrees
    for seed in (0, 1):
        s, t, y = D._logit_probe(seed)
        for T, a in D._CONFIGS:
            assert torch.allclose(kd_functional(s, t, y, T, a).double(), D._stored("ref", T, a, seed), atol=1e-5)


# ---------------------------------------------------------------- q2: distill_step

def step_plain(student, optimizer, images, labels, teacher_logits, loss_fn):
    student.train()
    optimizer.zero_grad()
    loss = loss_fn(student(images), teacher_logits, labels)
    loss.backward()
    optimizer.step()
    return loss.item()


def step_other(student, optimizer, images, labels, teacher_logits, loss_fn):
    student.train(True)
    for p in student.parameters():
        p.grad = None
    logits = student(images)
    loss = loss_fn(logits, teacher_logits.detach(), labels)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


@pytest.mark.parametrize("fn", [step_plain, step_other])
def test_step_correct_answers_pass(fn):
    v = D.q2.verdict(fn)
    assert v.correct, v.message


def _bad_step(kind):
    def fn(student, optimizer, images, labels, teacher_logits, loss_fn):
        if kind != "eval":
            student.train()
        if kind != "no_zero" and kind != "zero_late":
            optimizer.zero_grad()
        if kind == "swapped":
            loss = loss_fn(teacher_logits, student(images), labels)
        elif kind == "softened_teacher":
            loss = loss_fn(student(images), torch.softmax(teacher_logits / 4, 1), labels)
        else:
            loss = loss_fn(student(images), teacher_logits, labels)
        if kind != "no_backward":
            loss.backward()
        if kind == "zero_late":
            optimizer.zero_grad()
        if kind != "no_step":
            optimizer.step()
        if kind == "twice":
            optimizer.step()
        return loss if kind == "tensor" else loss.item()
    return fn


@pytest.mark.parametrize("kind, keyword", [
    ("no_zero", "zero_grad"), ("eval", "train()"), ("no_step", "did not change"), ("zero_late", "did not change"),
    ("no_backward", "did not change"), ("swapped", "student logits first"), ("softened_teacher", "exactly"),
    ("tensor", "float"), ("twice", "differ"),
])
def test_step_mistakes_are_named(kind, keyword):
    v = D.q2.verdict(_bad_step(kind))
    assert v.status == "wrong", kind
    assert keyword in v.message, (kind, v.message)


def test_step_not_attempted():
    def distill_step(student, optimizer, images, labels, teacher_logits, loss_fn):
        raise NotImplementedError()
    assert D.q2.verdict(distill_step).status == "not_attempted"


def test_grade_raises_with_the_message():
    with pytest.raises(AssertionError, match="zero_grad"):
        D.grade("q2", _bad_step("no_zero"))
    D.grade("q1", kd_functional)


# ---------------------------------------------------------------- delegation to the library's own version

from delegation import assert_loses_points as _assert_loses_points  # noqa: E402
from delegation import library as _library  # noqa: E402


def test_q2_delegating_to_the_library_step_loses_its_points():
    hint_step = _library(D.q2, "_hint_step")

    def distill_step(student, optimizer, images, labels, teacher_logits, loss_fn):
        return hint_step(student, optimizer, images, teacher_logits, labels,
                         lambda s, t: loss_fn(s, t, labels))

    _assert_loses_points(D.q2, distill_step)
