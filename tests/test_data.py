"""The course datasets: sizes, dtypes, fixed seeded splits and clear errors."""
from __future__ import annotations

import bz2
import csv
import dataclasses
import io
from collections import Counter

import numpy as np
import pytest
import torch

from tlcourse.assets import REGISTRY, AssetError, get_asset, resolve
from tlcourse.assets._types import SystemSource
from tlcourse.data import (DIGIT_CLASSES, FASHION_CLASSES, SENTIMENT_CLASSES, few_shot_subset, load_digits,
                           load_fashion_mnist, load_imagenet_samples, load_mnist5k, load_rotten_tomatoes)
from tlcourse.profile import ProfileError, profile


def _image_set(ds) -> set[bytes]:
    return {im.tobytes() for im in ds.images}


def _check_item(ds, shape):
    x, y = ds[0]
    assert isinstance(x, torch.Tensor) and x.dtype == torch.float32 and tuple(x.shape) == shape
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    assert isinstance(y, int) and 0 <= y < len(ds.classes)
    assert ds.images.dtype == np.uint8 and ds.labels.dtype == np.int64
    batch = ds.tensor(slice(0, 5))
    assert tuple(batch.shape) == (5, *shape)
    assert torch.equal(batch[0], x)


# ------------------------------------------------------------------ Fashion-MNIST

@pytest.mark.parametrize("split,n", [("train", 6000), ("test", 2000)])
def test_fashion_mnist_quick_sizes_and_dtypes(split, n):
    ds = load_fashion_mnist(split)  # the quick profile reads the shipped subset
    assert len(ds) == n and ds.images.shape == (n, 28, 28)
    assert ds.classes == FASHION_CLASSES
    assert np.bincount(ds.labels, minlength=10).tolist() == [n // 10] * 10
    _check_item(ds, (1, 28, 28))


def test_fashion_mnist_quick_train_and_test_differ():
    train, test = load_fashion_mnist("train"), load_fashion_mnist("test")
    assert len(_image_set(train) & _image_set(test)) < 10  # Fashion-MNIST itself has a few duplicates


def test_fashion_mnist_n_is_class_balanced_and_seeded():
    a = load_fashion_mnist("train", n=100, seed=1)
    b = load_fashion_mnist("train", n=100, seed=1)
    c = load_fashion_mnist("train", n=100, seed=2)
    assert len(a) == 100 and np.bincount(a.labels).tolist() == [10] * 10
    assert np.array_equal(a.images, b.images) and np.array_equal(a.labels, b.labels)
    assert not np.array_equal(a.images, c.images)


def test_fashion_mnist_transform_is_applied():
    ds = load_fashion_mnist("test", transform=lambda x: x.repeat(3, 1, 1) * 2)
    x, _ = ds[3]
    assert x.shape == (3, 28, 28)
    assert torch.allclose(x[0], ds.tensor(3)[0] * 2)


def _system_dir():
    src = next(s for s in REGISTRY["fashion-mnist"].sources if isinstance(s, SystemSource))
    return src.directory()


def test_fashion_mnist_full_source_reads_the_system_copy(fresh_cache):
    if not all((_system_dir() / f.name).is_file() for f in get_asset("fashion-mnist").files):
        pytest.skip("dataset-fashion-mnist is not installed here")
    test = load_fashion_mnist("test", source="full")
    assert len(test) == 10000 and test.images.shape == (10000, 28, 28)
    assert np.bincount(test.labels).tolist() == [1000] * 10
    _check_item(test, (1, 28, 28))


def test_fashion_mnist_full_missing_system_copy_names_apt_package(tmp_path, monkeypatch, fresh_cache):
    entry = REGISTRY["fashion-mnist"]
    sources = tuple(dataclasses.replace(s, path=str(tmp_path / "no-datasets")) if isinstance(s, SystemSource)
                    else s for s in entry.sources)
    monkeypatch.setitem(REGISTRY, "fashion-mnist", dataclasses.replace(entry, sources=sources))
    with pytest.raises(AssetError) as info:
        load_fashion_mnist("train", source="full")
    assert "apt-get install dataset-fashion-mnist" in str(info.value)


def test_fashion_mnist_bad_source():
    with pytest.raises(ValueError, match="'quick' or 'full'"):
        load_fashion_mnist("train", source="medium")


def test_shipped_fashion_subset_is_small_and_licensed():
    npz = resolve("fashion-mnist-quick").path
    assert npz.stat().st_size <= 5 * 1024 * 1024
    licence = npz.parent / "FASHION_MNIST_LICENSE.txt"
    assert licence.is_file()
    text = licence.read_text()
    assert "MIT" in text and "Zalando" in text


# ------------------------------------------------------------------ MNIST-5k, digits

def test_mnist5k_sizes_and_stratified_disjoint_split():
    train, test, full = load_mnist5k("train"), load_mnist5k("test"), load_mnist5k("all")
    assert (len(train), len(test), len(full)) == (4000, 1000, 5000)
    assert np.bincount(train.labels).tolist() == [400] * 10
    assert np.bincount(test.labels).tolist() == [100] * 10
    assert train.classes == DIGIT_CLASSES
    _check_item(train, (1, 28, 28))
    tr, te = _image_set(train), _image_set(test)
    assert not tr & te and len(tr | te) == 5000


@pytest.mark.parametrize("split", ["train", "test", "all"])
def test_mnist5k_is_shuffled_not_sorted_by_class(split):
    labels = load_mnist5k(split).labels
    assert not np.all(np.diff(labels) >= 0)
    assert len(np.unique(labels[:50])) >= 8  # classes mixed from the very start
    assert np.count_nonzero(np.diff(labels)) > len(labels) // 2


def test_mnist5k_split_is_deterministic_and_seeded():
    a, b = load_mnist5k("test"), load_mnist5k("test")
    assert np.array_equal(a.images, b.images) and np.array_equal(a.labels, b.labels)
    c = load_mnist5k("test", seed=7)
    assert _image_set(a) != _image_set(c)


def test_digits_all_and_split():
    full = load_digits()
    assert len(full) == 1797 and full.images.shape == (1797, 8, 8)
    assert full.images.max() == 255 and full.images.min() == 0
    _check_item(full, (1, 8, 8))
    adapt, test = load_digits("adapt"), load_digits("test")
    assert len(adapt) + len(test) == 1797 and abs(len(adapt) - len(test)) <= 10
    a, t = _image_set(adapt), _image_set(test)
    assert not a & t and a | t == _image_set(full)
    assert np.array_equal(load_digits("adapt").labels, adapt.labels)


# ------------------------------------------------------------------ Rotten Tomatoes

def _corpus_rows() -> Counter:
    with bz2.open(resolve("rotten-tomatoes").path, "rt", encoding="utf-8") as fh:
        rows = list(csv.DictReader(io.StringIO(fh.read())))
    assert any(r["category"] == "plot" for r in rows)  # the raw corpus does hold plot rows
    return Counter((r["text"].strip(), SENTIMENT_CLASSES.index(r["category"]))
                   for r in rows if r["category"] in SENTIMENT_CLASSES)


def test_rotten_tomatoes_split_partitions_fresh_and_rotten_rows():
    splits = {s: load_rotten_tomatoes(s) for s in ("train", "val", "test")}
    meta = get_asset("rotten-tomatoes").meta
    sizes = {s: len(d) for s, d in splits.items()}
    assert sum(sizes.values()) == meta["fresh"] + meta["rotten"]  # no plot rows
    assert abs(sizes["train"] / sum(sizes.values()) - 0.70) < 0.01
    assert abs(sizes["val"] - sizes["test"]) <= 2
    assert sum(int(d.labels.sum()) for d in splits.values()) == meta["fresh"]
    for d in splits.values():
        assert set(np.unique(d.labels)) == {0, 1} and d.classes == SENTIMENT_CLASSES
        assert all(isinstance(t, str) and t for t in d.texts)
    # together the splits are exactly the corpus' fresh/rotten rows: disjoint and complete
    together = Counter()
    for d in splits.values():
        together.update(zip(d.texts, d.labels.tolist()))
    assert together == _corpus_rows()


def test_rotten_tomatoes_is_deterministic_and_seeded():
    a, b = load_rotten_tomatoes("val"), load_rotten_tomatoes("val")
    assert a.texts == b.texts and np.array_equal(a.labels, b.labels)
    c = load_rotten_tomatoes("val", seed=99)
    assert set(a.texts) != set(c.texts)
    text, label = a[0]
    assert isinstance(text, str) and label in (0, 1)


def test_rotten_tomatoes_n_is_balanced():
    ds = load_rotten_tomatoes("train", n=100)
    assert len(ds) == 100 and np.bincount(ds.labels).tolist() == [50, 50]


# ------------------------------------------------------------------ ImageNet samples

def test_imagenet_samples():
    s = load_imagenet_samples()
    assert len(s) == 20 and len(s.labels) == 20
    assert all(img.mode == "RGB" and min(img.size) >= 64 for img in s.images)
    assert all(isinstance(y, int) and 0 <= y < 1000 for y in s.labels)
    assert len(s.categories) == 1000 and s.categories[243] == "bull mastiff"


# ------------------------------------------------------------------ few-shot subsets

@pytest.mark.parametrize("k", [1, 5])
def test_few_shot_subset_exact_k_per_class_and_seeded(k):
    ds = load_fashion_mnist("train")
    a, b, c = few_shot_subset(ds, k, seed=0), few_shot_subset(ds, k, seed=0), few_shot_subset(ds, k, seed=1)
    assert len(a) == 10 * k and np.bincount(a.labels, minlength=10).tolist() == [k] * 10
    assert np.array_equal(a.images, b.images) and np.array_equal(a.labels, b.labels)
    assert not np.array_equal(a.images, c.images)
    assert _image_set(a) <= _image_set(ds)


def test_few_shot_subset_works_on_text_and_rejects_too_many():
    ds = load_rotten_tomatoes("val")
    sub = few_shot_subset(ds, 3, seed=0)
    assert len(sub) == 6 and np.bincount(sub.labels).tolist() == [3, 3]
    assert set(sub.texts) <= set(ds.texts)
    with pytest.raises(ValueError, match="per class"):
        few_shot_subset(load_digits("adapt"), 1000)


def test_few_shot_subset_keeps_the_transform():
    ds = load_fashion_mnist("test", transform=lambda x: x * 0)
    x, _ = few_shot_subset(ds, 2)[0]
    assert float(x.abs().sum()) == 0.0


# ------------------------------------------------------------------ errors

@pytest.mark.parametrize("loader,allowed", [
    (load_fashion_mnist, ("train", "test")),
    (load_mnist5k, ("train", "test", "all")),
    (load_digits, ("all", "adapt", "test")),
    (load_rotten_tomatoes, ("train", "val", "test")),
])
def test_bad_split_names_the_options(loader, allowed):
    with pytest.raises(ValueError) as info:
        loader("validation")
    msg = str(info.value)
    assert "'validation'" in msg
    for option in allowed:
        assert option in msg


def test_unknown_profile_names_the_profiles(monkeypatch):
    monkeypatch.setenv("TLCOURSE_PROFILE", "huge")
    for call in (profile, load_fashion_mnist):
        with pytest.raises(ProfileError) as info:
            call()
        msg = str(info.value)
        assert "huge" in msg and "quick" in msg and "full" in msg
    assert issubclass(ProfileError, ValueError)


def test_profile_sizes_are_smaller_when_quick():
    quick, full = profile("quick"), profile("full")
    assert quick.quick and not full.quick
    assert quick["01"]["image_size"] < full["01"]["image_size"]
    with pytest.raises(KeyError, match="known"):
        quick["99"]


def test_holdout_split_keeps_a_stratified_fifth_for_validation():
    from tlcourse.data import holdout_split

    labels = np.repeat(np.arange(10), 30)
    rows = np.concatenate([np.flatnonzero(labels == c)[:10] for c in range(10)])  # 10 labelled per class
    train, held = holdout_split(rows, labels, seed=0)
    assert not set(train) & set(held) and sorted([*train, *held]) == sorted(rows)
    assert np.bincount(labels[held], minlength=10).tolist() == [2] * 10
    for part in holdout_split(rows[::5], labels, seed=0):  # 2 labelled per class: one to train, one to validate
        assert np.bincount(labels[part], minlength=10).tolist() == [1] * 10
    assert not np.array_equal(held, holdout_split(rows, labels, seed=1)[1])
    with pytest.raises(ValueError, match="nothing to train on"):
        holdout_split(rows[::10], labels, seed=0)  # 1 labelled per class
