"""The class's report: one row per submission, the CSV export, a histogram per question, the summary."""
from __future__ import annotations

import csv
import io
import pathlib
from dataclasses import dataclass, field

from .._io import atomic_open

STATUSES = ("graded", "failed", "skipped", "needs_review")
SCORED = ("graded", "needs_review")  # statuses that carry a score
UNCONFINED = "UNCONFINED: "  # starts the reason of every row whose kernel ran without bubblewrap


@dataclass
class Row:
    student: str
    assignment: str
    status: str  # graded | failed | skipped | needs_review (scored, but a person must look: see review.py)
    reason: str = ""  # why failed/skipped; for graded rows, what the grader had to work around
    score: float | None = None
    max_score: float | None = None
    by_question: dict[str, float] = field(default_factory=dict)
    max_by_question: dict[str, float] = field(default_factory=dict)
    needs_manual: list[str] = field(default_factory=list)  # written answers awaiting a human



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

    graded = [r for r in rows if r.assignment == assignment and r.status in SCORED]
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
    counts = {s: sum(r.status == s for r in rows) for s in STATUSES}
    lines = [f"{counts['graded']} graded, {counts['failed']} failed, {counts['skipped']} skipped, "
             f"{counts['needs_review']} need review"]
    unconfined = sorted({r.reason.split(UNCONFINED, 1)[1].split(";")[0] for r in rows if UNCONFINED in r.reason})
    lines += [f"  WARNING: kernels ran WITHOUT confinement ({why}): a submission could read other students' work, "
              f"the solutions and the gradebook. See docs/GRADING.md." for why in unconfined]
    lines += [f"  {r.status.upper()}: {r.student}/{r.assignment}: {r.reason}" for r in rows if r.status != "graded"]
    notes = [r for r in rows if r.status == "graded" and r.reason]
    lines += [f"  note: {r.student}/{r.assignment}: {r.reason}" for r in notes]
    return "\n".join(lines)
