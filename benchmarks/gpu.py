"""GPU checks, for a machine with CUDA: AMP vs fp32 fit throughput, and one notebook in the full profile.

    .venv/bin/python benchmarks/gpu.py [--budget-s 540] [--notebook 01] [--out DIR]

Without CUDA it prints why, writes a "skipped" record (never over a real
measurement) and exits 0, so it can sit in any script. With CUDA, in at most
``--budget-s`` seconds (default 9 min, to fit a 10-minute slot):

1. ``tlcourse.fit`` on an ImageNet-pretrained MobileNetV2 at 224 px, batch 128,
   with ``amp=True`` and ``amp=False`` alternately; images/s for each and the
   ratio AMP / fp32 (median of the pairs, with min and max);
2. the chosen solution notebook in the full profile, timed by
   course_runtime.py in a subprocess killed at the remaining budget.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _common import ROOT, RESULTS_DIR, Recorder, summary  # noqa: E402

sys.path.insert(0, str(ROOT))

SKIP_MESSAGE = "no CUDA device here: the GPU benchmark was skipped (run it on a machine with a GPU)."


def _keep_measurement(path: pathlib.Path) -> bool:
    """True when ``path`` already holds a real GPU measurement that a skip must not overwrite."""
    try:
        return json.loads(path.read_text()).get("status") == "measured"
    except (OSError, ValueError):
        return False


def amp_throughput(pairs: int, steps: int, batch_size: int, device: str = "cuda") -> dict:
    """Images/s of ``fit`` with and without AMP, alternated; ``device="cpu"`` only exercises the code (tests)."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from tlcourse import fit, load_imagenet_classifier, seed_everything
    from tlcourse.lessons.fine_tuning import with_input_transform

    device = torch.device(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    n = steps * batch_size
    gen = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.rand(n, 3, 64, 64, generator=gen), torch.randint(0, 10, (n,), generator=gen))

    def one(amp: bool) -> float:
        seed_everything(0)
        net, _, _ = load_imagenet_classifier("mobilenet_v2")
        net.classifier[-1] = torch.nn.Linear(net.classifier[-1].in_features, 10)
        model = with_input_transform(net, 224)
        loader = DataLoader(data, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(0),
                            pin_memory=device.type == "cuda")
        sync()
        t0 = time.perf_counter()
        fit(model, loader, epochs=1, lr=1e-4, device=device, amp=amp, progress=False)
        sync()
        return n / (time.perf_counter() - t0)

    one(True), one(False)  # warm-up: cuDNN autotuning and lazy CUDA init land on neither side
    amp_ips, fp32_ips = [], []
    for i in range(pairs):
        for amp in ((True, False) if i % 2 == 0 else (False, True)):
            (amp_ips if amp else fp32_ips).append(one(amp))
        print(f"pair {i + 1}: AMP {amp_ips[-1]:.0f} img/s  fp32 {fp32_ips[-1]:.0f} img/s", flush=True)
    ratios = [a / f for a, f in zip(amp_ips, fp32_ips)]
    from tlcourse.device import amp_dtype
    return {"what": "fit throughput, MobileNetV2 at 224 px", "batch_size": batch_size, "images_per_run": n,
            "amp_dtype": str(amp_dtype(device)), "amp_images_per_s": summary(amp_ips),
            "fp32_images_per_s": summary(fp32_ips), "ratio_amp_over_fp32": summary(ratios)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget-s", type=float, default=540.0, help="stop starting new work after this many seconds")
    ap.add_argument("--notebook", default="01", help="solution notebook number to run in the full profile")
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--steps", type=int, default=40, help="batches per throughput run")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--out", type=pathlib.Path)
    args = ap.parse_args(argv)
    import torch

    out_dir = args.out or RESULTS_DIR
    if not torch.cuda.is_available():
        print(SKIP_MESSAGE)
        path = pathlib.Path(out_dir) / "gpu.json"
        if _keep_measurement(path):
            print(f"kept the earlier GPU measurement in {path}")
            return 0
        rec = Recorder("gpu", out_dir, "full", budget_s=args.budget_s)
        rec.save(status="skipped", reason=SKIP_MESSAGE)
        print(f"wrote {rec.path}")
        return 0
    start = time.perf_counter()
    rec = Recorder("gpu", out_dir, "full", budget_s=args.budget_s, notebook=args.notebook)
    rec.add({"part": "amp", **amp_throughput(args.pairs, args.steps, args.batch_size)})
    rec.save(status="measured")
    left = args.budget_s - (time.perf_counter() - start)
    matches = sorted((ROOT / "solutions").glob(f"{args.notebook}*/*.ipynb"))
    if not matches:
        rec.data["notes"].append(f"no solution notebook starts with {args.notebook!r}")
    elif left < 60:
        rec.data["notes"].append(f"full-profile notebook run skipped: {left:.0f} s of the budget left")
    else:
        tmp = pathlib.Path(out_dir) / ".gpu_notebook"
        cmd = [sys.executable, str(ROOT / "benchmarks" / "course_runtime.py"), "--profile", "full", "--repeats", "1",
               "--notebook", str(matches[0]), "--out", str(tmp)]
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=left, env={**os.environ})
            ok = proc.returncode == 0
            detail = json.loads((tmp / "course_runtime.json").read_text())["rows"][0] if ok else proc.stderr[-2000:]
        except subprocess.TimeoutExpired:
            ok, detail = False, f"stopped at the budget after {left:.0f} s"
        rec.add({"part": "notebook", "notebook": matches[0].name, "profile": "full", "ok": ok,
                 "wall_s": time.perf_counter() - t0, "detail": detail})
    path = rec.save(status="measured")
    amp = rec.data["rows"][0]["ratio_amp_over_fp32"]
    print(f"AMP / fp32 throughput: {statistics.median(amp['values']):.2f}x; wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
