"""The headline table: each transfer method against its no-transfer baseline, mean ± std over seeds.

    .venv/bin/python benchmarks/transfer_gains.py [--seeds 3] [--only nlp] [--full] [--out DIR]

Every row trains both sides on the same data, labels and step budget with the
same seeds (the code is benchmarks/experiments/<topic>.py, one module per lesson, which calls
the notebooks' library functions; it is not installed with tlcourse).
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

def all_experiments() -> tuple[dict, dict, dict]:
    """Every experiment of every lesson module in benchmarks/experiments/, in notebook order."""
    from experiments import discover
    found, notebook, published = discover()
    order = sorted(found, key=lambda key: notebook[key])  # stable: a lesson's experiments keep their order
    return {key: found[key] for key in order}, notebook, published


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
