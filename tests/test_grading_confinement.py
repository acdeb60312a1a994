"""Attacks on the grader itself, graded in one class beside honest students (issue 18).

Each hostile student answers wrongly and adds one cell from tests/hostile_submissions.py.
On the grader of commit 37da1a9 each one earned points, hurt another student or
reached the grader's files; here each must end with no undeserved point, honest
scores unchanged, and its row sent to a person (``needs_review``). A probe student
shows the confinement itself from inside a kernel.

One grading run of the fixture course (about 12 notebooks of a few seconds each).
"""
from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import sys

import nbformat
import pytest

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import hostile_submissions as hostile  # noqa: E402

_spec = importlib.util.spec_from_file_location("grading_fixture_course", HERE / "fixtures/grading/fixture_course.py")
fc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fc)

A = fc.TINY
FULL = {"q1_add_tests": 2.0, "q2_normalize_tests": 3.0}
ZERO = {"q1_add_tests": 0.0, "q2_normalize_tests": 0.0}
DISK_MB = 32

pytestmark = pytest.mark.slow


def _confined() -> bool:
    from tlcourse.grading.sandbox import probe_bwrap
    return probe_bwrap() == ""


@pytest.fixture(scope="module")
def attacked_class(tmp_path_factory):
    from tlcourse.grading import grade
    from tlcourse.grading.grade import Limits

    if not _confined():
        pytest.skip("bubblewrap cannot confine kernels here (see probe_bwrap); the fallback is tested elsewhere")
    tmp = tmp_path_factory.mktemp("attacked")
    subs, out = tmp / "subs", tmp / "out"
    canary = tmp / "canary"
    canary.mkdir()
    (canary / "keep.txt").write_text("the grader must never delete this")
    fc.write(fc.right(A), subs, "honest_right", A)
    fc.write(fc.wrong(A), subs, "honest_wrong", A)
    fc.write(fc.right(A), subs, "zz_victim", A)  # graded last: the saboteur's target
    for name, source in {**hostile.IN_KERNEL_ATTACKS, **hostile.OUT_OF_KERNEL_ATTACKS}.items():
        fc.write(fc.insert_after(fc.wrong(A), "q1_add", source), subs, f"a_{name}", A)
    secrets = {"solution": str(fc.solution(A)), "class_gradebook": str(out / "gradebook.db"),
               "other_student": str(subs / "honest_right" / A / f"{A}.ipynb"),
               "grader_environ": f"/proc/{os.getpid()}/environ"}
    probe = hostile.confinement_probe(secrets, os.getpid(), str(canary), DISK_MB)
    fc.write(fc.insert_after(fc.right(A), "q1_add", probe), subs, "probe", A)
    os.environ["TLCOURSE_ROOT"] = str(fc.ROOT)  # as the command line sets it: the kernel must not see it
    try:
        rows = grade(subs, out=out, root=fc.ROOT, workers=2, limits=Limits(cell_timeout=30, disk_mb=DISK_MB))
    finally:
        del os.environ["TLCOURSE_ROOT"]
    return {"rows": {r.student: r for r in rows}, "out": out, "canary": canary}


def _text(out: pathlib.Path, student: str) -> str:
    nb = nbformat.read(out / "autograded" / student / A / f"{A}.ipynb", as_version=4)
    return "".join(json.dumps(o) for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))


def test_every_student_is_accounted_for_and_honest_scores_hold(attacked_class):
    rows = attacked_class["rows"]
    attackers = [f"a_{n}" for n in {**hostile.IN_KERNEL_ATTACKS, **hostile.OUT_OF_KERNEL_ATTACKS}]
    assert sorted(rows) == sorted(["honest_right", "honest_wrong", "zz_victim", "probe", *attackers])
    for s in ("honest_right", "zz_victim"):
        assert rows[s].status == "graded", (s, rows[s].reason)
        assert {q: rows[s].by_question[q] for q in FULL} == FULL, (s, rows[s].by_question, rows[s].reason)
    assert rows["honest_wrong"].status == "graded"
    assert {q: rows["honest_wrong"].by_question[q] for q in FULL} == ZERO


PREVENTED = ("thread_readds_transformer", "patch_ast_parse", "patch_session_send", "exec_solutions",
             "gradebook_trigger", "sabotage_others")


@pytest.mark.parametrize("attack", PREVENTED)
def test_an_attack_earns_nothing_and_is_sent_to_a_person(attacked_class, attack):
    row = attacked_class["rows"][f"a_{attack}"]
    assert row.status == "needs_review", (row.status, row.reason)
    assert "needs review" in row.reason
    got = {q: row.by_question[q] for q in FULL}
    assert got == ZERO, f"{attack} earned points with wrong answers: {got} ({row.reason})"
    assert row.by_question["q3_written"] == 0.0 and row.needs_manual == [], "a written answer got an automatic score"


def test_forging_the_guard_is_detected_not_prevented(attacked_class):
    """Student code shares the kernel's process with the guard: replacing restore() is caught by the static scan,
    and the row goes to a person. docs/GRADING.md lists it under 'detected, not prevented'."""
    row = attacked_class["rows"]["a_forge_guard"]
    assert row.status == "needs_review" and "__tlcourse_guard__" in row.reason, row.reason


def test_no_hidden_test_or_solution_leaks_into_any_output(attacked_class):
    out = attacked_class["out"]
    for student in attacked_class["rows"]:
        path = out / "autograded" / student / A / f"{A}.ipynb"
        if not path.exists():
            continue
        text = _text(out, student)
        for secret in ("return a + b", "np.linalg.norm(x)", "assert add(-1, 1) == 0", "normalize([5, 0])"):
            assert secret not in text, f"{student}'s outputs hold {secret!r}"


def test_the_confinement_seen_from_inside_a_kernel(attacked_class):
    out, rows = attacked_class["out"], attacked_class["rows"]
    assert rows["probe"].status == "needs_review", rows["probe"].reason  # /proc, os.kill, cgroups: all flagged
    text = _text(out, "probe")
    facts = json.loads(json.loads('"' + text.split("FACTS", 1)[1].split("\\n", 1)[0] + '"'))
    assert facts["uid"] not in (0, os.getuid()), "the kernel runs as the grader's user"
    assert facts["pids"] == [1, 2], f"the kernel sees other processes: {facts['pids']}"
    assert facts["read"] == dict.fromkeys(facts["read"], False), f"the kernel read: {facts['read']}"
    assert facts["wrote"] == dict.fromkeys(facts["wrote"], False), f"the kernel wrote: {facts['wrote']}"
    assert not facts["env_root"], "the instructor's environment reached the kernel"
    assert facts["signal_grader"] is False and facts["left_cgroup"] is False
    assert facts["disk_cap"] is True, f"the kernel wrote more than {DISK_MB} MB to its working folder"
    assert (attacked_class["canary"] / "keep.txt").exists(), "a path planted by a kernel was deleted by the grader"
    assert {q: rows["probe"].by_question[q] for q in FULL} == FULL


def test_foreign_gradebook_objects_are_dropped(tmp_path):
    import sqlite3

    from tlcourse.grading.gradebook import remove_foreign_objects

    db = tmp_path / "gradebook.db"
    with sqlite3.connect(db) as conn:
        conn.execute("create table grade (id integer, auto_score real, max_score real)")
        conn.execute("create trigger full after update on grade begin update grade set auto_score = max_score; end")
        conn.execute("create view everything as select * from grade")
    conn.close()
    assert sorted(remove_foreign_objects(db)) == ["trigger full", "view everything"]
    assert remove_foreign_objects(db) == []


@pytest.mark.parametrize("source, flagged", [
    ("def add(a, b):\n    return a + b", False),
    ("def freeze(model):\n    for m in model.modules():\n        m.eval()\n    return model", False),
    ("import torch\nx = torch.zeros(3)\nprint(x.sum())", False),
    ("get_ipython().events.register('post_run_cell', print)", True),
    ("import sqlite3", True),
    ("import os\nos.kill(1, 9)", True),
    ("open('/proc/1/environ').read()", True),
    ("exec(open('x.py').read())", True),
    ("import sys\nsys.modules['numpy'] = None", True),
    ("__import__('ctypes')", True),
])
def test_static_scan_flags_the_grader_machinery_only(source, flagged):
    from tlcourse.grading.review import scan_source
    assert bool(scan_source(source)) is flagged, scan_source(source)


def test_without_bubblewrap_grading_goes_on_and_says_so_loudly(tmp_path, monkeypatch):
    """Where bwrap cannot run, every row and the summary name the risk; the grades are still right."""
    import csv

    from tlcourse.grading import grade, sandbox, summary
    from tlcourse.grading.grade import Limits

    monkeypatch.setattr(sandbox, "probe_bwrap", lambda: "bubblewrap (bwrap) is not installed")
    fc.write(fc.right(A), tmp_path / "subs", "right", A)
    rows = grade(tmp_path / "subs", out=tmp_path / "out", root=fc.ROOT, limits=Limits(cell_timeout=30))
    assert [(r.student, r.status, r.score) for r in rows] == [("right", "graded", 5.0)], rows[0].reason
    assert rows[0].reason.startswith("UNCONFINED: bubblewrap (bwrap) is not installed")
    assert "WARNING: kernels ran WITHOUT confinement (bubblewrap (bwrap) is not installed)" in summary(rows)
    with open(tmp_path / "out" / "grades.csv") as fh:
        assert next(csv.DictReader(fh))["reason"].startswith("UNCONFINED")


def test_a_cold_cache_is_usable_and_stays_unchanged(tmp_path, monkeypatch):
    """TORCH_HOME not yet created (a fresh machine): a kernel that seeds it, as load_backbone does, works;
    what it writes lands in the sandbox's tmpfs, not in the grader's cache."""
    from tlcourse.grading import grade
    from tlcourse.grading.grade import Limits

    if not _confined():
        pytest.skip("bubblewrap cannot confine kernels here (see probe_bwrap)")
    cold = tmp_path / "cold"
    monkeypatch.setenv("TORCH_HOME", str(cold / "torch"))
    monkeypatch.setenv("TLCOURSE_CACHE", str(cold / "tlcourse"))
    seed = ("import os, pathlib\n"
            "d = pathlib.Path(os.environ['TORCH_HOME']) / 'hub' / 'checkpoints'\n"
            "d.mkdir(parents=True, exist_ok=True)\n"
            "(d / 'weights.pth').write_bytes(b'seeded')\n"
            "print('SEEDED', (d / 'weights.pth').read_bytes())")
    fc.write(fc.insert_after(fc.right(A), "q1_add", seed), tmp_path / "subs", "cold", A)
    (row,) = grade(tmp_path / "subs", out=tmp_path / "out", root=fc.ROOT, limits=Limits(cell_timeout=30))
    assert {q: row.by_question[q] for q in FULL} == FULL, row.reason  # (the probe's os.environ is flagged for review)
    text = _text(tmp_path / "out", "cold")
    assert "SEEDED b'seeded'" in text and '"output_type": "error"' not in text, text[:2000]
    assert not list((cold / "torch").rglob("weights.pth")), "the kernel wrote into the grader's cache"
