"""The distillation plumbing of notebook 04 (tlcourse.lessons.distillation) and FitNets' hint loss (tlcourse.methods.distill)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tlcourse.data import ImageDataset
from tlcourse.features import standardize
from tlcourse.lessons import distillation as distill
from tlcourse.methods.distill import HintLoss
from tlcourse.models import SmallCNN


def _ce_step(student, optimizer, images, labels, teacher_logits, loss_fn):
    student.train()
    optimizer.zero_grad()
    loss = loss_fn(student(images), teacher_logits, labels)
    loss.backward()
    optimizer.step()
    return loss.item()


def _ce(s, t, y):
    return F.cross_entropy(s, y)


def test_library_has_no_kd_loss():
    # the graded function must not be handed to students
    names = [n for n in dir(distill) if "kd" in n.lower() or "loss" in n.lower()]
    assert names == ["HintLoss"], names  # FitNets' hint loss is taught, not graded


def test_teacher_student_split_is_disjoint_and_balanced():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (300, 4, 4), dtype=np.uint8)
    images[:, 0, 0] = np.arange(300) % 256
    images[:, 0, 1] = np.arange(300) // 256
    labels = np.arange(300) % 3
    pool = ImageDataset(images, labels, ("a", "b", "c"))
    s, t = distill.teacher_student_split(pool, 60, 120, seed=0)
    assert len(s) == 60 and len(t) == 120
    assert np.bincount(s.labels).tolist() == [20, 20, 20] and np.bincount(t.labels).tolist() == [40, 40, 40]
    ids = lambda d: set((d.images[:, 0, 0].astype(int) + 256 * d.images[:, 0, 1].astype(int)).tolist())  # noqa: E731
    assert not ids(s) & ids(t)
    s2, t2 = distill.teacher_student_split(pool, 60, 120, seed=0)
    assert np.array_equal(s.images, s2.images) and np.array_equal(t.images, t2.images)


def test_linear_head_and_cached_logits():
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(3, 16, generator=g) * 3
    y = torch.arange(3).repeat(40)
    x = centres[y] + torch.randn(120, 16, generator=g)
    head = distill.train_linear_head(x, y, 3, steps=100)
    logits = distill.head_logits(head, x, batch_size=50)
    assert logits.shape == (120, 3) and not logits.requires_grad
    assert (logits.argmax(1) == y).float().mean() > 0.95


def test_teacher_composes_transform_body_head():
    t = distill.Teacher(nn.Flatten(), nn.Linear(16, 8), nn.Linear(8, 3))
    assert t(torch.rand(5, 1, 4, 4)).shape == (5, 3)


def test_train_student_calls_the_step_and_learns():
    torch.manual_seed(0)
    x = torch.rand(96, 1, 12, 12)
    y = (x.mean((1, 2, 3)) > x.mean()).long()
    x[y == 1] += 0.5
    calls = []

    def step(*args):
        calls.append(1)
        return _ce_step(*args)

    student = SmallCNN(2, width=4)
    losses = distill.train_student(student, x, y, torch.zeros(96, 2), step, _ce, epochs=3, batch_size=32,
                                   lr=1e-2, seed=0)
    assert len(calls) == 9 and len(losses) == 3 and all(isinstance(v, float) for v in losses)
    assert losses[-1] < losses[0]
    assert not student.training


def test_train_student_is_seeded():
    x, y, t = torch.rand(40, 1, 8, 8), torch.randint(0, 3, (40,)), torch.randn(40, 3)
    out = []
    for _ in range(2):
        torch.manual_seed(1)
        m = SmallCNN(3, width=4)
        out.append(distill.train_student(m, x, y, t, _ce_step, _ce, epochs=2, batch_size=16, seed=3))
    assert out[0] == out[1]


def test_train_student_rejects_mismatched_rows():
    with pytest.raises(ValueError, match="one row of each"):
        distill.train_student(SmallCNN(3, width=4), torch.rand(4, 1, 8, 8), torch.zeros(4).long(), torch.zeros(5, 3),
                              _ce_step, _ce)


def test_latency_and_size():
    small, big = nn.Linear(10, 2), nn.Sequential(nn.Linear(10, 512), nn.Linear(512, 512), nn.Linear(512, 2))
    lat = distill.measure_latency(small, (10,), batch_sizes=(1, 8), min_time=0.01)
    assert set(lat) == {1, 8} and all(v > 0 for v in lat.values())
    assert distill.size_on_disk(big) > 10 * distill.size_on_disk(small)
    assert distill.size_on_disk(big) > 4 * (512 * 512)  # float32 weights are all there


def test_cost_table_and_plots():
    teacher, student = nn.Linear(100, 10), nn.Linear(10, 10)
    rows = [distill.model_row("teacher", teacher, [0.9], {1: 2.0, 64: 0.5}),
            distill.model_row("student", student, [0.8, 0.82, 0.84], {1: 0.2, 64: 0.01})]
    df = distill.cost_table(rows)
    assert df.loc["student", "seeds"] == 3
    assert df.loc["student", "acc_mean"] == pytest.approx(0.82)
    assert df.loc["student", "x_fewer_params"] == pytest.approx(1010 / 110)
    assert df.loc["student", "x_faster_b64"] == pytest.approx(50)
    fig = distill.plot_tradeoff(rows)
    assert fig.axes[0].get_xscale() == "log"
    fig = distill.plot_sweep({(1, 0.5): [0.8], (1, 0.9): [0.81], (4, 0.5): [0.82]}, baseline=[0.79])
    assert len(fig.axes[0].lines) == 3


def test_temperature_softens():
    logits = torch.tensor([4.0, 1.0, 0.0])
    p1, p4 = distill.soften(logits, 1), distill.soften(logits, 4)
    assert torch.allclose(p1.sum(), torch.tensor(1.0)) and p4.max() < p1.max()
    fig = distill.temperature_widget(logits, ["a", "b", "c"], temperatures=(1, 4))  # no kernel: static only
    assert len(fig.axes) == 2


def test_dark_knowledge_helpers():
    logits = torch.tensor([[5.0, 0, 0], [1.0, 0.9, 0], [0, 3, 0], [0.1, 0, 0.2]])
    labels = torch.tensor([0, 0, 1, 0])
    idx = distill.uncertain_examples(logits, labels, n=2)
    assert idx.tolist()[0] == 1  # the least confident example the teacher gets right
    assert 3 not in idx.tolist()  # wrong, so excluded
    sim = distill.class_similarity(logits, labels, 3, temperature=1.0)
    assert torch.allclose(sim.diagonal(), torch.zeros(3))
    assert torch.allclose(sim[:2].sum(1), torch.ones(2))
    pairs = distill.most_confused_pairs(sim, ["a", "b", "c"], k=2)
    assert pairs[0][0] in "ab" and len(pairs) == 2
    fig = distill.show_soft_targets(torch.rand(4, 1, 6, 6), labels, logits, ["a", "b", "c"], [0, 1])
    assert len(fig.axes) == 6


def test_transfer_labels_keep_true_labels_and_fill_the_rest_from_the_teacher():
    labels = torch.tensor([0, 1, 2, 0, 1])
    logits = torch.tensor([[0, 5.0, 0], [0, 0, 3.0], [4.0, 0, 0], [0, 0, 1.0], [0, 2.0, 0]])
    out = distill.transfer_labels(labels, logits, [1, 3])
    assert out.tolist() == [1, 1, 0, 0, 1]  # indices 1 and 3 keep their labels, the rest are the teacher's argmax
    assert out.dtype == labels.dtype and labels.tolist() == [0, 1, 2, 0, 1]  # the input is not modified
    assert distill.transfer_labels(labels, logits, []).tolist() == [1, 2, 0, 2, 1]
    with pytest.raises(ValueError, match="one row per image"):
        distill.transfer_labels(labels, logits[:4], [0])
    with pytest.raises(ValueError, match="labelled indices"):
        distill.transfer_labels(labels, logits, [5])


def test_hint_loss_is_the_mean_squared_error_of_the_regressed_features():
    torch.manual_seed(0)
    hint = HintLoss(4, 6)
    s, t = torch.randn(5, 4), torch.randn(5, 6)
    by_hand = ((hint.regressor(s) - t) ** 2).sum() / (5 * 6)  # the docstring's formula, written out
    assert torch.allclose(hint(s, t), by_hand)
    with torch.no_grad():  # a perfect regressor of features the student already has costs nothing
        hint.regressor.weight.copy_(torch.eye(6, 4))
        hint.regressor.bias.zero_()
    assert float(hint(s, torch.cat([s, torch.zeros(5, 2)], 1))) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="6 dimensions|made for 6"):
        hint(s, torch.randn(5, 7))
    with pytest.raises(ValueError, match="rows"):
        hint(s, torch.randn(4, 6))


def test_standardize_gives_zero_mean_unit_variance_columns():
    f = torch.randn(50, 3) * torch.tensor([1.0, 10.0, 0.1]) + 5
    z = standardize(f)
    assert torch.allclose(z.mean(0), torch.zeros(3), atol=1e-5)
    assert torch.allclose(z.std(0), torch.ones(3), atol=1e-4)


def test_train_hint_teaches_the_student_the_teachers_features_and_is_seeded():
    # a "teacher" whose features are a fixed random function of the image: learnable, and unknown to the student
    g = torch.Generator().manual_seed(0)
    images = torch.rand(256, 1, 12, 12, generator=g)
    teacher_features = torch.tanh(images.flatten(1) @ torch.randn(144, 20, generator=g))
    curves = []
    for _ in range(2):
        torch.manual_seed(1)
        student = SmallCNN(10, width=8)
        curves.append(distill.train_hint(student.features, images, teacher_features, epochs=6, batch_size=32,
                                         lr=1e-2, seed=3, device="cpu"))
    assert curves[0] == curves[1], "train_hint must be deterministic for a seed"
    assert curves[0][0] > 0.8 and curves[0][-1] < 0.8 * curves[0][0], curves[0]  # from ~1 (the mean) downwards
    assert not student.features.training
    with pytest.raises(ValueError, match="rows of teacher features"):
        distill.train_hint(student.features, images, teacher_features[:10], epochs=1)


def test_omitted_class_scores_correct_the_bias_from_the_prior_without_labels():
    from torch import nn

    logits = torch.tensor([[2.0, 0.0, 1.0], [0.0, 3.0, 0.5], [1.0, 0.0, 0.9], [0.0, 1.0, 2.0]])
    labels = torch.tensor([0, 1, 2, 2])
    r = distill.omitted_class_scores(nn.Identity(), logits, labels, omitted=2, prior=0.5)
    assert r["accuracy"] == 0.75 and r["omitted class"] == 0.5
    assert r["bias"] == pytest.approx(0.55) and r["omitted class, corrected"] == 1.0 and r["accuracy, corrected"] == 1.0
    shuffled = distill.omitted_class_scores(nn.Identity(), logits, labels[[1, 0, 3, 2]], omitted=2, prior=0.5)
    assert shuffled["bias"] == r["bias"], "the correction must not look at the labels"
    default = distill.omitted_class_scores(nn.Identity(), logits, labels, omitted=2)
    assert default["bias"] == pytest.approx(-float(torch.quantile(torch.tensor([-1.0, -2.5, -0.1, 1.0]), 2 / 3)))
    with pytest.raises(ValueError, match="not one of the model's 3 outputs"):
        distill.omitted_class_scores(nn.Identity(), logits, labels, omitted=3)
