"""Notebook 12's helpers: the split, the early-stopping loop and its checkpoints, the model file, the
learner's image, the backbone zoo, and the project summary."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tlcourse import load_fashion_mnist
from tlcourse.lessons import capstone as L
from tlcourse.profile import RUNTIME_BUDGET_S, profile


@pytest.fixture(scope="module")
def pool():
    return load_fashion_mnist("train", n=60, source="quick")


def test_sizes_and_budget():
    for name in ("quick", "full"):
        s = profile(name)["12"]
        assert {"image_size", "pool", "val_fraction", "max_epochs", "patience", "seeds"} <= set(s)
        assert s["seeds"] >= 3
    assert RUNTIME_BUDGET_S["12"] == 150


def test_split_is_stratified_and_disjoint(pool):
    train, val = L.train_val_split(pool, 0.2, seed=0)
    assert len(train) + len(val) == len(pool) and len(val) == 12
    assert np.bincount(val.labels, minlength=10).max() - np.bincount(val.labels, minlength=10).min() <= 1
    rows = {im.tobytes() for im in train.images}
    assert not any(im.tobytes() in rows for im in val.images)
    with pytest.raises(ValueError, match="fraction"):
        L.train_val_split(pool, 1.5)


def _first_best(scores, patience, mode):
    s = np.asarray(scores) if mode == "min" else -np.asarray(scores)
    best = int(np.argmin(s))
    return best, len(s) - 1 - best >= patience


def test_early_stopping_loop_keeps_the_best_checkpoint(pool, tmp_path):
    train, val = L.train_val_split(pool, 0.3, seed=0)
    model = L.build_classifier(10, 32, train_blocks=1, seed=0)
    frozen = model[1][0][0].weight.clone()
    history, best = L.train_with_early_stopping(model, train, val, stop_rule=_first_best, max_epochs=3, patience=1,
                                                lr=1e-3, batch_size=16, checkpoint=tmp_path / "best.pt")
    assert best == int(np.argmin(history["val_loss"]))
    assert torch.equal(model[1][0][0].weight, frozen), "frozen blocks must not train"
    state = torch.load(tmp_path / "best.pt", weights_only=False)
    assert state["epoch"] == best
    assert not list(tmp_path.glob(".best.pt.*")), "no temporary file left behind"

    def looks_ahead(scores, patience, mode):
        return len(scores), False  # an epoch that has not happened yet
    with pytest.raises(RuntimeError, match="later than"):
        L.train_with_early_stopping(L.build_classifier(10, 32, train_blocks=1), train, val, stop_rule=looks_ahead,
                                    max_epochs=1, patience=1, lr=1e-3, batch_size=16, checkpoint=tmp_path / "x.pt")


def test_batchnorm_statistics_stay_fixed(pool):
    model = L.build_classifier(10, 32, train_blocks=2).train()
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and not any(m.training for m in bns)


def test_model_file_round_trip(tmp_path):
    model = L.build_classifier(10, 32, seed=1).eval()
    path = L.save_model(tmp_path / "m.pt", model, [str(i) for i in range(10)])
    reloaded, classes = L.load_model(path)
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(model(x), reloaded(x), atol=1e-6)
    assert classes == [str(i) for i in range(10)]
    torch.load(path, weights_only=True)  # the file holds tensors and plain data only
    with pytest.raises(FileNotFoundError, match="saves the model"):
        L.load_model(tmp_path / "missing.pt")


def test_learners_image(tmp_path):
    from PIL import Image
    path = L.default_image_path()
    x = L.load_image(path)
    assert x.shape == (1, 28, 28) and 0 <= x.min() and x.max() <= 1
    light = np.full((40, 40), 240, np.uint8)
    light[10:30, 10:30] = 20  # a dark object on a light background, as in a photo
    Image.fromarray(light).save(tmp_path / "photo.png")
    y = L.load_image(tmp_path / "photo.png")
    assert y[0, 14, 14] > 0.8 and y[0, 0, 0] < 0.2, "inverted to Fashion-MNIST's light-on-dark"
    with pytest.raises(FileNotFoundError, match="MY_IMAGE"):
        L.load_image(tmp_path / "nope.jpg")
    top = L.predict_image(L.build_classifier(10, 32), x, [str(i) for i in range(10)], k=3)
    assert len(top) == 3 and top[0][1] >= top[1][1] >= top[2][1]


def test_zoo_rows_say_what_was_measured():
    rows = L.backbone_zoo(skip=("VGG-16", "ResNet-50", "Inception-v3", "ResNet-18", "EfficientNet-Lite0"),
                          repeats=1, probe={"MobileNetV2": 0.5})
    by = {r["backbone"]: r for r in rows}
    assert set(by) == {"VGG-16", "ResNet-18", "ResNet-50", "Inception-v3", "Xception", "MobileNetV2",
                       "EfficientNet-Lite0"}
    mb = by["MobileNetV2"]
    assert abs(mb["params (M)"] - 3.5049) < 1e-3 and mb["GFLOPs"] > 0 and mb["latency ms"] > 0
    assert mb["ImageNet top-1 (published)"] == pytest.approx(71.878)
    assert by["ResNet-50"]["ImageNet top-1 (published)"] == pytest.approx(80.858)
    assert by["VGG-16"]["GFLOPs"] is None and "skipped" in by["VGG-16"]["note"]
    assert "0.500" in L.zoo_table(rows)
    xc = by["Xception"]  # timm is a requirement: built from its architecture, measured, top-1 from the paper
    assert xc["params (M)"] == pytest.approx(22.855952, rel=1e-6), "Chollet 2017 gives 22,855,952 parameters"
    assert xc["GFLOPs"] > 0 and xc["latency ms"] > 0
    assert xc["ImageNet top-1 (published)"] == 79.0 and "Chollet 2017" in xc["note"]


def test_zoo_without_timm_still_measures_the_rest(monkeypatch):
    real = L.importlib.util.find_spec
    monkeypatch.setattr(L.importlib.util, "find_spec", lambda name, *a: None if name == "timm" else real(name, *a))
    rows = L.backbone_zoo(skip=("VGG-16", "ResNet-50", "Inception-v3", "ResNet-18", "EfficientNet-Lite0"), repeats=1)
    by = {r["backbone"]: r for r in rows}
    assert by["Xception"]["GFLOPs"] is None and "needs timm" in by["Xception"]["note"]
    assert by["Xception"]["ImageNet top-1 (published)"] == 79.0
    assert by["MobileNetV2"]["GFLOPs"] > 0


def test_flops_scale_with_input_area():
    import torchvision
    m = torchvision.models.resnet18(weights=None)
    assert 3.5 < L.flops(m, 64) / L.flops(m, 32) < 4.5


def test_summaries():
    assert "won 2 of 3 seeds" in L.paired_summary([0.5, 0.6, 0.7], [0.6, 0.7, 0.6], "a", "b")
    assert L.confusion_pairs([0, 0, 1, 1, 1], [1, 1, 0, 1, 1], ["x", "y"], k=1) == [("x", "y", 2)]
    text = L.project_summary(dict(backbone="b", strategy="s", dataset="d", seeds=[0, 1, 2], baseline=[0.1, 0.2, 0.3],
                                  transfer=[0.4, 0.5, 0.6], ablation={"other": [0.3, 0.5, 0.7]}, transfer_mean=0.5))
    assert "transfer won 3 of 3 seeds" in text and "other" in text
