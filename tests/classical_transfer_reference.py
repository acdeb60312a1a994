"""Reference answers for notebook 11's checks, and the script that writes their stored expected values.

Not installed with the package (tests/ is not part of it). Run
``python tests/classical_transfer_reference.py`` to print the literals that
tlcourse/checks/classical_transfer.py stores; test_checks_classical_transfer.py
checks that the stored values still match these references.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg as sla


def tca_components(K, n_source, mu, n_components, variant="correct"):
    """TCA (Pan et al. 2011): the leading eigenvectors of (KLK + mu I)^-1 KHK, largest first, as columns."""
    K = np.asarray(K, dtype=np.float64)
    n = len(K)
    n_t = n - n_source
    e = np.concatenate([np.full(n_source, 1.0 / n_source), np.full(n_t, -1.0 / n_t)])
    if variant == "sign_L":
        e = np.abs(e)
    if variant == "unnormalised_L":
        e = np.sign(e)
    L = np.outer(e, e)
    H = np.eye(n) - np.ones((n, n)) / n
    if variant == "no_H":
        H = np.eye(n)
    if variant == "H_no_1_over_n":
        H = np.eye(n) - np.ones((n, n))
    A = K @ H @ K
    B = K @ L @ K + (mu * K if variant == "mu_times_K" else mu * np.eye(n))
    vals, vecs = sla.eigh(A, B)
    order = np.argsort(vals)
    if variant == "smallest":
        return vecs[:, order[:n_components]]
    top = vecs[:, order[::-1][:n_components]]
    return top[:, ::-1] if variant == "ascending" else top


VARIANTS = ("sign_L", "unnormalised_L", "no_H", "H_no_1_over_n", "mu_times_K", "smallest", "ascending")


def canonical(W):
    """Unit columns, each signed so that its largest-magnitude entry is positive."""
    W = np.asarray(W, dtype=np.float64)
    W = W / np.linalg.norm(W, axis=0, keepdims=True)
    signs = np.sign(W[np.argmax(np.abs(W), axis=0), np.arange(W.shape[1])])
    return W * signs


if __name__ == "__main__":  # prints the TCA_EXPECTED literals of tlcourse/checks/classical_transfer.py
    from tlcourse.checks.classical_transfer import TCA_PROBLEMS, tca_problem

    for name in TCA_PROBLEMS:
        K, n_s, mu, m = tca_problem(name)
        print(f"    {name!r}: {{")
        for variant in ("correct",) + VARIANTS:
            W = canonical(tca_components(K, n_s, mu, m, variant))
            print(f"        {variant!r}: {np.round(W, 8).T.tolist()},")
        print("    },")
