"""The notebook-11 checks (q1 TCA, q2 the masked MF loss, q3 the CMF objective) accept correct answers written different ways and reject each plausible mistake
with a message that names it; their stored expected values match the reference implementation."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sla
import torch

from classical_transfer_reference import CMF_VARIANTS, MF_VARIANTS, VARIANTS, canonical
from classical_transfer_reference import cmf_loss as reference_cmf, mf_loss as reference_mf
from classical_transfer_reference import tca_components as reference_tca
from tlcourse.checks.classical_transfer import (CMF_EXPECTED, CMF_PROBLEMS, MF_EXPECTED, MF_PROBLEMS, TCA_EXPECTED,
                                                 TCA_PROBLEMS, cmf_problem, mf_problem, probe_loss, q1, q2, q3,
                                                 tca_problem)


@pytest.mark.parametrize("name", TCA_PROBLEMS)
def test_stored_tca_values_match_the_reference(name):
    K, n_s, mu, m = tca_problem(name)
    for variant in ("correct",) + VARIANTS:
        got = canonical(reference_tca(K, n_s, mu, m, variant))
        assert np.allclose(got.T, TCA_EXPECTED[name][variant], atol=1e-6), (name, variant)


# ---------------------------------------------------------------- correct answers, written differently

def _tca_general_eig(K, n_source, mu, n_components):
    """Pan et al.'s form: eigenvectors of (KLK + mu I)^-1 KHK with a general (non-symmetric) solver."""
    n = K.shape[0]
    L = np.empty((n, n))
    L[:n_source, :n_source] = 1 / n_source ** 2
    L[n_source:, n_source:] = 1 / (n - n_source) ** 2
    L[:n_source, n_source:] = L[n_source:, :n_source] = -1 / (n_source * (n - n_source))
    H = np.eye(n) - 1 / n
    vals, vecs = np.linalg.eig(np.linalg.solve(K @ L @ K + mu * np.eye(n), K @ H @ K))
    order = np.argsort(-vals.real)[:n_components]
    return vecs[:, order]  # may be complex with zero imaginary parts


def _tca_subset_scaled(K, n_source, mu, n_components):
    """eigh with subset_by_index, columns rescaled and sign-flipped (both are free)."""
    n = len(K)
    e = np.r_[np.full(n_source, 1 / n_source), np.full(n - n_source, -1 / (n - n_source))][:, None]
    H = np.eye(n) - np.full((n, n), 1 / n)
    _, V = sla.eigh(K @ H @ K, K @ e @ e.T @ K + mu * np.eye(n), subset_by_index=[n - n_components, n - 1])
    return V[:, ::-1] * np.linspace(-3, 2, n_components + 1)[np.arange(n_components) + (n_components > 2)] + 0.0


def _tca_torch(K, n_source, mu, n_components):
    """In torch, by whitening with the Cholesky factor of the constraint matrix."""
    K = torch.as_tensor(K, dtype=torch.float64)
    n = K.shape[0]
    e = torch.cat([torch.full((n_source,), 1 / n_source), torch.full((n - n_source,), -1 / (n - n_source))]).double()
    H = torch.eye(n, dtype=torch.float64) - 1 / n
    A, B = K @ H @ K, K @ torch.outer(e, e) @ K + mu * torch.eye(n, dtype=torch.float64)
    C = torch.linalg.cholesky(B)
    Ci = torch.linalg.inv(C)
    vals, U = torch.linalg.eigh(Ci @ A @ Ci.T)
    return (Ci.T @ U)[:, torch.argsort(vals, descending=True)[:n_components]]


GOOD = {"reference eigh": reference_tca, "general eig": _tca_general_eig, "subset, scaled": _tca_subset_scaled,
        "torch cholesky": _tca_torch}


@pytest.mark.parametrize("name", GOOD)
def test_q1_accepts_correct_answers(name):
    v = q1.verdict(GOOD[name])
    assert v.correct, v.message


# ---------------------------------------------------------------- mistakes, each named

MISTAKE_WORDS = {"sign_L": "wrong sign", "unnormalised_L": "not normalised", "no_H": "centring matrix H is missing",
                 "H_no_1_over_n": "without dividing by n", "mu_times_K": "μI", "smallest": "smallest",
                 "ascending": "ascending order"}


@pytest.mark.parametrize("variant", VARIANTS)
def test_q1_names_each_mistake(variant):
    v = q1.verdict(lambda K, n_s, mu, m: reference_tca(K, n_s, mu, m, variant))
    assert v.status == "wrong", variant
    assert MISTAKE_WORDS[variant].lower() in v.message.lower(), v.message


def test_q1_rejects_shape_and_type_mistakes():
    transposed = q1.verdict(lambda K, n_s, mu, m: reference_tca(K, n_s, mu, m).T)
    assert transposed.status == "wrong" and "columns" in transposed.message
    every = q1.verdict(lambda K, n_s, mu, m: sla.eigh(K, np.eye(len(K)))[1])
    assert every.status == "wrong" and "n_components" in every.message
    none = q1.verdict(lambda K, n_s, mu, m: None)
    assert none.status == "wrong" and "None" in none.message
    noisy = q1.verdict(lambda K, n_s, mu, m: reference_tca(K, n_s, mu, m) + 0.05j)
    assert noisy.status == "wrong" and "complex" in noisy.message


def test_q1_rejects_an_answer_that_changes_K_in_place():
    def in_place(K, n_s, mu, m):
        W = reference_tca(K, n_s, mu, m)
        K -= K.mean()
        return W
    v = q1.verdict(in_place)
    assert v.status == "wrong" and "in-place" in v.message


def test_q1_rejects_a_hard_coded_size_and_a_random_answer():
    fixed = q1.verdict(lambda K, n_s, mu, m: reference_tca(K, 5, mu, m))
    assert fixed.status == "wrong"
    rand = q1.verdict(lambda K, n_s, mu, m: np.random.default_rng(0).normal(size=(len(K), m)))
    assert rand.status == "wrong" and "first component" in rand.message


def test_q1_unattempted_and_hints():
    def stub(K, n_s, mu, m):
        raise NotImplementedError()
    assert q1.verdict(stub).status == "not_attempted"
    assert len(q1.hints) == 3
    for fragment in ("np.", "@", "[:,", "::-1", "eigh(K", "outer("):  # no code of the answer in a hint
        assert not any(fragment in h for h in q1.hints), fragment


# ---------------------------------------------------------------- q2: the masked MF loss


@pytest.mark.parametrize("name", MF_PROBLEMS)
def test_stored_mf_values_match_the_reference(name):
    for variant in ("correct",) + MF_VARIANTS:
        got = float(reference_mf(**mf_problem(name), variant=variant).detach())
        assert got == pytest.approx(MF_EXPECTED[name][variant], rel=1e-10), (name, variant)


@pytest.mark.parametrize("name", CMF_PROBLEMS)
def test_stored_cmf_values_match_the_reference(name):
    for variant in ("correct",) + CMF_VARIANTS:
        target, source, P, lam, alpha = cmf_problem(name)
        out = reference_cmf(target, source, P, lam, alpha, probe_loss, variant=variant)
        out.backward()
        value, grad = CMF_EXPECTED[name][variant]
        assert float(out.detach()) == pytest.approx(value, rel=1e-10)
        assert np.allclose(P.grad.numpy().ravel(), grad, atol=1e-9), (name, variant)


def _mf_select(R, mask, mu, user_bias, item_bias, P, Q, lam):
    """Gathers the observed entries instead of multiplying by the mask."""
    u, i = torch.nonzero(mask, as_tuple=True)
    err = R[u, i] - (mu + user_bias[u] + item_bias[i] + (P[u] * Q[i]).sum(1))
    norms = sum(torch.sum(t * t) for t in (P, Q, user_bias, item_bias))
    return (err.pow(2).sum() + lam * norms) / len(u)


def _mf_split_terms(R, mask, mu, user_bias, item_bias, P, Q, lam):
    """Mean squared error plus the penalty divided by |Ω|, with torch.where and a float32 mask count."""
    pred = mu + user_bias.unsqueeze(1) + item_bias.unsqueeze(0) + torch.matmul(P, Q.t())
    n = mask.sum().to(torch.float32)
    mse = torch.where(mask, (R - pred) ** 2, torch.zeros_like(pred)).sum() / n
    return mse + lam * (P.norm() ** 2 + Q.norm() ** 2 + user_bias.norm() ** 2 + item_bias.norm() ** 2) / n


@pytest.mark.parametrize("fn", [reference_mf, _mf_select, _mf_split_terms], ids=["reference", "gather", "where"])
def test_q2_accepts_correct_answers(fn):
    v = q2.verdict(fn)
    assert v.correct, v.message


MF_WORDS = {"unmasked": "every entry", "R_nonzero_mask": "R != 0", "divide_by_all": "*all* entries",
            "no_bias": "no user and item biases", "no_mu": "global mean", "bias_unregularised": "not regularised",
            "no_reg": "`lam` is not used", "sum_not_mean": "not divided", "reg_not_divided": "regulariser must be divided",
            "rmse": "square root"}


@pytest.mark.parametrize("variant", MF_VARIANTS)
def test_q2_names_each_mistake(variant):
    v = q2.verdict(lambda *a, **k: reference_mf(*a, **k, variant=variant))
    assert v.status == "wrong", variant
    assert MF_WORDS[variant].lower() in v.message.lower(), v.message


def test_q2_rejects_type_and_autograd_mistakes():
    v = q2.verdict(lambda *a, **k: float(reference_mf(*a, **k)))
    assert v.status == "wrong" and "tensor" in v.message
    v = q2.verdict(lambda *a, **k: reference_mf(*a, **k).detach())
    assert v.status == "wrong" and "autograd" in v.message
    def in_place(R, mask, mu, user_bias, item_bias, P, Q, lam):
        R.mul_(mask)
        return reference_mf(R, mask, mu, user_bias, item_bias, P, Q, lam)
    v = q2.verdict(in_place)
    assert v.status == "wrong" and "in-place" in v.message
    v = q2.verdict(lambda R, mask, mu, user_bias, item_bias, P, Q, lam: reference_mf(R, mask, mu, user_bias, item_bias,
                                                                                   P, Q, lam) + 0.01)
    assert v.status == "wrong" and "expected" in v.message


# ---------------------------------------------------------------- q3: the CMF objective

def _cmf_positional(target, source, P, lam, alpha, mf_loss):
    keys = ("R", "mask", "mu", "user_bias", "item_bias")
    t = mf_loss(*(target[k] for k in keys), P, target["Q"], lam)
    s = mf_loss(*(source[k] for k in keys), P, source["Q"], lam)
    return alpha * t + (1.0 - alpha) * s


def _cmf_interpolated(target, source, P, lam, alpha, mf_loss):
    s = mf_loss(P=P, lam=lam, **source)
    return s + alpha * (mf_loss(P=P, lam=lam, **target) - s)


@pytest.mark.parametrize("fn", [reference_cmf, _cmf_positional, _cmf_interpolated])
def test_q3_accepts_correct_answers(fn):
    v = q3.verdict(fn)
    assert v.correct, v.message


CMF_WORDS = {"swapped": "swapped", "unweighted": "without the weights", "average": "averaged",
             "target_only": "source term is missing", "detached": "gradient with respect to P", "no_lam": "λ = 0"}


@pytest.mark.parametrize("variant", CMF_VARIANTS)
def test_q3_names_each_mistake(variant):
    v = q3.verdict(lambda *a, **k: reference_cmf(*a, **k, variant=variant))
    assert v.status == "wrong", variant
    assert CMF_WORDS[variant].lower() in v.message.lower(), v.message


def test_q3_insists_on_the_loss_passed_in_and_its_hints_hold_no_code():
    v = q3.verdict(lambda t, s, P, lam, alpha, mf_loss: reference_cmf(t, s, P, lam, alpha, reference_mf))
    assert v.status == "wrong" and "did not call" in v.message
    for q in (q2, q3):
        assert len(q.hints) == 3
        for fragment in ("@", "**", ".sum()", "mask.", "lambda", "P.T", "Q.T"):
            assert not any(fragment in h for h in q.hints), (q.qid, fragment)
