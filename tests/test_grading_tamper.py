"""Tests cannot be gamed: releases hold no answers, and patching or swallowing errors earns nothing.

The hostile class in test_grading_class.py shows that every attack scores 0
with the guard on. Here: the attacks are real (with the guard off, the ones
nbgrader alone does not stop do earn points), a real ``tlcourse`` check
cannot be patched or replaced, and the builders work on every course notebook.
"""
from __future__ import annotations

import importlib.util
import pathlib
import sys

import nbformat
import pytest

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import hostile_submissions as hostile  # noqa: E402

_spec = importlib.util.spec_from_file_location("grading_fixture_course", HERE / "fixtures/grading/fixture_course.py")
fc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fc)

COURSE_NOTEBOOKS = sorted((ROOT / "course").glob("*/*.ipynb"))


def test_fixture_release_holds_no_solutions_or_hidden_tests():
    for a in (fc.TINY, fc.TORCH):
        text = fc.released(a).read_text()
        for marker in ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS", "return a + b", "q1.grade(", "np.testing"):
            assert marker not in text, f"{a}: {marker!r} leaked into the release"


@pytest.mark.parametrize("path", COURSE_NOTEBOOKS, ids=[p.parent.name for p in COURSE_NOTEBOOKS])
def test_hostile_builders_work_on_every_course_notebook(path):
    released = nbformat.read(path, as_version=4)
    before = nbformat.writes(released)
    tests = [c for c in released.cells if hostile.is_test_cell(c)]
    assert tests, f"{path.name} has no autograded test cell"
    for name, make in hostile.VARIANTS.items():
        nb = make(released)
        nbformat.validate(nb)
        assert nbformat.writes(nb) != before, f"{name} changed nothing"
    assert nbformat.writes(released) == before, "a builder modified its input"
    assert not [c for c in hostile.delete_test_cells(released).cells if hostile.is_test_cell(c)]
    stripped = hostile.strip_test_metadata(released)
    assert not [c for c in stripped.cells if hostile.is_test_cell(c)]
    assert len(stripped.cells) == len(released.cells)


def test_trusted_imports_are_the_source_imports_only():
    from tlcourse.grading.grade import trusted_imports

    statements = trusted_imports([fc.solution(fc.TORCH)])
    assert statements == ["import torch", "from torch import nn", "from tlcourse.checks.feature_extraction import q1"]
    real = trusted_imports(sorted((ROOT / "solutions").glob("01_*/*.ipynb")))
    assert real and all(s.startswith(("import ", "from ")) for s in real)


@pytest.mark.slow
def test_attacks_earn_points_without_the_guard(tmp_path):
    """Shows the hostile tests can fail: these attacks beat plain nbgrader, and the guard is what stops them."""
    from tlcourse.grading import grade
    from tlcourse.grading.grade import Limits

    subs = tmp_path / "subs"
    for name in ("wrap_cells_in_try", "strip_asserts", "patch_comparisons", "replace_run_cell"):
        fc.write(hostile.VARIANTS[name](fc.wrong(fc.TINY)), subs, name, fc.TINY)
    rows = grade(subs, out=tmp_path / "out", root=fc.ROOT, workers=2, limits=Limits(cell_timeout=20, guard=False))
    earned = {r.student: r.score for r in rows}
    assert all(score and score > 0 for score in earned.values()), earned


@pytest.mark.slow
def test_a_tlcourse_check_cannot_be_patched_or_replaced(tmp_path):
    from tlcourse.grading import grade
    from tlcourse.grading.grade import Limits

    subs = tmp_path / "subs"
    fc.write(fc.right(fc.TORCH), subs, "right", fc.TORCH)
    fc.write(fc.wrong(fc.TORCH), subs, "wrong", fc.TORCH)
    for name in ("patch_checks", "fake_check_modules", "all_attacks"):
        fc.write(hostile.VARIANTS[name](fc.wrong(fc.TORCH)), subs, f"wrong_{name}", fc.TORCH)
    rows = {r.student: r for r in grade(subs, out=tmp_path / "out", root=fc.ROOT, workers=2,
                                        limits=Limits(cell_timeout=60), only=[fc.TORCH])}
    assert {s: r.status for s, r in rows.items()} == {  # code reaching for sys.modules goes to a person
        "right": "graded", "wrong": "graded", "wrong_patch_checks": "graded",
        "wrong_fake_check_modules": "needs_review", "wrong_all_attacks": "needs_review"}
    assert rows["right"].score == 2.0
    for s in ("wrong", "wrong_patch_checks", "wrong_fake_check_modules", "wrong_all_attacks"):
        assert rows[s].score == 0.0, (s, rows[s].by_question)
    # the same replaced check module does earn the points when the guard is off
    off_subs = tmp_path / "off_subs"
    fc.write(hostile.VARIANTS["fake_check_modules"](fc.wrong(fc.TORCH)), off_subs, "unguarded", fc.TORCH)
    off = grade(off_subs, out=tmp_path / "off", root=fc.ROOT, only=[fc.TORCH], limits=Limits(cell_timeout=60, guard=False))
    assert [(r.student, r.score) for r in off] == [("unguarded", 2.0)]


def test_write_variants_lays_out_a_hostile_class(tmp_path):
    path = COURSE_NOTEBOOKS[0]
    students = hostile.write_variants(path, tmp_path, path.parent.name)
    assert students == [f"hostile_{n}" for n in hostile.RECOMMENDED]
    for s in students:
        nbformat.validate(nbformat.read(tmp_path / s / path.parent.name / path.name, as_version=4))


GUARD_PROBE = r'''
import builtins, hashlib, json, pathlib, sys
sys.path.insert(0, sys.argv[1])
import hostile_submissions as hostile
from IPython.core.interactiveshell import InteractiveShell

sh = InteractiveShell.instance()
guard_src = pathlib.Path(sys.argv[2]).read_text()
imports = json.loads(sys.argv[3])
sh.run_cell("exec(%r, {'__name__': '_tlcourse_guard'})" % (guard_src + "\ninstall(%r, True)\n" % (imports,)))
tests = json.loads(sys.argv[4])
wrong = json.loads(sys.argv[5])
assert sh.run_cell(wrong).success

def passes(restore):
    if restore:
        nonce = "n0nce"
        builtins.__tlcourse_guard__.restore(nonce)
    return all(sh.run_cell(t, silent=True).success for t in tests)

result = {"baseline": passes(False)}
for name, source in hostile.ATTACKS.items():
    sh.run_cell(source, silent=True)
    result[name] = {"unguarded": passes(False), "guarded": passes(True)}
print("RESULT" + json.dumps(result))
'''


def _guard_probe(assignment: str) -> dict:
    import json
    import subprocess

    from tlcourse.grading.grade import trusted_imports

    solution = fc.load(fc.solution(assignment))
    tests = [c.source for c in solution.cells if hostile.is_test_cell(c)]
    wrong = "\n".join(c.source for c in fc.wrong(assignment).cells
                      if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution"))
    imports = trusted_imports([fc.solution(assignment)])
    guard = ROOT / "tlcourse" / "grading" / "kernel_guard.py"
    proc = subprocess.run([sys.executable, "-c", GUARD_PROBE, str(HERE), str(guard), json.dumps(imports),
                           json.dumps(tests), json.dumps("\n".join(imports) + "\n" + wrong)],
                          capture_output=True, text=True, timeout=180, env={**__import__("os").environ,
                                                                            "MPLBACKEND": "Agg"})
    assert "RESULT" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]
    return json.loads(proc.stdout.split("RESULT", 1)[1].splitlines()[0])


def test_kernel_guard_undoes_every_attack_in_a_shell():
    """In-process, without nbgrader: each attack makes a wrong answer pass, until the guard restores."""
    result = _guard_probe(fc.TINY)
    assert result.pop("baseline") is False, "the wrong answers must fail the tests"
    assert not [n for n, r in result.items() if r["guarded"]], result
    # these beat the tests on their own (the others are stopped by nbgrader's own checks, or need tlcourse)
    for name in ("patch_comparisons", "wrap_cells_in_try", "strip_asserts", "replace_run_cell"):
        assert result[name]["unguarded"], (name, result[name])


def test_kernel_guard_protects_a_tlcourse_check_in_a_shell():
    result = _guard_probe(fc.TORCH)
    assert result.pop("baseline") is False
    assert not [n for n, r in result.items() if r["guarded"]], result
    assert result["patch_checks"]["unguarded"], "patching Question.grade must beat an unguarded kernel"
