"""What tlcourse.fit costs over a plain hand-written PyTorch loop: same model, data, seed, run alternately.

    .venv/bin/python benchmarks/fit_overhead.py [--pairs 5] [--epochs 2] [--full] [--out DIR]

Both sides train a SmallCNN on the same Fashion-MNIST subset with AdamW, the
same seeded shuffle and the same batches. The runs alternate (fit, loop, fit,
loop, ...) in one process so that a burst of load from another job hits both
sides alike; the figure is the median of the per-pair ratios fit / loop
(goal: at most 1.05; reported, never asserted). After each pair the two
models' weights are compared: they must match, or the comparison is void.
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

GOAL = 1.05


def plain_loop(model, loader, epochs: int, lr: float) -> None:
    """The loop a reader would write by hand: AdamW, cross-entropy, nothing else."""
    import torch
    from torch import nn

    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.0)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for _ in range(epochs):
        for x, y in loader:
            loss = loss_fn(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()


def max_weight_difference(a, b) -> float:
    sa, sb = a.state_dict(), b.state_dict()
    return max(float((sa[k].float() - sb[k].float()).abs().max()) for k in sa)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=5, help="fit/loop pairs, alternated")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--train", type=int, default=None, help="training images (default: the profile's fit_overhead size)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--full", action="store_true")
    ap.add_argument("--out", type=pathlib.Path)
    args = ap.parse_args(argv)
    if args.pairs < 1 or args.epochs < 1:
        ap.error("--pairs and --epochs must be at least 1")
    import torch

    from tlcourse import fit, load_fashion_mnist, make_loader, seed_everything
    from tlcourse.device import set_threads
    from tlcourse.profile import profile
    from tlcourse.models import SmallCNN

    set_threads()
    device = torch.device("cpu")  # the course's quick profile; the gpu benchmark covers CUDA
    n = args.train or profile("full" if args.full else "quick")["fit_overhead"]["train"]
    data = load_fashion_mnist("train", n=n)
    lr, seed = 1e-3, 0
    rec = Recorder("fit_overhead", args.out, "full" if args.full else "quick", pairs=args.pairs, epochs=args.epochs,
                   train=n, batch_size=args.batch_size, model="SmallCNN(10)", optimizer="AdamW lr=1e-3",
                   device=str(device), goal_ratio=GOAL, progress_bar="off (progress=False) in the timed fit runs")

    def one(kind: str):
        seed_everything(seed)
        model = SmallCNN(10)
        loader = make_loader(data, batch_size=args.batch_size, shuffle=True, seed=seed, device=device)
        t0 = time.perf_counter()
        if kind == "fit":
            fit(model, loader, epochs=args.epochs, lr=lr, device=device, progress=False)
        else:
            plain_loop(model, loader, args.epochs, lr)
        return time.perf_counter() - t0, model

    one("fit"), one("loop")  # warm-up: first-touch allocations and lazy imports land on neither side
    fit_s, loop_s, ratios, diffs = [], [], [], []
    for i in range(args.pairs):
        order = ("fit", "loop") if i % 2 == 0 else ("loop", "fit")  # alternate who goes first too
        got = {kind: one(kind) for kind in order}
        fit_s.append(got["fit"][0])
        loop_s.append(got["loop"][0])
        ratios.append(fit_s[-1] / loop_s[-1])
        diffs.append(max_weight_difference(got["fit"][1], got["loop"][1]))
        print(f"pair {i + 1}: fit {fit_s[-1]:.2f} s  loop {loop_s[-1]:.2f} s  ratio {ratios[-1]:.3f}  "
              f"max |weight difference| {diffs[-1]:.2e}", flush=True)
    same = max(diffs) <= 1e-5
    ratio = statistics.median(ratios)
    # The fastest run of each side is the one least disturbed by other jobs on a shared machine.
    rec.add({"fit_s": summary(fit_s), "loop_s": summary(loop_s), "ratio": summary(ratios),
             "ratio_of_minimums": min(fit_s) / min(loop_s),
             "max_weight_difference": max(diffs), "same_weights": same, "goal_ratio": GOAL,
             "meets_goal": ratio <= GOAL, "images_per_s_loop": n * args.epochs / statistics.median(loop_s)})
    path = rec.save()
    print(f"fit / plain loop: median ratio {ratio:.3f} (min {min(ratios):.3f}, max {max(ratios):.3f}) over "
          f"{args.pairs} pairs; fastest fit / fastest loop {min(fit_s) / min(loop_s):.3f}; goal <= {GOAL}: {'met' if ratio <= GOAL else 'NOT met'}. "
          f"Same weights: {'yes' if same else 'NO'} (max |diff| {max(diffs):.1e}).")
    print(f"wrote {path}")
    return rec.data


if __name__ == "__main__":
    main()
