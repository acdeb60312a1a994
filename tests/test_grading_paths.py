"""Grading works wherever the instructor's output folder lives, however deep.

The kernel talks to the grader over unix sockets, whose paths may not exceed
107 bytes; a socket inside a deep output folder (pytest's tmp_path already is
one) once failed every submission with ``ZMQError: File name too long``.
"""
from __future__ import annotations

import importlib.util
import os
import pathlib
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("grading_fixture_course", HERE / "fixtures/grading/fixture_course.py")
fc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fc)


def test_a_deep_output_folder_still_grades(tmp_path, monkeypatch):
    from tlcourse.grading import grade

    subs = tmp_path / "subs"
    fc.write(fc.right(fc.TINY), subs, "right", fc.TINY)  # before the patch: the fixture caches its release
    # this grading's short folders go to a private temp dir (the worker is forked, so it inherits
    # tempfile.tempdir): other gradings running alongside cannot make the check below pass or fail
    private = pathlib.Path(tempfile.mkdtemp(prefix="tlgt-"))
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    touched = os.stat(private).st_mtime_ns
    out = tmp_path / ("a-rather-long-folder-name-for-this-term" * 3) / "grading-output"
    assert len(str(out)) > 120
    rows = grade(subs, out=out, root=fc.ROOT)
    assert [(r.student, r.status) for r in rows] == [("right", "graded")], [r.reason for r in rows]
    tests = {q: pts for q, pts in rows[0].max_by_question.items() if q.endswith("_tests")}
    assert tests and all(rows[0].by_question[q] == pts > 0 for q, pts in tests.items()), rows[0].by_question
    assert os.stat(private).st_mtime_ns > touched, "the kernel's socket folder was not made in the temp dir"
    assert not list(private.glob("tlg-*")), "the kernel's socket folder was left behind"
    private.rmdir()
