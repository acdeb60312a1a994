"""Notebook 07's helpers: the task data, the budget schedule, training through fit with the student's
functions, and uncertainty weighting's maths."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from tlcourse.lessons import many_tasks as mt
from tlcourse.methods.multitask import UncertaintyWeighting


def _forward(trunk, heads, x):
    f = trunk(x)
    return {t: h(f) for t, h in heads.items()}


def _loss(outputs, targets, weights):
    losses = {t: F.cross_entropy(z, targets[t], ignore_index=-1) if (targets[t] >= 0).any() else z.sum() * 0
              for t, z in outputs.items()}
    return sum(weights[t] * v for t, v in losses.items()), losses


@pytest.fixture(scope="module")
def data():
    return mt.load_fashion_tasks(image_size=12, fine_per_class=5, seed=0)


def test_task_data_labels(data):
    fine = data.labels["fine"]
    assert int((fine != mt.MISSING).sum()) == 50
    assert torch.equal(torch.bincount(fine[fine >= 0]), torch.full((10,), 5))
    # coarse labels are the groups of the fine classes, on every image
    assert torch.equal(data.test_labels["coarse"], torch.as_tensor(mt.COARSE_OF)[data.test_labels["fine"]])
    assert data.train_x.shape[1:] == (1, 12, 12) and 0 <= float(data.train_x.min()) <= float(data.train_x.max()) <= 1


@pytest.mark.parametrize("tasks", [("fine",), ("coarse",), ("fine", "coarse")])
def test_every_run_gets_the_same_budget(data, tasks):
    ds = mt.schedule(data, tasks, steps=7, batch_size=16, seed=3)
    x, y = ds.tensors
    assert len(x) == 7 * 16 and y.shape == (7 * 16, len(tasks))
    if tasks == ("fine",):
        assert (y >= 0).all(), "trained alone, the fine task draws only labelled rows"
    if tasks == ("fine", "coarse"):
        share = float((y[:, 0] >= 0).float().mean())
        assert 0.35 < share < 0.7, share


def test_training_runs_the_students_functions_on_the_chosen_device(data, monkeypatch):
    monkeypatch.setenv("TLCOURSE_DEVICE", "cpu")
    calls = {"forward": 0, "loss": 0}

    def forward(trunk, heads, x):
        calls["forward"] += 1
        return _forward(trunk, heads, x)

    def loss(outputs, targets, weights):
        calls["loss"] += 1
        assert set(weights) == {"fine", "coarse"} and weights["coarse"] == 0.5
        return _loss(outputs, targets, weights)

    model = mt.train_tasks(data, forward, loss, weights={"fine": 1.0, "coarse": 0.5}, steps=3, batch_size=8, width=4)
    assert calls["loss"] == 3 and calls["forward"] >= 3
    assert all(p.device.type == "cpu" for p in model.parameters())
    acc = mt.evaluate_tasks(model, data, lambda o, t: {k: float((z.argmax(1) == t[k]).float().mean())
                                                       for k, z in o.items()})
    assert set(acc) == {"fine", "coarse"}


def test_weights_change_training_and_zero_weight_ignores_the_task(data):
    kw = dict(steps=4, batch_size=16, width=4, seed=0)
    a = mt.train_tasks(data, _forward, _loss, weights={"fine": 1.0, "coarse": 0.0}, **kw).state_dict()
    b = mt.train_tasks(data, _forward, _loss, weights={"fine": 1.0, "coarse": 2.0}, **kw).state_dict()
    assert not torch.allclose(a["trunk.1.weight"], b["trunk.1.weight"])
    # with w=0 the coarse head receives no gradient: AdamW with no weight decay leaves it untouched
    fresh = mt.make_model({"fine": 10, "coarse": 4}, _forward, width=4, seed=0, image_size=12).state_dict()
    assert torch.equal(a["heads.coarse.weight"], fresh["heads.coarse.weight"])


def test_uncertainty_weighting_maths():
    w = UncertaintyWeighting(["a", "b"])
    losses = {"b": torch.tensor(2.0), "a": torch.tensor(0.5)}
    assert math.isclose(float(w(losses).detach()), 2.5)  # s = 0: plain sum
    with torch.no_grad():
        w.log_vars.copy_(torch.tensor([math.log(2.0), 0.0]))
    assert math.isclose(float(w(losses).detach()), 0.5 / 2 + 0.5 * math.log(2.0) + 2.0, rel_tol=1e-6)
    # trained on fixed losses, each weight e^-s goes to 1 / (2 L)
    w = UncertaintyWeighting(["a", "b"])
    opt = torch.optim.Adam(w.parameters(), lr=0.05)
    for _ in range(800):
        opt.zero_grad()
        w(losses).backward()
        opt.step()
    got = w.weights()
    assert abs(got["a"] - 1.0) < 0.02 and abs(got["b"] - 0.25) < 0.02, got
    with pytest.raises(KeyError, match="no loss for task"):
        w({"a": torch.tensor(1.0)})


def test_uncertainty_weights_train_with_the_model(data):
    model = mt.train_tasks(data, _forward, _loss, uncertainty=True, steps=5, batch_size=16, width=4, lr=0.05)
    assert model.weighting is not None
    assert any(abs(v - 1.0) > 1e-4 for v in model.weighting.weights().values()), "the weights never moved"


# ---------------------------------------------------------------- many sources (helpers; the notebook section is to come)

def test_printed_digits_are_balanced_seeded_and_in_range():
    x, y = mt.render_printed_digits(60, image_size=16, seed=4)
    assert x.shape == (60, 1, 16, 16) and y.dtype == torch.long
    assert torch.equal(torch.bincount(y, minlength=10), torch.full((10,), 6))
    assert 0 <= float(x.min()) and float(x.max()) <= 1 and float(x.mean()) > 0.05, "no ink was drawn"
    x2, y2 = mt.render_printed_digits(60, image_size=16, seed=4)
    assert torch.equal(y, y2) and torch.allclose(x, x2)
    assert not torch.equal(mt.render_printed_digits(60, image_size=16, seed=5)[1], y)
    # each digit fills its frame as the target's scans do: ink reaches near the top and bottom rows
    rows = (x[:, 0] > 0.3).any(dim=2).float().mean(0)
    assert rows[1] > 0.5 and rows[-2] > 0.5, rows
    with pytest.raises(ValueError, match="at least 10"):
        mt.render_printed_digits(5)


def test_load_sources_and_a_classifier_that_learns():
    sd = mt.load_sources(printed=100, target_per_class=2, image_size=16, seed=1)
    assert set(sd.sources) == {"MNIST", "printed"}
    assert torch.equal(torch.bincount(sd.target_y, minlength=10), torch.full((10,), 2))
    ux, uy = sd.union()
    assert len(ux) == len(uy) == sum(len(y) for _, y in sd.sources.values())
    assert sd.test_x.shape[1:] == ux.shape[1:] == (1, 16, 16)
    model = mt.train_classifier(sd.oracle_x, sd.oracle_y, steps=60, batch_size=32, width=32, seed=0)
    p = mt.probabilities(model, sd.test_x)
    assert p.shape == (len(sd.test_y), 10) and torch.allclose(p.sum(1), torch.ones(len(p)), atol=1e-5)
    assert float((p.argmax(1) == sd.test_y).float().mean()) > 0.5, "60 steps on the labelled target should learn"


def test_transfer_copies_the_trunk_and_freezing_keeps_it():
    sd = mt.load_sources(printed=0, target_per_class=2, image_size=16, seed=0)
    assert set(sd.sources) == {"MNIST"}, "printed=0 draws no printed digits"
    x, y = sd.sources["MNIST"]
    source = mt.train_classifier(x[:500], y[:500], steps=20, batch_size=32, width=16, seed=0)
    before = [p.detach().clone() for p in source[0].parameters()]
    frozen = mt.train_classifier(sd.target_x, sd.target_y, steps=20, batch_size=8, width=16, seed=0,
                                 init=source, freeze_trunk=True)
    tuned = mt.train_classifier(sd.target_x, sd.target_y, steps=20, batch_size=8, width=16, seed=0, init=source)
    assert all(torch.equal(a, b) for a, b in zip(before, frozen[0].parameters())), "a frozen trunk must not move"
    assert not all(torch.equal(a, b) for a, b in zip(before, tuned[0].parameters())), "fine-tuning moves the trunk"
    assert all(torch.equal(a, b) for a, b in zip(before, source[0].parameters())), \
        "the source model is copied, not trained"
    assert frozen[0] is not source[0] and frozen[1].out_features == 10
    with pytest.raises(ValueError, match="init="):
        mt.train_classifier(x, y, steps=1, freeze_trunk=True)


def test_shuffled_labels_keep_the_counts_and_lose_the_meaning():
    y = torch.arange(10).repeat(50)
    s = mt.shuffled_labels(y, seed=0)
    assert torch.equal(torch.bincount(s), torch.bincount(y))
    assert float((s == y).float().mean()) < 0.3 and torch.equal(s, mt.shuffled_labels(y, seed=0))
    assert not torch.equal(s, mt.shuffled_labels(y, seed=1))


def test_leave_one_out_probe_tells_informative_features_from_noise():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(4).repeat(6)
    informative = torch.nn.functional.one_hot(y, 4).float() * 3 + 0.1 * torch.randn(24, 4, generator=g)
    noise = torch.randn(24, 4, generator=g)
    assert mt.leave_one_out_probe(informative, y) == 1.0
    assert mt.leave_one_out_probe(noise, y) < 0.6
    twins = torch.tensor([[0.0], [0.1], [5.0], [5.1]])
    assert mt.leave_one_out_probe(twins, torch.tensor([0, 0, 1, 1])) == 1.0
    assert mt.leave_one_out_probe(twins, torch.tensor([0, 1, 0, 1])) == 0.0, "an image must not be its own neighbour"


def test_negative_transfer_runs_pair_every_way_with_scratch():
    acc, probe = mt.negative_transfer_runs([0, 1], target_per_class=2, pretrain_steps=10, steps=5, batch_size=16,
                                           width=16)
    sources = ("MNIST labels", "shuffled labels")
    assert set(probe) == {"pixels", *sources}
    assert set(acc) == {"scratch", *(f"{s}: {w}" for s in sources for w in mt.NEGATIVE_TRANSFER_WAYS)}
    assert all(len(v) == 2 and all(0 <= a <= 1 for a in v) for v in [*acc.values(), *probe.values()])


def test_both_training_loops_use_the_device_pick_device_chooses(data, monkeypatch):
    """As tests/test_train_device.py does for the other lessons: 'cpu:7' is recorded when modules/tensors go there."""
    from torch import nn

    chosen = torch.device("cpu", 7)
    monkeypatch.setenv("TLCOURSE_DEVICE", "cpu:7")
    moved = {"modules": 0, "tensors": 0}
    module_to, tensor_to = nn.Module.to, torch.Tensor.to

    def is_chosen(where):
        try:
            return isinstance(where, (str, torch.device)) and torch.device(where) == chosen
        except RuntimeError:
            return False

    def record(kind, original):
        def to(self, *args, **kw):
            moved[kind] += any(map(is_chosen, (*args, kw.get("device"))))
            return original(self, *args, **kw)
        return to

    monkeypatch.setattr(nn.Module, "to", record("modules", module_to))
    monkeypatch.setattr(torch.Tensor, "to", record("tensors", tensor_to))
    mt.train_tasks(data, _forward, _loss, steps=2, batch_size=8, width=4)
    assert moved["modules"] >= 1 and moved["tensors"] >= 1, moved
    moved.update(modules=0, tensors=0)
    x, y = torch.rand(20, 1, 8, 8), torch.arange(20) % 10
    mt.train_classifier(x, y, steps=2, batch_size=8, width=4)
    assert moved["modules"] >= 1 and moved["tensors"] >= 1, moved
