"""Checks for notebook 04, knowledge distillation.

q1 ``kd_loss(student_logits, teacher_logits, labels, T, alpha)``;
q2 ``distill_step(student, optimizer, images, labels, teacher_logits, loss_fn)``.

q1 compares the answer with stored expected losses (and one stored gradient)
on fixed random logits at several temperatures and alphas; when it disagrees,
the answer is compared with the stored value of each common mistake in turn so
the message can name it. q2 runs one step of the answer on a tiny model with
BatchNorm and plain SGD, starting from stale gradients, and compares the
parameters afterwards with the stored result of one correct step (and of each
common wrong one). The numbers come from scripts/make_check_expected.py.
"""
from __future__ import annotations

import numbers

import torch
import torch.nn.functional as F
from torch import nn

from . import _expected
from ._core import Question, QuestionSet, Wrong, require_scalar_tensor

_TOPIC = "distillation"

# (T, alpha) pairs: T=1 hides T² mistakes and alpha=0/1 isolate each term, so several are needed.
_CONFIGS = ((1.0, 0.5), (2.0, 0.7), (4.0, 0.9), (4.0, 0.0), (4.0, 1.0), (8.0, 0.5), (3.0, 0.3))


# Each plausible wrong loss, by the name under which its stored value is kept, and what to tell the student.
_MISTAKES = {
    "no_T2": "the distillation term is missing its T² factor. Softening the logits by T shrinks the gradients of the "
             "soft term by about 1/T², so without T² the soft targets' influence fades as T grows and alpha no longer"
             " means the same thing at different temperatures. Multiply the KL term by T * T.",
    "T_not_T2": "the distillation term is multiplied by T, not T². The gradients of the softened term shrink like "
                "1/T², so the factor that restores their scale is T * T.",
    "divided_T2": "the distillation term is divided by T² instead of multiplied by it: softening already shrinks its "
                  "gradients by 1/T², so the correction multiplies by T * T.",
    "reversed": "the KL arguments are reversed: you computed KL(student ‖ teacher). The teacher's softened "
                "distribution is the *target*: KL(teacher ‖ student) = Σ p_teacher · (log p_teacher − log p_student)."
                " With `F.kl_div` the first argument is the student's log-probabilities and the second the teacher's "
                "probabilities.",
    "softmax_input": "`F.kl_div` got the student's softmax where it needs the log-softmax: its first argument must be"
                     " log-probabilities (`F.log_softmax(student_logits / T, dim=1)`). Passing probabilities computes"
                     " a quantity that is not a divergence at all (it can even be negative).",
    "teacher_no_T": "the temperature is not applied to the teacher: both distributions must be softened with the same"
                    " T, softmax(teacher_logits / T). At T=1 the teacher's targets are nearly one-hot and carry no "
                    "dark knowledge.",
    "student_no_T": "the temperature is not applied to the student: divide the student's logits by T too, so both "
                    "distributions are compared at the same temperature.",
    "reduction_mean": "the KL term is averaged over batch *and* classes (`reduction='mean'`, the default), which "
                      "divides it by the number of classes. KL is a sum over classes; average only over the batch: "
                      "`reduction='batchmean'`.",
    "reduction_sum": "the KL term is summed over the batch (`reduction='sum'`), so it grows with the batch size while"
                     " the cross-entropy is a mean. Use `reduction='batchmean'`.",
    "alpha_swapped": "alpha weights the wrong term. In this notebook alpha is the weight of the *distillation* term "
                     "and (1 − alpha) the weight of the hard-label cross-entropy.",
    "no_hard": "the hard-label cross-entropy is missing: add (1 − alpha) · CE(student_logits, labels).",
    "no_alpha": "the two terms are added without the alpha mix: alpha · soft + (1 − alpha) · hard.",
    "ce_softened": "the hard-label cross-entropy uses the softened logits. The hard term is the ordinary loss at T = "
                   "1: `F.cross_entropy(student_logits, labels)`.",
}


def _logit_probe(seed: int, n: int = 12, c: int = 10):
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(n, c, generator=g) * 2.0
    t = torch.randn(n, c, generator=g) * 4.0  # a confident teacher: softening visibly matters
    y = torch.randint(0, c, (n,), generator=g)
    return s, t, y


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return bool(torch.allclose(a.detach().double(), b.detach().double(), rtol=1e-4, atol=1e-5))


def _key(T: float, a: float, seed: int) -> str:
    return f"{T:g}/{a:g}/{seed}"


def _stored(name: str, T: float, a: float, seed: int) -> torch.Tensor:
    return _expected.value(_TOPIC, f"kd/{name}/{_key(T, a, seed)}")


def _verify_probes() -> None:
    for seed in (0, 1, 2):
        _expected.verify(_TOPIC, f"logit_probe/{seed}", *_logit_probe(seed))


def _eval_kd_loss(kd_loss) -> None:
    _verify_probes()
    s, t, y = _logit_probe(0)
    s_in = s.clone().requires_grad_(True)
    out = kd_loss(s_in, t.clone(), y.clone(), 4.0, 0.9)
    require_scalar_tensor(out, "kd_loss", "so that `loss.backward()` can reach the student",
                          "the batch's mean loss", differentiable="the student's logits")
    got_all, bad = {}, []
    for T, a in _CONFIGS:
        for seed in (0, 1):
            s, t, y = _logit_probe(seed)
            got = kd_loss(s.clone(), t.clone(), y.clone(), T, a)
            if not torch.is_tensor(got) or got.numel() != 1:
                raise Wrong("`kd_loss` must return a scalar tensor for every T and alpha.")
            got_all[T, a, seed] = got.reshape(()).detach()
            ref = _stored("ref", T, a, seed)
            if not _close(got_all[T, a, seed], ref):
                bad.append((T, a, seed, got_all[T, a, seed], ref))
    if bad:
        _diagnose(got_all, bad)
    # gradients: the same as the stored ones of the correct loss
    s, t, y = _logit_probe(2)
    s1 = s.clone().requires_grad_(True)
    kd_loss(s1, t.clone(), y.clone(), 4.0, 0.7).backward()
    if s1.grad is None or not _close(s1.grad, _expected.value(_TOPIC, "kd_grad")):
        raise Wrong("the loss value is right but its gradient with respect to the student's logits is not; "
                    "compute everything with differentiable torch operations.")


def _diagnose(got_all, bad) -> None:
    for name, msg in _MISTAKES.items():
        if all(_close(got, _stored(name, T, a, seed)) for (T, a, seed), got in got_all.items()):
            raise Wrong(msg)
    T, a, seed, got, ref = bad[0]
    at = {(T_, a_) for T_, a_, *_ in bad}
    if (4.0, 0.0) in at:
        raise Wrong(f"with alpha = 0 the loss must be plain cross-entropy on the hard labels at T = 1, "
                    f"but yours differs (T={T:g}, alpha={a:g}: got {float(got):.4f}, expected {float(ref):.4f}).")
    if (4.0, 1.0) in at:
        raise Wrong(f"with alpha = 1 the loss must be the distillation term alone, T² · KL(teacher_T ‖ student_T) "
                    f"averaged over the batch; yours differs (T=4, alpha=1: see the docstring's formula). "
                    f"First mismatch: T={T:g}, alpha={a:g}: got {float(got):.4f}, expected {float(ref):.4f}.")
    raise Wrong(f"the loss differs from the formula in the docstring, e.g. at T={T:g}, alpha={a:g}: got "
                f"{float(got):.4f}, expected {float(ref):.4f}. Each term is right on its own, so check how they are "
                "mixed: alpha · T² · KL + (1 − alpha) · CE.")


# ---------------------------------------------------------------- q2

def _probe_student(seed: int = 0) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    net = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 5))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        net[1].running_mean.copy_(torch.randn(8, generator=g))
        net[1].running_var.copy_(torch.rand(8, generator=g) + 2.0)
    return net


def _step_batch(seed: int = 5):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(10, 6, generator=g)
    y = torch.randint(0, 5, (10,), generator=g)
    t = torch.randn(10, 5, generator=g) * 3
    return x, y, t


def _stale_grads(net: nn.Module) -> None:
    g = torch.Generator().manual_seed(11)
    for p in net.parameters():
        p.grad = torch.randn(p.shape, generator=g)


def _params(net: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in net.parameters()]


def _given_loss(student_logits, teacher_logits, labels):
    """The loss the check hands to ``distill_step``: half hard-label CE, half logit matching (not the KD loss)."""
    return 0.5 * F.cross_entropy(student_logits, labels) + 0.5 * F.mse_loss(student_logits, teacher_logits)


def _stored_params(variant: str) -> list[torch.Tensor]:
    """The student's parameters after one SGD step done as ``variant`` ('ok', 'no_zero', 'eval'), stored."""
    return [torch.tensor(p, dtype=torch.float32) for p in _expected.load(_TOPIC)["values"][f"step/{variant}"]]


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.allclose(p, q, rtol=1e-4, atol=1e-6) for p, q in zip(a, b))


def _eval_step(distill_step) -> None:
    x, y, t = _step_batch()
    _expected.verify(_TOPIC, "step_batch", x, y, t)
    _expected.verify(_TOPIC, "probe_student", *_probe_student().parameters())
    calls = []

    def loss_fn(student_logits, teacher_logits, labels):
        calls.append(1)
        if not isinstance(student_logits, torch.Tensor) or not student_logits.requires_grad:
            raise Wrong("the first argument you passed to `loss_fn` does not come from the student with a graph: "
                        "call `loss_fn(student(images), teacher_logits, labels)`, student logits first, and do not "
                        "run the student under `torch.no_grad()`.")
        if teacher_logits is not None and isinstance(teacher_logits, torch.Tensor) and teacher_logits.requires_grad:
            raise Wrong("the second argument to `loss_fn` carries a graph; it should be the cached teacher logits "
                        "you were given, unchanged.")
        if not (isinstance(teacher_logits, torch.Tensor) and teacher_logits.shape == t.shape
                and torch.equal(teacher_logits, t)):
            raise Wrong("`loss_fn` must get the teacher logits exactly as they were passed in (the raw cached "
                        "logits; the loss applies the temperature and softmax itself), as its second argument.")
        if not (isinstance(labels, torch.Tensor) and torch.equal(labels, y)):
            raise Wrong("`loss_fn` must get the integer labels as its third argument, unchanged.")
        return _given_loss(student_logits, teacher_logits, labels)

    net = _probe_student()
    net.eval()  # as the library leaves it after evaluating; the step must switch to training mode
    _stale_grads(net)
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    expected_loss = float(_expected.value(_TOPIC, "step/loss"))
    start = _params(net)
    out = distill_step(net, opt, x.clone(), y.clone(), t.clone(), loss_fn)
    if not calls:
        raise Wrong("`distill_step` never called `loss_fn`; compute the loss with the function you were given.")
    if len(calls) > 1:
        raise Wrong(f"`distill_step` called `loss_fn` {len(calls)} times; one forward pass and one loss per step.")
    after = _params(net)
    if _same(after, start):
        raise Wrong("the student's parameters did not change. A step is: `optimizer.zero_grad()`, forward, loss, "
                    "`loss.backward()`, `optimizer.step()`, in that order (zeroing between backward and step "
                    "throws the gradients away).")
    if not _same(after, _stored_params("ok")):
        if _same(after, _stored_params("no_zero")):
            raise Wrong("gradients from the previous step were not cleared: PyTorch *adds* new gradients to "
                        "`.grad`, so call `optimizer.zero_grad()` before `loss.backward()` in every step.")
        if _same(after, _stored_params("eval")):
            raise Wrong("the student was trained in evaluation mode: BatchNorm used its running statistics and "
                        "did not update them. Call `student.train()` at the start of the step (the library "
                        "evaluates between epochs and leaves the model in eval mode).")
        raise Wrong("after your step the parameters differ from one correct step of the given optimizer "
                    "(zero_grad, forward in training mode, loss, backward, step). Do not change the learning "
                    "rate, clip, or take extra steps here.")
    if isinstance(out, torch.Tensor):
        raise Wrong("return the loss as a Python float (`loss.item()`), not a tensor: a tensor keeps the whole "
                    "graph of the step alive, and the training loop sums these numbers over the epoch.")
    if not isinstance(out, numbers.Real):
        raise Wrong(f"`distill_step` returned {type(out).__name__}; return the batch's loss as a float.")
    if abs(float(out) - expected_loss) > 1e-4 * max(1.0, abs(expected_loss)):
        raise Wrong(f"the returned loss is {float(out):.4f}, but the loss of this batch before the step is "
                    f"{expected_loss:.4f}: return the value of the loss you backpropagated.")


q1 = Question(
    "q1", "the knowledge-distillation loss", ["kd_loss"], _eval_kd_loss,
    hints=["Two distributions are compared at the same temperature: divide both the student's and the teacher's "
           "logits by T before the softmax. The teacher's softened distribution is the target.",
           "`F.kl_div` expects the student's *log*-probabilities first and the teacher's probabilities second; "
           "its reduction must average over the batch only ('batchmean'), because KL is a sum over classes.",
           "Multiply the KL term by T squared, then mix: alpha times the distillation term plus (1 − alpha) times "
           "the ordinary cross-entropy of the unsoftened student logits with the hard labels."],
    why="the T² factor keeps the soft term's gradients on the same scale at any temperature, so alpha means the "
        "same thing whether T is 2 or 8, and KL(teacher ‖ student) pulls the student towards everything the "
        "teacher believes, including which wrong classes are almost right.")

q2 = Question(
    "q2", "the student's training step", ["distill_step"], _eval_step,
    twins=("tlcourse.lessons.distillation._hint_step",),
    hints=["The step trains the student only; the teacher's logits are already cached and are just a target.",
           "Put the student in training mode, clear old gradients, run the student on the images, and give the "
           "student's logits, the teacher's logits and the labels to `loss_fn`, in that order.",
           "Backpropagate, step the optimizer, and return the loss as a plain Python number."],
    why="with the teacher's logits cached, a distillation step costs exactly as much as an ordinary training "
        "step of the small student: the big model is never run again.")

questions = QuestionSet(q1, q2)
check, hint, grade = questions.check, questions.hint, questions.grade
