"""tlcourse.lessons.fine_tuning: block listing, trainable summary, BatchNorm policy and drift,
schedules, runners, the results table and the forgetting probe."""
from __future__ import annotations

import copy

import pytest
import torch
import torchvision
from torch import nn
from torch.utils.data import TensorDataset

from tlcourse.lessons import fine_tuning as ft


@pytest.fixture(scope="module")
def mnv2():
    torch.manual_seed(0)
    return torchvision.models.mobilenet_v2(num_classes=10)


def test_body_blocks_mobilenet_v2(mnv2):
    blocks = ft.body_blocks(mnv2)
    assert len(blocks) == 19
    assert blocks[0] is mnv2.features[0] and blocks[-1] is mnv2.features[18]
    body = {id(p) for b in blocks for p in b.parameters()}
    assert body == {id(p) for p in mnv2.features.parameters()}
    assert not body & {id(p) for p in mnv2.classifier.parameters()}
    # through the input-transform wrapper, too
    assert ft.body_blocks(ft.with_input_transform(mnv2, 32))[5] is mnv2.features[5]


def test_body_blocks_efficientnet_and_sequential():
    from efficientnet_lite_pytorch import EfficientNet
    import contextlib, io
    with contextlib.redirect_stdout(io.StringIO()):
        net = EfficientNet.from_name("efficientnet-lite0")
    blocks = ft.body_blocks(net)
    assert len(blocks) == 18
    body = {id(p) for b in blocks for p in b.parameters()}
    fc = {id(p) for p in net._fc.parameters()}
    assert body | fc == {id(p) for p in net.parameters()} and not body & fc
    seq = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    assert ft.body_blocks(seq) == list(seq)
    with pytest.raises(TypeError, match="body_blocks"):
        ft.body_blocks(nn.Linear(2, 2))


def test_with_input_transform_accepts_grey_images(mnv2):
    model = ft.with_input_transform(copy.deepcopy(mnv2), 32).eval()
    with torch.no_grad():
        assert model(torch.rand(3, 1, 28, 28)).shape == (3, 10)


def test_trainable_summary_counts(mnv2, capsys):
    net = copy.deepcopy(mnv2)
    ft.set_trainable(net, False)
    ft.set_trainable(net.features[18], True)
    ft.set_trainable(net.classifier, True)
    rows = ft.trainable_summary(net, head=net.classifier)
    out = capsys.readouterr().out
    assert len(rows) == 20 and rows[-1]["name"] == "head"
    assert [r["trainable"] > 0 for r in rows] == [False] * 18 + [True, True]
    total = sum(p.numel() for p in net.parameters() if p.requires_grad)
    assert f"trainable {total:,}" in out
    assert sum(r["params"] for r in rows) == sum(p.numel() for p in net.parameters())
    assert "." * 18 + "##" in out


def _bn_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 4), nn.BatchNorm1d(4))


def test_keep_bn_eval_frozen_only():
    net = _bn_net()
    ft.set_trainable(net[1], False)
    ft.keep_bn_eval(net)
    before = ft.bn_running_stats(net)
    net.train()
    net(torch.randn(16, 3) * 5 + 3)
    after = ft.bn_running_stats(net)
    assert torch.equal(before["1"][0], after["1"][0]), "a frozen BatchNorm must keep its statistics"
    assert not torch.equal(before["3"][0], after["3"][0]), "a trainable BatchNorm trains normally"
    assert ft.bn_drift(before, after) > 0
    # unfrozen later: trains normally from the next train()
    ft.set_trainable(net[1], True)
    net.train()
    net(torch.randn(16, 3))
    assert not torch.equal(before["1"][0], ft.bn_running_stats(net)["1"][0])


def test_keep_bn_eval_all_and_idempotent():
    net = ft.keep_bn_eval(ft.keep_bn_eval(_bn_net(), only_frozen=False), only_frozen=False)
    assert len(net[1]._forward_pre_hooks) == 1
    before = ft.bn_running_stats(net)
    net.train()
    out = net(torch.randn(16, 3) * 5)
    assert ft.bn_drift(before, ft.bn_running_stats(net)) == 0.0
    out.sum().backward()
    assert net[1].weight.grad is not None, "scale and shift still train"


def test_forward_in_train_mode_moves_stats_but_not_weights():
    net = _bn_net()
    ds = TensorDataset(torch.randn(40, 3) + 2, torch.zeros(40, dtype=torch.long))
    w = net[0].weight.clone()
    before = ft.bn_running_stats(net)
    net.eval()
    ft.forward_in_train_mode(net, ds, batch_size=8, batches=3)
    assert not net.training
    assert torch.equal(w, net[0].weight)
    assert ft.bn_drift(before, ft.bn_running_stats(net)) > 0.1


def test_stage_schedule():
    assert ft.stage_schedule(3, (0, 5, 19)) == [0, 5, 19]
    assert ft.stage_schedule(6, (0, 5, 19)) == [0, 0, 5, 5, 19, 19]
    assert ft.stage_schedule(2, (0, 19)) == [0, 19]
    with pytest.raises(ValueError):
        ft.stage_schedule(0, (0,))


def _blobs(n=60, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    x = torch.randn(3, 5, generator=g)[y] * 3 + torch.randn(n, 5, generator=g)
    return TensorDataset(x, y)


def test_train_schedule_calls_hook_each_epoch_and_learns():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 3))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    calls = []
    r = ft.train_schedule(model, _blobs(), _blobs(seed=0), optimizer=opt, epochs=3, batch_size=16,
                          on_epoch=calls.append, device="cpu")
    assert calls == [0, 1, 2]
    assert r["history"].epochs == 3 and r["acc"] > 0.8 and r["seconds"] > 0


def test_train_head_on_features():
    ds = _blobs(90)
    x, y = ds.tensors
    r = ft.train_head_on_features(nn.Linear(5, 3), x, y, x, y, epochs=5, lr=1e-2, device="cpu")
    assert r["acc"] > 0.8 and 0 <= r["train_acc"] <= 1


def test_run_comparison_table_and_plot(capsys):
    methods = {"a": lambda s: {"acc": 0.5 + s / 10, "seconds": 1.0},
               "b": lambda s: {"acc": 0.7, "seconds": 2.0, "imagenet_top1": 0.9}}
    res = ft.run_comparison(methods, seeds=[0, 1])
    assert [r["acc"] for r in res["a"]] == [0.5, 0.6]
    table = ft.seed_summary(res)
    out = capsys.readouterr().out
    assert table[0]["acc"] == pytest.approx((0.55, 0.05))
    assert "imagenet_top1" not in table[0] and table[1]["imagenet_top1"] == (0.9, 0.0)
    assert "imagenet_top1" in out and "-" in out
    fig = ft.plot_comparison(res, chance=0.1, title="t")
    assert len(fig.axes) == 2
    import matplotlib.pyplot as plt
    plt.close(fig)


def test_imagenet_top1_reattaches_head_without_changing_net(mnv2):
    net = copy.deepcopy(mnv2).eval()
    imagenet_head = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, 1000))
    photos = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        probe = copy.deepcopy(net)
        probe.classifier = imagenet_head
        labels = probe.eval()(photos).argmax(1).tolist()
    assert ft.imagenet_top1(net, imagenet_head, photos, labels) == 1.0
    assert net.classifier[-1].out_features == 10


def test_library_does_not_ship_the_graded_functions():
    import tlcourse
    for name in ("replace_head", "make_param_groups", "unfreeze_last"):
        assert not hasattr(ft, name) and not hasattr(tlcourse, name)
