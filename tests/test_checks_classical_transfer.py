"""The notebook-11 checks accept correct answers written different ways and reject each plausible mistake
with a message that names it; their stored expected values match the reference implementation."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sla
import torch

from classical_transfer_reference import VARIANTS, canonical, tca_components as reference_tca
from tlcourse.checks.classical_transfer import TCA_EXPECTED, TCA_PROBLEMS, q1, tca_problem


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
