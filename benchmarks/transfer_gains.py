"""The headline table: each transfer method against its no-transfer baseline, mean ± std over seeds.

    .venv/bin/python benchmarks/transfer_gains.py [--seeds 3] [--only nlp] [--full] [--out DIR]

Every row trains both sides on the same data, labels and step budget with the
same seeds (the code is tlcourse.experiments, the notebooks' library calls).
The gain is the paired difference (method minus baseline, same seed). Where a
paper reports the same kind of comparison, its numbers sit beside ours with a
note on how the settings differ. With --only, rows of the other experiments
already in the JSON are kept, so one experiment can be rerun alone.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _common import ROOT, Recorder  # noqa: E402

sys.path.insert(0, str(ROOT))

NOTEBOOK = {"label_efficiency": "01", "fine_tuning": "02", "nlp": "03", "distillation": "04",
            "domain_adaptation": "05", "zero_shot": "06"}

# Published results of the same kind of comparison, quoted for context; not reproduced here.
PUBLISHED = {
    "domain_adaptation": {
        "source": "Ganin et al. 2016 (JMLR), 'Domain-Adversarial Training of Neural Networks', MNIST→MNIST-M",
        "baseline": 0.5225, "method": 0.7666, "method_name": "DANN",
        "differs": "MNIST→MNIST-M (coloured backgrounds, 28 px, tens of thousands of images, a larger CNN trained "
                   "much longer); ours is MNIST→sklearn digits (8×8 scans upscaled to 16 px, ~900 target images, "
                   "a tiny CNN, a few epochs on CPU). Same method, different shift: compare the direction of the "
                   "gain, not its size."},
    "distillation": {
        "source": "Hinton, Vinyals & Dean 2015, 'Distilling the Knowledge in a Neural Network', MNIST",
        "baseline": 1 - 146 / 10000, "method": 1 - 74 / 10000, "teacher": 1 - 67 / 10000,
        "method_name": "distilled small net",
        "differs": "test errors out of 10,000: teacher (2×1200 units, dropout, jittered inputs) 67, small net "
                   "(2×800) alone 146, distilled at T=20 74; all 60,000 training images, many epochs. Ours: "
                   "a MobileNetV2-feature teacher, a SmallCNN student on a few thousand Fashion-MNIST images, "
                   "a few epochs, T=2."},
    "nlp": {
        "source": "Tunstall et al. 2022, 'Efficient Few-Shot Learning Without Prompts' (SetFit), SST-2, 8 labels "
                  "per class", "baseline": None, "method": 0.869, "method_name": "SetFit",
        "differs": "SST-2 (a different sentence-sentiment set from the same critics' reviews), 8 labelled "
                   "examples per class, contrastive fine-tuning of a larger sentence encoder; ours is "
                   "Rotten Tomatoes with MiniLM-L6 and a logistic-regression probe (our 16-label row is the same "
                   "8 per class) or a 40-step fine-tune, accuracies on a few hundred test reviews."},
}


def all_experiments() -> tuple[dict, dict, dict]:
    """Every experiment: the six in tlcourse.experiments and each lesson module in benchmarks/experiments/."""
    from experiments import discover
    from tlcourse import experiments as legacy
    found, notebook, published = discover()
    both = dict(legacy.EXPERIMENTS)
    clash = set(both) & set(found)
    if clash:
        raise ValueError(f"experiment keys defined twice: {sorted(clash)}")
    both.update(found)
    return both, NOTEBOOK | notebook, PUBLISHED | published


def run(names, seeds, full: bool, out_dir=None, sizes_override=None) -> dict:
    experiments, notebook_of, published = all_experiments()
    from tlcourse.device import set_threads
    from tlcourse.profile import profile

    set_threads()
    prof = profile("full" if full else "quick")
    rec = Recorder("transfer_gains", out_dir, prof.name, seeds=list(seeds), experiments=list(names))
    previous = rec.path
    kept = []
    if previous.exists() and set(names) != set(experiments):
        try:  # keep the other experiments' rows from the last run (and say when they were measured)
            old = json.loads(previous.read_text())
            kept = [r for r in old.get("rows", []) if r.get("key") not in names]
            for r in kept:
                r.setdefault("measured_utc", old.get("started_utc"))
        except (OSError, ValueError):
            kept = []
    rows = []
    order = {n: i for i, n in enumerate(experiments)}
    rec.data["published"] = published
    for name in names:
        sizes = dict(prof[notebook_of[name]])
        sizes.update((sizes_override or {}).get(name, {}))
        t0 = time.perf_counter()
        print(f"{name}: running over seeds {list(seeds)} ...", flush=True)
        for row in experiments[name](seeds=seeds, sizes=sizes):
            row.update(key=name, notebook=notebook_of[name], measured_utc=rec.data["started_utc"],
                       published=published.get(name))
            rows.append(row)
            _print_row(row)
        print(f"  ({time.perf_counter() - t0:.0f} s)", flush=True)
        rec.data["rows"] = sorted(kept + rows, key=lambda r: order.get(r["key"], 99))
        path = rec.save()  # after every experiment, so a stopped run keeps what it measured
    print(f"wrote {path}")
    return rec.data


def _print_row(r: dict) -> None:
    base = f"{r['baseline_mean']:.3f} ± {r['baseline_std']:.3f}" if r["baseline_std"] else f"{r['baseline_mean']:.3f}"
    print(f"  {r['setting'][:52]:<52} {r['method'][:38]:<38} {r['method_mean']:.3f} ± {r['method_std']:.3f}"
          f"  vs {r['baseline'][:30]:<30} {base}   gain {r['gain_mean']:+.3f} ({r['gain_positive']}/{r['seeds']} > 0)",
          flush=True)


def main(argv=None) -> dict:
    EXPERIMENTS = all_experiments()[0]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3, help="number of seeds, 0..N-1 (at least 3 for the report)")
    ap.add_argument("--only", action="append", choices=sorted(EXPERIMENTS), help="run only this experiment (repeatable)")
    ap.add_argument("--full", action="store_true", help="the full profile's sizes (meant for a GPU)")
    ap.add_argument("--out", type=pathlib.Path, help="directory for transfer_gains.json (default docs/results)")
    ap.add_argument("--sizes", type=json.loads, default=None,
                    help='JSON overrides per experiment, e.g. \'{"domain_adaptation": {"epochs": 1}}\' (tests)')
    args = ap.parse_args(argv)
    if args.seeds < 1:
        ap.error("--seeds must be at least 1")
    os.environ.setdefault("MPLBACKEND", "Agg")
    names = args.only or list(EXPERIMENTS)
    return run(names, list(range(args.seeds)), args.full, args.out, args.sizes)


if __name__ == "__main__":
    main()
