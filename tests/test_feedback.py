"""After grading: feedback pages per submission and per class, and grades exported for Canvas and Moodle.

The feedback pages are built from a real grading of the small fixture course
(tests/fixtures/grading): a right, a wrong and a "passes the visible test only"
student. Every page is scanned for the fixture's hidden tests and solutions.
"""
from __future__ import annotations

import csv
import importlib.util
import io
import json
import pathlib
import re
import sys

import pytest

from tlcourse.cli import main
from tlcourse.grading.lms import ExportError, export, read_roster

HERE = pathlib.Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("grading_fixture_course", HERE / "fixtures/grading/fixture_course.py")
fc = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("grading_fixture_course", fc)
_spec.loader.exec_module(fc)

HIDDEN_ONLY = {"q1_add": "def add(a, b):\n    return float(a + b)",  # 5.0 == 5 passes; the hidden int check fails
               "q2_normalize": "def normalize(x):\n    x = np.asarray(x, dtype=float)\n    return x / np.abs(x).sum()"}


def _secret_lines(root: pathlib.Path) -> list[str]:
    """Every hidden-test line and solution line of the fixture course (white space removed)."""
    out = []
    for path in (root / "solutions").glob("*/*.ipynb"):
        for cell in json.loads(path.read_text())["cells"]:
            src = "".join(cell["source"])
            for region in re.findall(r"### BEGIN (?:HIDDEN TESTS|SOLUTION)\n(.*?)### END", src, flags=re.S):
                out += [re.sub(r"\s+", "", ln) for ln in region.splitlines() if len(ln.strip()) >= 8]
    return out


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    from tlcourse.grading import grade
    base = tmp_path_factory.mktemp("feedback")
    subs = base / "subs"
    fc.write(fc.right(fc.TINY), subs, "alice", fc.TINY)
    fc.write(fc.wrong(fc.TINY), subs, "carol", fc.TINY)
    fc.write(fc.answered(fc.load(fc.released(fc.TINY)), HIDDEN_ONLY), subs, "dan", fc.TINY)
    fc.write(fc.right(fc.TORCH), subs, "alice", fc.TORCH)
    fc.write(fc.wrong(fc.TORCH), subs, "carol", fc.TORCH)
    fc.write(fc.wrong(fc.TORCH), subs, "erin", fc.TORCH)
    out = base / "out"
    rows = grade(subs, out=out, root=fc.ROOT)
    assert {(r.student, r.assignment): r.status for r in rows} == {
        (s, a): "graded" for s, a in [("alice", fc.TINY), ("carol", fc.TINY), ("dan", fc.TINY),
                                      ("alice", fc.TORCH), ("carol", fc.TORCH), ("erin", fc.TORCH)]}
    from tlcourse.grading.feedback import build_feedback
    written = build_feedback(out, root=fc.ROOT)
    return out, written


@pytest.mark.slow
def test_feedback_pages_say_what_went_wrong_without_hidden_tests_or_solutions(graded):
    out, written = graded
    page = lambda s, a: (out / "feedback" / s / f"{a}.html").read_text()  # noqa: E731
    assert len([p for p in written if p.parent.name != "class"]) == 6
    alice = page("alice", fc.TINY)
    assert "Score: 5" in alice and "hidden test" not in alice and "Not quite" not in alice
    carol = page("carol", fc.TINY)
    assert "add(2, 3) should be 5" in carol  # a failing visible test's message
    dan = page("dan", fc.TINY)
    assert "A hidden test of this question failed" in dan
    assert "isinstance" not in dan and "add(-1, 1)" not in dan
    torch_wrong = page("carol", fc.TORCH)
    assert "Not quite:" in torch_wrong  # the words the check would have said
    secrets = _secret_lines(fc.ROOT)
    assert secrets
    for path in written:
        text = re.sub(r"\s+", "", path.read_text())
        leaked = [s for s in secrets if s in text]
        assert not leaked, f"{path.relative_to(out)} shows hidden test or solution text: {leaked}"


@pytest.mark.slow
def test_class_page_is_anonymous_and_counts_common_mistakes(graded):
    out, _ = graded
    page = (out / "feedback" / "class" / f"{fc.TORCH}.html").read_text()
    for name in ("alice", "carol", "erin"):
        assert name not in page
    assert "1 of 3 scored full marks" in page
    assert re.search(r"2 students: <span class='msg'>Not quite:", page)  # carol and erin made the same mistake
    assert (out / "feedback" / "carol" / f"{fc.TORCH}.html").read_text().count(f"../class/{fc.TORCH}.html") == 1


@pytest.mark.slow
def test_feedback_command(graded, capsys):
    out, _ = graded
    assert main(["feedback", str(out)]) == 2  # graded from the fixture course, not this checkout's
    assert "pass the course folder" in capsys.readouterr().out
    assert main(["feedback", str(out), "--root", str(fc.ROOT)]) == 0
    assert "wrote 6 feedback page(s) and 2 class page(s)" in capsys.readouterr().out


def test_feedback_without_grades_is_a_clear_error(tmp_path, capsys):
    assert main(["feedback", str(tmp_path)]) == 2
    assert "run `tlcourse grade" in capsys.readouterr().out


# ---------------------------------------------------------------- LMS export

ROWS = [
    {"student": "alice", "assignment": "01_a", "status": "graded", "score": "9.0", "max_score": "10.0",
     "needs_manual_grading": ""},
    {"student": "bob", "assignment": "01_a", "status": "failed", "score": "", "max_score": "",
     "needs_manual_grading": "", "reason": "not a readable notebook"},
    {"student": "alice", "assignment": "02_b", "status": "graded", "score": "4.0", "max_score": "6.0",
     "needs_manual_grading": "q5_written"},
    {"student": "bob", "assignment": "02_b", "status": "needs_review", "score": "6.0", "max_score": "6.0",
     "needs_manual_grading": "", "reason": "cell 3 uses ctypes"},
]


def _csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_canvas_export_has_the_columns_canvas_requires_and_never_a_silent_zero():
    result = export(ROWS, "canvas", canvas_ids={"01_a": "123"})
    table = _csv(result.text)
    assert table[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "01_a (123)", "02_b"]
    assert table[1][0] == "Points Possible" and table[1][5:] == ["10.0", "6.0"]
    rows = {r[3]: r for r in table[2:]}  # without a roster the folder name is the SIS Login ID
    assert rows["alice"][5:] == ["9.0", "4.0"]
    assert rows["bob"][5:] == ["", ""]  # failed: blank, not 0; awaiting review: blank, not the unreviewed 6.0
    assert any("bob/01_a: failed" in w for w in result.warnings)
    assert any("bob/02_b: needs review by a person" in w for w in result.warnings)
    assert any("written answers not graded yet" in w for w in result.warnings)


def test_roster_maps_folders_to_lms_ids(tmp_path):
    roster_path = tmp_path / "roster.csv"
    roster_path.write_text("student,name,canvas_id,sis_login_id,section,email\n"
                           "alice,\"Lovelace, Ada\",77,ada01,S1,ada@example.org\n"
                           "bob,\"Boole, George\",78,gb02,S1,gb@example.org\n"
                           "cleo,\"Cleo\",79,cl03,S2,cl@example.org\n")
    roster = read_roster(roster_path)
    canvas = _csv(export(ROWS, "canvas", roster).text)
    by_id = {r[1]: r for r in canvas[2:]}
    assert by_id["77"][:5] == ["Lovelace, Ada", "77", "", "ada01", "S1"] and by_id["77"][5:] == ["9.0", "4.0"]
    assert by_id["79"][5:] == ["", ""]  # in the roster, no submission
    moodle = export(ROWS, "moodle", roster, moodle_id="email")
    table = _csv(moodle.text)
    assert table[0] == ["email", "01_a", "02_b"]
    assert ["ada@example.org", "9.0", "4.0"] in table
    assert any("cleo: in the roster but no submission" in w for w in moodle.warnings)


def test_export_refuses_to_drop_students_or_guess(tmp_path):
    roster_path = tmp_path / "roster.csv"
    roster_path.write_text("student,username\nalice,ada\n")
    with pytest.raises(ExportError, match="not in the roster: bob"):
        export(ROWS, "canvas", read_roster(roster_path))
    (tmp_path / "bad.csv").write_text("name,email\nAda,a@x\n")
    with pytest.raises(ExportError, match="needs a 'student' column"):
        read_roster(tmp_path / "bad.csv")
    with pytest.raises(ExportError, match="unknown LMS"):
        export(ROWS, "blackboard")
    only_alice = [r for r in ROWS if r["student"] == "alice"]
    (tmp_path / "no_email.csv").write_text("student,username\nalice,ada\n")
    with pytest.raises(ExportError, match="no email in the roster"):
        export(only_alice, "moodle", read_roster(tmp_path / "no_email.csv"), moodle_id="email")


def test_export_command_writes_atomically_and_reports(tmp_path, capsys):
    with open(tmp_path / "grades.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["student", "assignment", "status", "score", "max_score",
                                           "needs_manual_grading", "reason"])
        w.writeheader()
        w.writerows(ROWS)
    assert main(["export", str(tmp_path), "--lms", "moodle"]) == 0
    out = capsys.readouterr().out
    assert "warning: bob/01_a: failed" in out
    assert _csv((tmp_path / "lms" / "moodle.csv").read_text())[0] == ["username", "01_a", "02_b"]
    assert main(["export", str(tmp_path), "--lms", "canvas", "--canvas-assignment", "01_a"]) == 2
    assert "ASSIGNMENT=ID" in capsys.readouterr().out
