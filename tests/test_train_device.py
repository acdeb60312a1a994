"""Every lesson's training entry point trains on the device that ``pick_device`` chooses.

There is no GPU here, so ``TLCOURSE_DEVICE`` names a recognisable CPU device,
``cpu:7``: it computes like the CPU, and every ``.to()`` aimed at it is
recorded. An entry point passes when it moved its modules and its tensors
there: a loop that ignores the chosen device (as notebooks 05 and 06 did
before their loops went through :func:`tlcourse.train.run_steps`) moves
nothing and fails.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from tlcourse.data import TextDataset
from tlcourse.device import pick_device
from tlcourse.lessons import (classical_transfer, distillation, domain_adaptation, fine_tuning, nlp_transfer,
                              self_taught, zero_shot)
from tlcourse.models import SmallCNN
from tlcourse.train import fit, make_loader, run_steps

CHOSEN = torch.device("cpu", 7)


def _is_chosen(where) -> bool:
    try:
        return isinstance(where, (str, torch.device)) and torch.device(where) == CHOSEN
    except RuntimeError:  # a string that is no device, e.g. a dtype name
        return False


@pytest.fixture
def moved(monkeypatch):
    """Counts of modules and tensors sent to the chosen device while the test runs."""
    monkeypatch.setenv("TLCOURSE_DEVICE", "cpu:7")
    assert pick_device() == CHOSEN
    record = {"modules": 0, "tensors": 0}
    module_to, tensor_to = nn.Module.to, torch.Tensor.to

    def record_module(self, *args, **kw):
        if any(map(_is_chosen, (*args, kw.get("device")))):
            record["modules"] += 1
        return module_to(self, *args, **kw)

    def record_tensor(self, *args, **kw):
        if any(map(_is_chosen, (*args, kw.get("device")))):
            record["tensors"] += 1
        return tensor_to(self, *args, **kw)

    monkeypatch.setattr(nn.Module, "to", record_module)
    monkeypatch.setattr(torch.Tensor, "to", record_tensor)
    return record


def _assert_on_chosen(record):
    assert record["modules"] >= 1, "no module was moved to the device pick_device chose"
    assert record["tensors"] >= 1, "no tensor was moved to the device pick_device chose"


def _pair(n: int = 48, size: int = 8) -> domain_adaptation.DomainPair:
    g = torch.Generator().manual_seed(0)
    x = lambda m: torch.rand(m, 1, size, size, generator=g)  # noqa: E731
    y = lambda m: torch.randint(0, 10, (m,), generator=g)  # noqa: E731
    return domain_adaptation.DomainPair(x(n), y(n), x(16), y(16), x(n), y(n), x(16), y(16), size, 0)


def _ce_step(model, optimizer, x, y, t, loss_fn):
    optimizer.zero_grad()
    loss = loss_fn(model(x), y, t)
    loss.backward()
    optimizer.step()
    return loss.item()


def _ce(logits, y, _t):
    return F.cross_entropy(logits, y)


def test_run_steps_moves_each_batch_and_returns_the_steps_outputs(moved):
    seen = []
    out = run_steps(lambda b: seen.append(b) or float(b[0].sum()), [(torch.ones(2), {"m": torch.zeros(1)})])
    assert out == [2.0] and moved["tensors"] == 2 and isinstance(seen[0][1], dict)


def test_fit_trains_on_the_chosen_device(moved):
    data = TensorDataset(torch.randn(16, 4), torch.randint(0, 2, (16,)))
    fit(nn.Linear(4, 2), make_loader(data, batch_size=8), epochs=1, progress=False)
    _assert_on_chosen(moved)


@pytest.mark.parametrize("train", [
    lambda p: domain_adaptation.pixel_baseline(p, steps=3),
    lambda p: domain_adaptation.train_source_only(p, epochs=1, batch_size=16, width=4),
    lambda p: domain_adaptation.train_oracle(p, epochs=1, batch_size=16, width=4),
    lambda p: domain_adaptation.train_dann(p, epochs=1, batch_size=16, width=4),
    lambda p: domain_adaptation.train_matching(p, epochs=1, batch_size=16, width=4),
], ids=["pixel_baseline", "train_source_only", "train_oracle", "train_dann", "train_matching"])
def test_domain_adaptation_loops_train_on_the_chosen_device(moved, train):
    train(_pair())
    _assert_on_chosen(moved)


def test_distillation_loops_train_on_the_chosen_device(moved):
    x, y = torch.rand(32, 1, 8, 8), torch.randint(0, 3, (32,))
    distillation.train_linear_head(torch.randn(32, 5), y, 3, steps=2)  # notebook 04 calls it by this name
    _assert_on_chosen(moved)
    moved.update(modules=0, tensors=0)
    distillation.train_student(SmallCNN(3, width=4), x, y, torch.zeros(32, 3), _ce_step, _ce, epochs=1,
                               batch_size=16)
    _assert_on_chosen(moved)
    moved.update(modules=0, tensors=0)
    distillation.train_hint(SmallCNN(3, width=4).features, x, torch.randn(32, 6), epochs=1, batch_size=16)
    _assert_on_chosen(moved)


def _projection_step(projection, optimizer, x, targets, class_embeddings, temperature):
    logits = F.normalize(projection(x), dim=1) @ F.normalize(class_embeddings, dim=1).T / temperature
    loss = F.cross_entropy(logits, targets)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def test_zero_shot_loops_train_on_the_chosen_device(moved):
    feats, labels = torch.randn(30, 6), torch.arange(30) % 3
    projection, _ = zero_shot.fit_projection(_projection_step, feats, labels, torch.randn(3, 4), epochs=1,
                                             batch_size=10)
    assert next(projection.parameters()).device.type == "cpu"
    _assert_on_chosen(moved)
    moved.update(modules=0, tensors=0)
    zero_shot.fit_attribute_predictors(feats, labels, np.eye(3, 4), steps=2)
    _assert_on_chosen(moved)


class _TorchvisionLayout(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))
        self.classifier = nn.Linear(4, 2)

    def forward(self, x):
        return self.classifier(self.features(x))


def test_fine_tuning_runners_train_on_the_chosen_device(moved):
    x, y = torch.randn(16, 4), torch.randint(0, 2, (16,))
    fine_tuning.train_head_on_features(nn.Linear(4, 2), x, y, x, y, epochs=1, lr=1e-2, batch_size=8)
    _assert_on_chosen(moved)
    moved.update(modules=0, tensors=0)
    net = _TorchvisionLayout()
    fine_tuning.UnfreezingProfiler(net, net.classifier, x, y, steps=1).images_per_second(1)
    _assert_on_chosen(moved)


class _ByteTokenizer:
    """Characters as ids: enough of a tokenizer for ``encode``."""

    def __call__(self, texts, padding=True, truncation=True, max_length=16, return_tensors="pt"):
        ids = [[1 + ord(c) % 50 for c in t][:max_length] for t in texts]
        width = max(map(len, ids))
        return {"input_ids": torch.tensor([i + [0] * (width - len(i)) for i in ids]),
                "attention_mask": torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i in ids])}


class _BagOfIds(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed, self.head = nn.Embedding(64, 4), nn.Linear(4, 2)

    def forward(self, input_ids, attention_mask):
        return self.head((self.embed(input_ids) * attention_mask[..., None]).mean(1))


def test_nlp_finetune_trains_on_the_chosen_device(moved):
    data = TextDataset(["good film", "great fun", "dull", "awful mess"], np.array([1, 1, 0, 0]), name="tiny")
    nlp_transfer.finetune(_BagOfIds(), _ByteTokenizer(), data, steps=2, batch_size=2, max_length=8, log_every=1)
    _assert_on_chosen(moved)


def _nt_xent(z1, z2, temperature):
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = (z @ z.T / temperature).fill_diagonal_(float("-inf"))
    n = len(z1)
    return F.cross_entropy(sim, torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(sim.device))


def test_self_taught_loops_train_on_the_chosen_device(moved):
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(24, 1, 12, 12, generator=g), torch.arange(24) % 3
    encoder, _ = self_taught.pretrain_contrastive(x, _nt_xent, 0.5, epochs=1, width=2, batch_size=8)
    _assert_on_chosen(moved)
    moved.update(modules=0, tensors=0)
    self_taught.probe_accuracy(torch.randn(24, 5), y, torch.randn(12, 5), y[:12])
    _assert_on_chosen(moved)
    moved.update(modules=0, tensors=0)
    data = self_taught.SelfTaughtData(x, x, y, x[:12], y[:12], ("a", "b", "c"), "tiny")
    self_taught.fine_tune_accuracy(encoder, data, np.arange(12), steps=2, batch_size=6)
    _assert_on_chosen(moved)
    moved.update(modules=0, tensors=0)
    column = nn.Sequential(nn.Flatten(), nn.Linear(144, 3))
    self_taught.train_epochs(column, x, y, epochs=1, seed=0, batch_size=8)
    _assert_on_chosen(moved)


@pytest.mark.parametrize("align", ["none", "coral", "dann"])
def test_classical_transfer_head_trains_on_the_chosen_device(moved, align):
    rng = np.random.default_rng(0)
    xs, ys, xt = rng.normal(size=(40, 6)), rng.integers(0, 3, 40), rng.normal(size=(30, 6))
    head = classical_transfer.train_head(xs, ys, xt, align=align, steps=3, batch_size=8)
    _assert_on_chosen(moved)
    assert 0.0 <= classical_transfer.head_accuracy(head, xs, ys) <= 1.0
