"""The notebook-10 checks accept correct answers written different ways and reject each plausible mistake
with a message that names it; their stored expected values match the reference script."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import speech_reference as ref
from tlcourse.checks import speech as checks
from tlcourse.checks.speech import q1, q2


def test_stored_values_match_the_reference():
    stored = checks.expected()
    fresh = ref.build()
    for part in ("pool", "proto"):
        for name, variants in fresh[part].items():
            for variant, values in variants.items():
                assert np.allclose(stored[part][name][variant], values, atol=1e-6), (part, name, variant)


def test_the_mistakes_give_different_numbers_on_the_probes():
    """Otherwise a mistake could pass as correct, or be named wrongly."""
    for part in ("pool", "proto"):
        for name, variants in checks.expected()[part].items():
            correct = np.asarray(variants["correct"])
            for variant, values in variants.items():
                if variant in ("correct", "normalise_first"):
                    continue
                v = np.asarray(values)
                assert v.shape != correct.shape or not np.allclose(v, correct, atol=1e-3), (part, name, variant)

# ---------------------------------------------------------------- q1: correct answers written differently


def _pool_loop(frames, mask):
    out = []
    for f, m in zip(frames, mask):
        out.append(f[m].mean(0))
    return torch.stack(out)


def _pool_numpy(frames, mask):
    f, m = frames.numpy(), mask.numpy().astype(float)
    return np.einsum("btd,bt->bd", f, m) / m.sum(1, keepdims=True)


def _pool_where(frames, mask):
    kept = torch.where(mask[..., None], frames, torch.zeros(()))
    return kept.sum(dim=1) / mask.sum(dim=1, keepdim=True).to(frames.dtype)


@pytest.mark.parametrize("answer", [ref.pool, _pool_loop, _pool_numpy, _pool_where])
def test_q1_accepts_correct_answers(answer):
    v = q1.verdict(answer)
    assert v.correct, v.message


@pytest.mark.parametrize("variant, phrase", [
    ("no_mask", "padded ones included"), ("divide_by_T", "divided by the padded length"),
    ("masked_sum", "did not divide"), ("batch_axis", "batch axis"), ("feature_axis", "feature axis"),
    ("masked_max", "max pooling")])
def test_q1_names_each_mistake(variant, phrase):
    answer = lambda f, m: ref.pool_mistakes(f, m)[variant]  # noqa: E731
    v = q1.verdict(answer)
    assert v.status == "wrong" and phrase in v.message, v.message


def test_q1_other_failures():
    assert q1.verdict(lambda f, m: None).status == "wrong"
    v = q1.verdict(lambda f, m: (f * m[..., None]).sum(1) / (m.sum(1, keepdim=True) + 1))
    assert v.status == "wrong" and "differ from the masked mean" in v.message, v.message

    def in_place(f, m):
        f[~m] = 0
        return f.sum(1) / m.sum(1, keepdim=True)
    assert "in place" in q1.verdict(in_place).message

    def not_attempted(f, m):
        raise NotImplementedError()
    assert q1.verdict(not_attempted).status == "not_attempted"

    def leaky(f, m):  # uses the padded frames a little
        return ref.pool(f, m) + 1e-2 * f[:, -1]
    assert "padded frames still leak" in q1.verdict(leaky).message

# ---------------------------------------------------------------- q2


def _proto_loop(support, labels, queries, n_classes):
    scores = torch.empty(len(queries), n_classes)
    for c in range(n_classes):
        p = support[labels == c].sum(0)  # the sum points the same way as the mean
        scores[:, c] = F.cosine_similarity(queries, p[None], dim=1)
    return scores


def _proto_onehot(support, labels, queries, n_classes):
    onehot = F.one_hot(labels, n_classes).float()
    P = onehot.T @ support / onehot.sum(0)[:, None]
    return (queries / queries.norm(dim=1, keepdim=True)) @ (P / P.norm(dim=1, keepdim=True)).T


def _proto_normalise_first(support, labels, queries, n_classes):
    return ref.proto_scores(F.normalize(support, dim=1), labels, queries, n_classes)


@pytest.mark.parametrize("answer", [ref.proto_scores, _proto_loop, _proto_onehot, _proto_normalise_first])
def test_q2_accepts_correct_answers(answer):
    v = q2.verdict(answer)
    assert v.correct, v.message


@pytest.mark.parametrize("variant, phrase", [
    ("dot", "dot products"), ("query_norm_only", "but not the prototypes"),
    ("proto_norm_only", "but not the queries"), ("neg_distance", "Euclidean"), ("one_minus", "distance"),
    ("global_mean", "same vector")])
def test_q2_names_each_mistake(variant, phrase):
    answer = lambda s, l, q, c: ref.proto_mistakes(s, l, q, c)[variant]  # noqa: E731
    v = q2.verdict(answer)
    assert v.status == "wrong" and phrase in v.message, v.message


def test_q2_other_failures():
    v = q2.verdict(lambda s, l, q, c: ref.proto_scores(s, l, q, c).T)
    assert v.status == "wrong" and "transpose" in v.message, v.message
    v = q2.verdict(lambda s, l, q, c: ref.proto_scores(s, l, q, c).argmax(1))
    assert v.status == "wrong" and "predicted labels" in v.message, v.message

    def by_position(s, l, q, c):  # assumes the support is sorted by class in equal blocks
        P = torch.stack([chunk.mean(0) for chunk in s.chunk(c)])
        return F.normalize(q, dim=1) @ F.normalize(P, dim=1).T
    v = q2.verdict(by_position)
    assert v.status == "wrong" and "by label, not by position" in v.message, v.message


def test_hints_have_three_tiers_and_no_code():
    for q in (q1, q2):
        assert len(q.hints) == 3
        for h in q.hints:
            assert "def " not in h and "=" not in h and not re.search(r"[A-Za-z_]\(", h), h  # no calls, no code
