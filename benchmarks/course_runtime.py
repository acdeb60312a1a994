"""How long each solution notebook takes in the quick profile, against its budget.

    .venv/bin/python benchmarks/course_runtime.py [--repeats 3] [--only 01]

For each notebook: wall time (median of repeats) from a fresh kernel, the
share spent in the first code cell (imports and setup), and the kernel's
peak memory. Beside it runs a fixed baseline workload (MobileNetV2
inference on 512 images at 64 px, 2 threads) so that numbers from a noisy
or different machine can be compared: ``ratio = notebook / baseline``.
The budgets are the issues' (90-180 s on 2 cores). Results go to
benchmarks/out/course_runtime.json.
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

ROOT = pathlib.Path(__file__).resolve().parents[1]
BUDGET_S = {"01": 90, "02": 120, "03": 180, "04": 150, "05": 150, "06": 120}
TUTORIAL_NOTE = ("For reference, PyTorch's transfer-learning tutorial states 15-25 min on CPU for its one example.")


def baseline_seconds() -> float:
    code = ("import time, torch, torchvision; torch.set_num_threads(2); torch.manual_seed(0);"
            "m = torchvision.models.mobilenet_v2().features.eval(); x = torch.randn(64, 3, 64, 64);"
            "\nwith torch.no_grad():\n m(x); t = time.perf_counter()\n for _ in range(8): m(x)\n"
            "print(time.perf_counter() - t)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def _peak_rss_mb(pid: int) -> float | None:
    try:
        for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def run_notebook(path: pathlib.Path) -> dict:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    cell_times: list[float] = []
    peak = None
    t0 = time.perf_counter()
    with client.setup_kernel():
        pid = getattr(client.km.provisioner, "pid", None) or getattr(getattr(client.km, "provisioner", None), "process", None)
        pid = pid.pid if hasattr(pid, "pid") else pid
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            c0 = time.perf_counter()
            client.execute_cell(cell, index)
            cell_times.append(time.perf_counter() - c0)
            if pid:
                peak = _peak_rss_mb(pid) or peak
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "first_cell_s": cell_times[0] if cell_times else 0.0, "peak_rss_mb": peak}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--only", action="append", help="notebook number prefix, e.g. 01 (repeatable)")
    args = ap.parse_args()
    os.environ["TLCOURSE_PROFILE"] = "quick"
    os.environ.setdefault("MPLBACKEND", "Agg")
    notebooks = sorted((ROOT / "solutions").glob("*/*.ipynb"))
    if args.only:
        notebooks = [p for p in notebooks if any(p.name.startswith(o) for o in args.only)]
    base = baseline_seconds()
    print(f"baseline workload: {base:.2f} s (MobileNetV2 features, 512 images at 64 px)")
    print(f"{'notebook':<36}{'median s':>9}{'budget':>8}{'of budget':>10}{'imports %':>10}{'peak MB':>9}{'/baseline':>10}")
    rows, total = [], 0.0
    for path in notebooks:
        runs = [run_notebook(path) for _ in range(args.repeats)]
        wall = statistics.median(r["wall_s"] for r in runs)
        first = statistics.median(r["first_cell_s"] for r in runs)
        peak = max((r["peak_rss_mb"] or 0) for r in runs) or None
        budget = BUDGET_S.get(path.name[:2])
        total += wall
        row = {"notebook": path.name, "wall_s": wall, "runs": [r["wall_s"] for r in runs], "budget_s": budget,
               "import_share": first / wall, "peak_rss_mb": peak, "baseline_s": base, "ratio_to_baseline": wall / base}
        rows.append(row)
        print(f"{path.name:<36}{wall:>9.1f}{budget or 0:>8}{(wall / budget if budget else 0):>9.0%} "
              f"{first / wall:>9.0%}{(peak or 0):>9.0f}{wall / base:>10.1f}")
    print(f"total: {total:.0f} s over {len(rows)} notebooks. {TUTORIAL_NOTE}")
    out = ROOT / "benchmarks" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "course_runtime.json").write_text(json.dumps({"rows": rows, "total_s": total, "cpus": os.cpu_count(),
                                                         "load": os.getloadavg()}, indent=1))


if __name__ == "__main__":
    main()
