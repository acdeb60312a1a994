"""How long each solution notebook takes in the quick profile, against its budget.

    .venv/bin/python benchmarks/course_runtime.py [--repeats 3] [--only 01] [--out DIR]

For each notebook: wall time from a fresh kernel (median of the repeats, with
min and max), the share spent in the first code cell (imports and setup), and
the kernel's peak memory. Repeats go round-robin over the notebooks, so a
burst of load from another job hits one run of each rather than all runs of
one; results are saved after every round. Beside it runs a fixed baseline
workload (MobileNetV2 inference on 512 images at 64 px, 2 threads) once per
round, so that numbers from a noisy or different machine can be compared:
``ratio = notebook / baseline``. Budgets are the issues' (90-180 s on 2 cores).
"""
from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _common import ROOT, Recorder, summary  # noqa: E402

from tlcourse.profile import RUNTIME_BUDGET_S  # noqa: E402

BUDGET_S = RUNTIME_BUDGET_S  # tlcourse/profile.py: one table, which grading also reads
TUTORIAL_CPU_MINUTES = (15, 25)
TUTORIAL_NOTE = ("For reference, PyTorch's transfer-learning tutorial states 15-25 min on CPU "
                 "for its one example (fine-tuning ResNet-18 on ants vs bees).")


def baseline_seconds(images: int = 512) -> float:
    """Seconds for MobileNetV2 inference on ``images`` random 64-px images in batches of 64, 2 threads."""
    batches = max(1, images // 64)
    code = ("import time, torch, torchvision; torch.set_num_threads(2); torch.manual_seed(0);"
            "m = torchvision.models.mobilenet_v2().features.eval(); x = torch.randn(64, 3, 64, 64);"
            f"\nwith torch.no_grad():\n m(x); t = time.perf_counter()\n for _ in range({batches}): m(x)\n"
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


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of the process and its waited-for children (``/proc/<pid>/stat``)."""
    try:
        fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])  # fields 14-17 of proc(5)
    return (utime + stime + cutime + cstime) / os.sysconf("SC_CLK_TCK")


def run_notebook(path: pathlib.Path, timeout: int = 900) -> dict:
    """Execute one notebook in a fresh kernel; wall time, first-cell time, peak RSS and CPU time of the kernel.

    CPU time is less sensitive to load than wall time: other jobs stretch the wall time far
    more than the kernel's own CPU seconds (which contention still inflates: shared caches,
    threads spinning while they wait), so a loaded run's CPU time is an upper estimate of a
    quiet run's work. On an idle machine with ``c`` cores the wall time lies near
    ``cpu_s / c`` for well-parallelised work and near ``cpu_s`` for single-threaded work."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    cell_times: list[float] = []
    peak = cpu = None
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
                cpu = _cpu_seconds(pid) or cpu
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "first_cell_s": cell_times[0] if cell_times else 0.0, "peak_rss_mb": peak,
            "cpu_s": cpu, "load_1min": os.getloadavg()[0]}


def notebook_row(path: pathlib.Path, runs: list[dict], baselines: list[float], profile: str = "quick") -> dict:
    walls = summary(r["wall_s"] for r in runs)
    budget = BUDGET_S.get(path.name[:2]) if profile == "quick" else None  # the budgets are the quick profile's
    base = statistics.median(baselines)
    first = statistics.median(r["first_cell_s"] for r in runs)
    peaks = [r["peak_rss_mb"] for r in runs if r["peak_rss_mb"]]
    cpus = [r["cpu_s"] for r in runs if r.get("cpu_s")]
    return {"notebook": path.name, "runs": runs, "wall_s": walls, "budget_s": budget,
            "cpu_s": summary(cpus) if cpus else None,
            "of_budget": walls["median"] / budget if budget else None,
            "import_share": first / walls["median"], "peak_rss_mb": max(peaks) if peaks else None,
            "baseline_s": base, "ratio_to_baseline": walls["median"] / base}


def _load_previous(rec: Recorder, notebooks, runs, baselines, profile: str) -> int:
    """Fill ``runs`` and ``baselines`` from the existing JSON; return its completed rounds (0 if unusable)."""
    import json

    try:
        old = json.loads(rec.path.read_text())
    except (OSError, ValueError):
        print(f"--append: no readable {rec.path}; starting afresh")
        return 0
    if old.get("profile") != profile:
        raise SystemExit(f"--append: {rec.path} holds the {old.get('profile')!r} profile, not {profile!r}; "
                         "drop --append to start afresh")
    by_name = {r["notebook"]: r.get("runs") or [] for r in old.get("rows", [])}
    if any(not by_name.get(p.name) for p in notebooks):
        raise SystemExit(f"--append: {rec.path} lacks raw runs for some of these notebooks; drop --append")
    for p in notebooks:
        runs[p].extend(by_name[p.name])
    baselines.extend(old["baseline_s"]["values"])
    rec.data["started_utc"] = old.get("started_utc", rec.data["started_utc"])
    rec.data["uptime_before"] = old.get("uptime_before", rec.data["uptime_before"])
    rec.data["appended_utc"] = old.get("appended_utc", []) + [time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())]
    rec.data["notes"] = old.get("notes", []) + rec.data["notes"]
    return int(old.get("rounds_completed", min(len(v) for v in runs.values())))


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", action="append", help="notebook number prefix, e.g. 01 (repeatable)")
    ap.add_argument("--notebook", action="append", type=pathlib.Path,
                    help="run this notebook instead of the solutions (repeatable)")
    ap.add_argument("--out", type=pathlib.Path, help="directory for course_runtime.json (default docs/results)")
    ap.add_argument("--note", action="append", default=[], help="a remark stored with the results (repeatable)")
    ap.add_argument("--baseline-images", type=int, default=512,
                    help="size of the baseline workload (keep the default when comparing runs)")
    ap.add_argument("--append", action="store_true",
                    help="add these rounds to the runs already in course_runtime.json (same profile)")
    ap.add_argument("--profile", choices=("quick", "full"), default="quick",
                    help="TLCOURSE_PROFILE for the kernels (budgets apply to quick only)")
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error("--repeats must be at least 1")
    os.environ["TLCOURSE_PROFILE"] = args.profile
    os.environ.setdefault("MPLBACKEND", "Agg")
    notebooks = args.notebook or sorted((ROOT / "solutions").glob("*/*.ipynb"))
    if args.only:
        notebooks = [p for p in notebooks if any(p.name.startswith(o) for o in args.only)]
    if not notebooks:
        ap.error("no notebook matched; --only takes a number prefix such as 01")
    missing = [str(p) for p in notebooks if not p.is_file()]
    if missing:
        ap.error(f"not a file: {', '.join(missing)}")
    rec = Recorder("course_runtime", args.out, args.profile, repeats_requested=args.repeats,
                   baseline_images=args.baseline_images,
                   budgets_s=BUDGET_S, tutorial_cpu_minutes=TUTORIAL_CPU_MINUTES, tutorial_note=TUTORIAL_NOTE)
    rec.data["notes"] = list(args.note)
    runs: dict[pathlib.Path, list[dict]] = {p: [] for p in notebooks}
    baselines: list[float] = []
    done = 0
    if args.append:
        done = _load_previous(rec, notebooks, runs, baselines, args.profile)
        rec.data["settings"]["repeats_requested"] = done + args.repeats
    for round_index in range(done, done + args.repeats):
        baselines.append(baseline_seconds(args.baseline_images))
        print(f"round {round_index + 1}/{done + args.repeats}: baseline workload {baselines[-1]:.2f} s", flush=True)
        for path in notebooks:
            runs[path].append(run_notebook(path))
            last = runs[path][-1]
            print(f"  {path.name:<36}{last['wall_s']:8.1f} s wall {last['cpu_s'] or 0:8.1f} s CPU "
                  f"(load {os.getloadavg()[0]:.1f})", flush=True)
        rec.data["rows"] = [notebook_row(p, runs[p], baselines, args.profile) for p in notebooks]
        total = sum(r["wall_s"]["median"] for r in rec.data["rows"])
        rec.save(rounds_completed=round_index + 1, baseline_s=summary(baselines), total_s=total,
                 total_budget_s=sum(r["budget_s"] or 0 for r in rec.data["rows"]))
    print(f"{'notebook':<36}{'median s':>9}{'min':>7}{'max':>7}{'budget':>8}{'of budget':>10}"
          f"{'imports %':>10}{'peak MB':>9}{'/baseline':>10}{'CPU s':>8}")
    for row in rec.data["rows"]:
        w = row["wall_s"]
        print(f"{row['notebook']:<36}{w['median']:>9.1f}{w['min']:>7.1f}{w['max']:>7.1f}{row['budget_s'] or 0:>8}"
              f"{(row['of_budget'] or 0):>9.0%} {row['import_share']:>9.0%}{(row['peak_rss_mb'] or 0):>9.0f}"
              f"{row['ratio_to_baseline']:>10.1f}{(row['cpu_s'] or {}).get('median', 0):>8.1f}")
    print(f"total: {rec.data['total_s']:.0f} s over {len(notebooks)} notebooks "
          f"(budgets sum to {rec.data['total_budget_s']} s). {TUTORIAL_NOTE}")
    print(f"wrote {rec.path}")
    return rec.data


if __name__ == "__main__":
    main()
