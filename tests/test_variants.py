"""Per-student variants (tlcourse/variants.py): each student's own test inputs, at home and at grading.

The values are unit-tested here for the two course notebooks that use them (02
and 05, whose variant() calls are read from the solution notebooks). Grading is
shown on a one-exercise course built in a temporary folder: correct answers pass
for two students with different variants, a classmate's printed result pasted
in fails, and a notebook that sets TLCOURSE_STUDENT itself still gets its own.
"""
from __future__ import annotations

import ast
import json
import pathlib
import re
import shutil

import nbformat
import numpy as np
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from tlcourse.variants import ANONYMOUS, Variant, student_id, variant

REPO = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = {"02_fine_tuning": REPO / "solutions/02_fine_tuning/02_fine_tuning.ipynb",
             "05_domain_adaptation": REPO / "solutions/05_domain_adaptation/05_domain_adaptation.ipynb"}


@pytest.fixture(autouse=True)
def _no_ambient_id(monkeypatch, tmp_path):
    monkeypatch.delenv("TLCOURSE_STUDENT", raising=False)
    monkeypatch.delenv("JUPYTERHUB_USER", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def _calls(path: pathlib.Path) -> list[str]:
    """Every variant(...) call in a notebook, visible and hidden cells alike."""
    text = "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code")
    return re.findall(r"variant\((\"\d\d_\w+\",[^\n]*?\))(?=\s*$|\.\w+|\s*#)", text, flags=re.M)


def _choices(assignment: str) -> dict:
    """The notebook's declared choices, evaluated: {name: values}."""
    call = ast.parse(f"variant({_calls(NOTEBOOKS[assignment])[0]}", mode="eval").body
    assert ast.literal_eval(call.args[0]) == assignment
    return {kw.arg: eval(compile(ast.Expression(kw.value), "<choices>", "eval"), {"range": range})
            for kw in call.keywords}


@pytest.mark.parametrize("assignment", sorted(NOTEBOOKS))
def test_each_notebook_declares_one_variant_and_its_hidden_tests_recompute_it(assignment):
    calls = _calls(NOTEBOOKS[assignment])
    assert len(calls) >= 3, f"the variant cell and at least two hidden tests should call variant(): {calls}"
    assert len(set(calls)) == 1, f"the hidden tests must draw the same variant as the visible cell: {set(calls)}"


@pytest.mark.parametrize("assignment", sorted(NOTEBOOKS))
def test_two_students_get_different_values_and_each_always_the_same(assignment):
    choices = _choices(assignment)
    alice, bob = (variant(assignment, student=s, **choices) for s in ("alice", "bob"))
    assert dict(alice) != dict(bob)
    assert dict(variant(assignment, student="alice", **choices)) == dict(alice)
    for name, values in choices.items():
        assert alice[name] in values and bob[name] in values
    # over a class every declared value turns up, so no value is dead
    seen = {name: {variant(assignment, student=f"s{i}", **choices)[name] for i in range(300)} for name in choices}
    assert all(len(seen[n]) == len(choices[n]) for n in choices if len(choices[n]) <= 20), seen


def test_the_draw_is_a_stable_hash_of_student_assignment_and_name():
    # not Python's salted hash(): the same student must get the same values in every process, at home and at grading
    import hashlib

    def expected(student, assignment, name, n=1000):
        return int.from_bytes(hashlib.sha256(f"{student}\0{assignment}\0{name}".encode()).digest()[:8], "big") % n

    v = variant("02_fine_tuning", student="alice", k=range(1000), n=range(1000))
    assert (v.k, v.n) == (expected("alice", "02_fine_tuning", "k"), expected("alice", "02_fine_tuning", "n"))
    assert v.k != v.n, "each parameter is drawn on its own"
    other = variant("05_domain_adaptation", student="alice", k=range(1000))
    assert other.k == expected("alice", "05_domain_adaptation", "k")
    assert dict(variant("02_fine_tuning", student="alice", n=range(1000), k=range(1000))) == dict(v), "order-free"


def test_the_student_id_comes_from_the_environment_the_hub_or_the_instructors_file(monkeypatch, tmp_path):
    assert student_id() == ANONYMOUS
    v = variant("02_fine_tuning", k=(3, 2, 4))
    assert v.k == 3 and "class-wide default" in repr(v)  # anonymous: the first value, and it says so
    home = tmp_path / "home"
    home.mkdir()
    (home / ".tlcourse-student").write_text("carol\n")
    assert student_id() == "carol"
    monkeypatch.setenv("JUPYTERHUB_USER", "dan")
    assert student_id() == "dan"
    monkeypatch.setenv("TLCOURSE_STUDENT", "erin")
    assert student_id() == "erin"
    v = variant("02_fine_tuning", k=(3, 2, 4))
    assert v.student == "erin" and "student 'erin'" in repr(v) and f"k={v.k}" in repr(v)


def test_bad_input_gets_a_clear_error(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="assignment's name"):
        variant("", k=(1, 2))
    with pytest.raises(ValueError, match="at least one parameter"):
        variant("02_fine_tuning")
    with pytest.raises(ValueError, match="non-empty list"):
        variant("02_fine_tuning", k=())
    with pytest.raises(ValueError, match="non-empty list"):
        variant("02_fine_tuning", k="abc")
    with pytest.raises(ValueError, match="non-empty list"):
        variant("02_fine_tuning", k=5)
    home = tmp_path / "home"
    home.mkdir()
    (home / ".tlcourse-student").write_text("\n")
    with pytest.raises(ValueError, match="is empty"):
        student_id()
    v = variant("02_fine_tuning", student="alice", k=(1, 2))
    assert isinstance(v, Variant)
    with pytest.raises(AttributeError, match="read-only"):
        v.k = 5
    with pytest.raises(TypeError):
        v["k"] = 5
    with pytest.raises(AttributeError, match="no parameter 'j'"):
        v.j


# -- grading: a one-exercise course in a temporary folder --------------------------------------------------
ASSIGNMENT = "01_variant"  # numbered: grading knows only the numbered folders of solutions/
CHOICES = 'seed=range(1000), n=range(5, 40)'


def _meta(gid, solution=False, grade=False, points=None):
    m = {"grade": grade, "grade_id": gid, "locked": grade, "schema_version": 3, "solution": solution, "task": False}
    if points is not None:
        m["points"] = points
    return {"nbgrader": m}


def _course(root: pathlib.Path) -> pathlib.Path:
    shutil.copy(REPO / "tests/fixtures/grading/nbgrader_config.py", root / "nbgrader_config.py")
    nb = new_notebook(cells=[
        new_code_cell("import numpy as np\nfrom tlcourse.variants import variant"),
        new_code_cell(f'V = variant("{ASSIGNMENT}", {CHOICES})\nprint(V)\n'
                      'x = np.random.default_rng(V.seed).normal(size=V.n)'),
        new_code_cell("def spread(x):\n    ### BEGIN SOLUTION\n    return float(np.max(x) - np.min(x))\n"
                      "    ### END SOLUTION", metadata=_meta("q1_spread", solution=True)),
        new_code_cell('print(f"your spread: {spread(x)!r}")'),
        new_code_cell("assert np.isclose(spread(x), np.ptp(x))\n### BEGIN HIDDEN TESTS\n"
                      f'_V = variant("{ASSIGNMENT}", {CHOICES})\n'
                      "_x = np.random.default_rng(_V.seed).normal(size=_V.n)\n"
                      "assert np.isclose(spread(_x), np.ptp(_x))\n### END HIDDEN TESTS",
                      metadata=_meta("q1_spread_tests", grade=True, points=2)),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    path = root / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    path.parent.mkdir(parents=True)
    nbformat.write(nb, path)
    return root


def _printed_spread(student: str) -> float:
    """What the student's notebook printed as their result (the correct answer on their own inputs)."""
    v = variant(ASSIGNMENT, student=student, seed=range(1000), n=range(5, 40))
    return float(np.ptp(np.random.default_rng(v.seed).normal(size=v.n)))


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    from tlcourse.grading import grade
    from tlcourse.grading.release import generate

    base = tmp_path_factory.mktemp("variants")
    (base / "course").mkdir()
    root = _course(base / "course")
    generate(root, base / "release", only=[ASSIGNMENT])
    released = nbformat.read(base / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    answer = next(i for i, c in enumerate(released.cells)
                  if c.metadata.get("nbgrader", {}).get("grade_id") == "q1_spread")

    def submit(student: str, source: str, before: str = "") -> None:
        nb = nbformat.from_dict(json.loads(nbformat.writes(released)))
        nb.cells[answer].source = source
        if before:  # the student's own cell, right after the imports
            nb.cells.insert(1, new_code_cell(before))
        path = base / "subs" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
        path.parent.mkdir(parents=True)
        nbformat.write(nb, path)

    submit("alice", "def spread(x):\n    s = sorted(x)\n    return s[-1] - s[0]")
    submit("bob", "def spread(x):\n    return float(x.max() - x.min())")
    copied = f"def spread(x):\n    return {_printed_spread('alice')!r}"
    submit("carol", copied)  # alice's printed result pasted in
    submit("dan", f"def spread(x):\n    return {_printed_spread('dan')!r}")  # his own result, hard-coded
    submit("erin", copied, before='import os\nos.environ["TLCOURSE_STUDENT"] = "alice"\n'
                                  f'V = variant("{ASSIGNMENT}", {CHOICES}, student="alice")')
    rows = grade(base / "subs", out=base / "out", root=root)
    return {r.student: r for r in rows}, base / "out"


@pytest.mark.slow
def test_correct_answers_pass_for_two_students_with_different_variants(graded):
    rows, out = graded
    alice, bob = (variant(ASSIGNMENT, student=s, seed=range(1000), n=range(5, 40)) for s in ("alice", "bob"))
    assert dict(alice) != dict(bob)
    for student in ("alice", "bob"):
        assert rows[student].status == "graded", rows[student]
        assert rows[student].score == rows[student].max_score == 2, rows[student]
        executed = next((out / "autograded" / student / ASSIGNMENT).glob("*.ipynb")).read_text()
        assert f"student '{student}'" in executed, "the grader must run each kernel with the submission's own id"


@pytest.mark.slow
def test_a_classmates_printed_result_fails_where_ones_own_passes(graded):
    rows, _ = graded
    assert _printed_spread("alice") != _printed_spread("carol")
    assert rows["carol"].score == 0, rows["carol"]
    # the same trick with one's own number passes: it is the variant, not the hard-coding, that tells them apart
    assert rows["dan"].score == 2, rows["dan"]


@pytest.mark.slow
def test_a_notebook_cannot_pick_its_variant_by_setting_the_id(graded):
    rows, _ = graded
    assert rows["erin"].status in ("graded", "needs_review"), rows["erin"]
    assert rows["erin"].score == 0, rows["erin"]
