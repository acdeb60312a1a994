"""Instant feedback for the notebooks' exercises: ``q1.check()``, ``q1.hint()``.

One module per notebook (``tlcourse.checks.feature_extraction`` ...). Checks
evaluate behaviour on fixed inputs; hints are words, never code.
"""
from ._core import NotAttempted, Question, QuestionSet, Verdict, Wrong

__all__ = ["NotAttempted", "Question", "QuestionSet", "Verdict", "Wrong"]
