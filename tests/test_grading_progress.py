"""The grading progress bar: drawn on a terminal with done/total and failures, silent in logs."""
from __future__ import annotations

import io

from tlcourse.grading.progress import GradingProgress


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bar_counts_submissions_and_failures_on_a_terminal(monkeypatch):
    monkeypatch.delenv("TLCOURSE_PROGRESS", raising=False)
    tty = _Tty()
    with GradingProgress(total=3, stream=tty) as bar:
        bar.done("alice", "01", failed=False)
        bar.done("bob", "01", failed=True)
        bar.done("carol", "01", failed=False)
        assert bar.failed == 1
    text = tty.getvalue()
    assert "3/3" in text and "failed=1" in text and "submission" in text


def test_silent_when_not_a_terminal_unless_forced(monkeypatch):
    monkeypatch.delenv("TLCOURSE_PROGRESS", raising=False)
    log = io.StringIO()
    with GradingProgress(total=2, stream=log) as bar:
        bar.done("alice", "01", failed=False)
    assert log.getvalue() == ""
    monkeypatch.setenv("TLCOURSE_PROGRESS", "1")
    log = io.StringIO()
    with GradingProgress(total=2, already_done=1, stream=log) as bar:
        bar.done("bob", "01", failed=False)
    assert "2/2" in log.getvalue()
    monkeypatch.setenv("TLCOURSE_PROGRESS", "0")
    tty = _Tty()
    GradingProgress(total=2, stream=tty).done("x", "01", failed=False)
    assert tty.getvalue() == ""


def test_tlcourse_grade_draws_the_bar_when_asked(tmp_path):
    """The orchestration ticks the bar once per submission (forced on: the test's stderr is no terminal)."""
    import importlib.util
    import os
    import pathlib
    import subprocess
    import sys

    here = pathlib.Path(__file__).resolve().parent
    spec = importlib.util.spec_from_file_location("grading_fixture_course", here / "fixtures/grading/fixture_course.py")
    fc = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("grading_fixture_course", fc)
    spec.loader.exec_module(fc)
    subs = tmp_path / "subs"
    fc.write(fc.right(fc.TINY), subs, "alice", fc.TINY)
    fc.write(fc.wrong(fc.TINY), subs, "bob", fc.TINY)
    env = dict(os.environ, TLCOURSE_PROGRESS="1", TLCOURSE_ROOT=str(fc.ROOT))
    done = subprocess.run([sys.executable, "-m", "tlcourse.cli", "grade", str(subs), "--out", str(tmp_path / "out")],
                          env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2/2" in done.stderr and "failed=0" in done.stderr, done.stderr[-2000:]
