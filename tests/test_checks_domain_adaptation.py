"""The notebook-05 checks accept correct answers written different ways and reject each plausible mistake
with a message that names it."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tlcourse.checks.domain_adaptation import q1, q2, q3


# ---------------------------------------------------------------- q1: gradient reversal

def _grl(forward, backward):
    """A Function class from forward(ctx, x, lambd) and backward(ctx, g) bodies, plus its apply wrapper."""
    cls = type("GRL", (torch.autograd.Function,), {"forward": staticmethod(forward), "backward": staticmethod(backward)})
    return cls, (lambda x, lambd=1.0: cls.apply(x, lambd))


def _fwd_view(ctx, x, lambd):
    ctx.lambd = lambd
    return x.view_as(x)


def _fwd_clone(ctx, x, lambd):
    ctx.save_for_backward(torch.tensor(float(lambd)))
    return x.clone()


GOOD_GRLS = {
    "view_as": _grl(_fwd_view, lambda ctx, g: (-ctx.lambd * g, None)),
    "clone+saved": _grl(_fwd_clone, lambda ctx, g: (g.neg() * ctx.saved_tensors[0], None)),
}


class _GlobalLambda(torch.autograd.Function):
    lambd = 1.0

    @staticmethod
    def forward(ctx, x, lambd):
        _GlobalLambda.lambd = lambd
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g):
        return -_GlobalLambda.lambd * g, None


WRONG_GRLS = {
    "no negation": (_grl(_fwd_view, lambda ctx, g: (ctx.lambd * g, None)), "not negated"),
    "no lambda": (_grl(_fwd_view, lambda ctx, g: (-g, None)), "not scaled by lambda"),
    "identity": (_grl(_fwd_view, lambda ctx, g: (g, None)), "does not reverse"),
    "negated forward": (_grl(lambda ctx, x, lambd: (setattr(ctx, "lambd", lambd), -x)[1],
                             lambda ctx, g: (-ctx.lambd * g, None)), "forward pass"),
    "scaled forward": (_grl(lambda ctx, x, lambd: (setattr(ctx, "lambd", lambd), lambd * x)[1],
                            lambda ctx, g: (-ctx.lambd * g, None)), "forward pass"),
    "lambda squared": (_grl(_fwd_view, lambda ctx, g: (-ctx.lambd ** 2 * g, None)), "power of lambda"),
    "global lambda": ((_GlobalLambda, lambda x, lambd=1.0: _GlobalLambda.apply(x, lambd)), "ctx"),
}


@pytest.mark.parametrize("name", GOOD_GRLS)
def test_q1_accepts_correct_grls(name):
    cls, fn = GOOD_GRLS[name]
    v = q1.verdict(cls, fn)
    assert v.correct, v.message


@pytest.mark.parametrize("name", WRONG_GRLS)
def test_q1_rejects_wrong_grls(name):
    (cls, fn), keyword = WRONG_GRLS[name]
    v = q1.verdict(cls, fn)
    assert v.status == "wrong", name
    assert keyword.lower() in v.message.lower(), v.message


def test_q1_rejects_a_non_function_and_a_detached_output():
    class NotAFunction:
        pass

    v = q1.verdict(NotAFunction, lambda x, lambd=1.0: x)
    assert v.status == "wrong" and "autograd.Function" in v.message
    cls, _ = GOOD_GRLS["view_as"]
    v = q1.verdict(cls, lambda x, lambd=1.0: x.detach())
    assert v.status == "wrong" and "grad_fn" in v.message


def test_q1_not_attempted():
    cls, _ = GOOD_GRLS["view_as"]

    def grad_reverse(x, lambd=1.0):
        raise NotImplementedError()

    assert q1.verdict(cls, grad_reverse).status == "not_attempted"


# ---------------------------------------------------------------- q2: CORAL

def coral_matmul(f_s, f_t):
    d = f_s.shape[1]

    def cov(f):
        c = f - f.mean(0, keepdim=True)
        return c.T @ c / (len(f) - 1)

    return (cov(f_s) - cov(f_t)).pow(2).sum() / (4 * d * d)


def coral_paper_form(f_s, f_t):
    # Sun & Saenko's formula: (DᵀD − (1ᵀD)ᵀ(1ᵀD)/n) / (n − 1), then the Frobenius norm squared.
    d = f_s.shape[1]

    def cov(D):
        n = D.shape[0]
        ones = torch.ones(1, n)
        s = ones @ D
        return (D.T @ D - s.T @ s / n) / (n - 1)

    return torch.linalg.matrix_norm(cov(f_s) - cov(f_t), ord="fro") ** 2 / (4 * d ** 2)


def coral_torch_cov(f_s, f_t):
    return ((torch.cov(f_s.T) - torch.cov(f_t.T)) ** 2).sum() / (4 * f_s.shape[1] ** 2)


def _cov(f):
    c = f - f.mean(0)
    return c.T @ c / (len(f) - 1)


WRONG_CORALS = {
    "no normalisation": (lambda s, t: ((_cov(s) - _cov(t)) ** 2).sum(), "4·d²"),
    "mean not sum": (lambda s, t: ((_cov(s) - _cov(t)) ** 2).mean(), "4·d²"),
    "4d": (lambda s, t: ((_cov(s) - _cov(t)) ** 2).sum() / (4 * s.shape[1]), "4·d"),
    "not squared": (lambda s, t: torch.linalg.matrix_norm(_cov(s) - _cov(t)) / (4 * s.shape[1] ** 2), "squared"),
    "uncentred": (lambda s, t: ((s.T @ s / (len(s) - 1) - t.T @ t / (len(t) - 1)) ** 2).sum()
                  / (4 * s.shape[1] ** 2), "centred"),
    "uncentred over n": (lambda s, t: ((s.T @ s / len(s) - t.T @ t / len(t)) ** 2).sum()
                         / (4 * s.shape[1] ** 2), "centred"),
    "biased": (lambda s, t: ((torch.cov(s.T, correction=0) - torch.cov(t.T, correction=0)) ** 2).sum()
               / (4 * s.shape[1] ** 2), "n − 1"),
    "detached": (lambda s, t: torch.tensor(coral_matmul(s, t).item()), "gradient"),
    "mean difference": (lambda s, t: ((s.mean(0) - t.mean(0)) ** 2).sum(), "expected"),
    "vector output": (lambda s, t: ((_cov(s) - _cov(t)) ** 2).sum(1) / (4 * s.shape[1] ** 2), "scalar"),
}


@pytest.mark.parametrize("fn", [coral_matmul, coral_paper_form, coral_torch_cov])
def test_q2_accepts_correct_corals(fn):
    v = q2.verdict(fn)
    assert v.correct, v.message


@pytest.mark.parametrize("name", WRONG_CORALS)
def test_q2_rejects_wrong_corals(name):
    fn, keyword = WRONG_CORALS[name]
    v = q2.verdict(fn)
    assert v.status == "wrong", name
    assert keyword.lower() in v.message.lower(), v.message


def test_q2_not_attempted():
    def coral_loss(f_s, f_t):
        raise NotImplementedError()

    assert q2.verdict(coral_loss).status == "not_attempted"


# ---------------------------------------------------------------- q3: the DANN step

class _Rev(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, lambd):
        ctx.lambd = lambd
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g):
        return -ctx.lambd * g, None


def rev(x, lambd):
    return _Rev.apply(x, lambd)


def step_concat(fe, clf, disc, opt, x_s, y_s, x_t, lambd):
    f = fe(torch.cat([x_s, x_t]))
    cls_loss = F.cross_entropy(clf(f[:len(x_s)]), y_s)
    d = disc(rev(f, lambd)).squeeze(1)
    dom = F.binary_cross_entropy_with_logits(d, torch.cat([torch.ones(len(x_s)), torch.zeros(len(x_t))]))
    opt.zero_grad()
    (cls_loss + dom).backward()
    opt.step()
    return {"cls_loss": cls_loss.item(), "domain_loss": dom.item()}


def step_separate(fe, clf, disc, opt, x_s, y_s, x_t, lambd):
    # Separate forward passes, BCE on probabilities, the average of the two domains' means.
    f_s, f_t = fe(x_s), fe(x_t)
    cls_loss = torch.nn.CrossEntropyLoss()(clf(f_s), y_s)
    p_s = torch.sigmoid(disc(rev(f_s, lambd)))
    p_t = torch.sigmoid(disc(rev(f_t, lambd)))
    dom = 0.5 * (F.binary_cross_entropy(p_s, torch.ones_like(p_s)) + F.binary_cross_entropy(p_t, torch.zeros_like(p_t)))
    loss = cls_loss + dom
    opt.zero_grad()
    loss.backward()
    opt.step()
    return dict(cls_loss=float(cls_loss.detach()), domain_loss=float(dom.detach()))


def _make_step(labels=(1.0, 0.0), reverse=True, coeff_in_grl=True, weight_in_loss=False, detach=False,
               sum_domain=False, zero_grad=True, negate=False, returns=True):
    def step(fe, clf, disc, opt, x_s, y_s, x_t, lambd):
        f = fe(torch.cat([x_s, x_t]))
        cls_loss = F.cross_entropy(clf(f[:len(x_s)]), y_s)
        g = f.detach() if detach else (rev(f, lambd if coeff_in_grl else 1.0) if reverse else f)
        d = disc(g).squeeze(1)
        target = torch.cat([torch.full((len(x_s),), labels[0]), torch.full((len(x_t),), labels[1])])
        dom = F.binary_cross_entropy_with_logits(d, target)
        if sum_domain:
            dom = 2 * dom
        total = cls_loss + (lambd * dom if weight_in_loss else dom)
        if negate:
            total = cls_loss - lambd * dom
        if zero_grad:
            opt.zero_grad()
        total.backward()
        opt.step()
        return {"cls_loss": cls_loss.item(), "domain_loss": dom.item()} if returns else None
    return step


WRONG_STEPS = {
    "no reversal": (_make_step(reverse=False), "reversed"),
    "detached": (_make_step(detach=True), "detach"),
    "lambda in loss": (_make_step(coeff_in_grl=False, weight_in_loss=True), "multiplies the domain loss"),
    "lambda unused": (_make_step(coeff_in_grl=False), "lambda is not used"),
    "negated loss": (_make_step(reverse=False, negate=True), "subtracted"),
    "summed domain loss": (_make_step(sum_domain=True), "twice"),
    "no zero_grad": (_make_step(zero_grad=False), "zero_grad"),
    "returns nothing": (_make_step(returns=False), "dict"),
    "no step": (lambda fe, clf, disc, opt, x_s, y_s, x_t, lambd: {"cls_loss": 0.0, "domain_loss": 0.0},
                "optimizer.step"),
}


def step_flipped_separate(fe, clf, disc, opt, x_s, y_s, x_t, lambd):
    # Domain labels the other way round (source 0, target 1): the same adversarial game, equally correct.
    f_s, f_t = fe(x_s), fe(x_t)
    cls_loss = F.cross_entropy(clf(f_s), y_s)
    d_s, d_t = disc(rev(f_s, lambd)), disc(rev(f_t, lambd))
    dom = 0.5 * (F.binary_cross_entropy_with_logits(d_s, torch.zeros_like(d_s))
                 + F.binary_cross_entropy_with_logits(d_t, torch.ones_like(d_t)))
    opt.zero_grad()
    (cls_loss + dom).backward()
    opt.step()
    return {"cls_loss": cls_loss.item(), "domain_loss": dom.item()}


@pytest.mark.parametrize("fn", [step_concat, step_separate, _make_step(labels=(0.0, 1.0)), step_flipped_separate])
def test_q3_accepts_correct_steps(fn):
    v = q3.verdict(fn)
    assert v.correct, v.message


@pytest.mark.parametrize("name", WRONG_STEPS)
def test_q3_rejects_wrong_steps(name):
    fn, keyword = WRONG_STEPS[name]
    v = q3.verdict(fn)
    assert v.status == "wrong", name
    assert keyword.lower() in v.message.lower(), v.message


def test_q3_flipped_labels_still_name_the_mistakes():
    # With source 0 / target 1 a missing reversal is as wrong as with the usual labels.
    v = q3.verdict(_make_step(labels=(0.0, 1.0), zero_grad=False))
    assert v.status == "wrong", v.message
    v = q3.verdict(_make_step(labels=(0.0, 1.0), reverse=False))
    assert v.status == "wrong", v.message


def test_q3_flipped_labels_must_return_their_own_domain_loss():
    honest = _make_step(labels=(0.0, 1.0))

    def reports_the_usual_labels_loss(fe, clf, disc, opt, x_s, y_s, x_t, lambd):
        out = honest(fe, clf, disc, opt, x_s, y_s, x_t, lambd)
        return {**out, "domain_loss": out["domain_loss"] + 0.3}

    v = q3.verdict(reports_the_usual_labels_loss)
    assert v.status == "wrong" and "domain_loss" in v.message, v.message


def test_q3_rejects_a_step_that_trains_on_target_labels_as_classes():
    def step(fe, clf, disc, opt, x_s, y_s, x_t, lambd):  # classification loss on target features
        f = fe(torch.cat([x_s, x_t]))
        cls_loss = F.cross_entropy(clf(f[len(x_s):]), y_s)
        d = disc(rev(f, lambd)).squeeze(1)
        dom = F.binary_cross_entropy_with_logits(d, torch.cat([torch.ones(len(x_s)), torch.zeros(len(x_t))]))
        opt.zero_grad()
        (cls_loss + dom).backward()
        opt.step()
        return {"cls_loss": cls_loss.item(), "domain_loss": dom.item()}

    v = q3.verdict(step)
    assert v.status == "wrong" and "classifier" in v.message


def test_q3_not_attempted():
    def dann_step(*args):
        raise NotImplementedError()

    assert q3.verdict(dann_step).status == "not_attempted"


def test_checks_leave_the_global_rng_alone():
    cls, fn = GOOD_GRLS["view_as"]
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    q1.verdict(cls, fn), q2.verdict(coral_matmul), q3.verdict(step_concat)
    assert torch.equal(torch.rand(3), expected)


# ---------------------------------------------------------------- delegation to the library's own version

from delegation import assert_loses_points as _assert_loses_points  # noqa: E402
from delegation import library as _library  # noqa: E402


def test_q1_delegating_to_the_library_reversal_loses_its_points():
    Reverse = _library(q1, "_ReverseGrad")

    def grad_reverse(x, lambd=1.0):
        return Reverse.apply(x, lambd)

    _assert_loses_points(q1, Reverse, grad_reverse)
    _assert_loses_points(q1, _Rev, grad_reverse)  # own class, but the function calls the library's
    Layer = _library(q1, "GradientReverseLayer")
    _assert_loses_points(q1, _Rev, lambda x, lambd=1.0: Layer(lambd)(x))


def test_q2_delegating_to_the_library_coral_loses_its_points():
    Coral = _library(q2, "CorrelationAlignmentLoss")
    _assert_loses_points(q2, lambda f_s, f_t: Coral()(f_s, f_t))


def test_q3_delegating_to_the_library_loses_its_points():
    Adversarial = _library(q3, "DomainAdversarialLoss")

    def dann_step(fe, clf, disc, opt, x_s, y_s, x_t, lambd):
        f = fe(torch.cat([x_s, x_t]))
        f_s, f_t = f[:len(x_s)], f[len(x_s):]
        cls_loss = F.cross_entropy(clf(f_s), y_s)
        dom = Adversarial(disc, coeff=lambd)(f_s, f_t)
        opt.zero_grad()
        (cls_loss + dom).backward()
        opt.step()
        return {"cls_loss": cls_loss.item(), "domain_loss": dom.item()}

    _assert_loses_points(q3, dann_step)
    _assert_loses_points(q3, _library(q3, "_default_dann_step"))
    # the library's reversal layer inside an otherwise hand-written step delegates too
    Reverse = _library(q3, "_ReverseGrad")

    def dann_step_library_grl(fe, clf, disc, opt, x_s, y_s, x_t, lambd):
        f = fe(torch.cat([x_s, x_t]))
        cls_loss = F.cross_entropy(clf(f[:len(x_s)]), y_s)
        d = disc(Reverse.apply(f, lambd)).squeeze(1)
        dom = F.binary_cross_entropy_with_logits(d, torch.cat([torch.ones(len(x_s)), torch.zeros(len(x_t))]))
        opt.zero_grad()
        (cls_loss + dom).backward()
        opt.step()
        return {"cls_loss": cls_loss.item(), "domain_loss": dom.item()}

    _assert_loses_points(q3, dann_step_library_grl)


def test_switching_the_profile_hook_off_to_hide_a_delegation_loses_the_points():
    import sys

    Coral = _library(q2, "CorrelationAlignmentLoss")

    def coral_loss(f_s, f_t):
        sys.setprofile(None)  # hides the call below from the check's hook
        return Coral()(f_s, f_t)

    v = q2.verdict(coral_loss)
    assert v.status == "wrong" and "sys.setprofile" in v.message, v.message
    assert sys.getprofile() is None  # the hook is gone again after the check


def test_a_delegation_from_another_thread_is_seen():
    import threading

    Coral = _library(q2, "CorrelationAlignmentLoss")

    def coral_loss(f_s, f_t):
        out = {}
        t = threading.Thread(target=lambda: out.setdefault("v", Coral()(f_s, f_t)))
        t.start()
        t.join()
        return out["v"]

    _assert_loses_points(q2, coral_loss)
