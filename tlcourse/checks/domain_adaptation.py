"""Checks for notebook 05, domain adaptation (MNIST → scikit-learn digits).

q1 the gradient reversal layer: ``GradientReverse`` (a ``torch.autograd.Function``)
and ``grad_reverse(x, lambd)``; q2 ``coral_loss(f_s, f_t)``; q3 one DANN step
``dann_step(feature_extractor, classifier, domain_classifier, optimizer, x_s, y_s, x_t, lambd)``.

Every check runs on small fixed tensors and models in well under a second
and compares behaviour with properties and with expected outputs stored in
``_expected/domain_adaptation.json`` (computed once by
scripts/make_check_expected.py), with tolerances, so the verdict is the same
on CPU and GPU.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from . import _expected
from ._core import NotAttempted, Question, QuestionSet, Wrong
from ._core import keep_rng as _keep_rng
from ._core import require_scalar_tensor as _require_scalar_tensor

_TOPIC = "domain_adaptation"



def _close(a, b, tol: float = 1e-5) -> bool:
    return torch.allclose(torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64),
                          atol=tol, rtol=tol)


# ---------------------------------------------------------------- q1: gradient reversal

@_keep_rng
def _eval_grl(GradientReverse, grad_reverse) -> None:
    if not (isinstance(GradientReverse, type) and issubclass(GradientReverse, torch.autograd.Function)):
        raise Wrong("`GradientReverse` must be a class that subclasses `torch.autograd.Function`, with static "
                    "`forward(ctx, x, lambd)` and `backward(ctx, grad_output)` methods. A custom Function is "
                    "how you give an operation a backward pass that is not the derivative of its forward.")
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(6, 4, generator=g)
    upstream = torch.randn(6, 4, generator=g)
    for lambd in (0.3, 2.5, 1.0):
        x = x0.clone().requires_grad_(True)
        y = grad_reverse(x, lambd)
        if not isinstance(y, torch.Tensor):
            raise Wrong("`grad_reverse` must return a tensor: `return GradientReverse.apply(x, lambd)`.")
        if y.shape != x.shape:
            raise Wrong(f"`grad_reverse` changed the shape from {tuple(x.shape)} to {tuple(y.shape)}; "
                        "the forward pass is the identity.")
        if not _close(y.detach(), x0):
            if _close(y.detach(), -x0):
                what = "negates its input in the forward pass"
            elif _close(y.detach(), lambd * x0) or _close(y.detach(), -lambd * x0):
                what = "scales its input by lambda in the forward pass"
            else:
                what = "changes its input in the forward pass"
            raise Wrong(f"the layer {what}. The gradient reversal layer is the *identity* going forward: "
                        "the domain classifier must see the real features. Only the backward pass is "
                        "changed (multiplied by -lambda).")
        if y.grad_fn is None:
            raise Wrong("the output has no `grad_fn`: no gradient can flow back through the layer. Use "
                        "`GradientReverse.apply(x, lambd)` and do not detach or wrap it in `torch.no_grad()`.")
        y.backward(upstream)
        got = x.grad
        if got is None:
            raise Wrong("no gradient reached the input. `backward` must return the gradient with respect to "
                        "`x` (and `None` for `lambd`).")
        want = -lambd * upstream
        if _close(got, want):
            continue
        if _close(got, upstream):
            raise Wrong("the gradient passes through unchanged: your layer does not reverse it. In `backward`, "
                        "return the incoming gradient multiplied by -lambda.")
        if _close(got, lambd * upstream):
            raise Wrong("the gradient is scaled by lambda but not negated. Without the minus sign the feature "
                        "extractor *helps* the domain classifier instead of fooling it.")
        if _close(got, -upstream):
            raise Wrong(f"with lambda={lambd} the gradient is only negated, not scaled by lambda. The DANN "
                        "schedule relies on lambda to ramp the adversarial signal up from 0; multiply by -lambda.")
        if _close(got, -(lambd ** 2) * upstream) or _close(got, -upstream / lambd):
            raise Wrong(f"with lambda={lambd} the gradient is scaled by the wrong power of lambda; the backward "
                        "pass is exactly -lambda times the incoming gradient.")
        raise Wrong(f"with lambda={lambd} the gradient reaching the input is not -lambda times the incoming "
                    "gradient. `backward(ctx, grad_output)` should return `-lambd * grad_output` "
                    "(and `None` for lambda, which needs no gradient).")
    # Two layers with different lambdas in one graph: lambda must live on ctx, not on the class.
    x = x0.clone().requires_grad_(True)
    (grad_reverse(x, 0.5) * upstream + grad_reverse(x, 2.0) * upstream).sum().backward()
    if not _close(x.grad, -2.5 * upstream):
        raise Wrong("two reversal layers with different lambdas (0.5 and 2.0) in one graph did not each use "
                    "their own lambda. Save lambda on `ctx` in `forward` (e.g. `ctx.lambd = lambd`), not on "
                    "the class or in a global, which the second call overwrites.")
    x = x0.clone().requires_grad_(True)
    grad_reverse(x, 0.0).backward(upstream)
    if x.grad is None or not _close(x.grad, torch.zeros_like(upstream)):
        raise Wrong("with lambda=0 the layer must pass no gradient at all (that is how DANN starts).")
    # The layer must work inside a network: gradients reach the parameters before it.
    lin = nn.Linear(4, 3)
    lin2 = copy.deepcopy(lin)
    grad_reverse(lin(x0), 0.7).sum().backward()
    lin2(x0).sum().backward()
    if lin.weight.grad is None or not _close(lin.weight.grad, -0.7 * lin2.weight.grad):
        raise Wrong("inside a network, the parameters before the layer did not receive -lambda times their "
                    "usual gradient.")


# ---------------------------------------------------------------- q2: CORAL

def _coral_inputs():
    g = torch.Generator().manual_seed(5)
    d = 6
    f_s = torch.randn(30, d, generator=g) @ torch.randn(d, d, generator=g) * 0.7 + 1.5
    f_t = torch.randn(20, d, generator=g) * torch.linspace(0.5, 2.0, d) - 0.8
    return f_s, f_t


@_keep_rng
def _eval_coral(coral_loss) -> None:
    f_s0, f_t0 = _coral_inputs()
    _expected.verify(_TOPIC, "coral_inputs", f_s0, f_t0)
    n_s, d = f_s0.shape
    n_t = len(f_t0)
    f_s, f_t = f_s0.clone().requires_grad_(True), f_t0.clone().requires_grad_(True)
    out = coral_loss(f_s, f_t)
    _require_scalar_tensor(out, "coral_loss",
                           "so that it can be added to the classification loss and backpropagated",
                           "sum the squared differences of the two covariance matrices")
    if not torch.equal(f_s.detach(), f_s0) or not torch.equal(f_t.detach(), f_t0):
        raise Wrong("`coral_loss` changed the features passed in (an in-place operation such as `-=`); "
                    "centre a copy instead.")
    value = out.detach().double().reshape(())
    ref = _expected.value(_TOPIC, "coral/ref")
    if not _close(value, ref, 1e-4):
        diff = None
        candidates = [
            ("no_norm", "the 1/(4d²) normalisation is missing. Without it the loss grows with the square of "
                        "the feature dimension, so the same trade-off weight means something different for "
                        "every network; divide by 4·d² where d is the number of feature columns."),
            ("d2", "you divided by d² but not by 4·d² (note that `.mean()` over the d×d entries "
                   "divides by d² only). The CORAL loss is ‖C_s − C_t‖²_F / (4d²)."),
            ("4d", "you divided by 4·d instead of 4·d²: d is the number of feature columns, "
                   "and the normaliser is its square."),
            ("sqrt", "the Frobenius norm must be *squared*: sum the squared "
                     "differences without taking a square root."),
            ("uncentred", "your covariances are not centred: subtract each domain's feature mean (over the batch) "
                          "before forming Dᵀ D. Uncentred second moments also compare the *means*, and CORAL is "
                          "defined on covariances."),
            ("uncentred_n1", "your covariances are not centred: subtract each domain's feature mean before "
                             "forming Dᵀ D."),
            ("biased", "your covariances divide by n; the CORAL paper (and `torch.cov`) use the unbiased 1/(n − 1)."),
        ]
        for name, message in candidates:
            if _close(value, _expected.value(_TOPIC, f"coral/{name}"), 1e-4):
                diff = message
                break
        raise Wrong(diff or f"on fixed features (n_s={n_s}, n_t={n_t}, d={d}) your loss is {float(value):.5g}, "
                            f"expected {float(ref):.5g}. Compute each domain's centred covariance "
                            "(d × d, divided by n − 1), then ‖C_s − C_t‖²_F / (4d²).")
    if out.grad_fn is None:
        raise Wrong("the loss has no autograd graph (numpy, `.item()`, `float()` or `.detach()` somewhere), so "
                    "no gradient reaches the features. CORAL only adapts a network if its gradient flows back "
                    "into the feature extractor.")
    out.reshape(()).backward()
    if f_s.grad is None or f_t.grad is None:
        raise Wrong("the loss does not pass gradients back to the features (numpy, `.item()` or `.detach()` "
                    "somewhere). CORAL only adapts a network if its gradient reaches the feature extractor.")
    # shift invariance: a translated copy has the same covariance
    shifted = coral_loss(f_s0, f_s0 + 3.0)
    if float(shifted) > 1e-6 * max(1.0, float(ref)):
        raise Wrong("features shifted by a constant should give a CORAL loss of 0 (same covariance), but yours "
                    "is not 0: centre each domain by its own mean.")
    # the same sizes, a different pair: no hidden dependence on the first inputs
    g = torch.Generator().manual_seed(11)
    a, b = torch.randn(16, 3, generator=g), torch.randn(16, 3, generator=g) * 2
    _expected.verify(_TOPIC, "coral_second_pair", a, b)
    second = coral_loss(a, b).detach().double().reshape(())
    if not _close(second, _expected.value(_TOPIC, "coral/second_pair"), 1e-4):
        raise Wrong("on a second pair of inputs (16 × 3 features each) the value is wrong; check that "
                    "d is read from the features' shape, not hard-coded.")


# ---------------------------------------------------------------- q3: one DANN step

def _probe_models(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    fe = nn.Sequential(nn.Linear(5, 8), nn.Tanh())
    clf = nn.Linear(8, 3)
    disc = nn.Sequential(nn.Linear(8, 6), nn.Tanh(), nn.Linear(6, 1))
    with torch.no_grad():
        for m in (fe, clf, disc):
            for p in m.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.6)
    return fe, clf, disc


def _probe_batch(seed: int = 1, n: int = 8):
    g = torch.Generator().manual_seed(seed)
    x_s = torch.randn(n, 5, generator=g) + 0.5
    y_s = torch.randint(0, 3, (n,), generator=g)
    x_t = torch.randn(n, 5, generator=g) * 1.5 - 0.5
    return x_s, y_s, x_t


def _stale_grads(mods, seed: int = 7):
    g = torch.Generator().manual_seed(seed)
    for m in mods:
        for p in m.parameters():
            p.grad = torch.randn(p.shape, generator=g)


_STEP_MISTAKES = {
    "no_grl": "the domain classifier's loss reaches the feature extractor without being reversed: the features "
              "are trained to make the domains *easier* to tell apart. Pass the features through your "
              "`grad_reverse(·, lambd)` before the domain classifier.",
    "detached": "the feature extractor gets no gradient from the domain loss (the features were detached). "
                "DANN's point is that the features receive the *reversed* gradient: use `grad_reverse`, "
                "not `.detach()`.",
    "lambda_in_loss": "lambda multiplies the domain loss instead of sitting inside the gradient reversal "
                      "layer. That also shrinks the domain classifier's own training signal. Use "
                      "`grad_reverse(features, lambd)` and add the domain loss with weight 1.",
    "grl_no_lambda": "lambda is not used: the reversal layer must be `grad_reverse(features, lambd)` with the "
                     "scheduled lambda, so that the adversarial signal ramps up from 0.",
    "negated_loss": "you subtracted the domain loss instead of reversing its gradient. That trains the domain "
                    "classifier to *fail* as well; with a reversal layer the classifier still learns to "
                    "separate the domains while only the features are pushed to confuse it.",
    "sum_domain": "the domain loss is twice the expected value: take the mean binary cross-entropy over all "
                  "source and target predictions (equivalently, average the two domains' means), not their sum.",
    "no_zero_grad": "the gradients left over from a previous step were not cleared: call "
                    "`optimizer.zero_grad()` before `backward()`.",
}


def _params(models):
    return [p.detach().clone() for m in models for p in m.parameters()]


@_keep_rng
def _eval_step(dann_step) -> None:
    lambd = 0.5
    x_s, y_s, x_t = _probe_batch()
    base = _probe_models()

    def fresh():
        models = tuple(copy.deepcopy(m) for m in base)
        opt = torch.optim.SGD([p for m in models for p in m.parameters()], lr=0.5)
        _stale_grads(models)
        return models, opt

    models, opt = fresh()
    _expected.verify(_TOPIC, "dann_batch", x_s, y_s, x_t)
    _expected.verify(_TOPIC, "dann_models", *_params(models))
    before = _params(models)
    out = dann_step(*models, opt, x_s.clone(), y_s.clone(), x_t.clone(), lambd)
    after = _params(models)
    if all(torch.equal(a, b) for a, b in zip(before, after)):
        raise Wrong("no parameter changed: the step must end with `optimizer.step()` after `backward()`.")

    def matches(variant: str) -> bool:
        want = _expected.load(_TOPIC)["values"][f"dann/{variant}/params"]
        return all(_close(a, b, 1e-4) for a, b in zip(after, want))

    # source = 1, target = 0 is the course's convention; the other way round is equally correct DANN
    accepted = next((v for v in ("correct", "labels_flipped") if matches(v)), None)
    if accepted is None:
        for variant, message in _STEP_MISTAKES.items():
            if matches(variant):
                raise Wrong(message)
        ref_after = _expected.load(_TOPIC)["values"]["dann/correct/params"]
        names = ["feature extractor"] * len(list(base[0].parameters())) \
            + ["classifier"] * len(list(base[1].parameters())) \
            + ["domain classifier"] * len(list(base[2].parameters()))
        wrong = sorted({n for n, a, b in zip(names, after, ref_after) if not _close(a, b, 1e-4)})
        raise Wrong(f"after one SGD step the parameters of the {' and '.join(wrong)} differ from the model "
                    "answer. Check, in order: features of source and target from the feature extractor; "
                    "cross-entropy of the classifier on the *source* features and labels; the domain "
                    "classifier on `grad_reverse(features, lambd)` with binary cross-entropy on its logits "
                    "(source = 1 and target = 0, or the other way round; mean over all 2B predictions); "
                    "total = classification + domain "
                    "loss; `zero_grad()`, `backward()`, `step()`.")
    if not isinstance(out, dict) or not {"cls_loss", "domain_loss"} <= set(out):
        raise Wrong("the update is right, but `dann_step` must return a dict with the keys `cls_loss` and "
                    "`domain_loss` (Python floats, e.g. `loss.item()`), which the training loop logs.")
    for key in ("cls_loss", "domain_loss"):
        want = float(_expected.value(_TOPIC, f"dann/{accepted}/{key}"))
        got = out[key]
        if isinstance(got, torch.Tensor):
            if got.requires_grad:
                raise Wrong(f"`{key}` is returned as a tensor attached to the graph; return `.item()` so "
                            "that logging does not keep every step's graph in memory.")
            got = float(got)
        if not isinstance(got, (int, float)) or abs(float(got) - want) > 1e-4 * max(1.0, abs(want)):
            raise Wrong(f"the update is right, but the returned `{key}` is {got!r}; expected {want:.5f} "
                        "(the loss computed *before* the update, as a float).")


# ---------------------------------------------------------------- questions

q1 = Question(
    "q1", "the gradient reversal layer", ["GradientReverse", "grad_reverse"], _eval_grl,
    twins=("tlcourse.methods.adapt._ReverseGrad", "tlcourse.methods.adapt.GradientReverseLayer"),
    hints=["Going forward the layer changes nothing. Going backward it multiplies whatever gradient "
           "arrives by minus lambda.",
           "Subclass `torch.autograd.Function` and write two static methods. `forward` receives a context "
           "object and the inputs; remember lambda on the context. Return the input unchanged (as a new "
           "tensor view, e.g. `view_as`).",
           "`backward` returns one gradient per input of `forward`: for `x`, the incoming gradient times "
           "minus lambda; for lambda itself, `None`. `grad_reverse` just calls the Function's `apply`."],
    why="one `backward()` now trains the domain classifier to separate the domains and, through the "
        "reversed gradient, the feature extractor to make them inseparable: the minimax game of DANN "
        "without alternating optimisers.")

q2 = Question(
    "q2", "the CORAL loss", ["coral_loss"], _eval_coral,
    twins=("tlcourse.methods.adapt.CorrelationAlignmentLoss",),
    hints=["CORAL compares the two domains' feature *covariances* (d × d matrices), not the features "
           "themselves, so the two batches may have different sizes.",
           "For each domain, subtract the batch mean of every feature column, then form the d × d "
           "matrix of products and divide by (n − 1).",
           "Take the squared Frobenius distance between the two matrices (the sum of squared entries of "
           "their difference) and divide by 4·d², d being the number of columns."],
    why="matching second-order statistics is a differentiable, hyperparameter-light way to align "
        "feature distributions: the 1/(4d²) keeps its scale independent of the width of the features.")

q3 = Question(
    "q3", "one DANN training step", ["dann_step"], _eval_step,
    twins=("tlcourse.methods.adapt.DomainAdversarialLoss",
           "tlcourse.lessons.domain_adaptation._default_dann_step",
           "tlcourse.methods.adapt._ReverseGrad",
           "tlcourse.methods.adapt.GradientReverseLayer"),
    hints=["One step has two losses: classification on the labelled source batch, and domain "
           "classification on source and target features together. Both go into one `backward()`.",
           "The domain classifier sees the features through your gradient reversal layer with the given "
           "lambda. Its targets are 1 for source and 0 for target; it outputs one logit per example, so "
           "use binary cross-entropy on logits (mind the (N, 1) shape).",
           "Order: compute the features, then the two losses; clear the old gradients, backpropagate the sum "
           "of the two losses once, update the weights, and return both losses as plain floats in a dict."],
    why="the whole of DANN is this step repeated with lambda rising from 0 to 1: the label classifier "
        "and the domain classifier are trained as usual, and the reversal layer turns the domain "
        "classifier's gradient into an adversarial signal for the features.")

questions = QuestionSet(q1, q2, q3)
check, hint, grade = questions.check, questions.hint, questions.grade

__all__ = ["q1", "q2", "q3", "questions", "check", "hint", "grade", "NotAttempted"]
