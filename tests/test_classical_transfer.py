"""The helpers of notebook 11 (tlcourse.lessons.classical_transfer): data sample, kernel, heads, tables;
MovieLens domains, the cold-start split, the MF/CMF optimiser loop, metrics and the explorer."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from classical_transfer_reference import cmf_loss as ref_cmf, mf_loss as ref_mf
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


# ---------------------------------------------------------------- part 2: cross-domain recommendation

@pytest.fixture(scope="module")
def domains():
    return ct.genre_domains("Drama", "Comedy")


def test_genre_domains_share_users_and_no_movie(domains):
    source, target = domains
    assert source.n_ratings == 35778 and target.n_ratings == 25715
    assert source.R.shape[0] == target.R.shape[0] == 943
    assert int((source.mask.any(1) & target.mask.any(1)).sum()) == 938
    assert not set(source.items) & set(target.items)
    assert bool((target.R[target.mask] >= 1).all()) and bool((target.R[~target.mask] == 0).all())
    assert "Comedy: 25715 ratings" in repr(target)


def test_cold_start_split_keeps_k_and_fixes_the_test_set(domains):
    source, target = domains
    a, b = (ct.cold_start_split(target, source, 30, keep_max=10, seed=s) for s in (0, 1))
    assert not np.array_equal(a.test_users, b.test_users)
    test = a.test()
    for k in (1, 3, 10):
        train = a.train(k)
        assert (train.mask[a.test_users].sum(1) == k).all()
        assert not train.mask[test[0], test[1]].any()  # held-out ratings never in training
        others = np.setdiff1d(np.arange(943), a.test_users)
        assert torch.equal(train.mask[others], target.mask[others])
    assert np.array_equal(test[2], target.R[test[0], test[1]].numpy())
    with pytest.raises(ValueError, match="keep_max"):
        a.train(11)
    with pytest.raises(ValueError, match="fewer"):
        ct.cold_start_split(target, source, 5000, seed=0)


def _toy(seed=0, n_users=30, n_items=20, rank=2):
    g = np.random.default_rng(seed)
    full = np.clip(np.rint(3 + g.normal(size=(n_users, rank)) @ g.normal(size=(rank, n_items))), 1, 5)
    mask = torch.tensor(g.random((n_users, n_items)) < 0.5)
    return ct.Ratings(torch.tensor(full, dtype=torch.float32) * mask, mask, np.arange(n_items), "toy"), full


def test_fit_mf_and_cmf_learn_fix_and_check_arguments():
    data, full = _toy()
    f = ct.fit_mf(ref_mf, data, rank=2, lam=0.1, steps=200, lr=0.05, seed=0)
    assert f.losses[-1] < f.losses[0] / 3
    u, i = np.nonzero(data.mask.numpy())
    assert ct.rmse(f, (u, i, full[u, i])) < ct.rmse(ct.global_mean(data), (u, i, full[u, i]))
    fixed = ct.fit_mf(ref_mf, data, rank=2, steps=5, init_P=f.P, freeze_P=True)
    assert torch.equal(fixed.P, f.P)
    with pytest.raises(ValueError, match="init_P"):
        ct.fit_mf(ref_mf, data, freeze_P=True)
    with pytest.raises(ValueError, match="shape"):
        ct.fit_mf(ref_mf, data, rank=3, init_P=f.P)
    t, s = ct.fit_cmf(ref_cmf, ref_mf, data, _toy(1, n_items=7)[0], rank=2, steps=20)
    assert torch.equal(t.P, s.P) and t.Q.shape == (20, 2) and s.Q.shape == (7, 2)
    with pytest.raises(ValueError, match="same users"):
        ct.fit_cmf(ref_cmf, ref_mf, data, _toy(1, n_users=5)[0])


def test_ndcg_is_one_for_a_perfect_ranking_and_tables_pair_by_seed():
    data, full = _toy()
    f = ct.global_mean(data)
    u = np.repeat([0, 1], 3)
    i = np.array([0, 1, 2, 0, 1, 2])
    f.item_bias = torch.tensor(full[0, :20] * 0 + np.arange(20, dtype=float), dtype=torch.float32)
    assert ct.ndcg_at_10(f, (u, i, np.array([1.0, 2, 3, 1, 2, 3]))) == pytest.approx(1.0)
    assert ct.ndcg_at_10(f, (u, i, np.array([3.0, 2, 1, 3, 2, 1]))) < 1.0
    res = [{"MF, target only": {1: (1.0, 0.8)}, "CMF, shared user factors": {1: (0.9, 0.9)}},
           {"MF, target only": {1: (1.1, 0.8)}, "CMF, shared user factors": {1: (1.3, 0.7)}}]
    rows, header = ct.cold_start_table(res, 1)
    assert rows[1][2] == "+0.0500 ± 0.1500" and rows[1][3] == "1/2" and header[0] == "method"
    text = ct.cold_start_conclusions(res, transfer=("CMF, shared user factors",), control="MF, target only")
    assert "lower RMSE on 1 of 2 seeds only" in text
    fig = ct.cold_start_explorer(res, interactive=False)
    assert len(fig.axes) == 2
