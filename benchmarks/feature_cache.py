"""Training a linear head on cached features vs re-running the frozen backbone every epoch.

    .venv/bin/python benchmarks/feature_cache.py [--epochs 5] [--repeats 3] [--full] [--out DIR]

Both sides train the same nn.Linear head with the same seed, batches and
AdamW steps on frozen MobileNetV2 features of the same Fashion-MNIST images:

- cached: one backbone pass over the images (extract_features, disk cache
  off so the pass is really timed), then ``epochs`` epochs on the features;
- recomputed: every epoch runs every batch through the frozen backbone
  (eval mode, no grad), then steps the head.

The figure is the ratio recomputed / cached for the whole job, median of the
repeats (alternated) with min and max; a disk-cache hit (the cost of a second
notebook run) is timed beside it. The two heads must end with the same weights
up to float noise, since the frozen backbone computes the same features.
"""
from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _common import ROOT, Recorder, summary  # noqa: E402

sys.path.insert(0, str(ROOT))


def train_head(batches, feature_dim: int, epochs: int, seed: int, lr: float = 1e-2):
    """AdamW on a linear head; ``batches(epoch)`` yields ``(features, labels)`` in a seeded order."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    torch.manual_seed(seed)
    head = nn.Linear(feature_dim, 10)
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=0.0)
    for epoch in range(epochs):
        for f, y in batches(epoch):
            loss = F.cross_entropy(head(f), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return head


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--images", type=int, default=None, help="training images (default: the profile's feature_cache sizes)")
    ap.add_argument("--image-size", type=int, default=None, help="backbone input size (default: the profile's)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--full", action="store_true")
    ap.add_argument("--out", type=pathlib.Path)
    args = ap.parse_args(argv)
    if args.epochs < 1 or args.repeats < 1:
        ap.error("--epochs and --repeats must be at least 1")
    import torch

    from tlcourse import extract_features, load_backbone, load_fashion_mnist
    from tlcourse.device import set_threads
    from tlcourse.profile import profile

    set_threads()
    sizes = profile("full" if args.full else "quick")["feature_cache"]
    n = args.images or sizes["images"]
    size = args.image_size or sizes["image_size"]
    data = load_fashion_mnist("train", n=n)
    backbone = load_backbone("mobilenet_v2", image_size=size)
    model, transform = backbone.model.eval(), backbone.transforms
    images, labels = data.tensor(), data.targets
    bs, seed = args.batch_size, 0
    rec = Recorder("feature_cache", args.out, "full" if args.full else "quick", epochs=args.epochs,
                   repeats=args.repeats, images=n, image_size=size, batch_size=bs, backbone="mobilenet_v2",
                   device="cpu")

    def order(epoch):
        return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1000 + epoch))

    def cached():
        t0 = time.perf_counter()
        feats, ys = extract_features(backbone, data, cache=False, progress=False, batch_size=128)
        extract_s = time.perf_counter() - t0

        def batches(epoch):
            perm = order(epoch)
            for i in range(0, n, bs):
                idx = perm[i:i + bs]
                yield feats[idx], ys[idx]
        head = train_head(batches, backbone.feature_dim, args.epochs, seed)
        return time.perf_counter() - t0, extract_s, head

    def recomputed():
        t0 = time.perf_counter()

        def batches(epoch):
            perm = order(epoch)
            for i in range(0, n, bs):
                idx = perm[i:i + bs]
                with torch.no_grad():
                    f = model(transform(images[idx])).float().flatten(1)
                yield f, labels[idx]
        head = train_head(batches, backbone.feature_dim, args.epochs, seed)
        return time.perf_counter() - t0, head

    recomputed_s, cached_s, extract_s, ratios, diffs = [], [], [], [], []
    for r in range(args.repeats):
        if r % 2 == 0:
            c, e, h_c = cached()
            rc, h_r = recomputed()
        else:
            rc, h_r = recomputed()
            c, e, h_c = cached()
        cached_s.append(c)
        extract_s.append(e)
        recomputed_s.append(rc)
        ratios.append(rc / c)
        diffs.append(float((h_c.weight - h_r.weight).detach().abs().max()))
        print(f"repeat {r + 1}: cached {c:.2f} s (of which extraction {e:.2f} s)  recomputed {rc:.2f} s  "
              f"ratio {ratios[-1]:.2f}  max |head weight difference| {diffs[-1]:.1e}", flush=True)
    extract_features(backbone, data, progress=False)  # fill the disk cache, then time a hit
    t0 = time.perf_counter()
    extract_features(backbone, data, progress=False)
    hit_s = time.perf_counter() - t0
    rec.add({"cached_s": summary(cached_s), "extraction_s": summary(extract_s), "recomputed_s": summary(recomputed_s),
             "ratio": summary(ratios), "ratio_of_minimums": min(recomputed_s) / min(cached_s), "disk_cache_hit_s": hit_s, "max_head_weight_difference": max(diffs),
             "same_head": max(diffs) < 1e-3})
    path = rec.save()
    print(f"{args.epochs} head epochs on {n} images at {size} px: recomputing the backbone each epoch takes "
          f"{statistics.median(ratios):.1f}x the cached run (min {min(ratios):.1f}, max {max(ratios):.1f}); "
          f"a disk-cache hit takes {hit_s:.2f} s vs {statistics.median(extract_s):.1f} s to extract.")
    print(f"wrote {path}")
    return rec.data


if __name__ == "__main__":
    main()
