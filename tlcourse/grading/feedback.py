"""Feedback pages after grading: one per submission, and one per assignment on where the class struggled.

    tlcourse feedback OUT        # OUT is the folder `tlcourse grade` wrote

``OUT/feedback/<student>/<assignment>.html`` shows the student's score per
question, for each question that lost points the words the checks would have
said (the ``Not quite: ...`` message that ``qN.grade`` raises), the message of a
failing *visible* test, the three hints, and the grader's comment on written
answers (from Formgrader, when there is one). A failing *hidden* test is
reported as such and nothing more: its source, its message and the solution are
never shown (nbgrader's own feedback shows them: jupyter/nbgrader#917, #1363).
Whether a failing line is visible or hidden is read from the traceback's line
number against the instructor's ``### BEGIN HIDDEN TESTS`` marker, and every
message is scrubbed of hidden-test and solution lines before it is written.

``OUT/feedback/class/<assignment>.html`` is the same for the whole class,
anonymous: the distribution of scores per question and the most common
mistakes as the checks name them (messages shared by at least two students).
"""
from __future__ import annotations

import collections
import csv
import html
import importlib
import json
import pathlib
import re
from dataclasses import dataclass, field

from .._io import atomic_open
from .config import repo_root

HIDDEN = "### BEGIN HIDDEN TESTS"
CHECK_PREFIXES = ("Not quite:", "Not attempted:")
PROVISIONAL = ("graded", "needs_review")  # rows with a score; needs_review: a person looks before it is final
MAX_MESSAGE = 600
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_CELL_LINE = re.compile(r"(?:Cell In\s*\[[^\]]*\]|<ipython-input-[^>]*>), line (\d+)")


@dataclass
class Question:
    grade_id: str
    max_score: float
    score: float | None = None
    manual: bool = False
    messages: list[str] = field(default_factory=list)  # what the student may read about what went wrong
    hidden_failed: bool = False
    hints: list[str] = field(default_factory=list)
    comment: str = ""

    @property
    def lost_points(self) -> bool:
        return self.score is not None and self.score < self.max_score


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _instructor_cells(root: pathlib.Path, assignment: str) -> dict[str, dict]:
    """grade_id -> the instructor's cell (points, kind, hidden-test line, secret lines), from solutions/."""
    out = {}
    for path in sorted((root / "solutions" / assignment).glob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if "grade_id" not in meta:
                continue
            source = "".join(cell["source"])
            lines = source.splitlines()
            hidden_at = next((i + 1 for i, ln in enumerate(lines) if HIDDEN in ln), None)
            secret = []
            if hidden_at:
                secret += lines[hidden_at:]
            if meta.get("solution"):
                secret += lines
            out[meta["grade_id"]] = dict(points=float(meta.get("points", 0) or 0), grade=bool(meta.get("grade")),
                                         manual=meta.get("grade") and (cell["cell_type"] == "markdown"
                                                                       or meta.get("solution")),
                                         code=cell["cell_type"] == "code", hidden_at=hidden_at,
                                         secret=[_squash(s) for s in secret if len(_squash(s)) >= 10
                                                 and not s.strip().startswith("#")])
    return out


def _scrub(message: str, secret: list[str]) -> str | None:
    """The message, capped; None when it quotes a hidden test or the solution."""
    squashed = _squash(message)
    if any(s in squashed for s in secret):
        return None
    return message if len(message) <= MAX_MESSAGE else message[:MAX_MESSAGE] + " ..."


def _failure_messages(cell: dict, info: dict, secrets: list[str]) -> tuple[list[str], bool]:
    """(messages the student may read, whether a hidden test failed) for one executed test cell."""
    messages, hidden = [], False
    for out in cell.get("outputs", []):
        if out.get("output_type") != "error":
            continue
        ename, evalue = str(out.get("ename", "Error")), _ANSI.sub("", str(out.get("evalue", "")))
        lines = [int(m) for tb in out.get("traceback", []) for m in _CELL_LINE.findall(_ANSI.sub("", tb))]
        in_hidden = bool(info.get("hidden_at") and lines and lines[0] > info["hidden_at"])
        if evalue.startswith(CHECK_PREFIXES):
            text = evalue  # the words check() shows: written for students
        elif not in_hidden and lines:
            text = f"{ename}: {evalue}" if evalue else f"{ename} in the visible test (line {lines[0]})"
        else:
            hidden = True
            continue
        clean = _scrub(text, secrets)
        if clean is None:
            hidden = True
        else:
            messages.append(clean)
    return messages, hidden


def _hints(assignment: str) -> dict[str, list[str]]:
    """Question prefix (q1, q2, ...) -> its hints, from tlcourse.checks.<topic> when the lesson has checks."""
    topic = assignment.split("_", 1)[1] if "_" in assignment else assignment
    try:
        checks = importlib.import_module(f"tlcourse.checks.{topic}")
    except ImportError:
        return {}
    return {k: list(v.hints) for k, v in vars(checks).items() if re.fullmatch(r"q\d+", k) and hasattr(v, "hints")}


def _comments(out: pathlib.Path, student: str, assignment: str) -> dict[str, str]:
    """grade_id -> the grader's comment in nbgrader's gradebook (written answers graded in Formgrader)."""
    db = out / "gradebook.db"
    if not db.exists():
        return {}
    try:
        from nbgrader.api import Gradebook, MissingEntry
        with Gradebook(f"sqlite:///{db}") as gb:
            sub = gb.find_submission(assignment, student)
            return {c.name: (c.manual_comment or "") for nb in sub.notebooks for c in nb.comments if c.manual_comment}
    except (ImportError, MissingEntry, Exception):  # no gradebook entry: no comment to show
        return {}


def read_rows(out: pathlib.Path) -> list[dict]:
    path = out / "grades.csv"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run `tlcourse grade SUBMISSIONS --out {out}` first")
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def submission_feedback(out: pathlib.Path, root: pathlib.Path, row: dict) -> list[Question]:
    """What one graded submission may be told, question by question."""
    student, assignment = row["student"], row["assignment"]
    cells = _instructor_cells(root, assignment)
    secrets = [s for info in cells.values() for s in info["secret"]]
    hints, comments = _hints(assignment), _comments(out, student, assignment)
    executed = {}
    for path in sorted((out / "autograded" / student / assignment).glob("*.ipynb")):
        try:
            nb = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        for cell in nb.get("cells", []):
            gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            if isinstance(gid, str):
                executed[gid] = cell
    questions = []
    for gid, info in cells.items():
        if not info["grade"]:
            continue
        raw = row.get(gid, "")
        q = Question(gid, info["points"], float(raw) if raw not in ("", None) else None, manual=bool(info["manual"]),
                     comment=comments.get(gid, ""))
        if info["code"] and gid in executed and not q.manual:
            q.messages, q.hidden_failed = _failure_messages(executed[gid], info, secrets)
        if q.lost_points and not q.manual:
            q.hints = hints.get(gid.split("_", 1)[0], [])
        questions.append(q)
    return questions


# ---------------------------------------------------------------- HTML

_STYLE = ("body{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;line-height:1.45}"
          "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}"
          ".lost{background:#fff3f3}.full{background:#f3fff3}.msg{font-family:monospace;white-space:pre-wrap}"
          ".bar{background:#4a78b5;height:.8rem;display:inline-block}")


def _page(title: str, body: list[str]) -> str:
    return ("<!doctype html><html><head><meta charset='utf-8'><title>" + html.escape(title) +
            f"</title><style>{_STYLE}</style></head><body>" + "\n".join(body) + "</body></html>\n")


def _fmt(x: float | None) -> str:
    return "—" if x is None else f"{x:g}"


def render_submission(row: dict, questions: list[Question]) -> str:
    e = html.escape
    student, assignment = row["student"], row["assignment"]
    body = [f"<h1>{e(assignment)}: feedback for {e(student)}</h1>"]
    if row.get("status") not in PROVISIONAL:
        body.append(f"<p>Your notebook could not be graded automatically ({e(row.get('status', ''))}): "
                    f"{e(row.get('reason', ''))}. Ask your instructor.</p>")
    else:
        if row.get("status") == "needs_review":
            body.append("<p><b>Provisional:</b> a person will look at your submission before this score is final.</p>")
        body.append(f"<p><b>Score: {e(row.get('score', ''))} / {e(row.get('max_score', ''))}</b>"
                    + (" (written answers are still being graded by hand)" if row.get("needs_manual_grading") else "")
                    + f" — <a href='../class/{e(assignment)}.html'>where the class struggled</a></p>")
    body.append("<table><tr><th>question</th><th>score</th><th>what to look at</th></tr>")
    for q in questions:
        notes = [f"<div class='msg'>{e(m)}</div>" for m in q.messages]
        if q.hidden_failed:
            notes.append("<div>A hidden test of this question failed: make your code right in general, "
                         "not only for the visible test.</div>")
        if q.manual and q.score is None:
            notes.append("<div>Graded by hand; not graded yet.</div>")
        if q.comment:
            notes.append(f"<div><b>Grader's comment:</b> {e(q.comment)}</div>")
        if q.hints:
            notes.append("<details><summary>Hints</summary><ol>" + "".join(f"<li>{e(h)}</li>" for h in q.hints)
                         + "</ol></details>")
        cls = "lost" if q.lost_points else "full" if q.score is not None else ""
        body.append(f"<tr class='{cls}'><td>{e(q.grade_id)}</td><td>{_fmt(q.score)} / {_fmt(q.max_score)}</td>"
                    f"<td>{''.join(notes)}</td></tr>")
    body.append("</table>")
    return _page(f"{assignment} feedback", body)


def render_class(assignment: str, per_student: list[tuple[dict, list[Question]]]) -> str:
    e = html.escape
    graded = [(r, qs) for r, qs in per_student if r.get("status") == "graded"]
    waiting = sum(r.get("status") == "needs_review" for r, _ in per_student)
    body = [f"<h1>{e(assignment)}: where the class struggled</h1>",
            f"<p>{len(graded)} graded submissions" + (f" ({waiting} awaiting a person's review are not counted)"
                                                       if waiting else "") +
            ". Anonymous: no names, and a mistake is listed only when at least two students made it.</p>"]
    by_q: dict[str, list[Question]] = collections.defaultdict(list)
    for _, qs in graded:
        for q in qs:
            by_q[q.grade_id].append(q)
    for gid, qs in by_q.items():
        scores = [q.score for q in qs if q.score is not None]
        full = sum(q.score == q.max_score for q in qs if q.score is not None)
        body.append(f"<h2>{e(gid)}</h2><p>{full} of {len(scores)} scored full marks"
                    + (f"; mean {sum(scores) / len(scores):.2f} / {qs[0].max_score:g}" if scores else "") + "</p>")
        counts = collections.Counter(scores)
        body.append("<table>" + "".join(
            f"<tr><td>{s:g}</td><td><span class='bar' style='width:{12 * n}px'></span> {n}</td></tr>"
            for s, n in sorted(counts.items())) + "</table>")
        mistakes = collections.Counter(m.split(". ")[0] for q in qs for m in set(q.messages)
                                       if m.startswith(CHECK_PREFIXES))
        common = [(m, n) for m, n in mistakes.most_common(5) if n >= 2]
        if common:
            body.append("<p>Most common mistakes, as the checks name them:</p><ul>" +
                        "".join(f"<li>{n} students: <span class='msg'>{e(m)}</span></li>" for m, n in common) + "</ul>")
    return _page(f"{assignment}: the class", body)


def build_feedback(out: str | pathlib.Path, root: pathlib.Path | None = None) -> list[pathlib.Path]:
    """Write every submission's page and every assignment's class page; return the paths written."""
    out = pathlib.Path(out)
    root = pathlib.Path(root or repo_root())
    rows = read_rows(out)
    unknown = sorted({r["assignment"] for r in rows} - {p.name for p in (root / "solutions").glob("*") if p.is_dir()})
    if unknown and len(unknown) == len({r["assignment"] for r in rows}):
        raise FileNotFoundError(f"none of the assignments in {out}/grades.csv ({', '.join(unknown)}) is in "
                                f"{root}/solutions: pass the course folder they were graded from (--root)")
    written, by_assignment = [], collections.defaultdict(list)
    for row in rows:
        student, assignment = row["student"], row["assignment"]
        if not student or pathlib.PurePath(student).name != student or student in (".", ".."):
            continue  # not a plain folder name: nothing safe to write
        if not (root / "solutions" / assignment).is_dir():
            continue
        questions = submission_feedback(out, root, row) if row.get("status") in PROVISIONAL else []
        by_assignment[assignment].append((row, questions))
        path = out / "feedback" / student / f"{assignment}.html"
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(path, "w") as fh:
            fh.write(render_submission(row, questions))
        written.append(path)
    for assignment, per_student in by_assignment.items():
        path = out / "feedback" / "class" / f"{assignment}.html"
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(path, "w") as fh:
            fh.write(render_class(assignment, per_student))
        written.append(path)
    return written
