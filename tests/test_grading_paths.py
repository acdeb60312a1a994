"""Grading works wherever the instructor's output folder lives, however deep.

The kernel talks to the grader over unix sockets, whose paths may not exceed
107 bytes; a socket inside a deep output folder (pytest's tmp_path already is
one) once failed every submission with ``ZMQError: File name too long``.
"""
from __future__ import annotations

import importlib.util
import pathlib

HERE = pathlib.Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("grading_fixture_course", HERE / "fixtures/grading/fixture_course.py")
fc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fc)


def test_a_deep_output_folder_still_grades(tmp_path):
    from tlcourse.grading import grade

    subs = tmp_path / "subs"
    fc.write(fc.right(fc.TINY), subs, "right", fc.TINY)
    out = tmp_path / ("a-rather-long-folder-name-for-this-term" * 3) / "grading-output"
    assert len(str(out)) > 120
    before = set(pathlib.Path("/tmp").glob("tlg-*"))  # other gradings may be running alongside
    rows = grade(subs, out=out, root=fc.ROOT)
    assert [(r.student, r.status) for r in rows] == [("right", "graded")], [r.reason for r in rows]
    tests = {q: pts for q, pts in rows[0].max_by_question.items() if q.endswith("_tests")}
    assert tests and all(rows[0].by_question[q] == pts > 0 for q, pts in tests.items()), rows[0].by_question
    assert not set(pathlib.Path("/tmp").glob("tlg-*")) - before, "the kernel's socket folder was left behind"
