"""Notebook 06's checks: correct answers written different ways pass; plausible mistakes are named."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tlcourse.checks import zero_shot as zs


def not_attempted(*args, **kwargs):
    raise NotImplementedError()


# ---------------------------------------------------------------- q1 zero_shot_predict

def predict_normalize(embeddings, label_embeddings):
    return (F.normalize(embeddings, dim=1) @ F.normalize(label_embeddings, dim=1).T).argmax(dim=1)


def predict_cosine_similarity(embeddings, label_embeddings):
    sims = F.cosine_similarity(embeddings.unsqueeze(1), label_embeddings.unsqueeze(0), dim=-1)
    return sims.argmax(-1)


def predict_numpy(embeddings, label_embeddings):
    e = embeddings.numpy()
    k = label_embeddings.numpy()
    e = e / np.linalg.norm(e, axis=1, keepdims=True)
    k = k / np.linalg.norm(k, axis=1, keepdims=True)
    return np.argmax(e @ k.T, axis=1)


def predict_labels_only_normalised(embeddings, label_embeddings):
    # normalising the labels is what matters; the input's own norm does not change its argmax
    return (embeddings @ F.normalize(label_embeddings, dim=1).T).argmax(1)


def predict_dot(embeddings, label_embeddings):
    return (embeddings @ label_embeddings.T).argmax(1)


def predict_inputs_only_normalised(embeddings, label_embeddings):
    return (F.normalize(embeddings, dim=1) @ label_embeddings.T).argmax(1)


def predict_wrong_axis(embeddings, label_embeddings):
    return (F.normalize(embeddings, dim=1) @ F.normalize(label_embeddings, dim=1).T).argmax(0)


def predict_normalise_dim0(embeddings, label_embeddings):
    return (F.normalize(embeddings, dim=0) @ F.normalize(label_embeddings, dim=0).T).argmax(1)


def predict_scores(embeddings, label_embeddings):
    return F.normalize(embeddings, dim=1) @ F.normalize(label_embeddings, dim=1).T


def predict_euclidean(embeddings, label_embeddings):
    return torch.cdist(embeddings, label_embeddings).argmin(1)


def predict_in_place(embeddings, label_embeddings):
    embeddings /= embeddings.norm(dim=1, keepdim=True)
    label_embeddings /= label_embeddings.norm(dim=1, keepdim=True)
    return (embeddings @ label_embeddings.T).argmax(1)


@pytest.mark.parametrize("answer", [predict_normalize, predict_cosine_similarity, predict_numpy,
                                    predict_labels_only_normalised])
def test_q1_accepts_correct_answers(answer):
    v = zs.q1.verdict(answer)
    assert v.correct, v.message


@pytest.mark.parametrize("answer, words", [
    (predict_dot, "not normalised"),
    (predict_inputs_only_normalised, "not normalised"),
    (predict_wrong_axis, "wrong axis"),
    (predict_normalise_dim0, "wrong axis"),
    (predict_scores, "scores"),
    (predict_euclidean, "Euclidean"),
    (predict_in_place, "in place"),
])
def test_q1_names_the_mistake(answer, words):
    v = zs.q1.verdict(answer)
    assert v.status == "wrong" and words in v.message, v.message


def test_q1_not_attempted():
    assert zs.q1.verdict(not_attempted).status == "not_attempted"


# ---------------------------------------------------------------- q2 select_seen + projection_step

def select_isin(features, labels, seen_classes):
    mask = torch.isin(labels, torch.as_tensor(seen_classes))
    return features[mask], labels[mask]


def select_loop(features, labels, seen_classes):
    keep = [i for i, y in enumerate(labels.tolist()) if y in set(seen_classes)]
    return features[keep], labels[keep]


def select_nothing(features, labels, seen_classes):
    return features, labels


def select_prefix(features, labels, seen_classes):
    mask = labels < len(seen_classes)
    return features[mask], labels[mask]


def select_unseen(features, labels, seen_classes):
    mask = ~torch.isin(labels, torch.as_tensor(seen_classes))
    return features[mask], labels[mask]


def select_remapped(features, labels, seen_classes):
    mask = torch.isin(labels, torch.as_tensor(seen_classes))
    lookup = {c: i for i, c in enumerate(seen_classes)}
    return features[mask], torch.tensor([lookup[int(y)] for y in labels[mask]])


def step_normalize(projection, optimizer, features, targets, class_embeddings, temperature=0.05):
    z = F.normalize(projection(features), dim=1)
    e = F.normalize(class_embeddings, dim=1)
    loss = F.cross_entropy(z @ e.T / temperature, targets)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def step_cosine_similarity(projection, optimizer, features, targets, class_embeddings, temperature=0.05):
    optimizer.zero_grad(set_to_none=True)
    z = projection(features)
    logits = F.cosine_similarity(z[:, None, :], class_embeddings[None, :, :], dim=-1) / temperature
    loss = torch.nn.CrossEntropyLoss()(logits, targets)
    loss.backward()
    optimizer.step()
    return float(loss)


def _step_with(logits_fn, zero=True, step=True, item=True):
    def step_fn(projection, optimizer, features, targets, class_embeddings, temperature=0.05):
        if zero:
            optimizer.zero_grad()
        loss = F.cross_entropy(logits_fn(projection(features), class_embeddings, temperature), targets)
        loss.backward()
        if step:
            optimizer.step()
        return loss.item() if item else loss
    return step_fn


def _cos(z, e):
    return F.normalize(z, dim=1) @ F.normalize(e, dim=1).T


step_raw_dot = _step_with(lambda z, e, t: z @ e.T / t)
step_no_temperature = _step_with(lambda z, e, t: _cos(z, e))
step_times_temperature = _step_with(lambda z, e, t: _cos(z, e) * t)
step_only_images = _step_with(lambda z, e, t: F.normalize(z, dim=1) @ e.T / t)
step_no_zero_grad = _step_with(lambda z, e, t: _cos(z, e) / t, zero=False)
step_no_step = _step_with(lambda z, e, t: _cos(z, e) / t, step=False)
step_returns_tensor = _step_with(lambda z, e, t: _cos(z, e) / t, item=False)


def step_mse(projection, optimizer, features, targets, class_embeddings, temperature=0.05):
    loss = F.mse_loss(projection(features), class_embeddings[targets])
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def step_loss_after_update(projection, optimizer, features, targets, class_embeddings, temperature=0.05):
    step_normalize(projection, optimizer, features, targets, class_embeddings, temperature)
    with torch.no_grad():
        return F.cross_entropy(_cos(projection(features), class_embeddings) / temperature, targets).item()


@pytest.mark.parametrize("select", [select_isin, select_loop])
@pytest.mark.parametrize("step", [step_normalize, step_cosine_similarity])
def test_q2_accepts_correct_answers(select, step):
    v = zs.q2.verdict(select, step)
    assert v.correct, v.message


@pytest.mark.parametrize("select, words", [
    (select_nothing, "leakage"),
    (select_unseen, "leakage"),
    (select_prefix, "leakage"),
    (select_remapped, "original labels"),
])
def test_q2_names_selection_mistakes(select, words):
    v = zs.q2.verdict(select, step_normalize)
    assert v.status == "wrong" and words in v.message, v.message


@pytest.mark.parametrize("step, words", [
    (step_raw_dot, "not normalised"),
    (step_no_temperature, "left out the temperature"),
    (step_times_temperature, "multiplied by the temperature"),
    (step_only_images, "not the class embeddings"),
    (step_no_zero_grad, "zero_grad"),
    (step_no_step, "did not change"),
    (step_returns_tensor, "autograd graph"),
    (step_mse, "squared error"),
    (step_loss_after_update, "before"),
])
def test_q2_names_step_mistakes(step, words):
    v = zs.q2.verdict(select_isin, step)
    assert v.status == "wrong" and words in v.message, v.message


def test_q2_not_attempted():
    assert zs.q2.verdict(not_attempted, step_normalize).status == "not_attempted"
    assert zs.q2.verdict(select_isin, not_attempted).status == "not_attempted"


# ---------------------------------------------------------------- q4 dap_predict

def dap_logs(attribute_probs, class_attributes):
    p = attribute_probs.clamp(1e-6, 1 - 1e-6)
    scores = torch.log(p) @ class_attributes.T + torch.log(1 - p) @ (1 - class_attributes).T
    return scores.argmax(1)


def dap_product(attribute_probs, class_attributes):
    a = class_attributes.unsqueeze(0)  # (1, K, M)
    p = attribute_probs.unsqueeze(1)   # (N, 1, M)
    return torch.where(a > 0.5, p, 1 - p).prod(-1).argmax(-1)


def dap_numpy(attribute_probs, class_attributes):
    p = np.clip(attribute_probs.numpy().astype(np.float64), 1e-9, 1 - 1e-9)
    a = class_attributes.numpy()
    return np.argmax(np.log(p) @ a.T + np.log1p(-p) @ (1 - a).T, axis=1)


def dap_present_only(attribute_probs, class_attributes):
    return (attribute_probs @ class_attributes.T).argmax(1)


def dap_no_clamp(attribute_probs, class_attributes):
    p = attribute_probs
    return (torch.log(p) @ class_attributes.T + torch.log(1 - p) @ (1 - class_attributes).T).argmax(1)


def dap_wrong_axis(attribute_probs, class_attributes):
    p = attribute_probs.clamp(1e-6, 1 - 1e-6)
    return (torch.log(p) @ class_attributes.T + torch.log(1 - p) @ (1 - class_attributes).T).argmax(0)


def dap_nearest(attribute_probs, class_attributes):
    return torch.cdist(attribute_probs, class_attributes).argmin(1)


def dap_scores(attribute_probs, class_attributes):
    p = attribute_probs.clamp(1e-6, 1 - 1e-6)
    return torch.log(p) @ class_attributes.T + torch.log(1 - p) @ (1 - class_attributes).T


@pytest.mark.parametrize("answer", [dap_logs, dap_product, dap_numpy])
def test_q4_accepts_correct_answers(answer):
    v = zs.q4.verdict(answer)
    assert v.correct, v.message


@pytest.mark.parametrize("answer, words", [
    (dap_present_only, "only rewards"),
    (dap_no_clamp, "NaN"),
    (dap_wrong_axis, "wrong axis"),
    (dap_nearest, "nearest"),
    (dap_scores, "scores"),
])
def test_q4_names_the_mistake(answer, words):
    v = zs.q4.verdict(answer)
    assert v.status == "wrong" and words in v.message, v.message


def test_q4_not_attempted():
    assert zs.q4.verdict(not_attempted).status == "not_attempted"


# ---------------------------------------------------------------- q3 gzsl_scores

def gzsl_torch(y_true, y_pred, seen_classes, unseen_classes):
    def acc(classes):
        return torch.stack([(y_pred[y_true == c] == c).float().mean() for c in classes]).mean().item()
    s, u = acc(seen_classes), acc(unseen_classes)
    return {"seen": s, "unseen": u, "H": 2 * s * u / (s + u) if s + u else 0.0}


def gzsl_numpy(y_true, y_pred, seen_classes, unseen_classes):
    y, p = np.asarray(y_true), np.asarray(y_pred)
    s = np.mean([np.mean(p[y == c] == c) for c in seen_classes])
    u = np.mean([np.mean(p[y == c] == c) for c in unseen_classes])
    h = 0.0 if s + u == 0 else 2 * s * u / (s + u)
    return dict(seen=s, unseen=u, H=h)


def gzsl_unseen_only(y_true, y_pred, seen_classes, unseen_classes):
    u = float(np.mean([(y_pred[y_true == c] == c).float().mean() for c in unseen_classes]))
    return {"seen": u, "unseen": u, "H": u}


def gzsl_arithmetic(y_true, y_pred, seen_classes, unseen_classes):
    r = gzsl_torch(y_true, y_pred, seen_classes, unseen_classes)
    r["H"] = (r["seen"] + r["unseen"]) / 2
    return r


def gzsl_per_image(y_true, y_pred, seen_classes, unseen_classes):
    def acc(classes):
        m = torch.isin(y_true, torch.as_tensor(classes))
        return (y_pred[m] == y_true[m]).float().mean().item()
    s, u = acc(seen_classes), acc(unseen_classes)
    return {"seen": s, "unseen": u, "H": 2 * s * u / (s + u) if s + u else 0.0}


def gzsl_divides_by_zero(y_true, y_pred, seen_classes, unseen_classes):
    r = gzsl_torch(y_true, y_pred, seen_classes, unseen_classes)
    r["H"] = 2 * r["seen"] * r["unseen"] / (r["seen"] + r["unseen"])
    return r


def gzsl_guard_on_difference(y_true, y_pred, seen_classes, unseen_classes):
    """Guards the division with s - u > 0: right whenever seen accuracy is the larger, as in the first case."""
    r = gzsl_torch(y_true, y_pred, seen_classes, unseen_classes)
    s, u = r["seen"], r["unseen"]
    r["H"] = 2 * s * u / (s + u) if s - u > 0 else 0.0
    return r


def gzsl_tuple(y_true, y_pred, seen_classes, unseen_classes):
    r = gzsl_torch(y_true, y_pred, seen_classes, unseen_classes)
    return r["seen"], r["unseen"], r["H"]


@pytest.mark.parametrize("answer", [gzsl_torch, gzsl_numpy])
def test_q3_accepts_correct_answers(answer):
    v = zs.q3.verdict(answer)
    assert v.correct, v.message


@pytest.mark.parametrize("answer, words", [
    (gzsl_unseen_only, "seen classes' test images"),
    (gzsl_arithmetic, "harmonic"),
    (gzsl_per_image, "per-class"),
    (gzsl_divides_by_zero, "divided by zero"),
    (gzsl_tuple, "dict"),
    (gzsl_guard_on_difference, "whichever of the two is larger"),
])
def test_q3_names_the_mistake(answer, words):
    v = zs.q3.verdict(answer)
    assert v.status == "wrong" and words in v.message, v.message


def test_q3_not_attempted():
    assert zs.q3.verdict(not_attempted).status == "not_attempted"


def test_grade_raises_on_wrong_and_passes_on_right():
    zs.grade("q1", predict_normalize)
    with pytest.raises(AssertionError, match="not normalised"):
        zs.grade("q1", predict_dot)


# ---------------------------------------------------------------- delegation to the library's own version

from delegation import assert_loses_points as _assert_loses_points  # noqa: E402
from delegation import library as _library  # noqa: E402


def test_q3_delegating_to_the_library_loses_its_points():
    per_class_accuracy = _library(zs.q3, "_per_class_accuracy")

    def gzsl_scores(y_true, y_pred, seen_classes, unseen_classes):
        y, p = np.asarray(y_true), np.asarray(y_pred)
        s, u = per_class_accuracy(y, p, seen_classes), per_class_accuracy(y, p, unseen_classes)
        return {"seen": s, "unseen": u, "H": 2 * s * u / (s + u) if s + u else 0.0}

    _assert_loses_points(zs.q3, gzsl_scores)
