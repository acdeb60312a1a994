"""Each submission's wall-clock deadline: a multiple of the solution's own run time, configurable.

The ceiling that per-cell timeouts impose (every cell at its timeout, plus restarts) is hours
for a real notebook; a stalled submission would hold a worker that long. The deadline is
``deadline_factor`` x the notebook's run-time budget instead, never above that ceiling.
"""
from __future__ import annotations

import importlib.util
import pathlib

import pytest

from tlcourse.grading.grade import Limits, _deadline
from tlcourse.profile import RUNTIME_BUDGET_S

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent


def test_the_deadline_is_a_multiple_of_the_solutions_run_time():
    limits = Limits(cell_timeout=600)
    assert _deadline(limits, 30, "03_nlp_transfer") == 10 * RUNTIME_BUDGET_S["03"] + 120
    assert _deadline(Limits(cell_timeout=600, deadline_factor=3), 30, "03_nlp_transfer") == \
        3 * RUNTIME_BUDGET_S["03"] + 120
    assert _deadline(limits, 30, "03_nlp_transfer") < 4 * 600 * 30, "no tighter than the per-cell ceiling"


def test_an_explicit_timeout_wins_and_the_ceiling_caps_everything():
    assert _deadline(Limits(cell_timeout=600, submission_timeout=77), 30, "03_nlp_transfer") == 77
    assert _deadline(Limits(cell_timeout=5), 3, "01_feature_extraction") == 4 * 5 * 3 + 60
    # an assignment with no known run time (an instructor's own) gets the ceiling
    assert _deadline(Limits(cell_timeout=600), 10, "homework") == 4 * 600 * 10 + 60
    assert _deadline(Limits(cell_timeout=600), 10, "99_capstone_draft") == 4 * 600 * 10 + 60


def test_every_course_notebook_has_a_run_time_budget():
    folders = sorted(p.name for p in (ROOT / "solutions").iterdir() if p.is_dir())
    missing = [f for f in folders if f[:2] not in RUNTIME_BUDGET_S]
    assert not missing, f"add these notebooks' quick-profile budgets to tlcourse/profile.py RUNTIME_BUDGET_S: {missing}"


def test_the_cli_passes_the_factor_and_refuses_a_bad_one(monkeypatch, capsys):
    from tlcourse import cli

    seen = {}

    def fake_grade(submissions, out, only, workers, limits, regrade):
        seen["limits"] = limits
        return []

    import tlcourse.grading as grading
    monkeypatch.setattr(grading, "grade", fake_grade)
    monkeypatch.setattr(grading, "summary", lambda rows: "")
    cli.main(["grade", "subs", "--deadline-factor", "2.5", "--submission-timeout", "900"])
    assert seen["limits"].deadline_factor == 2.5 and seen["limits"].submission_timeout == 900
    with pytest.raises(SystemExit):
        cli.main(["grade", "subs", "--deadline-factor", "0"])
    assert "not a positive number" in capsys.readouterr().err


@pytest.mark.slow
def test_a_stalled_submission_fails_at_its_deadline_and_the_class_goes_on(tmp_path):
    """A cell that sleeps well within its cell timeout but past the submission's deadline: that student's row
    fails with the reason, the honest student is graded in full, and grading does not wait for the sleeper."""
    import time

    from tlcourse.grading import grade

    spec = importlib.util.spec_from_file_location("grading_fixture_course", HERE / "fixtures/grading/fixture_course.py")
    fc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fc)
    a = fc.TINY
    subs = tmp_path / "subs"
    fc.write(fc.right(a), subs, "honest", a)
    fc.write(fc.insert_after(fc.right(a), "q1_add", "import time\ntime.sleep(400)"), subs, "sleeper", a)
    t0 = time.monotonic()
    rows = grade(subs, out=tmp_path / "out", root=fc.ROOT, workers=2,
                 limits=Limits(cell_timeout=600, submission_timeout=90))
    took = time.monotonic() - t0
    by = {r.student: r for r in rows}
    assert by["sleeper"].status == "failed" and "wall-clock limit" in by["sleeper"].reason, by["sleeper"].reason
    assert by["honest"].status == "graded", by["honest"].reason
    assert {q: by["honest"].by_question[q] for q in ("q1_add_tests", "q2_normalize_tests")} == \
        {"q1_add_tests": 2.0, "q2_normalize_tests": 3.0}
    assert took < 300, f"grading waited {took:.0f} s: the deadline did not stop the sleeper"
