"""The class gradebook: only the parent writes it, from each child's result; failures never linger as 0."""
from __future__ import annotations

import pathlib
import sqlite3

from .report import SCORED, Row


def commit_graded(cfg, row: Row, notebooks: dict) -> None:
    import warnings

    from nbgrader.api import Gradebook

    remove_foreign_objects(pathlib.Path(cfg.CourseDirectory.db_url.split("sqlite:///", 1)[1]))  # planted mid-run
    with Gradebook(cfg.CourseDirectory.db_url) as gb, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SQLAlchemy autoflush chatter inside nbgrader's add_submission
        gb.update_or_create_student(row.student)
        gb.update_or_create_submission(row.assignment, row.student)
        for nb_name, nb in notebooks.items():
            for gid, g in nb["grades"].items():
                grade = gb.find_grade(gid, nb_name, row.assignment, row.student)
                grade.auto_score = g["auto_score"]
                grade.needs_manual_grade = g["needs_manual_grade"]
            for cid, text in nb["comments"].items():
                comment = gb.find_comment(cid, nb_name, row.assignment, row.student)
                comment.auto_comment = text
        gb.db.commit()


def commit_failure(cfg, row: Row) -> None:
    """A failed submission must not linger in the gradebook as a 0 (or as an older grade)."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(cfg.CourseDirectory.db_url) as gb:
        try:
            gb.find_submission(row.assignment, row.student)
        except MissingEntry:
            return
        gb.remove_submission(row.assignment, row.student)




def fill_scores(cfg, rows: list[Row]) -> None:
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(cfg.CourseDirectory.db_url) as gb:
        for r in rows:
            if r.status not in SCORED:
                continue
            try:
                sub = gb.find_submission(r.assignment, r.student)
            except MissingEntry:  # an earlier result whose gradebook entry is gone: say so, never a 0
                r.status, r.reason = "failed", "result missing from the gradebook; rerun with --regrade"
                continue
            r.score, r.max_score = float(sub.score), float(sub.max_score)
            for nb in sub.notebooks:
                for g in nb.grades:
                    r.by_question[g.name] = float(g.score)
                    r.max_by_question[g.name] = float(g.max_score)
                    if g.needs_manual_grade:
                        r.needs_manual.append(g.name)




def remove_foreign_objects(db: pathlib.Path) -> list[str]:
    """Drop triggers and views from the class gradebook: nbgrader makes neither, so someone else did.

    (A trigger such as ``AFTER UPDATE ON grade SET auto_score = max_score`` would
    otherwise rewrite every later student's score.) Returns what was dropped.
    """
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        found = conn.execute("select type, name from sqlite_master where type in ('trigger', 'view')").fetchall()
        for kind, name in found:
            conn.execute(f'drop {kind} "{name.replace(chr(34), chr(34) * 2)}"')
    conn.close()
    return [f"{kind} {name}" for kind, name in found]
