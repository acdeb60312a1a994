"""Backbones and ``extract_features`` with the real, shipped weights (small inputs)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from tlcourse.backbones import BackboneTransform, count_parameters, load_backbone, load_imagenet_classifier
from tlcourse.data import load_fashion_mnist, load_imagenet_samples
from tlcourse.features import extract_features, features_cache_dir


@pytest.fixture(scope="module")
def fashion64():
    return load_fashion_mnist("train").subset(np.arange(64))


@pytest.fixture
def mobilenet(fresh_cache):
    """The real MobileNetV2 backbone at 32 px, with an empty feature cache."""
    return load_backbone("mobilenet_v2", image_size=32)


def _explode(*a, **kw):
    raise AssertionError("the backbone ran: the cache was not used")


def _cached_files():
    d = features_cache_dir()
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def test_extract_features_shapes_mode_and_no_grad(mobilenet, fashion64):
    model = mobilenet.model
    model.train()  # the caller's mode must come back unchanged
    before = {k: v.clone() for k, v in model.state_dict().items()}
    seen = []
    handle = model.register_forward_hook(lambda m, i, o: seen.append((m.training, torch.is_grad_enabled(),
                                                                       tuple(i[0].shape))))
    try:
        feats, labels = extract_features(mobilenet, fashion64, batch_size=32, device="cpu", progress=False)
    finally:
        handle.remove()
    assert feats.shape == (64, 1280) and feats.dtype == torch.float32 and feats.device.type == "cpu"
    assert torch.equal(labels, fashion64.targets) and labels.dtype == torch.int64
    assert torch.isfinite(feats).all() and feats.std() > 0
    assert seen == [(False, False, (32, 3, 32, 32))] * 2  # eval, no grad, transformed to 3x32x32
    assert model.training  # restored
    after = model.state_dict()  # eval mode: BatchNorm running stats untouched
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not feats.requires_grad
    # the features are the backbone's own output on the transformed images
    with torch.no_grad():
        direct = model.eval()(mobilenet.transforms(fashion64.tensor(slice(0, 4))))
    assert torch.allclose(feats[:4], direct, atol=1e-4)


def test_second_call_hits_the_cache(mobilenet, fashion64, monkeypatch):
    first = extract_features(mobilenet, fashion64, device="cpu", progress=False)
    files = _cached_files()
    assert len(files) == 1
    monkeypatch.setattr(mobilenet.model, "forward", _explode)
    second = extract_features(mobilenet, fashion64, device="cpu", progress=False)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    # an unshuffled DataLoader over the same dataset is the same data: cache hit too
    third = extract_features(mobilenet, DataLoader(fashion64, batch_size=16), device="cpu", progress=False)
    assert torch.equal(first[0], third[0])
    assert _cached_files() == files
    with pytest.raises(AssertionError, match="the backbone ran"):  # cache=False really recomputes
        extract_features(mobilenet, fashion64, device="cpu", progress=False, cache=False)


def test_changing_transform_size_misses_the_cache(mobilenet, fashion64, monkeypatch):
    extract_features(mobilenet, fashion64, device="cpu", progress=False)
    bigger = BackboneTransform(40, mobilenet.meta["mean"], mobilenet.meta["std"])
    out, _ = extract_features(mobilenet, fashion64, transform=bigger, device="cpu", progress=False)
    assert len(_cached_files()) == 2
    monkeypatch.setattr(mobilenet.model, "forward", _explode)
    with pytest.raises(AssertionError, match="the backbone ran"):
        extract_features(mobilenet, fashion64, transform=BackboneTransform(48, mobilenet.meta["mean"],
                                                                           mobilenet.meta["std"]),
                         device="cpu", progress=False)
    assert torch.equal(extract_features(mobilenet, fashion64, transform=bigger, device="cpu",
                                        progress=False)[0], out)


def test_changing_the_weights_misses_the_cache(mobilenet, fashion64):
    first, _ = extract_features(mobilenet, fashion64, device="cpu", progress=False)
    with torch.no_grad():
        conv = next(m for m in mobilenet.model.modules() if isinstance(m, torch.nn.Conv2d))
        conv.weight.mul_(1.5)
    second, _ = extract_features(mobilenet, fashion64, device="cpu", progress=False)
    assert len(_cached_files()) == 2
    assert not torch.allclose(first, second)


def test_changing_the_data_misses_the_cache(mobilenet, fashion64):
    a, _ = extract_features(mobilenet, fashion64, device="cpu", progress=False)
    b, lb = extract_features(mobilenet, fashion64.subset(np.arange(8)), device="cpu", progress=False)
    assert b.shape == (8, 1280) and torch.equal(lb, fashion64.targets[:8])
    assert torch.allclose(a[:8], b, atol=1e-5)
    assert len(_cached_files()) == 2


def test_shuffled_loader_skips_the_cache(mobilenet, fashion64, monkeypatch):
    reference, ref_labels = extract_features(mobilenet, fashion64, device="cpu", progress=False)
    files = _cached_files()
    loader = DataLoader(fashion64, batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(0))
    feats, labels = extract_features(mobilenet, loader, device="cpu", progress=False)
    assert _cached_files() == files  # nothing written for a shuffled order
    # rows follow the loader's (shuffled) order, with labels to match
    dist, order = torch.cdist(feats, reference, compute_mode="donot_use_mm_for_euclid_dist").min(1)
    assert sorted(order.tolist()) == list(range(64)) and order.tolist() != list(range(64))
    assert float(dist.max()) < 1e-3
    assert torch.equal(labels, ref_labels[order])
    monkeypatch.setattr(mobilenet.model, "forward", _explode)
    with pytest.raises(AssertionError, match="the backbone ran"):
        extract_features(mobilenet, loader, device="cpu", progress=False)


def test_drop_last_loader_does_not_poison_the_cache(mobilenet, fashion64):
    short, _ = extract_features(mobilenet, DataLoader(fashion64, batch_size=50, drop_last=True), device="cpu",
                                progress=False)
    assert short.shape == (50, 1280)
    full, labels = extract_features(mobilenet, fashion64, device="cpu", progress=False)
    assert full.shape == (64, 1280) and labels.shape == (64,)


def test_corrupt_cache_entry_is_recomputed(mobilenet, fashion64):
    first, _ = extract_features(mobilenet, fashion64, device="cpu", progress=False)
    (entry,) = features_cache_dir().iterdir()
    entry.write_bytes(b"truncated")
    again, _ = extract_features(mobilenet, fashion64, device="cpu", progress=False)
    assert torch.allclose(first, again, atol=1e-5)
    assert torch.load(entry, weights_only=True)["features"].shape == (64, 1280)


# ------------------------------------------------------------------ backbones

@pytest.mark.parametrize("name,head_free_params", [("mobilenet_v2", 2_223_872), ("efficientnet_lite0", 3_371_008)])
def test_offline_backbones_feature_dims(name, head_free_params, fresh_cache):
    backbone = load_backbone(name, image_size=32)
    model, dim, tf = backbone
    assert dim == 1280 == backbone.meta["feature_dim"] and backbone.name == name
    assert not model.training
    # the ImageNet head (1280 * 1000 + 1000 parameters) is gone
    assert count_parameters(model) == head_free_params == backbone.meta["num_params"] - 1_281_000
    grey = torch.rand(2, 1, 28, 28)
    x = tf(grey)
    assert x.shape == (2, 3, 32, 32)
    assert tf(grey[0]).shape == (3, 32, 32)
    with torch.no_grad():
        out = model(x)
    assert out.shape == (2, dim) and torch.isfinite(out).all()


def test_backbone_rejects_non_vision_assets():
    with pytest.raises(ValueError, match="not a vision backbone"):
        load_backbone("minilm-l6")


def test_untrained_backbone_differs_from_pretrained(fresh_cache):
    torch.manual_seed(0)
    scratch = load_backbone("mobilenet_v2", pretrained=False, image_size=32).model.state_dict()
    trained = load_backbone("mobilenet_v2", image_size=32).model.state_dict()
    assert scratch.keys() == trained.keys()
    assert not all(torch.equal(scratch[k], trained[k]) for k in scratch)


def test_a_seeded_random_backbone_ignores_and_keeps_the_global_random_state():
    def weights(**kw):
        return load_backbone("mobilenet_v2", pretrained=False, image_size=32, **kw).model.state_dict()

    torch.manual_seed(1)
    a = weights(seed=0)
    after = torch.rand(1)
    torch.manual_seed(2)  # another global state: the seeded weights must not change
    b = weights(seed=0)
    torch.manual_seed(1)
    c = weights(seed=0)
    assert all(torch.equal(a[k], b[k]) for k in a), "seed= weights depend on what ran before"
    assert torch.equal(torch.rand(1), after), "seed= consumed or reset the global generator"
    d = weights(seed=1)
    assert not all(torch.equal(a[k], d[k]) for k in a) and all(torch.equal(a[k], c[k]) for k in a)
    with pytest.raises(ValueError, match="pretrained weights need no seed"):
        load_backbone("mobilenet_v2", seed=0)


def test_imagenet_classifier_recognises_the_foolbox_samples(fresh_cache):
    model, tf, categories = load_imagenet_classifier("mobilenet_v2")
    samples = load_imagenet_samples()
    assert len(categories) == 1000 and not model.training
    x = torch.stack([tf(img) for img in samples.images])
    assert x.shape == (20, 3, 224, 224)
    with torch.no_grad():
        pred = model(x).argmax(1)
    correct = int((pred == torch.tensor(samples.labels)).sum())
    assert correct >= 17, f"{correct}/20 correct"


def test_imagenet_classifier_accepts_aliases(fresh_cache):
    model, tf, categories = load_imagenet_classifier("efficientnet-lite0")
    assert len(categories) == 1000
