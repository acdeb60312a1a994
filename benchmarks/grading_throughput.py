"""Grading throughput: nbgrader's CLI one submission at a time vs ``tlcourse grade`` with workers.

K synthetic submissions of one notebook (half right, half wrong) are graded
both ways in one run, side by side:

- baseline: ``python -m nbgrader autograde A --student S`` once per student, the
  way a shell loop over a class does it (each call imports nbgrader and opens
  the gradebook again);
- tlcourse: ``tlcourse.grading.grade(..., workers=W, regrade=True)``: one child
  process and one sandboxed kernel per submission, W at a time.

Prints the ratio of wall times, seconds per submission each way and
tlcourse's per-submission overhead (process-seconds per submission minus
nbgrader's seconds per submission), checks both gave the same scores, and
writes docs/results/grading_throughput.json (for docs/RESULTS.md). By default it uses the small
fixture course in tests/fixtures/grading; ``--root``/``--assignment`` pick a
real one (``--full`` only raises K).

    .venv/bin/python benchmarks/grading_throughput.py --k 8 --workers 2
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

import nbformat

REPO = pathlib.Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "grading"


def _submissions(root: pathlib.Path, assignment: str, k: int, dest: pathlib.Path) -> dict[str, str]:
    """K submissions: the solution (even i) and the solution with each test's answer broken (odd i)."""
    from tlcourse.grading.release import generate

    source = next((root / "solutions" / assignment).glob("*.ipynb"))
    released_dir = dest.parent / "released"
    generate(root, released_dir, only=[assignment])
    released = nbformat.read(released_dir / assignment / source.name, as_version=4)
    kinds = {}
    for i in range(k):
        student = f"student_{i:03d}"
        nb = copy.deepcopy(nbformat.read(source, as_version=4) if i % 2 == 0 else released)
        path = dest / student / assignment / source.name
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, path)
        kinds[student] = "solution" if i % 2 == 0 else "untouched release"
    return kinds


def _nbgrader_one_by_one(root: pathlib.Path, assignment: str, subs: pathlib.Path, work: pathlib.Path) -> tuple[float, dict]:
    course = work / "nbgrader_course"
    course.mkdir()
    shutil.copy(root / "nbgrader_config.py", course / "nbgrader_config.py")
    shutil.copytree(root / "solutions", course / "source")
    env = {**os.environ, "PATH": str(pathlib.Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
           "TLCOURSE_PROFILE": "quick", "MPLBACKEND": "Agg"}
    common = ["--CourseDirectory.source_directory=source", "--CourseDirectory.submitted_directory=submitted",
              "--CourseDirectory.autograded_directory=autograded", "--CourseDirectory.release_directory=release",
              f"--CourseDirectory.db_url=sqlite:///{course}/gradebook.db", "--CourseDirectory.root=" + str(course)]
    subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", assignment, "--force", *common],
                   cwd=course, env=env, check=True, capture_output=True)
    shutil.copytree(subs, course / "submitted")
    students = sorted(p.name for p in subs.iterdir())
    start = time.perf_counter()
    for s in students:
        subprocess.run([sys.executable, "-m", "nbgrader", "autograde", assignment, "--student", s, "--force",
                        *common], cwd=course, env=env, capture_output=True)
    elapsed = time.perf_counter() - start
    from nbgrader.api import Gradebook, MissingEntry
    scores = {}
    with Gradebook(f"sqlite:///{course}/gradebook.db") as gb:
        for s in students:
            try:
                scores[s] = float(gb.find_submission(assignment, s).score)
            except MissingEntry:
                scores[s] = None
    return elapsed, scores


def _tlcourse(root: pathlib.Path, assignment: str, subs: pathlib.Path, work: pathlib.Path, workers: int) -> tuple[float, dict]:
    from tlcourse.grading import grade

    start = time.perf_counter()
    rows = grade(subs, out=work / "tlcourse_out", root=root, only=[assignment], workers=workers, regrade=True)
    elapsed = time.perf_counter() - start
    return elapsed, {r.student: r.score for r in rows}


def run(k: int, workers: int, root: pathlib.Path, assignment: str, out: pathlib.Path) -> dict:
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
    from _common import machine, uptime_line

    started, t0, uptime_before = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), time.perf_counter(), uptime_line()
    with tempfile.TemporaryDirectory(prefix="tlcourse-grading-bench-") as tmp:
        work = pathlib.Path(tmp)
        subs = work / "submissions"
        kinds = _submissions(root, assignment, k, subs)
        base_s, base_scores = _nbgrader_one_by_one(root, assignment, subs, work)
        ours_s, our_scores = _tlcourse(root, assignment, subs, work, workers)
    per_base, per_ours = base_s / k, ours_s / k
    result = {
        "k": k, "workers": workers, "assignment": assignment, "root": str(root),
        "nbgrader_cli_s": round(base_s, 2), "tlcourse_s": round(ours_s, 2),
        "ratio_nbgrader_over_tlcourse": round(base_s / ours_s, 3),
        "nbgrader_s_per_submission": round(per_base, 2), "tlcourse_s_per_submission": round(per_ours, 2),
        "tlcourse_overhead_s_per_submission": round(ours_s * workers / k - per_base, 2),
        "same_scores": base_scores == our_scores, "scores": {"nbgrader": base_scores, "tlcourse": our_scores},
        "kinds": kinds,
        "machine": {**machine(), "load_avg_at_end": [round(x, 2) for x in os.getloadavg()]},
        "started_utc": started, "elapsed_s": round(time.perf_counter() - t0, 1), "profile": "quick",
        "uptime_before": uptime_before, "uptime_after": uptime_line(),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    from tlcourse._io import atomic_open
    with atomic_open(out, "w") as fh:
        json.dump(result, fh, indent=1)
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--k", type=int, default=None, help="submissions (default: the profile's grading_throughput size)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--full", action="store_true", help="a class-sized K")
    ap.add_argument("--root", type=pathlib.Path, default=FIXTURE, help="course root (default: the test fixture)")
    ap.add_argument("--assignment", default="01_tiny")
    ap.add_argument("--json", type=pathlib.Path, default=REPO / "docs" / "results" / "grading_throughput.json")
    args = ap.parse_args(argv)
    from tlcourse.profile import profile
    k = args.k or profile("full" if args.full else "quick")["grading_throughput"]["submissions"]
    r = run(k, args.workers, args.root.resolve(), args.assignment, args.json)
    print(f"grading {k} submissions of {args.assignment} ({os.cpu_count()} CPUs, load {r['machine']['load_avg_at_end']})")
    print(f"{'method':<34}{'wall s':>8}{'s/submission':>14}")
    print(f"{'nbgrader autograde, one by one':<34}{r['nbgrader_cli_s']:>8.1f}{r['nbgrader_s_per_submission']:>14.2f}")
    print(f"{'tlcourse grade, ' + str(args.workers) + ' workers':<34}{r['tlcourse_s']:>8.1f}"
          f"{r['tlcourse_s_per_submission']:>14.2f}")
    print(f"ratio nbgrader/tlcourse: {r['ratio_nbgrader_over_tlcourse']:.2f}x; tlcourse overhead per submission "
          f"(process-seconds minus nbgrader's): {r['tlcourse_overhead_s_per_submission']:+.2f} s")
    print(f"same scores both ways: {r['same_scores']}; written {args.json}")
    return 0 if r["same_scores"] else 1


if __name__ == "__main__":
    sys.exit(main())
