"""Checks for notebook 06, zero-shot learning.

q1 ``zero_shot_predict(embeddings, label_embeddings)``: cosine-similarity
zero-shot prediction; q2 ``select_seen(features, labels, seen_classes)``
with ``projection_step(projection, optimizer, features, targets,
class_embeddings, temperature)``: the DeViSE-style training step on seen
classes only; q3 ``gzsl_scores(y_true, y_pred, seen_classes,
unseen_classes)``: generalised zero-shot accuracy and the harmonic mean;
q4 ``dap_predict(attribute_probs, class_attributes)``: attribute-to-class
inference (DAP). Every check runs on small fixed tensors in well under a
second and gives the same verdict on CPU and GPU. Expected outputs are stored
in ``_expected/zero_shot.json`` (computed once by scripts/make_check_expected.py).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import _expected
from ._core import Question, QuestionSet, Wrong

_TOPIC = "zero_shot"


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _as_long_1d(out, n: int, what: str, rows_name: str) -> torch.Tensor:
    """The student's predictions as a LongTensor (n,), or a Wrong that says what came back."""
    if out is None:
        raise Wrong(f"`{what}` returned None; return the predicted indices (end with `return ...`).")
    try:
        t = torch.as_tensor(np.asarray(out.detach().cpu() if isinstance(out, torch.Tensor) else out))
    except Exception:
        raise Wrong(f"`{what}` must return a tensor (or array) of predicted indices, got {type(out).__name__}.") from None
    if t.ndim == 2:
        raise Wrong(f"`{what}` returned a 2-D array of shape {tuple(t.shape)}: those are scores. Return one "
                    f"predicted index per input: the argmax over the {rows_name}.")
    if t.ndim != 1 or t.shape[0] != n:
        raise Wrong(f"`{what}` returned shape {tuple(t.shape)} for {n} inputs: expected ({n},), one prediction "
                    f"per input. If you got one value per {rows_name[:-1]} instead, the argmax ran over the wrong "
                    "axis: it must run over the candidates (axis 1), not over the inputs (axis 0).")
    if t.is_floating_point():
        if not torch.equal(t, t.round()):
            raise Wrong(f"`{what}` returned fractional values; return integer indices (`argmax`), not scores.")
    return t.long()


# ---------------------------------------------------------------- q1: cosine zero-shot prediction

def _stored_pred(key: str) -> torch.Tensor:
    return _expected.value(_TOPIC, key).long()


def _q1_cases():
    g = _gen(11)
    # 1. label vectors of very different lengths: the dot product favours the long one, cosine does not
    k = torch.randn(4, 8, generator=g)
    k = k * torch.tensor([[0.2], [5.0], [1.0], [0.5]])
    q = torch.randn(9, 8, generator=g) * 3.0 + 0.5
    # 2. more candidates than inputs, and inputs scaled by different amounts
    k2 = torch.randn(7, 5, generator=g) * torch.linspace(0.3, 4.0, 7).unsqueeze(1)
    q2 = torch.randn(3, 5, generator=g) * torch.tensor([[0.1], [10.0], [1.0]])
    return [(q, k), (q2, k2)]


def _eval_zero_shot_predict(zero_shot_predict) -> None:
    for case, (q, k) in enumerate(_q1_cases()):
        _expected.verify(_TOPIC, f"q1_case/{case}", q, k)
        q_in, k_in = q.clone(), k.clone()
        out = zero_shot_predict(q_in, k_in)
        if not (torch.equal(q_in, q) and torch.equal(k_in, k)):
            raise Wrong("`zero_shot_predict` changed its inputs in place (e.g. `x /= x.norm(...)`); "
                        "normalise into new tensors so the caller's embeddings stay as they were.")
        pred = _as_long_1d(out, len(q), "zero_shot_predict", "labels")
        ref = _stored_pred(f"cosine_predict/{case}")
        if torch.equal(pred, ref):
            continue
        dot = (q @ k.T).argmax(1)
        if torch.equal(pred, dot) or torch.equal(pred, (F.normalize(q, dim=1) @ k.T).argmax(1)):
            raise Wrong("your predictions follow the raw dot product: the label embeddings were not "
                        "normalised. A dot product is a cosine similarity only between unit vectors; "
                        "otherwise a label whose embedding happens to be long wins for every input. "
                        "Divide each label embedding (and each input) by its L2 norm.")
        if torch.equal(pred, (F.normalize(q, dim=0) @ F.normalize(k, dim=0).T).argmax(1)) or \
                torch.equal(pred, (q @ F.normalize(k, dim=0).T).argmax(1)):
            raise Wrong("the vectors were normalised along the wrong axis: each *row* (one embedding) "
                        "must have length 1, so take the norm over the feature dimension (dim=1).")
        if torch.equal(pred, (-((q.unsqueeze(1) - k.unsqueeze(0)) ** 2).sum(-1)).argmax(1)) or \
                torch.equal(pred, torch.cdist(q, k).argmax(1)):
            raise Wrong("your predictions follow Euclidean distance between unnormalised vectors, not "
                        "cosine similarity: normalise both sides to unit length first.")
        if torch.equal(pred, ref.flip(0)) or torch.equal(pred, (q @ k.T).argmin(1)):
            raise Wrong("the predictions do not match cosine similarity; check that you take the "
                        "argmax (most similar), over the label axis.")
        raise Wrong(f"on a fixed test (case {case + 1}) your predictions {pred.tolist()} differ from the "
                    f"cosine-similarity argmax {ref.tolist()}. Normalise both the inputs and the label "
                    "embeddings to unit length, take all pairwise dot products, and pick, for every "
                    "input, the most similar label.")


# ---------------------------------------------------------------- q2: seen-only data and the projection step

def _eval_select_seen(select_seen) -> None:
    g = _gen(21)
    labels = torch.tensor([0, 3, 5, 1, 2, 7, 5, 6, 4, 3, 0, 2, 9, 8, 1])
    feats = torch.randn(len(labels), 4, generator=g)
    seen = [0, 2, 3, 6, 8]  # not a prefix: `labels < len(seen)` is wrong
    result = select_seen(feats.clone(), labels.clone(), list(seen))
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise Wrong("`select_seen` must return a pair `(features, labels)`.")
    x, y = result
    x, y = torch.as_tensor(x), torch.as_tensor(y)
    keep = torch.isin(labels, torch.tensor(seen))
    if len(y) != len(x):
        raise Wrong(f"`select_seen` returned {len(x)} feature rows but {len(y)} labels; filter both with the same mask.")
    rows_match = x.shape == (int(keep.sum()), 4) and torch.allclose(x.float(), feats[keep])
    if rows_match and not torch.equal(y.long(), labels[keep]):
        raise Wrong("the right images were kept, but keep their original labels (0-9); the training loop "
                    "maps them to rows of the seen-class embedding table itself.")
    leaked = sorted(set(int(c) for c in y.flatten().tolist()) - set(seen)) if y.numel() else []
    if leaked or len(y) > int(keep.sum()):
        raise Wrong(f"`select_seen` kept images of classes {leaked or 'outside seen_classes'}, which are "
                    "not seen classes. That is leakage: in zero-shot learning the unseen classes must have "
                    "no training images at all, otherwise the 'zero-shot' accuracy measures ordinary "
                    "supervised learning. Keep only the rows whose label is in `seen_classes`.")
    if len(y) < int(keep.sum()):
        raise Wrong(f"`select_seen` kept {len(y)} of the {int(keep.sum())} seen-class images: it dropped "
                    "some seen classes. Test membership in `seen_classes` (e.g. `torch.isin`), not a "
                    "comparison such as `labels < len(seen_classes)`.")
    if not torch.equal(y.long(), labels[keep]):
        if torch.equal(torch.sort(y.long()).values, torch.sort(labels[keep]).values):
            raise Wrong("`select_seen` kept the right images but changed their order; keep the original order.")
        raise Wrong("keep the original labels (0-9) for the seen rows; the training loop maps them to "
                    "rows of the seen-class embedding table itself.")
    if x.shape != (int(keep.sum()), 4) or not torch.allclose(x.float(), feats[keep]):
        raise Wrong("the features returned do not match the seen-class rows of the input; filter the "
                    "features with the same mask as the labels.")


def _probe_projection(seed: int = 31) -> nn.Linear:
    g = _gen(seed)
    lin = nn.Linear(6, 4)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(4, 6, generator=g) * 0.7)
        lin.bias.copy_(torch.randn(4, generator=g) * 0.3)
    return lin


def _step_data():
    g = _gen(32)
    x = torch.randn(10, 6, generator=g)
    t = torch.tensor([0, 1, 2, 0, 1, 2, 2, 1, 0, 1])
    # class embeddings with very different norms: unnormalised scores differ a lot from cosine
    e = torch.randn(3, 4, generator=g) * torch.tensor([[0.3], [3.0], [1.2]])
    return x, t, e


def _eval_projection_step(projection_step) -> None:
    x, t, e = _step_data()
    temperature, lr = 0.2, 0.05
    proj = _probe_projection()
    _expected.verify(_TOPIC, "step_data", x, t, e, *proj.parameters())
    start = {k: v.clone() for k, v in proj.state_dict().items()}
    variants = {k[len("projection/loss/"):]: float(_expected.value(_TOPIC, k))
                for k in _expected.load(_TOPIC)["values"] if k.startswith("projection/loss/")}
    opt = torch.optim.SGD(proj.parameters(), lr=lr)
    for p in proj.parameters():  # stale gradients from an earlier step: zero_grad() must clear them
        p.grad = torch.full_like(p, 0.5)
    e_in, x_in = e.clone(), x.clone()
    out = projection_step(proj, opt, x_in, t.clone(), e_in, temperature)
    if out is None:
        raise Wrong("`projection_step` must return the loss as a Python float (`loss.item()`).")
    if isinstance(out, torch.Tensor):
        if out.numel() != 1:
            raise Wrong(f"`projection_step` returned a tensor of shape {tuple(out.shape)}; return the scalar "
                        "mean loss of the batch as a float.")
        if out.requires_grad:
            raise Wrong("`projection_step` returned the loss tensor with its autograd graph; return "
                        "`loss.item()` so the training loop does not keep every batch's graph alive.")
    try:
        loss = float(out)
    except (TypeError, ValueError):
        raise Wrong(f"`projection_step` must return the loss as a float, got {type(out).__name__}.") from None
    if not (torch.equal(e_in, e) and torch.equal(x_in, x)):
        raise Wrong("`projection_step` changed its inputs in place; normalise into new tensors.")
    if not math.isclose(loss, variants["ref"], rel_tol=1e-3, abs_tol=1e-4):
        named = {
            "no_temperature": "you left out the temperature: cosine similarities lie in [-1, 1], so without "
                              "dividing by a small temperature the softmax is nearly uniform and learns slowly.",
            "times_temperature": "you multiplied by the temperature; divide the cosine similarities by it "
                                 "(a small temperature sharpens the softmax).",
            "raw_dot": "your loss uses raw dot products: the vectors were not normalised, so this is not "
                       "cosine similarity. Normalise the projected images and the class embeddings to unit "
                       "length first, as at test time, or training and prediction disagree.",
            "raw_dot_no_t": "your loss uses raw dot products without the temperature; normalise both sides "
                            "to unit length (cosine similarity) and divide by the temperature.",
            "only_images": "you normalised the projected images but not the class embeddings; cosine "
                           "similarity needs both at unit length.",
            "only_labels": "you normalised the class embeddings but not the projected images; cosine "
                           "similarity needs both at unit length.",
            "mse": "you regressed onto the target embedding with a squared error. That pulls each image "
                   "towards its own label but never away from the others; the step asked for here is "
                   "cross-entropy over the cosine similarities to all seen classes, divided by the temperature.",
            "mse_unit": "you regressed the unit vectors onto each other with a squared error; use cross-entropy "
                        "over the cosine similarities to all seen classes (divided by the temperature), so each "
                        "image is pushed away from the wrong labels too.",
            "cos_emb": "you maximised the cosine to the correct label only; use cross-entropy over the cosine "
                       "similarities to all seen classes (divided by the temperature), so that the wrong labels "
                       "are pushed away too.",
        }
        for key, msg in named.items():
            if math.isclose(loss, variants[key], rel_tol=1e-3, abs_tol=1e-4):
                raise Wrong(msg)
        raise Wrong(f"on a fixed batch your step returned loss {loss:.4f}, expected {variants['ref']:.4f}: "
                    "the cross-entropy of (cosine similarity between the projected features and every "
                    "class embedding) / temperature, against the targets, averaged over the batch. "
                    "Return the loss computed *before* the optimizer step.")
    after = proj.state_dict()
    if all(torch.equal(start[k], after[k]) for k in start):
        raise Wrong("the projection's weights did not change: call `loss.backward()` and then `optimizer.step()`.")
    ref = {k: _expected.value(_TOPIC, f"projection/after/{k}").float() for k in start}
    if all(torch.allclose(after[k], ref[k], atol=1e-5) for k in ref):
        return
    # what the weights would be had the stale 0.5 gradients been added (no zero_grad)
    if all(torch.allclose(after[k], ref[k] - lr * 0.5, atol=1e-5) for k in ref):
        raise Wrong("the update also contains old gradients: `optimizer.zero_grad()` was not called before "
                    "`loss.backward()`. PyTorch *adds* new gradients to the ones already stored, so without "
                    "zeroing, each step follows the sum of all earlier batches' gradients.")
    raise Wrong("the loss is right but the weights after your step differ from one optimizer step on that "
                "loss. Each step: zero the gradients, backpropagate this loss once, and call `optimizer.step()` once.")


def _eval_projection(select_seen, projection_step) -> None:
    _eval_select_seen(select_seen)
    _eval_projection_step(projection_step)


# ---------------------------------------------------------------- q4: DAP attribute-to-class inference

_ATTR = torch.tensor([
    [1, 0, 0, 0],
    [1, 1, 0, 0],
    [1, 1, 1, 0],
    [0, 0, 1, 1],
    [0, 1, 0, 1],
], dtype=torch.float32)


def _q3_probs():
    g = _gen(41)
    # images of class 0 and 1: class 2 has a superset of their attributes, and a score that only
    # rewards present attributes would pick it
    base = _ATTR[torch.tensor([0, 1, 0, 3, 4, 1, 2])]
    noise = torch.rand(base.shape, generator=g) * 0.3
    p = (base * (0.65 + noise) + (1 - base) * (0.05 + noise)).clamp(0.01, 0.99)
    p[0, 2] = 0.45  # an absent attribute scored fairly high: a sum of present-attribute probabilities goes wrong
    p[2, 1], p[2, 2] = 0.4, 0.4
    p[5] = torch.tensor([0.34, 0.72, 0.55, 0.39])  # DAP, nearest signature and present-only all disagree
    # exact 0 and 1, as a saturated sigmoid gives: log(0) must not turn into NaN
    p[3] = torch.tensor([0.0, 0.02, 1.0, 0.97])
    p[4] = torch.tensor([0.0, 1.0, 0.1, 0.9])
    return p


def _eval_dap(dap_predict) -> None:
    p = _q3_probs()
    _expected.verify(_TOPIC, "dap_probs", p, _ATTR)
    a = _ATTR.clone()
    p_in, a_in = p.clone(), a.clone()
    out = dap_predict(p_in, a_in)
    if not (torch.equal(p_in, p) and torch.equal(a_in, a)):
        raise Wrong("`dap_predict` changed its inputs in place; compute on new tensors.")
    pred = _as_long_1d(out, len(p), "dap_predict", "classes")
    ref = _stored_pred("dap/0")
    if torch.equal(pred, ref):
        # and on more images than classes the other way round
        p2 = torch.rand(3, 4, generator=_gen(42)).clamp(0.05, 0.95)
        _expected.verify(_TOPIC, "dap_probs_2", p2)
        pred2 = _as_long_1d(dap_predict(p2.clone(), a.clone()), 3, "dap_predict", "classes")
        ref2 = _stored_pred("dap/1")
        if not torch.equal(pred2, ref2):
            raise Wrong(f"your predictions are right on one batch but not on another ({pred2.tolist()} instead "
                        f"of {ref2.tolist()}): for each image, score every class with the DAP rule "
                        "and take the argmax over classes (axis 1).")
        return
    if (pred < 0).any() or (pred >= len(a)).any():
        raise Wrong(f"predicted indices {pred.tolist()} are not all class indices 0-{len(a) - 1}; return the "
                    "argmax over classes (axis 1).")
    if torch.equal(pred, (p @ a.T).argmax(1)):
        raise Wrong("your score only rewards attributes a class *has* (a dot product of probabilities with "
                    "the attribute table). A class with many attributes then wins whenever they are present, "
                    "even if the image clearly lacks some of them. DAP multiplies, over all attributes, "
                    "p(attribute) where the class has it and 1 - p(attribute) where it does not.")
    if torch.equal(pred, (-torch.cdist(p, a)).argmax(1)) or torch.equal(pred, (-torch.cdist(p, a, p=1)).argmax(1)):
        raise Wrong("you picked the class whose attribute vector is nearest to the predicted probabilities. "
                    "That is a reasonable heuristic, but DAP is probabilistic: score each class by the product "
                    "(or the sum of logs) of p(attribute) where it has the attribute and 1 - p(attribute) where "
                    "it does not, and take the argmax.")
    if torch.equal(pred, _stored_pred("dap/unclamped")) or torch.equal(pred, _stored_pred("dap/unclamped_nan_inf")):
        raise Wrong("some probabilities are exactly 0 or 1 (a saturated sigmoid gives them), and log(0) times "
                    "0 is NaN, so those images' scores break. Clamp the probabilities to [eps, 1 - eps] "
                    "(e.g. eps = 1e-6; in float32, 1 - 1e-9 rounds to exactly 1) before taking logs.")
    raise Wrong(f"on a fixed test your predictions {pred.tolist()} differ from DAP's {ref.tolist()}. For each "
                "image and class, multiply p(attribute) over the attributes the class has and "
                "1 - p(attribute) over those it lacks (sum logs, with probabilities clamped away from 0 and 1), "
                "then take the argmax over classes.")


# ---------------------------------------------------------------- q3: generalised zero-shot scores

def _q4_case():
    seen, unseen = [0, 1, 3], [2, 4]
    # unbalanced: 8, 2, 4, 3, 5 images of classes 0..4; seen classes are often right, unseen less so
    y = torch.tensor([0] * 8 + [1] * 2 + [2] * 4 + [3] * 3 + [4] * 5)
    pred = torch.tensor([0, 0, 0, 0, 0, 0, 1, 3,   1, 0,   2, 0, 1, 3,   3, 3, 4,   4, 4, 0, 1, 3])
    return y, pred, seen, unseen


def _unpack_gzsl(out):
    if isinstance(out, dict):
        missing = [k for k in ("seen", "unseen", "H") if k not in out]
        if missing:
            raise Wrong(f"`gzsl_scores` must return a dict with keys 'seen', 'unseen' and 'H'; missing {missing}.")
        vals = (out["seen"], out["unseen"], out["H"])
    else:
        raise Wrong("`gzsl_scores` must return a dict `{'seen': ..., 'unseen': ..., 'H': ...}`.")
    try:
        return tuple(float(v) for v in vals)
    except (TypeError, ValueError):
        raise Wrong("the values of the dict must be numbers (floats between 0 and 1).") from None


def _eval_gzsl(gzsl_scores) -> None:
    y, pred, seen, unseen = _q4_case()
    _expected.verify(_TOPIC, "gzsl_case", y, pred)
    s_ref, u_ref, h_ref = (float(_expected.value(_TOPIC, f"gzsl/{k}")) for k in ("seen", "unseen", "H"))
    s, u, h = _unpack_gzsl(gzsl_scores(y.clone(), pred.clone(), list(seen), list(unseen)))
    close = lambda a, b: math.isclose(a, b, abs_tol=1e-6)  # noqa: E731
    if max(s, u, h) > 1.0 + 1e-9:
        raise Wrong("accuracies are fractions between 0 and 1, not percentages.")
    if not close(u, u_ref):
        flat_u = float((pred[torch.isin(y, torch.tensor(unseen))] == y[torch.isin(y, torch.tensor(unseen))]).float().mean())
        if close(u, flat_u):
            raise Wrong("your unseen accuracy averages over images, so classes with more test images count "
                        "more. GZSL uses the mean of the per-class accuracies (Xian et al., 2018): compute the "
                        "accuracy of each class separately, then average over the classes.")
        raise Wrong(f"unseen accuracy {u:.4f}, expected {u_ref:.4f}: for each unseen class, the fraction of its "
                    "test images predicted as that class, averaged over the unseen classes.")
    if not close(s, s_ref):
        if close(s, u) or close(s, 0.0) or math.isnan(s):
            raise Wrong("your seen accuracy is missing (equal to the unseen one, or 0): generalised zero-shot "
                        "learning must also be measured on the seen classes' test images, with all classes as "
                        "candidates. Evaluating only on unseen classes hides the bias toward seen classes.")
        flat_s = float((pred[torch.isin(y, torch.tensor(seen))] == y[torch.isin(y, torch.tensor(seen))]).float().mean())
        if close(s, flat_s):
            raise Wrong("your seen accuracy averages over images; GZSL uses the mean of the per-class accuracies: "
                        "compute each class's accuracy separately, then average over the classes.")
        raise Wrong(f"seen accuracy {s:.4f}, expected {s_ref:.4f}: for each seen class, the fraction of its test "
                    "images predicted as that class, averaged over the seen classes.")
    if not close(h, h_ref):
        if close(h, (s + u) / 2):
            raise Wrong("H is the harmonic mean 2·s·u / (s + u), not the arithmetic mean: it stays low unless "
                        "*both* seen and unseen accuracy are good, so a model that ignores unseen classes cannot "
                        "score well.")
        if close(h, u):
            raise Wrong("H equals the unseen accuracy: combine seen and unseen with the harmonic mean 2·s·u / (s + u).")
        raise Wrong(f"H = {h:.4f}, expected the harmonic mean 2·s·u/(s+u) = {h_ref:.4f}.")
    # unseen accuracy above seen (1/2 and 1): H = 2 * 0.5 * 1 / 1.5 = 2/3, whichever accuracy is the larger
    y1, pred1 = torch.tensor([0, 0, 1, 1, 2, 2]), torch.tensor([0, 1, 1, 0, 2, 2])
    s1, u1, h1 = _unpack_gzsl(gzsl_scores(y1, pred1, [0, 1], [2]))
    if not (close(s1, 0.5) and close(u1, 1.0) and close(h1, 2 / 3)):
        raise Wrong(f"on a batch where the unseen accuracy (1.0) is higher than the seen one (0.5) you returned "
                    f"seen {s1:.4f}, unseen {u1:.4f}, H {h1:.4f}; expected 0.5, 1.0 and H = 2·s·u / (s + u) = "
                    "0.6667. H is 0 only when s + u = 0, whichever of the two is larger.")
    # every unseen image predicted as a seen class: H must be 0, without dividing by zero
    y0 = torch.tensor([0, 0, 1, 2, 2])
    pred0 = torch.tensor([1, 1, 0, 0, 1])
    try:
        s0, u0, h0 = _unpack_gzsl(gzsl_scores(y0, pred0, [0, 1], [2]))
    except ZeroDivisionError:
        raise Wrong("`gzsl_scores` divided by zero when both accuracies are 0; H is 0 then.") from None
    if math.isnan(h0) or not close(h0, 0.0):
        raise Wrong("when seen and unseen accuracy are both 0, H must be 0 (guard the division s + u = 0).")


# ---------------------------------------------------------------- the questions

q1 = Question(
    "q1", "cosine-similarity zero-shot prediction", ["zero_shot_predict"], _eval_zero_shot_predict,
    hints=["Zero-shot prediction compares every input embedding with every label embedding and picks the "
           "most similar label. The similarity should not depend on how long the vectors are.",
           "Cosine similarity is the dot product of unit vectors: divide each row of both matrices by its "
           "L2 norm (torch.nn.functional.normalize does this), then one matrix product gives all the "
           "input-by-label similarities.",
           "The similarity matrix has one row per input and one column per label; the prediction for an "
           "input is the column with the largest value in its row."],
    why="with unit vectors, the label whose description points in the same direction as the text or image "
        "wins, however long either embedding is. That is how CLIP classifies too.")

q2 = Question(
    "q2", "seen-only training data and the projection step", ["select_seen", "projection_step"],
    _eval_projection,
    hints=["Zero-shot means the unseen classes contribute nothing to training: first keep only the images of "
           "seen classes. The step then trains the projection so that each image lands closest to its own "
           "class's label embedding, by cosine similarity.",
           "For the step: project the batch, put the projected vectors and the class embeddings at unit length, "
           "compare every image with every class, divide by the temperature, and use those as logits for "
           "cross-entropy against the targets.",
           "The usual three optimizer calls, in order: clear old gradients, backpropagate the loss, update. "
           "Return the loss as a plain float."],
    why="this is DeViSE with a softmax instead of a hinge rank loss (as in CLIP): the projection learns where "
        "each seen class's words live, and unseen classes work because their words live nearby.")

q3 = Question(
    "q3", "generalised zero-shot scores", ["gzsl_scores"], _eval_gzsl,
    twins=("tlcourse.lessons.zero_shot._per_class_accuracy",),
    hints=["In generalised zero-shot learning the test images come from seen *and* unseen classes, and every "
           "class is a candidate; accuracy is reported for the two groups separately.",
           "For each class, take the fraction of its test images predicted as that class; average those "
           "fractions over the seen classes, and separately over the unseen classes.",
           "H is the harmonic mean of the two: twice their product over their sum, and 0 when both are 0."],
    why="the harmonic mean is only high when both groups are recognised: a model that sends everything to "
        "the seen classes (the usual failure) gets a high seen accuracy and an H near zero.")

q4 = Question(
    "q4", "attribute-to-class inference (DAP)", ["dap_predict"], _eval_dap,
    hints=["DAP treats the attributes as independent: the probability of a class is the probability that "
           "the image has exactly that class's attribute signature.",
           "For each class, multiply p(attribute) for the attributes it has and 1 - p(attribute) for those it "
           "lacks. Products of many probabilities underflow, so add logarithms instead; clamp probabilities "
           "away from 0 and 1 first.",
           "Both log-probability terms are matrix products with the class-attribute table (and with one minus "
           "it); the prediction is the argmax over classes for each image."],
    why="attributes are a shared vocabulary: predictors learned on seen classes combine into signatures of "
        "classes nobody showed the model, as long as each unseen class differs from the others in attributes "
        "the seen classes taught.")

questions = QuestionSet(q1, q2, q3, q4)
check, hint, grade = questions.check, questions.hint, questions.grade
