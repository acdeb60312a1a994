"""benchmarks/mutation.py: the mutants it makes, and that it tells a weak test from a strong one.

The tool itself runs over the whole course from `make mutation` (minutes per
notebook); here it runs on a two-cell notebook made in a temporary folder.
"""
from __future__ import annotations

import importlib.util
import pathlib
import sys

import nbformat
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("mutation", ROOT / "benchmarks" / "mutation.py")
mutation = importlib.util.module_from_spec(_spec)
sys.modules["mutation"] = mutation  # dataclasses look their module up there
_spec.loader.exec_module(mutation)

SOLUTION = '''import numpy as np


def mean_abs(x):
    """The mean absolute value of a 1-D sequence."""
    ### BEGIN SOLUTION
    values = np.abs(np.asarray(x, dtype=float))
    return values.mean()
    ### END SOLUTION
'''


def _notebook(folder: pathlib.Path, test_source: str) -> pathlib.Path:
    nb = nbformat.v4.new_notebook()
    meta = lambda gid, **kw: {"nbgrader": {"grade_id": gid, "schema_version": 3, "locked": False, "task": False,  # noqa: E731
                                           "solution": False, "grade": False, **kw}}
    nb.cells = [nbformat.v4.new_code_cell(SOLUTION, metadata=meta("q1_mean_abs", solution=True)),
                nbformat.v4.new_code_cell(test_source, metadata=meta("q1_tests", grade=True, points=1, locked=True))]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = folder / "01_toy" / "01_toy.ipynb"
    path.parent.mkdir(parents=True)
    nbformat.write(nb, path)
    return path


def test_mutants_stay_inside_the_solution_region_and_are_distinct():
    ms = mutation.mutants(SOLUTION)
    ops = {m.op for m in ms}
    assert {"drop statement", "swap reduction", "unwrap abs", "swap with next statement"} <= ops
    assert len({m.source for m in ms}) == len(ms)
    for m in ms:  # the function's name, docstring and import are outside the region: never touched
        assert "def mean_abs(x):" in m.source and "import numpy as np" in m.source
    assert not mutation.mutants("def f(x):\n    return x + 1\n"), "no solution region, no mutants"


def test_equivalent_mutants_are_read_by_key(tmp_path):
    path = tmp_path / "eq.json"
    path.write_text('[{"assignment": "01_toy", "grade_id": "q1", "key": "abc", "reason": "same maths"}]')
    assert mutation.load_equivalents(path) == {"01_toy/q1/abc": "same maths"}


@pytest.mark.slow
def test_a_weak_test_lets_mutants_survive_and_a_strong_one_kills_them(tmp_path):
    weak = _notebook(tmp_path / "weak", "assert mean_abs([1, 1]) == 1")
    strong = _notebook(tmp_path / "strong", "assert mean_abs([-1, 3]) == 2\nassert mean_abs([2.0]) == 2.0")
    (w,) = mutation.mutate_notebook(weak, equivalents={}, log=lambda *a: None)
    (s,) = mutation.mutate_notebook(strong, equivalents={}, log=lambda *a: None)
    assert w.mutants == s.mutants > 0
    survived = {m["op"] for m in w.survived}
    assert "unwrap abs" in survived, w.survived  # [1, 1] cannot tell abs from no abs
    assert s.kill_rate == 1.0, s.survived
    assert w.kill_rate < 1.0
    # an equivalent mutant is left out of the rate, not counted as killed
    key = next(m["key"] for m in w.survived if m["op"] == "unwrap abs")
    (w2,) = mutation.mutate_notebook(weak, equivalents={f"01_toy/q1_mean_abs/{key}": "test"}, log=lambda *a: None)
    assert [m["key"] for m in w2.equivalent] == [key] and w2.kill_rate > w.kill_rate


def test_the_report_names_the_command_the_date_and_every_surviving_mutant():
    row = dict(assignment="01_toy", grade_id="q1_mean_abs", test_ids=["q1_tests"], mutants=4, killed=2, timeouts=0,
               survived=[dict(op="unwrap abs", line="np.abs(x) -> x", key="k1")],
               equivalent=[dict(op="swap with next statement", line="a -> b", key="k2", reason="independent")],
               sampled_from=4, seconds=1.0, measured_utc="2026-12-01 23:00 UTC")
    text = mutation.exercises_markdown({"started_utc": "2026-12-01 23:00 UTC", "machine": "2 CPUs",
                                        "max_per_exercise": 40, "exercises": [row],
                                        "commands": ["python benchmarks/mutation.py --assignment 01_toy"]})
    assert "| 01_toy/q1_mean_abs | 4 | 2 | 67% | 1 | 1 | 2026-12-01 23:00 UTC |" in text  # 2 of 3 scored
    assert "`python benchmarks/mutation.py --assignment 01_toy`" in text
    assert "k1" in text.split("## Surviving")[1] and "independent" in text.split("## Equivalent")[1]


@pytest.mark.slow
def test_exercise_option_grades_only_that_exercise_and_keeps_the_other_rows(tmp_path):
    _notebook(tmp_path / "sol", "assert mean_abs([-1, 3]) == 2")
    out = tmp_path / "docs"
    (out / "results").mkdir(parents=True)
    kept = dict(assignment="01_toy", grade_id="q0_other", test_ids=[], mutants=1, killed=1, timeouts=0, survived=[],
                equivalent=[], sampled_from=1, seconds=0.0, measured_utc="earlier")
    (out / "results" / "mutation.json").write_text('{"exercises": [' + __import__("json").dumps(kept) + "]}")
    args = ["--assignment", "01_toy", "--solutions", str(tmp_path / "sol"), "--out", str(out)]
    data = mutation.main([*args, "--exercise", "q9_absent"])
    assert [r["grade_id"] for r in data["exercises"]] == ["q0_other"]  # nothing graded, nothing lost
    data = mutation.main([*args, "--exercise", "q1_mean_abs"])
    assert [r["grade_id"] for r in data["exercises"]] == ["q0_other", "q1_mean_abs"]
    assert "--exercise q1_mean_abs" in (out / "EXERCISES.md").read_text()


def test_reclassify_moves_a_listed_survivor_out_of_the_rate():
    row = dict(assignment="01_toy", grade_id="q1", mutants=2, killed=1, survived=[dict(op="x", line="a", key="k1")],
               equivalent=[])
    data = mutation.reclassify({"exercises": [row]}, {"01_toy/q1/k1": "same maths"})
    assert row["survived"] == [] and data["exercises"][0]["equivalent"][0]["reason"] == "same maths"
    assert mutation.reclassify({"exercises": [dict(row, survived=[dict(key="k2")], equivalent=[])]},
                               {})["exercises"][0]["survived"] == [dict(key="k2")]


def test_tests_option_own_leaves_out_a_later_experiment_cell_and_check_grades_with_the_check_alone(tmp_path):
    nb = nbformat.v4.new_notebook()
    meta = lambda gid, **kw: {"nbgrader": {"grade_id": gid, "schema_version": 3, "locked": False, "task": False,  # noqa: E731
                                           "solution": False, "grade": False, **kw}}
    check = "class _Check:\n    def grade(self, f):\n        assert f([1, 1]) == 1\n\n\nq1 = _Check()"
    nb.cells = [nbformat.v4.new_code_cell(check),
                nbformat.v4.new_code_cell(SOLUTION, metadata=meta("q1_mean_abs", solution=True)),
                nbformat.v4.new_code_cell("q1.grade(mean_abs)\nassert mean_abs([-1, 3]) == 2",
                                          metadata=meta("q1_tests", grade=True, points=1, locked=True)),
                nbformat.v4.new_code_cell("assert mean_abs([2.0]) == 2.0",
                                          metadata=meta("results_tests", grade=True, points=1, locked=True))]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "01_toy" / "01_toy.ipynb"
    path.parent.mkdir(parents=True)
    nbformat.write(nb, path)
    run = lambda tests: mutation.mutate_notebook(path, equivalents={}, log=lambda *a: None, tests=tests)[0]  # noqa: E731
    every, own, alone = run("all"), run("own"), run("check")
    assert every.test_ids == ["q1_tests", "results_tests"] and own.test_ids == alone.test_ids == ["q1_tests"]
    assert own.measured_utc.endswith("own tests") and alone.measured_utc.endswith("check only")
    # [1, 1] cannot tell abs from no abs; the hidden assert on [-1, 3] can
    assert "unwrap abs" in {m["op"] for m in alone.survived}
    assert "unwrap abs" not in {m["op"] for m in own.survived}
