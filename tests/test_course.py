"""The course pipeline end to end: release, leaks, execution, and grading.

Notebook executions are the cost here (one to three minutes each), so each
assignment is graded once as a class of four: the solution, the untouched
release made hostile (every test cell replaced by ``pass`` and every attack
in tests/hostile_submissions.py prepended), a submission with a plausible
wrong answer in every exercise, and a corrupt file. Grading the solution is its one execution: the autograded
copy must show no error in any cell, which is what nbval would check.

The cheapest notebook (06, about 20 s) also grades two runaway students, on their own: the
solution with runaway cells of their own after the data-loading cell (a loop
that ignores SIGINT, a segfault, a fork bomb, 300 MB of output; then os._exit,
a thread explosion, a memory blow-up). Each runaway costs only its own cell:
the kernel is restarted, the real state (data, encoder) is replayed, and they
score what the solution scores.
"""
from __future__ import annotations

import copy
import csv
import importlib.util
import pathlib
import shutil

import nbformat
import pytest

import hostile_submissions as hostile
from hostile_submissions import RUNAWAY_CELLS, all_attacks
from tlcourse.grading import grade, release_diff
from tlcourse.grading.grade import Limits
from tlcourse.grading.config import assignments

ROOT = pathlib.Path(__file__).resolve().parents[1]
ASSIGNMENTS = assignments(ROOT)
RUNAWAY_ASSIGNMENT = "06_zero_shot"  # its slowest cell takes ~10 s, so a 60 s cell timeout is safe
RUNAWAY_STUDENTS = {  # at most 3 restarts each (the executor's default limit per notebook)
    "erin_runaway": ["loop_ignoring_interrupt", "segfault", "fork_bomb", "output_flood"],
    "frank_runaway": ["os_exit", "thread_explosion", "memory_blowup"],
}
RUNAWAY_REASONS = {"erin_runaway": ["timed out", "killed the kernel", "output capped"],  # the fork bomb may kill it too
                   "frank_runaway": ["killed the kernel", "too many threads"]}
# The solution again, sorted between erin and frank: with 2 workers it is graded at the same time as erin's
# busy loop and frank after it. Before each kernel's torch threads were capped at cores / workers, its
# 2 s training cell took 50-60 s here (2 kernels x 2 OpenMP threads on 2 cores) and timed out.
BESIDE_RUNAWAYS = "eve_solution"
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")


def _nb(path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def _grade_ids(nb):
    return {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells if "nbgrader" in c.metadata}


def test_every_assignment_is_released():
    assert ASSIGNMENTS, "no assignments in solutions/"
    released = sorted(p.name for p in (ROOT / "course").iterdir() if p.is_dir())
    assert released == ASSIGNMENTS


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_released_notebooks_hold_no_solutions_or_hidden_tests(assignment):
    for path in (ROOT / "course" / assignment).glob("*.ipynb"):
        text = path.read_text()
        assert not [m for m in MARKERS if m in text], f"{path} leaks nbgrader markers"
        source = _nb(ROOT / "solutions" / assignment / path.name)
        released = _nb(path)
        assert released.metadata.kernelspec.name == "python3"
        src_cells, rel_cells = _grade_ids(source), _grade_ids(released)
        assert src_cells.keys() == rel_cells.keys()
        for gid, cell in src_cells.items():
            meta = cell.metadata["nbgrader"]
            rel = "".join(rel_cells[gid].source)
            if meta.get("solution") and cell.cell_type == "code":
                assert "raise NotImplementedError()" in rel, f"{gid}: solution not replaced by a stub"
                body = "".join(cell.source).split("### BEGIN SOLUTION")[1].split("### END SOLUTION")[0]
                lines = [ln.strip() for ln in body.splitlines() if ln.strip() and not ln.strip().startswith("#")]
                assert not any(ln in rel for ln in lines if len(ln) > 25), f"{gid}: solution code leaked"
            if meta.get("grade") and cell.cell_type == "code" and "### BEGIN HIDDEN TESTS" in "".join(cell.source):
                hidden = "".join(cell.source).split("### BEGIN HIDDEN TESTS")[1].split("### END HIDDEN TESTS")[0]
                for ln in (ln.strip() for ln in hidden.splitlines()):
                    if len(ln) > 20:
                        assert ln not in rel, f"{gid}: hidden test line leaked: {ln}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solution_notebooks_run_from_a_fresh_kernel(assignment):
    for path in (ROOT / "solutions" / assignment).glob("*.ipynb"):
        assert _nb(path).metadata.kernelspec.name == "python3"


def test_course_is_in_sync_with_solutions():
    diff = release_diff(ROOT)
    assert not diff, f"course/ is out of date in {diff}; run `tlcourse release`"


def test_checkpoints_a_run_leaves_beside_a_solution_are_not_released(tmp_path):
    """Running notebook 12 in place writes capstone_outputs/ beside it; a release must not ship them, and
    `tlcourse release --check` must not call course/ stale because of them."""
    from tlcourse.grading.release import generate

    shutil.copy(ROOT / "nbgrader_config.py", tmp_path)
    src = tmp_path / "solutions" / "12_capstone"
    shutil.copytree(ROOT / "solutions" / "12_capstone", src,
                    ignore=shutil.ignore_patterns("capstone_outputs"))
    (src / "capstone_outputs").mkdir()
    (src / "capstone_outputs" / "best_no_0.pt").write_bytes(b"a checkpoint")
    generate(tmp_path, tmp_path / "release", only=["12_capstone"])
    released = sorted(p.relative_to(tmp_path / "release").as_posix() for p in (tmp_path / "release").rglob("*")
                      if p.is_file())
    assert released and not [p for p in released if "capstone_outputs" in p], released


def _first_code_after_imports(nb) -> int:
    """Index of the second code cell (the first one after the imports): where the data is loaded."""
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    assert len(code) > 2 and "nbgrader" not in nb.cells[code[1]].metadata
    return code[1]


def _tampered(nb):
    """Every attack of tests/hostile_submissions.py on a real notebook: the in-kernel tampering prepended
    and the test cells replaced (``all_attacks``); every answer cell running the instructor's solution; after
    the imports, a gradebook trigger, blanking alice's submitted copy, and the kernel's replies patched to
    hide errors. (Without bubblewrap the fallback cannot stop the first two out-of-kernel attacks, which its
    rows say; they are then left out. The parser patch and the transformer-re-adding thread are tested on
    the fixture course: here they would turn the answer cells into ``pass`` or zero every test by
    themselves, hiding whether the others were stopped.)"""
    from tlcourse.grading.sandbox import probe_bwrap

    nb = copy.deepcopy(nb)
    confined = probe_bwrap() == ""
    after_imports = [hostile.PATCH_SESSION_SEND]
    if confined:
        after_imports += [hostile.GRADEBOOK_TRIGGER, hostile.SABOTAGE_OTHERS.replace('"/zz_"', '"/alice_solution/"')]
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            if cell.cell_type == "code" and meta.get("solution"):
                cell.source = f"GRADE_ID = {meta['grade_id']!r}\n" + hostile.EXEC_SOLUTION_CELL
    first_code = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    nb.cells.insert(first_code + 1, nbformat.v4.new_code_cell("\n".join(after_imports)))
    return all_attacks(nb)


def _wrong_answers(assignment):
    path = ROOT / "tests" / "wrong_answers" / f"{assignment}.py"
    if not path.exists():
        pytest.fail(f"tests/wrong_answers/{assignment}.py is missing: every assignment needs wrong-answer variants")
    spec = importlib.util.spec_from_file_location(f"wrong_{assignment}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.WRONG_ANSWERS, mod.EXPECTED_LOST


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_grading_round_trip(assignment, tmp_path):
    wrong, expected_lost = _wrong_answers(assignment)
    subs = tmp_path / "submissions"
    for student, source in (("alice_solution", "solutions"), ("bob_tampered", "course"),
                            ("carol_wrong", "course"), ("dave_corrupt", "course")):
        shutil.copytree(ROOT / source / assignment, subs / student / assignment)
    for path in (subs / "carol_wrong" / assignment).glob("*.ipynb"):
        nb = _nb(path)
        cells = _grade_ids(nb)
        assert set(wrong) <= set(cells), f"unknown grade ids in wrong answers: {set(wrong) - set(cells)}"
        for gid, src in wrong.items():
            cells[gid].source = src.strip("\n")
        nbformat.write(nb, path)
    for path in (subs / "bob_tampered" / assignment).glob("*.ipynb"):
        nbformat.write(_tampered(_nb(path)), path)  # unanswered: the tampering alone must earn nothing
    for path in (subs / "dave_corrupt" / assignment).glob("*.ipynb"):
        path.write_text(path.read_text()[:500])  # truncated JSON
    runaway = assignment == RUNAWAY_ASSIGNMENT
    runaway_subs = tmp_path / "runaway_submissions"
    if runaway:
        for student, cases in RUNAWAY_STUDENTS.items():
            for path in (ROOT / "solutions" / assignment).glob("*.ipynb"):
                nb = _nb(path)
                after = _first_code_after_imports(nb)
                for offset, case in enumerate(cases, start=1):
                    nb.cells.insert(after + offset, nbformat.v4.new_code_cell(RUNAWAY_CELLS[case]))
                (runaway_subs / student / assignment).mkdir(parents=True)
                nbformat.write(nb, runaway_subs / student / assignment / path.name)
        shutil.copytree(ROOT / "solutions" / assignment, runaway_subs / BESIDE_RUNAWAYS / assignment)

    def submitted():
        return {p: p.read_bytes() for folder in (subs, runaway_subs) for p in folder.rglob("*.ipynb")}

    original = submitted()

    rows = grade(subs, out=tmp_path / "out", root=ROOT, only=[assignment], workers=2)  # two kernels, one core each
    if runaway:  # a short cell timeout, so the runaways' loops end soon, and 2 workers
        rows += grade(runaway_subs, out=tmp_path / "out_runaway", root=ROOT, only=[assignment], workers=2,
                      limits=Limits(cell_timeout=60))

    by_student = {r.student: r for r in rows}
    # code reaching for the grader's machinery (bob's attacks, the runaways' signals and forks) goes to a person
    expected_status = {"alice_solution": "graded", "bob_tampered": "needs_review", "carol_wrong": "graded",
                       "dave_corrupt": "failed"} | ({s: "needs_review" for s in RUNAWAY_STUDENTS}
                                                    | {BESIDE_RUNAWAYS: "graded"} if runaway else {})
    assert {s: r.status for s, r in by_student.items()} == expected_status, {r.student: r.reason for r in rows}
    assert "not a readable notebook" in by_student["dave_corrupt"].reason
    alice, bob, carol = by_student["alice_solution"], by_student["bob_tampered"], by_student["carol_wrong"]
    autograded = [q for q in alice.by_question if q not in alice.needs_manual]
    assert autograded and alice.max_score > 0
    assert all(alice.by_question[q] == alice.max_by_question[q] > 0 for q in autograded), alice.by_question
    assert set(alice.needs_manual) == {gid for gid, c in _grade_ids(_nb(next((ROOT / "solutions" / assignment).glob(
        "*.ipynb")))).items() if c.cell_type == "markdown" and c.metadata["nbgrader"].get("grade")}
    assert bob.score == 0, bob.by_question
    for student in RUNAWAY_STUDENTS if runaway else ():  # a runaway costs its own cell, never a question
        row = by_student[student]
        assert row.by_question == alice.by_question, (student, row.by_question, row.reason)
        assert all(word in row.reason for word in RUNAWAY_REASONS[student]), (student, row.reason)
    if runaway:  # graded beside the runaways: no event, no point lost, no cell raising
        eve = by_student[BESIDE_RUNAWAYS]
        assert (eve.by_question, eve.reason) == (alice.by_question, ""), (eve.by_question, eve.reason)
        flood = tmp_path / "out_runaway" / "autograded" / "erin_runaway" / assignment
        assert sum(p.stat().st_size for p in flood.glob("*.ipynb")) < 20_000_000, "the output cap did not hold"
    # the solution executed from a fresh kernel without an error in any cell
    executions = [(tmp_path / "out", "alice_solution")] + ([(tmp_path / "out_runaway", BESIDE_RUNAWAYS)]
                                                           if runaway else [])
    for out, student in executions:
        for path in (ROOT / "solutions" / assignment).glob("*.ipynb"):
            executed = _nb(out / "autograded" / student / assignment / path.name)
            errors = [(i, o.get("ename"), o.get("evalue", "")[:200]) for i, c in enumerate(executed.cells)
                      if c.cell_type == "code" for o in c.get("outputs", []) if o.get("output_type") == "error"]
            assert not errors, f"{student}, {path.name}: cells raised when executed in order: {errors}"
    for gid in expected_lost:
        assert carol.by_question[gid] < alice.by_question[gid], f"{gid}: the wrong answer kept full marks"
    source_cells = _grade_ids(_nb(next((ROOT / "solutions" / assignment).glob("*.ipynb"))))
    exercises = {gid for gid, c in source_cells.items()
                 if c.cell_type == "code" and c.metadata["nbgrader"].get("solution")}
    assert set(wrong) == exercises, "every exercise needs a plausible wrong answer in tests/wrong_answers/"
    assert set(expected_lost) <= set(autograded)
    assert carol.score < alice.score
    # the export says the same, and submissions are never modified
    with open(tmp_path / "out" / "grades.csv") as fh:
        exported = {r["student"]: r for r in csv.DictReader(fh)}
    assert exported["dave_corrupt"]["status"] == "failed" and exported["dave_corrupt"]["score"] == ""
    assert float(exported["alice_solution"]["score"]) == alice.score
    assert (tmp_path / "out" / "report" / f"{assignment}.png").stat().st_size > 0
    assert submitted() == original
