"""``extract_features``: run a frozen backbone once, cache the result on disk.

The cache (:mod:`tlcourse.cache`) key is a hash of the backbone's weights, its class, the input
transform and the dataset's fingerprint, so changing any of them misses
the cache and nothing stale is ever returned. With features cached, a
linear head trains in seconds.
"""
from __future__ import annotations

import hashlib
import pathlib

import torch
from torch import nn
from torch.utils.data import DataLoader, SequentialSampler

from .cache import cache_dir, cache_path, load_cached, save_cached
from .device import autocast, pick_device


def model_fingerprint(model: nn.Module) -> str:
    """A hash of a module's class, parameters and buffers."""
    h = hashlib.sha256(type(model).__qualname__.encode())
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes() if t.dtype != torch.bfloat16
                 else t.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def _data_fingerprint(data) -> str | None:
    ds = data.dataset if isinstance(data, DataLoader) else data
    if isinstance(data, DataLoader) and (not isinstance(data.sampler, SequentialSampler) or data.drop_last):
        return None  # a shuffled or truncated pass would not match the cached rows
    fp = getattr(ds, "fingerprint", None)
    return fp() if callable(fp) else None


def features_cache_dir() -> pathlib.Path:
    return cache_dir("features")


@torch.no_grad()
def extract_features(backbone, data, *, transform=None, batch_size: int = 128, device=None,
                     cache: bool = True, progress: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Features and labels for every example of ``data``, in order.

    ``backbone``: a :class:`~tlcourse.backbones.Backbone` (its transforms are
    applied batch-wise) or any module. ``data``: a dataset or an unshuffled
    DataLoader yielding ``(x, y)``. Runs in eval mode without gradients and
    returns CPU float32 tensors ``(N, feature_dim)`` and ``(N,)``.
    Caching needs a dataset with a ``fingerprint()``; otherwise it is skipped.
    """
    from .backbones import Backbone

    model = backbone.model if isinstance(backbone, Backbone) else backbone
    if transform is None and isinstance(backbone, Backbone):
        transform = backbone.transforms
    path = None
    data_fp = _data_fingerprint(data) if cache else None
    if data_fp:
        path = cache_path("features", model_fingerprint(model), repr(transform), data_fp)
        saved = load_cached(path)
        if saved is not None:
            return saved["features"], saved["labels"]
    device = torch.device(device) if device else pick_device()
    loader = data if isinstance(data, DataLoader) else DataLoader(data, batch_size=batch_size, shuffle=False)
    was_training = model.training
    model.eval().to(device)
    if transform is not None and isinstance(transform, nn.Module):
        transform = transform.to(device)
    feats, labels = [], []
    if progress:
        from tqdm.auto import tqdm
        loader_iter = tqdm(loader, desc="features", leave=False)
    else:
        loader_iter = loader
    try:
        for x, y in loader_iter:
            x = x.to(device, non_blocking=device.type == "cuda")
            if transform is not None:
                x = transform(x)
            with autocast(device):
                f = model(x)
            feats.append(f.float().flatten(1).cpu())
            labels.append(torch.as_tensor(y).cpu())
    finally:
        model.train(was_training)
    features, labels_t = torch.cat(feats), torch.cat(labels).long()
    if path is not None:
        save_cached(path, {"features": features, "labels": labels_t})
    return features, labels_t


def standardize(train: torch.Tensor, *others: torch.Tensor, eps: float = 1e-6):
    """Z-score every column with the *training* mean and std, and apply the same map to ``others``.

    Linear heads train far better on standardised inputs, and features from
    some networks (random weights, deep layers) have tiny or huge scales.
    """
    mean, std = train.mean(0, keepdim=True), train.std(0, keepdim=True) + eps
    out = tuple((t - mean) / std for t in (train, *others))
    return out if others else out[0]
