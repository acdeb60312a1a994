"""One submission can never stop the class: whatever a submission folder holds becomes a row with a reason.

Graded on the fixture course (01_tiny, a few seconds per notebook). The malformed
submissions fail at intake, before any kernel starts, so most of this file is cheap.
"""
from __future__ import annotations

import importlib.util
import json
import os
import pathlib

import nbformat
import pytest

HERE = pathlib.Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("grading_fixture_course", HERE / "fixtures/grading/fixture_course.py")
fc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fc)

A = fc.TINY
FULL = {"q1_add_tests": 2.0, "q2_normalize_tests": 3.0}


def _write_json(subs: pathlib.Path, student: str, nb: dict) -> None:
    path = subs / student / A / f"{A}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb))


def _malformed(subs: pathlib.Path) -> dict[str, str]:
    """Submissions whose metadata once raised in the intake step, stopping every student; -> reason fragment."""
    good = json.loads(nbformat.writes(fc.right(A)))
    cases = {}
    nb = json.loads(json.dumps(good))
    nb["metadata"]["kernelspec"] = "python3"
    _write_json(subs, "kernelspec_string", nb)
    cases["kernelspec_string"] = "graded"
    nb = json.loads(json.dumps(good))
    nb["metadata"]["kernelspec"] = None
    _write_json(subs, "kernelspec_null", nb)
    cases["kernelspec_null"] = "graded"
    nb = json.loads(json.dumps(good))
    for cell in nb["cells"]:
        gid = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if gid == "q1_add":
            cell["metadata"]["nbgrader"]["grade_id"] = ["q1_add"]  # read as "q1_add"
        elif gid == "q2_normalize_tests":
            cell["metadata"]["nbgrader"]["grade_id"] = ["q2", "tests"]  # ignored: graded with the original test
    _write_json(subs, "grade_id_list", nb)
    cases["grade_id_list"] = "graded"
    nb = json.loads(json.dumps(good))
    del nb["cells"][2]["cell_type"]
    _write_json(subs, "no_cell_type", nb)
    cases["no_cell_type"] = "failed"
    return cases


@pytest.mark.slow
def test_malformed_odd_and_linked_submissions_are_each_accounted_for(tmp_path):
    from tlcourse.grading import grade
    from tlcourse.grading.grade import Limits

    subs = tmp_path / "subs"
    cases = _malformed(subs)
    for name in (".dot", "*", "x[1]"):  # names that once vanished (hidden) or matched other folders (globs)
        fc.write(fc.right(A), subs, name, A)
    fc.write(fc.wrong(A), subs, "x1", A)  # what the glob x[1] matches
    fc.write(fc.right(A), subs, "victim", A)
    (subs / "linked_student").symlink_to(subs / "victim")
    (subs / "linked_folder").mkdir()
    (subs / "linked_folder" / A).symlink_to(subs / "victim" / A)
    (subs / "linked_notebook" / A).mkdir(parents=True)
    (subs / "linked_notebook" / A / f"{A}.ipynb").symlink_to(subs / "victim" / A / f"{A}.ipynb")
    big = fc.insert_after(fc.right(A), "q1_add", "# " + "x" * (3 * 2**20))
    fc.write(big, subs, "huge_notebook", A)
    flood = fc.insert_after(fc.right(A), "q1_add", 'raise Exception("x" * 20_000_000)')
    fc.write(flood, subs, "error_flood", A)
    rows = {r.student: r for r in grade(subs, out=tmp_path / "out", root=fc.ROOT, workers=2,
                                       limits=Limits(cell_timeout=30, max_notebook_mb=2))}
    expected = {**cases, ".dot": "graded", "*": "graded", "x[1]": "graded", "x1": "graded", "victim": "graded",
                "linked_student": "failed", "linked_folder": "failed", "linked_notebook": "failed",
                "huge_notebook": "failed", "error_flood": "graded"}
    assert {s: r.status for s, r in rows.items()} == expected, {s: r.reason for s, r in rows.items()}
    for s in (".dot", "*", "x[1]", "victim", "kernelspec_string", "kernelspec_null", "error_flood"):
        assert {q: rows[s].by_question[q] for q in FULL} == FULL, (s, rows[s].by_question, rows[s].reason)
    assert rows["x1"].score == 0.0, "x1 is wrong; it must not take the score of x[1]"
    assert {q: rows["grade_id_list"].by_question[q] for q in FULL} == FULL, rows["grade_id_list"].reason
    assert "was a list" in rows["grade_id_list"].reason and "ignored grader metadata" in rows["grade_id_list"].reason
    assert "cell_type" in rows["no_cell_type"].reason
    for s in ("linked_student", "linked_folder", "linked_notebook"):
        assert "symbolic link" in rows[s].reason, rows[s].reason
    assert "over the 2 MB limit" in rows["huge_notebook"].reason
    flooded = tmp_path / "out" / "autograded" / "error_flood" / A / f"{A}.ipynb"
    assert flooded.stat().st_size < 2_000_000, "an error's message bypassed the output cap"


@pytest.mark.slow
def test_a_grader_crash_retries_in_flight_submissions_alone_then_fails_the_culprit(tmp_path):
    """The grader writes an in-progress record before each job. After a crash, those in flight are graded
    again one at a time; one in flight alone when the grader died again is failed, and the class goes on."""
    from tlcourse.grading import grade

    subs, out = tmp_path / "subs", tmp_path / "out"
    for s in ("bystander", "culprit", "later"):
        fc.write(fc.right(A), subs, s, A)
    first = {r.student: r.status for r in grade(subs, out=out, root=fc.ROOT)}
    assert first == dict.fromkeys(("bystander", "culprit", "later"), "graded")

    def crash_record(student: str, alone: bool) -> None:
        path = out / "results" / A / f"{student}.json"
        saved = json.loads(path.read_text())
        path.write_text(json.dumps({"fingerprint": saved["fingerprint"], "status": "in_progress", "alone": alone}))

    crash_record("bystander", alone=False)  # in flight beside another when the grader died: graded again
    crash_record("culprit", alone=True)  # in flight alone when it died a second time: failed, not retried
    before = os.stat(out / "results" / A / "later.json").st_mtime_ns
    rows = {r.student: r for r in grade(subs, out=out, root=fc.ROOT)}
    assert rows["bystander"].status == "graded" and rows["bystander"].score == 5.0
    assert rows["culprit"].status == "failed" and "grader itself died" in rows["culprit"].reason
    assert rows["later"].status == "graded"
    assert os.stat(out / "results" / A / "later.json").st_mtime_ns == before, "a finished result was redone"
