"""Notebook 11's comparison: TCA on pixels (MNIST → sklearn digits) against no adaptation, CORAL and DANN heads.

Same protocol as the notebook: per seed, a sample of labelled source and unlabelled target
pixels, the fixed target test split, one small head per method (tlcourse.lessons.classical_transfer),
and 1-NN with and without TCA. The TCA projection is the reference answer, kept here because
benchmark code is not installed with the package.
"""
from __future__ import annotations

import time

import numpy as np
import scipy.linalg

from ._rows import comparison

NOTEBOOK = "11"


def _tca(K, n_s, mu, m):
    n = len(K)
    e = np.r_[np.full(n_s, 1 / n_s), np.full(n - n_s, -1 / (n - n_s))]
    vals, vecs = scipy.linalg.eigh(K @ (np.eye(n) - 1 / n) @ K, K @ np.outer(e, e) @ K + mu * np.eye(n))
    return vecs[:, np.argsort(vals)[::-1][:m]]


def tca_digits(seeds, sizes) -> list[dict]:
    from tlcourse.lessons import classical_transfer as ct

    acc = {k: [] for k in ("none", "tca", "coral", "dann", "nn", "nn_tca")}
    t0 = time.perf_counter()
    for seed in seeds:
        s = ct.pixel_split(sizes["n_source"], sizes["n_target"], seed=seed)
        X = np.concatenate([s.source_x, s.target_x])
        K, gamma = ct.rbf_kernel(X)
        K_test, _ = ct.rbf_kernel(s.test_x, X, gamma)
        W = _tca(K, len(s.source_y), sizes["tca_mu"], sizes["tca_components"])
        z_source, z_test = ct.standardize_by((K @ W)[: len(s.source_y)], K_test @ W)
        x_source, x_target, x_test = ct.standardize_by(s.source_x, s.target_x, s.test_x)
        train = dict(steps=sizes["head_steps"], seed=seed)
        acc["none"].append(ct.head_accuracy(ct.train_head(x_source, s.source_y, **train), x_test, s.test_y))
        acc["tca"].append(ct.head_accuracy(ct.train_head(z_source, s.source_y, **train), z_test, s.test_y))
        for key, weight in (("coral", sizes["coral_weight"]), ("dann", 1.0)):
            head = ct.train_head(x_source, s.source_y, x_target, align=key, trade_off=weight, **train)
            acc[key].append(ct.head_accuracy(head, x_test, s.test_y))
        acc["nn"].append(ct.one_nn_accuracy(x_source, s.source_y, x_test, s.test_y))
        acc["nn_tca"].append(ct.one_nn_accuracy(z_source, s.source_y, z_test, s.test_y))
    secs = time.perf_counter() - t0
    setting = (f"MNIST→digits pixels, {sizes['n_source']} src + {sizes['n_target']} tgt, "
               f"m={sizes['tca_components']}, mu={sizes['tca_mu']}")
    head = "MLP head, no adaptation"
    return [comparison("classical_transfer", setting, head, "TCA + MLP head", acc["none"], acc["tca"], secs, 0.1),
            comparison("classical_transfer", setting, head, "CORAL head (pixels)", acc["none"], acc["coral"], secs, 0.1),
            comparison("classical_transfer", setting, head, "DANN head (pixels)", acc["none"], acc["dann"], secs, 0.1),
            comparison("classical_transfer", setting, "1-NN, no adaptation", "TCA + 1-NN", acc["nn"], acc["nn_tca"],
                       secs, 0.1)]


EXPERIMENTS = {"classical_transfer": tca_digits}
