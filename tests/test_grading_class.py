"""A class of 40+ submissions of the fixture assignment: good, wrong, broken and hostile.

Graded once per session with two workers, in two runs: the first, through the
command line, is killed with SIGKILL part way; the second finishes the class.
Every check below reads the result of those two runs, so together they show
that broken and hostile submissions never stop the class or earn points, and
that a killed run loses nothing and grades nobody twice.
"""
from __future__ import annotations

import csv
import importlib.util
import json
import os
import pathlib
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

import nbformat
import pytest

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import hostile_submissions as hostile  # noqa: E402

_spec = importlib.util.spec_from_file_location("grading_fixture_course", HERE / "fixtures/grading/fixture_course.py")
fc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fc)

pytestmark = pytest.mark.slow  # executes ~45 notebooks (about 2 minutes on 2 busy cores)

A = fc.TINY
FULL = {"q1_add_tests": 2.0, "q2_normalize_tests": 3.0}
WRONG_ATTACKS = ("patch_comparisons", "wrap_cells_in_try", "strip_asserts", "replace_run_cell", "all_attacks")


def _status(variant: str) -> str:
    """Code reaching for the grader's machinery sends the row to a person (review.py); a cell edit does not."""
    from tlcourse.grading.review import scan_source

    source = "\n".join(hostile.ATTACKS.values()) if variant == "all_attacks" else hostile.ATTACKS.get(variant, "")
    return "needs_review" if scan_source(source) else "graded"


def _build_class(subs: pathlib.Path) -> dict[str, tuple[str, dict | None]]:
    """Write the class; returns student -> (expected status, expected autograded scores or None)."""
    expected: dict[str, tuple[str, dict | None]] = {}
    released = fc.load(fc.released(A))
    shutil.copytree(fc.solution(A).parent, subs / "solution" / A)
    expected["solution"] = ("graded", FULL)
    for i in range(6):
        fc.write(fc.right(A), subs, f"good_{i}", A)
        expected[f"good_{i}"] = ("graded", FULL)
        fc.write(fc.wrong(A), subs, f"wrong_{i}", A)
        expected[f"wrong_{i}"] = ("graded", {"q1_add_tests": 0.0, "q2_normalize_tests": 0.0})
    fc.write(released, subs, "untouched", A)
    expected["untouched"] = ("graded", {"q1_add_tests": 0.0, "q2_normalize_tests": 0.0})
    zero = {"q1_add_tests": 0.0, "q2_normalize_tests": 0.0}
    for name, make in hostile.VARIANTS.items():  # tampering alone never earns a point
        fc.write(make(released), subs, f"hostile_{name}", A)
        expected[f"hostile_{name}"] = (_status(name), zero)
    for name in WRONG_ATTACKS:  # nor turns a wrong answer into points
        fc.write(hostile.VARIANTS[name](fc.wrong(A)), subs, f"wrong_{name}", A)
        expected[f"wrong_{name}"] = (_status(name), zero)
    for name in ("delete_test_cells", "strip_test_metadata", "duplicate_cells", "replace_test_cells"):
        fc.write(hostile.VARIANTS[name](fc.right(A)), subs, f"right_{name}", A)  # graded with the original tests
        expected[f"right_{name}"] = ("graded", FULL)
    # broken in the ways nbgrader users report
    path = fc.write(fc.right(A), subs, "corrupt_json", A)
    path.write_text(path.read_text()[:300])
    expected["corrupt_json"] = ("failed", None)
    path = fc.write(fc.right(A), subs, "empty_file", A)
    path.write_text("")
    expected["empty_file"] = ("failed", None)
    fc.write(fc.right(A), subs, "renamed", A, name="01_tiny (1).ipynb")
    expected["renamed"] = ("graded", FULL)
    fc.write(fc.right(A), subs, "two_strays", A, name="draft.ipynb")
    fc.write(fc.right(A), subs, "two_strays", A, name="final.ipynb")
    expected["two_strays"] = ("failed", None)
    other_kernel = fc.right(A)
    other_kernel.metadata["kernelspec"] = {"name": "ir", "display_name": "R", "language": "R"}
    fc.write(other_kernel, subs, "other_kernel", A)
    expected["other_kernel"] = ("graded", FULL)
    (subs / "no_folder").mkdir()
    nbformat.write(fc.right(A), subs / "no_folder" / "01_tiny.ipynb")  # notebook not in an assignment folder
    expected["no_folder"] = ("graded", FULL)
    (subs / "nothing_at_all").mkdir()
    expected["nothing_at_all"] = ("failed", None)
    fc.write(fc.right(A), subs, "unknown_assignment", "99_not_a_course_assignment")
    expected["unknown_assignment"] = ("skipped", None)
    return expected


def _records(out: pathlib.Path) -> dict[pathlib.Path, bytes]:
    return {p: p.read_bytes() for p in (out / "results").rglob("*.json")} if (out / "results").exists() else {}


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    from tlcourse.grading import grade

    tmp = tmp_path_factory.mktemp("grading-class")
    subs, out = tmp / "submissions", tmp / "out"
    expected = _build_class(subs)
    assert len(expected) >= 40
    original = {p: p.read_bytes() for p in subs.rglob("*") if p.is_file()}
    env = {**os.environ, "TLCOURSE_ROOT": str(fc.ROOT)}
    cmd = [sys.executable, "-m", "tlcourse.cli", "grade", str(subs), "--out", str(out), "--workers", "2",
           "--cell-timeout", "20"]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    while len(_records(out)) < 12 and proc.poll() is None and time.monotonic() - started < 400:
        time.sleep(0.2)
    assert proc.poll() is None, "the first run ended before it could be killed; the kill test needs a bigger class"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before_kill = _records(out)
    first = {p: p.stat().st_mtime_ns for p in before_kill}
    rows = grade(subs, out=out, root=fc.ROOT, workers=2)
    elapsed = time.monotonic() - started
    print(f"\nclass of {len(expected)} graded in {elapsed:.0f} s (killed run + finishing run, 2 workers)")
    return {"subs": subs, "out": out, "rows": rows, "expected": expected, "original": original,
            "before_kill": before_kill, "first_mtimes": first, "env": env}


def test_every_student_appears_once_with_the_right_status(graded_class):
    rows, expected = graded_class["rows"], graded_class["expected"]
    students = [r.student for r in rows]
    assert sorted(students) == sorted(expected), set(students) ^ set(expected)
    assert {r.student: r.status for r in rows} == {s: e[0] for s, e in expected.items()}


def test_scores_of_good_wrong_and_hostile_submissions(graded_class):
    rows, expected = graded_class["rows"], graded_class["expected"]
    wrongly = {}
    for r in rows:
        want = expected[r.student][1]
        if want is None:
            assert r.score is None and not r.by_question
            continue
        got = {q: r.by_question[q] for q in want}
        if got != want:
            wrongly[r.student] = got
        assert r.max_by_question["q3_written"] == 1.0
        # a written answer left as the release's stub scores 0 at once; any other text awaits a human
        assert r.needs_manual == (["q3_written"] if r.student == "solution" else []), (r.student, r.needs_manual)
    assert not wrongly, f"autograded scores differ from what the submission deserves: {wrongly}"


def test_failed_and_skipped_say_why(graded_class):
    reason = {r.student: r.reason for r in graded_class["rows"]}
    assert "not a readable notebook" in reason["corrupt_json"]
    assert "empty file" in reason["empty_file"]
    assert "expected 01_tiny.ipynb; found draft.ipynb, final.ipynb" in reason["two_strays"]
    assert "no assignment folder" in reason["nothing_at_all"]
    assert "unknown assignment" in reason["unknown_assignment"]
    assert "graded as '01_tiny.ipynb'" in reason["renamed"]
    assert "'ir'" in reason["other_kernel"]
    assert "not in an 01_tiny/ folder" in reason["no_folder"]
    assert "duplicated" in reason["right_duplicate_cells"]
    assert "missing or stripped" in reason["right_delete_test_cells"]


def test_export_matches_and_failures_are_not_zeros(graded_class):
    out, rows = graded_class["out"], graded_class["rows"]
    with open(out / "grades.csv") as fh:
        exported = {r["student"]: r for r in csv.DictReader(fh)}
    assert set(exported) == {r.student for r in rows}
    for r in rows:
        e = exported[r.student]
        assert e["status"] == r.status
        if r.status in ("graded", "needs_review"):
            assert float(e["score"]) == r.score
        else:
            assert e["score"] == "" and e["reason"]
    with sqlite3.connect(out / "gradebook.db") as db:
        in_gradebook = [s for (s,) in db.execute(
            "select student_id from submitted_assignment")]
    assert sorted(in_gradebook) == sorted(r.student for r in rows if r.status in ("graded", "needs_review")), \
        "the gradebook must hold each graded student once and no failed one"
    assert (out / "report" / f"{A}.png").stat().st_size > 0
    assert not list(out.rglob(".*.tmp")), "a temporary export file was left behind"


def test_autograded_solution_has_no_errors(graded_class):
    nb = nbformat.read(graded_class["out"] / "autograded" / "solution" / A / f"{A}.ipynb", as_version=4)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors and len(nb.cells) == len(fc.load(fc.solution(A)).cells)


def test_a_killed_run_loses_nothing_and_grades_nobody_twice(graded_class):
    out = graded_class["out"]
    before = graded_class["before_kill"]
    in_flight = {p for p, data in before.items() if json.loads(data)["status"] == "in_progress"}
    assert len(before) - len(in_flight) >= 10
    for path, data in before.items():
        if path in in_flight:  # in flight when the grader died: graded again (alone), now finished
            assert json.loads(path.read_text())["status"] != "in_progress"
            continue
        assert path.read_bytes() == data  # results recorded before the kill were reused, not redone
        assert path.stat().st_mtime_ns == graded_class["first_mtimes"][path]
    backups = list((out / "backups").glob("gradebook-*.db"))
    assert backups, "the gradebook is backed up before each run"
    from tlcourse.grading.sandbox import orphans
    assert not orphans(), "a sandbox cgroup leaked"
    assert not (out / ".scratch").exists()


def test_submissions_are_never_modified(graded_class):
    subs = graded_class["subs"]
    assert {p: p.read_bytes() for p in subs.rglob("*") if p.is_file()} == graded_class["original"]


def test_command_line_reuses_results_and_reports_counts(graded_class):
    out, rows = graded_class["out"], graded_class["rows"]
    proc = subprocess.run([sys.executable, "-m", "tlcourse.cli", "grade", str(graded_class["subs"]), "--out",
                           str(out), "--workers", "2", "--cell-timeout", "20"],
                          env=graded_class["env"], capture_output=True, text=True, timeout=300)
    counts = {s: sum(r.status == s for r in rows) for s in ("graded", "failed", "skipped")}
    assert proc.returncode == 1, proc.stdout + proc.stderr  # some submissions failed
    assert f"{counts['graded']} graded, {counts['failed']} failed, {counts['skipped']} skipped" in proc.stdout
    assert "FAILED: corrupt_json/01_tiny" in proc.stdout


def test_regrading_gives_the_same_grades(graded_class, tmp_path):
    from tlcourse.grading import grade

    subs = tmp_path / "subs"
    picked = ["good_0", "wrong_0", "hostile_all_attacks", "right_duplicate_cells", "corrupt_json", "renamed"]
    for s in picked:
        shutil.copytree(graded_class["subs"] / s, subs / s)
    first = {r.student: (r.status, r.score, r.by_question) for r in graded_class["rows"] if r.student in picked}
    again = grade(subs, out=tmp_path / "out", root=fc.ROOT, workers=2, regrade=True)
    assert {r.student: (r.status, r.score, r.by_question) for r in again} == first
