"""Notebook 08's helpers: the data split, the augmentations, contrastive pretraining through fit, the probes."""
from __future__ import annotations

import copy
import pathlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tlcourse.lessons import self_taught as st

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _nt_xent(z1, z2, t):
    n = len(z1)
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = (z @ z.T / t).masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    return F.cross_entropy(sim, torch.cat([torch.arange(n, 2 * n), torch.arange(n)]))


def test_pool_and_target_share_no_class_and_no_image():
    data = st.load_self_taught_data(20)
    assert data.pool.shape[1:] == data.train_x.shape[1:] == (1, 20, 20)
    assert set(data.train_y.tolist()) == set(data.test_y.tolist()) == set(range(5))
    assert len(data.classes) == 5 and "Sneaker" not in data.classes
    # no pool image is a target image: the pool holds other classes only
    flat_pool = {bytes(x.numpy().round(4).tobytes()) for x in data.pool[:500]}
    assert not any(bytes(x.numpy().round(4).tobytes()) in flat_pool for x in data.train_x[:500])
    mnist = st.load_self_taught_data(16, pool="mnist", pool_size=300)
    assert mnist.pool.shape == (300, 1, 16, 16)


def test_augment_makes_two_different_views_of_the_same_shape():
    torch.manual_seed(0)
    x = st.load_self_taught_data(20).pool[:32]
    a, b = st.augment(x), st.augment(x)
    assert a.shape == b.shape == x.shape
    assert (a - b).abs().mean() > 0.05  # two random views differ
    # but each view still looks more like its own image than like another one
    own = F.cosine_similarity(a.flatten(1), x.flatten(1)).mean()
    other = F.cosine_similarity(a.flatten(1), x.roll(1, 0).flatten(1)).mean()
    assert own > other


def test_contrastive_pretraining_lowers_the_loss_and_returns_the_encoder():
    pool = st.load_self_taught_data(16, pool_size=512).pool
    encoder, history = st.pretrain_contrastive(pool, _nt_xent, 0.2, epochs=3, width=4, batch_size=64, seed=0)
    assert history["train_loss"][-1] < history["train_loss"][0] < np.log(2 * 64 - 1) + 0.5
    feats = st.encode(encoder, pool[:10])
    assert feats.shape == (10, encoder.feature_dim) and not encoder.training
    # the loss passed in is the one trained with, once per step, on two (batch, d) views at the temperature given
    calls = []

    def spy(z1, z2, t):
        calls.append((z1.shape, z2.shape, t))
        return _nt_xent(z1, z2, t)

    st.pretrain_contrastive(pool, spy, 0.3, epochs=1, width=4, batch_size=64, seed=0)
    assert len(calls) == len(pool) // 64 and calls[0] == (torch.Size([64, 32]), torch.Size([64, 32]), 0.3)


def test_label_budget_runs_pair_every_method_on_one_draw():
    data = st.load_self_taught_data(12)
    rows = st.label_subset(data.train_y, 3, seed=1)
    assert np.array_equal(rows, st.label_subset(data.train_y, 3, seed=1))
    assert np.bincount(data.train_y[rows].numpy()).tolist() == [3] * 5
    encoder = st.make_encoder(4)
    results = st.label_budget_runs(data, encoder, budgets=(2, 4), seeds=(0, 1), finetune_steps=2, width=4)
    assert set(results) == {"probe: pixels", "probe: random encoder", "probe: self-taught encoder",
                            "fine-tune: from scratch", "fine-tune: self-taught init"}
    for by_k in results.values():
        assert set(by_k) == {2, 4} and all(len(v) == 2 and all(0 <= a <= 1 for a in v) for v in by_k.values())
    table = st.budget_table(results)
    assert "2 labels/class" in table and table.count("\n") == 2 + len(results)
    mean, std, won, n = st.paired_gain(results, "probe: self-taught encoder", "probe: pixels", 2)
    assert n == 2 and 0 <= won <= 2 and std >= 0


# ---------------------------------------------------------------- progressive networks

def _column_class():
    import sys
    import pathlib
    sys.path.insert(0, str(pathlib.Path(__file__).parent))
    from test_checks_self_taught import make_column
    return make_column()


def test_task_pair_halves_the_digits_with_few_labels_for_b():
    tasks = st.load_task_pair(12, b_labels_per_class=7, seed=3)
    assert tasks.a_x.shape[1:] == (1, 12, 12) and len(tasks.b_x) == 35
    assert np.bincount(tasks.b_y.numpy()).tolist() == [7] * 5
    assert set(tasks.a_y.tolist()) == set(tasks.a_test_y.tolist()) == set(range(5))
    assert len(tasks.a_x) + len(tasks.a_test_x) == 2500  # half of MNIST-5k


def test_continual_runs_keep_task_a_under_progressive_and_record_every_epoch(monkeypatch):
    monkeypatch.setenv("TLCOURSE_WIDGETS", "static")
    tasks = st.load_task_pair(8, b_labels_per_class=5)
    runs = st.continual_runs(_column_class(), tasks, hidden=(16, 8), a_epochs=1, b_epochs=3, seeds=(0, 1),
                             adapter_dim=4)
    assert len(runs) == 2
    for r in runs:
        assert r["progressive"]["A"] == [r["a_before"]] * 3  # column 1 is frozen: exactly kept
        assert all(len(r[m]["B"]) == 3 for m in ("progressive", "fresh column", "fine-tune"))
        assert len(r["fine-tune"]["A"]) == 3
        p = r["params"]
        assert p["column 2 (with adapters)"] > p["fresh column"] == p["column 1"]
    table = st.continual_table(runs)
    assert "fine-tune" in table and "Task A before learning B" in table
    fig = st.forgetting_explorer(runs, interactive=False)
    assert len(fig.axes) == 2


def test_with_head_swaps_a_copy():
    cls = _column_class()
    net = cls((4, 3), 2)
    other = torch.nn.Linear(3, 2)
    swapped = st.with_head(net, other)
    assert torch.equal(swapped.head.weight, other.weight) and swapped.head is not other and net.head is not swapped.head


def test_benchmark_rows_pair_seeds_for_progressive_networks():
    import pathlib
    import sys
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "benchmarks"))
    from experiments import discover

    experiments, notebook, published = discover()
    assert notebook["self_taught"] == notebook["progressive"] == "08" and "self_taught" in published
    tiny = dict(pnn_image_size=8, pnn_b_labels=4, pnn_hidden=(8, 8), pnn_adapter_dim=4, pnn_a_epochs=1, pnn_b_epochs=2,
                pnn_ewc_strengths=(100,))
    rows = experiments["progressive"](seeds=(0, 1), sizes=tiny)
    assert len(rows) == 5 and all(r["seeds"] == 2 and len(r["gains"]) == 2 for r in rows)
    assert [r["baseline"] for r in rows] == ["fine-tune A→B", "fresh column (no laterals)", "fresh column (no laterals)",
                                             "fine-tune A→B", "fine-tune A→B"]
    assert [r["method"] for r in rows[3:]] == ["EWC (λ=100)"] * 2
    assert all(0 <= a <= 1 for r in rows for a in r["method_acc"] + r["baseline_acc"])


def test_ewc_penalty_is_zero_at_the_anchor_and_pulls_back_in_proportion_to_the_fisher():
    from tlcourse.methods.continual import ElasticWeightConsolidation

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    x, y = torch.randn(20, 4), torch.randint(0, 2, (20,))
    ewc = ElasticWeightConsolidation(net, x, y, strength=4.0, skip=("2.",))
    assert ewc.names == ["0.weight", "0.bias"]
    assert float(ewc(net).detach()) == 0.0
    # the Fisher is the mean of squared per-example gradients of log p(y|x), not the square of the mean gradient
    grads = [torch.autograd.grad(F.log_softmax(net(x[i:i + 1]), 1)[0, y[i]], net[0].weight)[0] for i in range(20)]
    fisher = torch.stack(grads).pow(2).mean(0)
    assert torch.allclose(ewc.fisher_0, fisher, atol=1e-7)
    assert not torch.allclose(fisher, torch.stack(grads).mean(0).pow(2))
    moved = copy.deepcopy(net)
    with torch.no_grad():
        moved[0].weight.add_(0.5)
        moved[2].weight.add_(9.0)  # skipped: a new head for task B is free
    penalty = ewc(moved)
    assert float(penalty) == pytest.approx(0.5 * 4.0 * float((fisher * 0.25).sum()), rel=1e-5)
    penalty.backward()
    assert torch.allclose(moved[0].weight.grad, 4.0 * fisher * 0.5, atol=1e-6)  # d/dθ = λ F (θ − θ*)
    assert moved[2].weight.grad is None


def test_continual_runs_measure_ewc_at_each_strength():
    import sys
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from experiments.self_taught import _column_class

    g = torch.Generator().manual_seed(0)
    x = torch.rand(60, 1, 4, 4, generator=g)
    y = torch.arange(60) % 5
    tasks = st.TaskPair(x, y, x[:20], y[:20], x, y, x[:20], y[:20])
    runs = st.continual_runs(_column_class(), tasks, (8, 8), 1, 2, (0,), adapter_dim=2,
                             ewc_strengths=(0.0, 1e6), fisher_examples=30)
    assert st.methods_of(runs) == ["progressive", "fresh column", "fine-tune", "EWC (λ=0)", "EWC (λ=1e+06)"]
    r = runs[0]
    assert r["EWC (λ=0)"] == r["fine-tune"], "EWC with λ = 0 is plain fine-tuning, step for step"
    assert abs(r["EWC (λ=1e+06)"]["A"][-1] - r["a_before"]) <= abs(r["fine-tune"]["A"][-1] - r["a_before"])
    assert "EWC (λ=1e+06)" in st.continual_table(runs)
