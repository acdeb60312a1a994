"""``fit``/``evaluate``/``predict``, device choice and seeding, on tiny synthetic problems."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tlcourse import train as train_mod
from tlcourse.device import pick_device, seed_everything
from tlcourse.train import (History, TargetMismatchError, evaluate, fit, load_checkpoint, make_loader, predict,
                            save_checkpoint)


def blobs(n_per_class=60, classes=3, dim=2, seed=0, spread=0.4):
    """Well separated Gaussian blobs: a linearly separable classification problem."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[3.0 * np.cos(2 * np.pi * c / classes), 3.0 * np.sin(2 * np.pi * c / classes)]
                            + [0.0] * (dim - 2) for c in range(classes)], dtype=torch.float32)
    x = torch.cat([centres[c] + spread * torch.randn(n_per_class, dim, generator=g) for c in range(classes)])
    y = torch.arange(classes).repeat_interleave(n_per_class)
    return TensorDataset(x, y)


def mlp(seed=0, dim=2, classes=3, hidden=16):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, classes))


def state_copy(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same_state(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


FIT = dict(device="cpu", progress=False)


# ------------------------------------------------------------------ learning

def test_fit_learns_a_separable_problem():
    seed_everything(0)
    train = make_loader(blobs(seed=0), batch_size=16, shuffle=True, device=torch.device("cpu"), seed=0)
    val = DataLoader(blobs(n_per_class=40, seed=1), batch_size=64)
    model = mlp()
    before = evaluate(model, val)
    hist = fit(model, train, val, epochs=15, lr=1e-2, **FIT)
    after = evaluate(model, val)
    assert before["acc"] < 0.8
    assert after["acc"] >= 0.95 and hist["val_acc"][-1] == pytest.approx(after["acc"])
    assert hist["train_loss"][-1] < hist["train_loss"][0] / 3
    assert isinstance(hist, History) and hist.epochs == 15
    assert hist.best("val_acc") >= after["acc"] - 1e-9 and hist.best("val_loss", "min") <= hist["val_loss"][0]


def test_history_records_every_epoch():
    model = mlp()
    hist = fit(model, DataLoader(blobs(), batch_size=32), DataLoader(blobs(seed=1), batch_size=64),
               epochs=3, **FIT)
    assert set(hist) == {"train_loss", "train_acc", "lr", "epoch_time", "val_loss", "val_acc"}
    assert all(len(v) == 3 for v in hist.values())
    assert all(0.0 <= a <= 1.0 for a in hist["train_acc"] + hist["val_acc"])
    assert hist["lr"] == [1e-3] * 3 and all(t > 0 for t in hist["epoch_time"])
    assert "3 epochs" in repr(hist)
    # without validation only train_* are logged
    hist2 = fit(mlp(), DataLoader(blobs(), batch_size=32), epochs=2, **FIT)
    assert set(hist2) == {"train_loss", "train_acc", "lr", "epoch_time"}


def test_history_extends_a_given_history():
    hist = History()
    fit(mlp(), DataLoader(blobs(), batch_size=32), epochs=2, history=hist, **FIT)
    fit(mlp(), DataLoader(blobs(), batch_size=32), epochs=1, history=hist, **FIT)
    assert hist.epochs == 3


def test_scheduler_is_stepped_per_batch():
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    loader = DataLoader(blobs(n_per_class=20), batch_size=20)  # 3 batches per epoch
    hist = fit(model, loader, epochs=2, optimizer=opt, scheduler=sched, **FIT)
    assert hist["lr"] == pytest.approx([0.1 * 0.5 ** 3, 0.1 * 0.5 ** 6])


# ------------------------------------------------------------------ optimiser options

def test_param_groups_learning_rates_reach_the_optimizer():
    # Adam's first step moves every weight by about lr (m/sqrt(v) = sign(g)),
    # so the size of the first update reads off each group's learning rate.
    model = mlp()
    body, head = model[0], model[2]
    b0, h0 = state_copy(body), state_copy(head)
    one_batch = DataLoader(blobs(n_per_class=10), batch_size=30)
    hist = fit(model, one_batch, epochs=1, lr=0.5, param_groups=[
        {"params": list(body.parameters()), "lr": 1e-2},
        {"params": list(head.parameters()), "lr": 1e-4},
    ], **FIT)
    body_step = max((body.state_dict()[k] - b0[k]).abs().max().item() for k in b0)
    head_step = max((head.state_dict()[k] - h0[k]).abs().max().item() for k in h0)
    assert body_step == pytest.approx(1e-2, rel=0.05)
    assert head_step == pytest.approx(1e-4, rel=0.05)
    assert hist["lr"] == [1e-2]


def test_param_group_with_zero_lr_is_frozen():
    model = mlp()
    b0, h0 = state_copy(model[0]), state_copy(model[2])
    fit(model, DataLoader(blobs(), batch_size=32), epochs=2, param_groups=[
        {"params": list(model[0].parameters()), "lr": 0.0},
        {"params": list(model[2].parameters()), "lr": 1e-2},
    ], **FIT)
    assert same_state(state_copy(model[0]), b0)
    assert not same_state(state_copy(model[2]), h0)


def test_param_groups_accept_parameter_generators():
    model = mlp()
    w0 = model[0].weight.detach().clone()
    fit(model, DataLoader(blobs(), batch_size=32), epochs=1, param_groups=[
        {"params": model[0].parameters(), "lr": 1e-2},
        {"params": model[2].parameters(), "lr": 1e-2},
    ], **FIT)
    assert not torch.equal(model[0].weight, w0)


def test_grad_clip_bounds_the_update_norm():
    # plain SGD with lr=1: the update is minus the (clipped) gradient
    def one_step(clip):
        model = mlp(seed=3)
        w0 = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
        x = torch.randn(32, 2, generator=torch.Generator().manual_seed(0)) * 50  # large gradients
        y = torch.randint(0, 3, (32,), generator=torch.Generator().manual_seed(1))
        fit(model, DataLoader(TensorDataset(x, y), batch_size=32), epochs=1, grad_clip=clip,
            optimizer=torch.optim.SGD(model.parameters(), lr=1.0), **FIT)
        return (torch.cat([p.detach().flatten() for p in model.parameters()]) - w0).norm().item()

    raw = one_step(None)
    assert raw > 2.0
    assert one_step(0.5) == pytest.approx(0.5, rel=1e-4)
    assert one_step(raw * 10) == pytest.approx(raw, rel=1e-5)  # a loose clip changes nothing


def test_no_trainable_parameters_is_a_value_error():
    model = mlp()
    for p in model.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        fit(model, DataLoader(blobs(), batch_size=32), epochs=1, **FIT)


# ------------------------------------------------------------------ early stopping

def _misleading_val():
    """Validation labels shifted by one class: the better the fit, the worse val_loss."""
    ds = blobs(n_per_class=30, seed=2)
    x, y = ds.tensors
    return DataLoader(TensorDataset(x, (y + 1) % 3), batch_size=90)


class _ValThatTurns:
    """A validation loader whose labels are right for the first ``turn`` passes, then shifted:
    val_loss falls while training helps, then rises, so the best epoch is not the first."""

    def __init__(self, turn: int):
        self.turn, self.passes = turn, 0
        self.x, self.y = blobs(n_per_class=30, seed=2).tensors

    def __iter__(self):
        self.passes += 1
        y = self.y if self.passes <= self.turn else (self.y + 1) % 3
        return iter([(self.x, y)])


def test_early_stopping_stops_and_restores_best_weights():
    train = DataLoader(blobs(), batch_size=16)
    patience, max_epochs, turn = 2, 30, 3
    model = mlp(seed=1)
    hist = fit(model, train, _ValThatTurns(turn), epochs=max_epochs, lr=1e-2, early_stopping=patience, **FIT)
    best_epoch = int(np.argmin(hist["val_loss"]))
    assert best_epoch == turn - 1  # the setup works as intended
    assert hist.epochs == best_epoch + 1 + patience < max_epochs

    # the same run, stopped by hand at the best epoch and at the last one
    at_best = mlp(seed=1)
    fit(at_best, train, epochs=best_epoch + 1, lr=1e-2, **FIT)
    at_last = mlp(seed=1)
    fit(at_last, train, epochs=hist.epochs, lr=1e-2, **FIT)
    assert same_state(state_copy(model), state_copy(at_best))
    assert not same_state(state_copy(model), state_copy(at_last))
    assert evaluate(model, _ValThatTurns(turn))["loss"] == pytest.approx(min(hist["val_loss"]), rel=1e-5)


def test_early_stopping_without_improvement_keeps_the_first_epoch():
    train = DataLoader(blobs(), batch_size=16)
    model = mlp(seed=1)
    hist = fit(model, train, _misleading_val(), epochs=30, lr=1e-2, early_stopping=2, **FIT)
    assert hist.epochs == 3 and int(np.argmin(hist["val_loss"])) == 0
    first = mlp(seed=1)
    fit(first, train, epochs=1, lr=1e-2, **FIT)
    assert same_state(state_copy(model), state_copy(first))


def test_early_stopping_on_unlogged_metric_is_explained():
    with pytest.raises(ValueError, match="pass val_loader"):
        fit(mlp(), DataLoader(blobs(), batch_size=32), epochs=2, early_stopping=1, **FIT)


def test_early_stopping_max_mode_monitor():
    hist = fit(mlp(seed=1), DataLoader(blobs(), batch_size=16), _misleading_val(), epochs=30, lr=1e-2,
               early_stopping=3, monitor="val_acc", **FIT)
    assert hist.epochs < 30
    best_epoch = int(np.argmax(hist["val_acc"]))
    assert hist.epochs == best_epoch + 1 + 3


# ------------------------------------------------------------------ checkpoints

def test_checkpoint_is_written_atomically(tmp_path):
    ckpt = tmp_path / "run" / "model.pt"
    fit(mlp(), DataLoader(blobs(), batch_size=32), epochs=2, checkpoint=ckpt, **FIT)
    assert [p.name for p in ckpt.parent.iterdir()] == ["model.pt"]  # no temporary files left
    state = load_checkpoint(ckpt)
    assert state["epoch"] == 1 and len(state["history"]["train_loss"]) == 2
    assert set(state) >= {"model", "optimizer", "scheduler", "history", "epoch"}


def test_interrupted_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    ckpt = tmp_path / "ck.pt"
    save_checkpoint(ckpt, epoch=1, payload=torch.arange(5))

    def half_write(obj, fh, *a, **kw):
        fh.write(b"PK\x03\x04 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(train_mod.torch, "save", half_write)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(ckpt, epoch=2, payload=torch.arange(7))
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]
    state = load_checkpoint(ckpt)
    assert state["epoch"] == 1 and torch.equal(state["payload"], torch.arange(5))


def test_resume_continues_to_the_same_weights(tmp_path):
    train = DataLoader(blobs(), batch_size=16)
    val = DataLoader(blobs(seed=1), batch_size=64)

    straight = mlp(seed=5)
    hist_straight = fit(straight, train, val, epochs=4, lr=1e-2, **FIT)

    ckpt = tmp_path / "ck.pt"
    first = mlp(seed=5)
    fit(first, train, val, epochs=2, lr=1e-2, checkpoint=ckpt, **FIT)
    assert load_checkpoint(ckpt)["epoch"] == 1

    resumed = mlp(seed=99)  # a fresh process would start from other weights
    calls = []
    hist = fit(resumed, train, val, epochs=4, lr=1e-2, checkpoint=ckpt, resume=True,
               history=_Recording(calls), **FIT)
    assert same_state(state_copy(resumed), state_copy(straight))
    assert hist.epochs == 4
    assert hist["train_loss"] == pytest.approx(hist_straight["train_loss"], rel=1e-6)
    assert hist["val_acc"] == pytest.approx(hist_straight["val_acc"])
    assert len(calls) == 2  # only epochs 3 and 4 were trained
    assert load_checkpoint(ckpt)["epoch"] == 3


class _Recording(History):
    def __init__(self, calls):
        super().__init__()
        self._calls = calls

    def log(self, **values):
        self._calls.append(values)
        super().log(**values)


def test_resume_with_a_seeded_shuffled_loader_matches_an_uninterrupted_run(tmp_path):
    def loader():
        return make_loader(blobs(), batch_size=16, shuffle=True, device=torch.device("cpu"), seed=0)

    straight = mlp(seed=5)
    fit(straight, loader(), epochs=4, lr=1e-2, **FIT)
    ckpt = tmp_path / "ck.pt"
    fit(mlp(seed=5), loader(), epochs=2, lr=1e-2, checkpoint=ckpt, **FIT)
    resumed = mlp(seed=99)
    fit(resumed, loader(), epochs=4, lr=1e-2, checkpoint=ckpt, resume=True, **FIT)
    assert same_state(state_copy(resumed), state_copy(straight))


def test_resume_when_already_finished_trains_nothing(tmp_path):
    ckpt = tmp_path / "ck.pt"
    train = DataLoader(blobs(), batch_size=32)
    done = mlp()
    fit(done, train, epochs=2, checkpoint=ckpt, **FIT)
    again = mlp(seed=42)
    hist = fit(again, train, epochs=2, checkpoint=ckpt, resume=True, **FIT)
    assert same_state(state_copy(again), state_copy(done)) and hist.epochs == 2


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    ckpt = tmp_path / "ck.pt"
    ckpt.write_bytes(b"not a checkpoint at all")
    with pytest.raises(RuntimeError) as info:
        fit(mlp(), DataLoader(blobs(), batch_size=32), epochs=1, checkpoint=ckpt, resume=True, **FIT)
    assert str(ckpt) in str(info.value) and "could not be read" in str(info.value)
    assert "delete it" in str(info.value)


# ------------------------------------------------------------------ output/target mismatches

class Flatten1D(nn.Module):
    """Returns one number per example: shape (B,)."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 1)

    def forward(self, x):
        return self.lin(x).squeeze(1)


class MergesBatch(nn.Module):
    """A bad view(): the batch is merged into one row, (1, B * C)."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 3)

    def forward(self, x):
        return self.lin(x).view(1, -1)


def _xy(labels):
    x = torch.randn(len(labels), 2, generator=torch.Generator().manual_seed(0))
    return DataLoader(TensorDataset(x, labels), batch_size=8)


@pytest.mark.parametrize("model,labels,needles", [
    (lambda: mlp(classes=3), torch.tensor([0, 1, 2, 3, 4, 0, 1, 2]), ["label is 4", "3 outputs", "one output per class"]),
    (Flatten1D, torch.tensor([0, 1, 0, 1, 0, 1, 0, 1]), ["(batch, num_classes)", "(8,)", "nn.Linear"]),
    (lambda: mlp(classes=3), torch.tensor([0., 1., 2., 0., 1., 2., 0., 1.]), ["torch.float32", ".long()"]),
    (MergesBatch, torch.tensor([0, 1, 2, 0, 1, 2, 0, 1]), ["(1, 24)", "batch of 8", "first dimension"]),
], ids=["label-too-large", "1d-output", "float-labels", "batch-merged"])
def test_shape_mismatch_errors_explain_the_fix(model, labels, needles):
    with pytest.raises(TargetMismatchError) as info:
        fit(model(), _xy(labels), epochs=1, **FIT)
    msg = str(info.value)
    for needle in needles:
        assert needle in msg, (needle, msg)
    assert isinstance(info.value, ValueError)


def test_regression_loss_mismatch():
    x = torch.randn(8, 2)
    with pytest.raises(TargetMismatchError, match="one shape"):
        fit(nn.Linear(2, 1), DataLoader(TensorDataset(x, torch.randn(8)), batch_size=8), epochs=1,
            loss_fn=nn.MSELoss(), **FIT)
    # the right shape trains
    hist = fit(nn.Linear(2, 1), DataLoader(TensorDataset(x, torch.randn(8, 1)), batch_size=8), epochs=1,
               loss_fn=nn.MSELoss(), **FIT)
    assert hist.epochs == 1


def test_batches_without_targets_are_rejected():
    loader = DataLoader(TensorDataset(torch.randn(8, 2)), batch_size=4)
    with pytest.raises(TargetMismatchError, match="no targets"):
        fit(mlp(), loader, epochs=1, **FIT)


def test_dict_batches_with_labels_train():
    class DictModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 3)

        def forward(self, features):
            return self.lin(features)

    ds = blobs()
    x, y = ds.tensors
    batches = [{"features": x[i:i + 30], "labels": y[i:i + 30]} for i in range(0, len(y), 30)]
    model = DictModel()
    torch.manual_seed(0)
    hist = fit(model, batches, epochs=30, lr=5e-2, **FIT)
    assert hist["train_acc"][-1] > 0.9
    assert evaluate(model, batches)["acc"] > 0.9


# ------------------------------------------------------------------ evaluate / predict

class Spy(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 3)
        self.seen = []

    def forward(self, x):
        self.seen.append((self.training, torch.is_grad_enabled()))
        return self.lin(x)


@pytest.mark.parametrize("start_training", [True, False])
def test_evaluate_and_predict_keep_mode_and_use_no_grad(start_training):
    model = Spy().train(start_training)
    loader = DataLoader(blobs(n_per_class=10), batch_size=8)
    assert torch.is_grad_enabled()
    result = evaluate(model, loader)
    assert set(result) == {"loss", "acc"} and 0 <= result["acc"] <= 1
    assert model.training is start_training
    out = predict(model, loader)
    assert model.training is start_training
    assert out.shape == (30, 3) and out.device.type == "cpu" and not out.requires_grad
    assert model.seen and all(s == (False, False) for s in model.seen)
    assert torch.is_grad_enabled()


def test_predict_matches_a_manual_forward_and_evaluate_counts_correctly():
    model = mlp(seed=2)
    ds = blobs(n_per_class=10)
    x, y = ds.tensors
    loader = DataLoader(ds, batch_size=7)
    with torch.no_grad():
        manual = model(x)
    assert torch.allclose(predict(model, loader), manual, atol=1e-6)
    res = evaluate(model, loader)
    assert res["acc"] == pytest.approx((manual.argmax(1) == y).float().mean().item())
    assert res["loss"] == pytest.approx(nn.functional.cross_entropy(manual, y).item(), rel=1e-5)


def test_evaluate_empty_loader():
    with pytest.raises(ValueError, match="empty"):
        evaluate(mlp(), [])


# ------------------------------------------------------------------ device and seeding

def test_pick_device_cpu_and_env(monkeypatch):
    assert pick_device("cpu") == torch.device("cpu")
    monkeypatch.setenv("TLCOURSE_DEVICE", "cpu")
    assert pick_device() == torch.device("cpu")


def test_pick_device_cuda_without_cuda_raises(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        pick_device("cuda")
    monkeypatch.setenv("TLCOURSE_DEVICE", "cuda:0")
    with pytest.raises(RuntimeError, match="TLCOURSE_DEVICE"):
        pick_device()


def test_pick_device_default_without_accelerators_is_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert pick_device() == torch.device("cpu")


def test_seed_everything_reproduces_python_numpy_and_torch():
    def sample():
        return random.random(), np.random.rand(3).tolist(), torch.rand(3).tolist()

    assert seed_everything(123) == 123
    a = sample()
    seed_everything(123)
    b = sample()
    seed_everything(124)
    c = sample()
    assert a == b
    assert all(x != y for x, y in zip(a, c))


def test_seeded_training_is_reproducible():
    def run():
        seed_everything(7)
        model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Dropout(0.2), nn.Linear(8, 3))
        loader = make_loader(blobs(), batch_size=16, shuffle=True, device=torch.device("cpu"), seed=7)
        fit(model, loader, epochs=2, **FIT)
        return state_copy(model)

    assert same_state(run(), run())
