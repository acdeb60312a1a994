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


# ---------------------------------------------------------------- matrix factorisation (exercises 2 and 3)

def mf_loss(R, mask, mu, user_bias, item_bias, P, Q, lam, variant="correct"):
    """Biased MF: squared error on the observed entries plus lam x the squared norms of P, Q and both
    biases, all divided by the number of observed entries."""
    import torch

    pred = mu + user_bias[:, None] + item_bias[None, :] + P @ Q.T
    if variant == "no_bias":
        pred = mu + P @ Q.T
    if variant == "no_mu":
        pred = user_bias[:, None] + item_bias[None, :] + P @ Q.T
    m = mask.to(pred.dtype)
    if variant == "R_nonzero_mask":
        m = (R != 0).to(pred.dtype)
    if variant == "unmasked":
        m = torch.ones_like(pred)
    sq = (((R - pred) * m) ** 2).sum()
    reg = (P ** 2).sum() + (Q ** 2).sum()
    if variant != "bias_unregularised":
        reg = reg + (user_bias ** 2).sum() + (item_bias ** 2).sum()
    if variant == "no_reg":
        reg = reg * 0
    n = m.sum()
    if variant == "divide_by_all":
        n = torch.tensor(float(mask.numel()), dtype=pred.dtype)
    if variant == "sum_not_mean":
        return sq + lam * reg
    if variant == "reg_not_divided":
        return sq / n + lam * reg
    if variant == "rmse":
        return torch.sqrt(sq / n) + lam * reg / n
    return (sq + lam * reg) / n


MF_VARIANTS = ("unmasked", "R_nonzero_mask", "divide_by_all", "no_bias", "no_mu", "bias_unregularised", "no_reg",
               "sum_not_mean", "reg_not_divided", "rmse")


def cmf_loss(target, source, P, lam, alpha, mf_loss, variant="correct"):
    """Collective MF (Singh & Gordon 2008): alpha x the target's MF loss + (1 - alpha) x the source's, both
    with the same user factors P."""
    t = mf_loss(P=P, lam=lam, **target)
    s = mf_loss(P=(P.detach() if variant == "detached" else P), lam=(0.0 if variant == "no_lam" else lam), **source)
    if variant == "no_lam":
        t = mf_loss(P=P, lam=0.0, **target)
    if variant == "swapped":
        return (1 - alpha) * t + alpha * s
    if variant == "unweighted":
        return t + s
    if variant == "average":
        return (t + s) / 2
    if variant == "target_only":
        return alpha * t
    return alpha * t + (1 - alpha) * s


CMF_VARIANTS = ("swapped", "unweighted", "average", "target_only", "detached", "no_lam")


if __name__ == "__main__":  # prints the TCA_EXPECTED literals of tlcourse/checks/classical_transfer.py
    from tlcourse.checks.classical_transfer import TCA_PROBLEMS, tca_problem

    for name in TCA_PROBLEMS:
        K, n_s, mu, m = tca_problem(name)
        print(f"    {name!r}: {{")
        for variant in ("correct",) + VARIANTS:
            W = canonical(tca_components(K, n_s, mu, m, variant))
            print(f"        {variant!r}: {np.round(W, 8).T.tolist()},")
        print("    },")
    # prints MF_EXPECTED and CMF_EXPECTED
    import torch

    from tlcourse.checks.classical_transfer import CMF_PROBLEMS, MF_PROBLEMS, cmf_problem, mf_problem, probe_loss

    print("MF_EXPECTED = {")
    for name in MF_PROBLEMS:
        vals = {v: float(mf_loss(**mf_problem(name), variant=v).detach()) for v in ("correct",) + MF_VARIANTS}
        print(f"    {name!r}: {{" + ", ".join(f"{k!r}: {v!r}" for k, v in vals.items()) + "},")
    print("}")
    print("CMF_EXPECTED = {")
    for name in CMF_PROBLEMS:
        print(f"    {name!r}: {{")
        for v in ("correct",) + CMF_VARIANTS:
            target, source, P, lam, alpha = cmf_problem(name)
            out = cmf_loss(target, source, P, lam, alpha, probe_loss, variant=v)
            out.backward()
            print(f"        {v!r}: ({float(out.detach())!r}, {[round(x, 10) for x in P.grad.numpy().ravel().tolist()]}),")
        print("    },")
    print("}")
