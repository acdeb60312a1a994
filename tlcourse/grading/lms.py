"""Grades in the import formats of learning-management systems: Canvas and Moodle gradebook CSVs.

    tlcourse export OUT --lms canvas [--roster roster.csv]   # -> OUT/lms/canvas.csv
    tlcourse export OUT --lms moodle [--roster roster.csv]   # -> OUT/lms/moodle.csv

Student folders are named however the class was collected; the LMS knows its
own ids. A *roster* maps one to the other: a CSV with a ``student`` column (the
folder name under SUBMISSIONS) and any of ``name``, ``canvas_id``,
``sis_user_id``, ``sis_login_id``, ``section`` (Canvas) and ``username``,
``email``, ``idnumber`` (Moodle). Without a roster the folder name is taken as
the Canvas SIS Login ID and the Moodle username.

- Canvas's gradebook import wants ``Student``, ``ID``, ``SIS User ID``, ``SIS Login
  ID``, ``Section``, then one column per assignment, and accepts a second row,
  ``Points Possible``. A column named ``<assignment> (<canvas id>)`` updates that
  Canvas assignment; a plain name creates a new one.
- Moodle's CSV import maps one identity column (username, email or ID number,
  chosen on the import page) and one column per grade item.

A submission that failed to grade, or that awaits a person's review (the
grader flagged it), is left blank (never a silent 0 or an unreviewed score) and
listed in the warnings, as is a grade whose written answers are not graded yet, a student
in the grades but not in the roster (an error: nothing is written), and a roster
student without a submission (blank).
"""
from __future__ import annotations

import csv
import io
import pathlib
from dataclasses import dataclass, field

from .._io import atomic_open

LMS = ("canvas", "moodle")
CANVAS_ID_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
ROSTER_COLUMNS = {"student", "name", "canvas_id", "sis_user_id", "sis_login_id", "section", "username", "email",
                  "idnumber"}


class ExportError(ValueError):
    """The grades cannot be exported as asked; the message says what to fix."""


@dataclass
class Export:
    text: str
    warnings: list[str] = field(default_factory=list)


def read_roster(path: str | pathlib.Path) -> dict[str, dict[str, str]]:
    """Folder name -> LMS identity columns."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        cols = set(reader.fieldnames or ())
        if "student" not in cols:
            raise ExportError(f"{path}: the roster needs a 'student' column (the folder names under SUBMISSIONS); "
                              f"it has {sorted(cols)}")
        unknown = cols - ROSTER_COLUMNS
        if unknown:
            raise ExportError(f"{path}: unknown roster column(s) {sorted(unknown)}; known: {sorted(ROSTER_COLUMNS)}")
        roster = {}
        for row in reader:
            key = (row.get("student") or "").strip()
            if not key:
                continue
            if key in roster:
                raise ExportError(f"{path}: student {key!r} is listed twice")
            roster[key] = {k: (v or "").strip() for k, v in row.items()}
    return roster


def _scores(rows: list[dict]) -> tuple[dict[tuple[str, str], str], dict[str, str], list[str]]:
    """((student, assignment) -> score text, assignment -> points possible, warnings)."""
    scores, possible, warnings = {}, {}, []
    for r in rows:
        key = (r["student"], r["assignment"])
        if r.get("max_score"):
            possible[r["assignment"]] = r["max_score"]
        if r.get("status") == "needs_review":
            scores[key] = ""
            warnings.append(f"{r['student']}/{r['assignment']}: needs review by a person ({r.get('reason', '')}); "
                            "left blank until reviewed")
        elif r.get("status") == "graded":
            scores[key] = r.get("score", "")
            if r.get("needs_manual_grading"):
                warnings.append(f"{r['student']}/{r['assignment']}: written answers not graded yet "
                                f"({r['needs_manual_grading']}); the score exported is the autograded part")
        else:
            scores[key] = ""
            warnings.append(f"{r['student']}/{r['assignment']}: {r.get('status')} ({r.get('reason', '')}); left blank")
    return scores, possible, warnings


def export(rows: list[dict], lms: str, roster: dict[str, dict[str, str]] | None = None,
           canvas_ids: dict[str, str] | None = None, moodle_id: str = "username") -> Export:
    """The import CSV for ``lms`` from grades.csv rows (see the module docstring)."""
    if lms not in LMS:
        raise ExportError(f"unknown LMS {lms!r}; use one of {', '.join(LMS)}")
    if moodle_id not in ("username", "email", "idnumber"):
        raise ExportError(f"moodle_id={moodle_id!r}; use username, email or idnumber")
    scores, possible, warnings = _scores(rows)
    assignments = sorted({a for _, a in scores})
    students = sorted({s for s, _ in scores})
    if roster is not None:
        missing = [s for s in students if s not in roster]
        if missing:
            raise ExportError(f"student folder(s) not in the roster: {', '.join(missing)}. Add them (column "
                              "'student'), or they would be dropped from the LMS.")
        warnings += [f"{s}: in the roster but no submission; left blank" for s in roster if s not in students]
        students = sorted(roster)
    ident = roster or {s: {"student": s} for s in students}
    buf = io.StringIO()
    w = csv.writer(buf)
    if lms == "canvas":
        titles = [f"{a} ({canvas_ids[a]})" if canvas_ids and a in canvas_ids else a for a in assignments]
        w.writerow([*CANVAS_ID_COLUMNS, *titles])
        w.writerow(["Points Possible", "", "", "", "", *[possible.get(a, "") for a in assignments]])
        for s in students:
            p = ident.get(s, {"student": s})
            w.writerow([p.get("name") or s, p.get("canvas_id", ""), p.get("sis_user_id", ""),
                        p.get("sis_login_id") or (s if roster is None else ""), p.get("section", ""),
                        *[scores.get((s, a), "") for a in assignments]])
    else:
        w.writerow([moodle_id, *assignments])
        for s in students:
            p = ident.get(s, {"student": s})
            value = p.get(moodle_id) or (s if moodle_id == "username" else "")
            if not value:
                raise ExportError(f"{s}: no {moodle_id} in the roster; Moodle cannot match this student")
            w.writerow([value, *[scores.get((s, a), "") for a in assignments]])
    return Export(buf.getvalue(), warnings)


def write_export(out: str | pathlib.Path, lms: str, roster_path: str | None = None,
                 canvas_ids: dict[str, str] | None = None, moodle_id: str = "username") -> tuple[pathlib.Path, Export]:
    """Read OUT/grades.csv, write OUT/lms/<lms>.csv atomically; return its path and the export."""
    from .feedback import read_rows
    out = pathlib.Path(out)
    result = export(read_rows(out), lms, read_roster(roster_path) if roster_path else None, canvas_ids, moodle_id)
    path = out / "lms" / f"{lms}.csv"
    with atomic_open(path, "w", newline="") as fh:
        fh.write(result.text)
    return path, result
