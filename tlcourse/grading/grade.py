"""Autograde a folder of submissions and export a gradebook CSV and a class report.

Layout expected: ``SUBMISSIONS/<student>/<assignment>/<notebook>.ipynb``.
Submissions are copied, never modified. Each student is graded on their
own, so one broken notebook cannot stop the class; every row of the CSV
says whether that submission was graded, failed (and why) or skipped.
"""
from __future__ import annotations

import csv
import io
import os
import pathlib
import shutil
from dataclasses import dataclass, field

from .._io import atomic_open
from .config import assignments, grading_environment, load_config, make_api, repo_root


@dataclass
class Row:
    student: str
    assignment: str
    status: str  # graded | failed | skipped
    reason: str = ""
    score: float | None = None
    max_score: float | None = None
    by_question: dict[str, float] = field(default_factory=dict)
    max_by_question: dict[str, float] = field(default_factory=dict)
    needs_manual: list[str] = field(default_factory=list)  # written answers awaiting a human


def _precheck(folder: pathlib.Path, expected: list[str]) -> str:
    """A reason this submission cannot be graded, or '' when it can."""
    import nbformat

    present = sorted(p.name for p in folder.glob("*.ipynb"))
    if not present:
        return "no notebook in the submission folder"
    missing = [n for n in expected if n not in present]
    if missing:
        return f"expected {', '.join(missing)}; found {', '.join(present)}"
    for name in expected:
        try:
            nbformat.read(folder / name, as_version=4)
        except Exception as exc:
            return f"{name} is not a readable notebook ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})"
    return ""


def grade(submissions: str | os.PathLike, out: str | os.PathLike = "grading", root: pathlib.Path | None = None,
          only: list[str] | None = None) -> list[Row]:
    """Grade every ``<student>/<assignment>`` under ``submissions`` into ``out``.

    Writes ``out/grades.csv`` and ``out/report/<assignment>.png`` (a score
    histogram per question) and keeps nbgrader's gradebook in ``out``.
    """
    grading_environment()
    root = root or repo_root()
    submissions = pathlib.Path(submissions).resolve()
    if not submissions.is_dir():
        raise FileNotFoundError(f"{submissions} is not a folder. Expected SUBMISSIONS/<student>/<assignment>/*.ipynb.")
    out = pathlib.Path(out).resolve()
    known = assignments(root)
    cfg = load_config(root, **{
        "CourseDirectory.source_directory": str(root / "solutions"),
        "CourseDirectory.release_directory": str(out / "release"),
        "CourseDirectory.submitted_directory": str(out / "submitted"),
        "CourseDirectory.autograded_directory": str(out / "autograded"),
        "CourseDirectory.feedback_directory": str(out / "feedback"),
        "CourseDirectory.db_url": f"sqlite:///{out}/gradebook.db",
    })
    out.mkdir(parents=True, exist_ok=True)
    api = make_api(cfg)
    rows: list[Row] = []
    todo: dict[str, list[str]] = {}
    for student_dir in sorted(p for p in submissions.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for a_dir in sorted(p for p in student_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if only and a_dir.name not in only:
                continue
            if a_dir.name not in known:
                rows.append(Row(student_dir.name, a_dir.name, "skipped",
                                f"unknown assignment; known: {', '.join(known)}"))
                continue
            todo.setdefault(a_dir.name, []).append(student_dir.name)
    for a, students in todo.items():
        gen = api.generate_assignment(a, force=True)
        if not gen["success"]:
            raise RuntimeError(f"could not prepare {a} from solutions/: {gen.get('error') or gen.get('log')}")
        expected = sorted(p.name for p in (root / "solutions" / a).glob("*.ipynb"))
        for s in students:
            dest = out / "submitted" / s / a
            if dest.exists():
                shutil.rmtree(dest)
            shutil.copytree(submissions / s / a, dest)
            reason = _precheck(dest, expected)
            if reason:
                rows.append(Row(s, a, "failed", reason))
                continue
            result = api.autograde(a, s, force=True)
            if not result["success"]:
                err = (result.get("error") or result.get("log") or "").strip().splitlines()
                rows.append(Row(s, a, "failed", "autograde failed: " + (err[-1][:200] if err else "unknown")))
                continue
            rows.append(Row(s, a, "graded"))
    _fill_scores(cfg, rows)
    write_csv(out / "grades.csv", rows)
    for a in todo:
        plot_class_report(rows, a, out / "report" / f"{a}.png")
    return rows


def _fill_scores(cfg, rows: list[Row]) -> None:
    from nbgrader.api import Gradebook

    with Gradebook(cfg.CourseDirectory.db_url) as gb:
        for r in rows:
            if r.status != "graded":
                continue
            sub = gb.find_submission(r.assignment, r.student)
            r.score, r.max_score = float(sub.score), float(sub.max_score)
            for nb in sub.notebooks:
                for g in nb.grades:
                    r.by_question[g.name] = float(g.score)
                    r.max_by_question[g.name] = float(g.max_score)
                    if g.needs_manual_grade:
                        r.needs_manual.append(g.name)


def write_csv(path: pathlib.Path, rows: list[Row]) -> None:
    questions = sorted({q for r in rows for q in r.by_question})
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["student", "assignment", "status", "score", "max_score", "needs_manual_grading", "reason",
                *questions])
    for r in rows:
        w.writerow([r.student, r.assignment, r.status, "" if r.score is None else r.score,
                    "" if r.max_score is None else r.max_score, " ".join(r.needs_manual), r.reason,
                    *["" if q not in r.by_question else r.by_question[q] for q in questions]])
    with atomic_open(path, "w", newline="") as fh:
        fh.write(buf.getvalue())


def plot_class_report(rows: list[Row], assignment: str, path: pathlib.Path):
    """One histogram per graded question: where the class lost points."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    graded = [r for r in rows if r.assignment == assignment and r.status == "graded"]
    questions = sorted({q for r in graded for q in r.by_question})
    if not questions:
        return None
    fig, axes = plt.subplots(1, len(questions), figsize=(3 * len(questions), 2.8), squeeze=False)
    for ax, q in zip(axes.flat, questions):
        ax.hist([r.by_question.get(q, 0.0) for r in graded], bins=10)
        ax.set_title(q, fontsize=8), ax.set_xlabel("points"), ax.set_ylabel("students")
    failed = sum(r.assignment == assignment and r.status == "failed" for r in rows)
    fig.suptitle(f"{assignment}: {len(graded)} graded, {failed} failed")
    fig.tight_layout()
    with atomic_open(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=100)
    plt.close(fig)
    return path


def summary(rows: list[Row]) -> str:
    counts = {s: sum(r.status == s for r in rows) for s in ("graded", "failed", "skipped")}
    lines = [f"{counts['graded']} graded, {counts['failed']} failed, {counts['skipped']} skipped"]
    lines += [f"  {r.status.upper()}: {r.student}/{r.assignment}: {r.reason}" for r in rows if r.status != "graded"]
    return "\n".join(lines)
