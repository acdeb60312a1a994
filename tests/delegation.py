"""Shared by the checks tests: a question's library twin, and the assertion that delegating to it loses points."""
from __future__ import annotations

import pytest


def library(question, name: str):
    """The library twin called ``name`` that ``question`` declares, wherever it lives in tlcourse now."""
    from tlcourse.checks import _twins

    found = [obj for twin in question.twins for obj in _twins.resolve(twin) if obj.__name__ == name]
    assert found, f"{question.qid} declares no library twin named {name}"
    return found[0]


def assert_loses_points(question, *answers):
    """check() says to write it yourself, and grade() (what the hidden tests call) fails."""
    v = question.verdict(*answers)
    assert v.status == "wrong" and "write it yourself" in v.message.lower(), v.message
    with pytest.raises(AssertionError, match="calls tlcourse's own"):
        question.grade(*answers)
