"""The helpers of notebook 11 (tlcourse.lessons.classical_transfer): data sample, kernel, heads, tables."""
from __future__ import annotations

import numpy as np
import pytest

from tlcourse.lessons import classical_transfer as ct


def test_pixel_split_is_seeded_standardised_and_keeps_the_test_split_fixed():
    a, b, c = ct.pixel_split(40, 30, seed=0), ct.pixel_split(40, 30, seed=0), ct.pixel_split(40, 30, seed=1)
    assert a.source_x.shape == (40, 256) and a.target_x.shape == (30, 256) and len(a.source_y) == 40
    assert np.array_equal(a.source_x, b.source_x) and not np.array_equal(a.source_x, c.source_x)
    assert np.array_equal(a.test_y, c.test_y) and len(a.test_y) == 899  # one test split for every seed
    both = np.concatenate([a.source_x, a.target_x])
    assert np.allclose(both.mean(0), 0, atol=1e-6)
    assert "40 labelled MNIST" in repr(a)


def test_rbf_kernel_uses_the_median_heuristic_and_reuses_gamma():
    x = np.random.default_rng(0).normal(size=(12, 3))
    K, gamma = ct.rbf_kernel(x)
    d2 = ((x[:, None] - x[None]) ** 2).sum(-1)
    assert gamma == pytest.approx(1 / np.median(d2[np.triu_indices(12, 1)]))
    assert np.allclose(K, np.exp(-gamma * d2)) and np.allclose(np.diag(K), 1)
    K2, g2 = ct.rbf_kernel(x[:4], x, gamma)
    assert g2 == gamma and np.allclose(K2, K[:4])


def test_heads_train_and_reject_bad_arguments():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 200)
    x = rng.normal(size=(200, 5)) + y[:, None] * 2.0
    for align in ("none", "coral", "dann"):
        head = ct.train_head(x, y, x + 0.5, align=align, steps=60, seed=0)
        assert ct.head_accuracy(head, x, y) > 0.8, align
    with pytest.raises(ValueError, match="align"):
        ct.train_head(x, y, x, align="mmd")
    with pytest.raises(ValueError, match="target_x"):
        ct.train_head(x, y, None, align="coral")


def test_standardize_by_and_one_nn():
    a = np.array([[0.0, 10.0], [2.0, 30.0]])
    ref, other = ct.standardize_by(a, a + 1)
    assert np.allclose(ref.mean(0), 0) and np.allclose(ref.std(0), 1, atol=1e-6)
    assert ct.one_nn_accuracy(a, [0, 1], a, [0, 1]) == 1.0


def test_summarize_reports_paired_gains_and_seeds_won():
    table = ct.summarize({"base": [0.5, 0.6, 0.7], "m": [0.6, 0.5, 0.8]}, "base")
    assert "| m | 0.633 ± 0.125 | +0.033 ± 0.094 | 2/3 |" in table


def test_benchmark_rows_pair_each_method_with_its_baseline():
    import sys
    import pathlib
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "benchmarks"))
    from experiments.classical_transfer import EXPERIMENTS, NOTEBOOK
    from tlcourse.profile import profile

    sizes = dict(profile("quick")[NOTEBOOK], n_source=40, n_target=30, tca_components=5, head_steps=5)
    rows = EXPERIMENTS["classical_transfer"](seeds=[0, 1], sizes=sizes)
    assert [r["method"] for r in rows] == ["TCA + MLP head", "CORAL head (pixels)", "DANN head (pixels)", "TCA + 1-NN"]
    for r in rows:
        assert len(r["gains"]) == 2 and all(0 <= a <= 1 for a in r["method_acc"] + r["baseline_acc"])
