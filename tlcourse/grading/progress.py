"""A progress bar for grading a class: submissions done out of the total, failures so far, time left.

Shown on a terminal only: when standard error is not a terminal (CI, a log
file, a notebook's subprocess) nothing is drawn, so logs stay clean
(nbgrader has no such bar: jupyter/nbgrader#1456). ``TLCOURSE_PROGRESS=1``
or ``0`` forces it on or off.

    >>> bar = GradingProgress(total=40)
    >>> bar.done("alice", "01_feature_extraction", failed=False)
    >>> bar.close()
"""
from __future__ import annotations

import os
import sys


def _enabled(stream) -> bool:
    forced = os.environ.get("TLCOURSE_PROGRESS", "")
    if forced in ("0", "1"):
        return forced == "1"
    return bool(getattr(stream, "isatty", lambda: False)())


class GradingProgress:
    """tqdm over submissions, with the count of failed ones in its postfix."""

    def __init__(self, total: int, already_done: int = 0, stream=None):
        self.stream = stream or sys.stderr
        self.failed = 0
        self.bar = None
        if _enabled(self.stream) and total > 0:
            from tqdm.auto import tqdm
            self.bar = tqdm(total=total, initial=already_done, unit="submission", desc="grading",
                            file=self.stream, dynamic_ncols=True, smoothing=0.1)
            self.bar.set_postfix(failed=0)

    def done(self, student: str, assignment: str, failed: bool) -> None:
        """One submission finished (graded or failed)."""
        self.failed += bool(failed)
        if self.bar is not None:
            self.bar.set_postfix_str(f"failed={self.failed}, last={student}/{assignment}", refresh=False)
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> "GradingProgress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
