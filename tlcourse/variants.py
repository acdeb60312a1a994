"""Per-student variants: each student's own test inputs, the same at home and at grading.

An exercise declares the values a parameter may take; every student gets one
of them, drawn from a stable hash (sha256, not Python's salted ``hash``) of
their id, the assignment and the parameter's name:

    V = variant("02_fine_tuning", num_classes=(10, 5, 7, 12), k=(3, 2, 4, 5))
    print(V)   # your variant for 02_fine_tuning (student 'alice'): num_classes=7, k=4

The student id comes from, in order: ``TLCOURSE_STUDENT``, ``JUPYTERHUB_USER``,
the first line of ``~/.tlcourse-student`` (a file the instructor hands out), or
none at all: then every parameter takes its first value, the class-wide
default, and the printout says so. The grader sets ``TLCOURSE_STUDENT`` to the
submission's folder name, so the hidden tests see the values the student saw,
and results copied from a classmate were computed on other inputs.
"""
from __future__ import annotations

import hashlib
import os
import pathlib
from collections.abc import Mapping, Sequence

ANONYMOUS = "anonymous"


def student_id() -> str:
    """The student's id, or ``"anonymous"`` when none is set (see the module docstring)."""
    for name in ("TLCOURSE_STUDENT", "JUPYTERHUB_USER"):
        value = os.environ.get(name, "").strip()
        if value:
            return value
    path = pathlib.Path.home() / ".tlcourse-student"
    if path.is_file():
        lines = path.read_text(encoding="utf-8").strip().splitlines()
        if not lines or not lines[0].strip():
            raise ValueError(f"{path} is empty: it should hold your student id on its first line "
                             "(the file your instructor gave you), or delete it to use the class-wide default")
        return lines[0].strip()
    return ANONYMOUS


def _index(student: str, assignment: str, name: str, n: int) -> int:
    digest = hashlib.sha256(f"{student}\0{assignment}\0{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % n


class Variant(Mapping):
    """One student's parameter values for one assignment: read-only, by key or attribute."""

    def __init__(self, assignment: str, student: str, values: dict):
        object.__setattr__(self, "_values", dict(values))
        object.__setattr__(self, "assignment", assignment)
        object.__setattr__(self, "student", student)

    def __getitem__(self, name):
        return self._values[name]

    def __iter__(self):
        return iter(self._values)

    def __len__(self):
        return len(self._values)

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"this variant has no parameter {name!r}; it has {list(self._values)}") from None

    def __setattr__(self, name, value):
        raise AttributeError("a variant is read-only: the grader recomputes it from your student id")

    def __repr__(self):
        values = ", ".join(f"{k}={v!r}" for k, v in self._values.items())
        if self.student == ANONYMOUS:
            who = ("no student id found, so the class-wide default; set TLCOURSE_STUDENT "
                   "or put your id in ~/.tlcourse-student to get yours")
        else:
            who = f"student {self.student!r}"
        return f"your variant for {self.assignment} ({who}): {values}"


def variant(assignment: str, *, student: str | None = None, **choices: Sequence) -> Variant:
    """Draw this student's value of every parameter in ``choices`` (name -> the values it may take)."""
    if not isinstance(assignment, str) or not assignment.strip():
        raise ValueError(f"variant() needs the assignment's name first, e.g. variant('02_fine_tuning', k=(2, 3)); "
                         f"got {assignment!r}")
    if not choices:
        raise ValueError("variant() needs at least one parameter, e.g. variant('02_fine_tuning', k=(2, 3, 4))")
    student = student_id() if student is None else str(student).strip()
    if not student:
        raise ValueError("the student id is empty: pass a name, or leave it out to read it from the environment")
    values = {}
    for name, options in choices.items():
        if isinstance(options, (str, bytes)) or not isinstance(options, Sequence) or len(options) == 0:
            raise ValueError(f"parameter {name!r} needs a non-empty list, tuple or range of values, got {options!r}")
        values[name] = options[0] if student == ANONYMOUS else options[_index(student, assignment, name, len(options))]
    return Variant(assignment, student, values)
