"""Autograde a folder of submissions and export a gradebook CSV and a class report.

Layout expected: ``SUBMISSIONS/<student>/<assignment>/<notebook>.ipynb``.

- Submissions are read, never modified: a pristine copy goes to
  ``out/submitted``; the grading happens in a scratch copy of that.
- Each submission is graded in its own child process (``workers`` at a
  time), with its kernel in a sandbox (own HOME, cgroup process and memory
  limits, no network; see sandbox.py) and a hardened executor (execute.py).
- Only this process writes the class gradebook ``out/gradebook.db``; it is
  backed up to ``out/backups/`` before each run.
- Every finished submission leaves ``out/results/<assignment>/<student>.json``;
  a rerun (say after the run was killed) reuses those whose submission,
  source and limits are unchanged, so each student is graded once.
- Every row of ``grades.csv`` says graded / failed (why) / skipped (why); a
  failed submission is never a silent 0 and never sits in the gradebook.
"""
from __future__ import annotations

import ast
import csv
import dataclasses
import datetime as dt
import fcntl
import hashlib
import io
import json
import logging
import multiprocessing
import os
import pathlib
import shutil
import sqlite3
import time
from dataclasses import asdict, dataclass, field

from .._io import atomic_open
from .config import assignments, grading_environment, load_config, make_api, repo_root

log = logging.getLogger(__name__)

STATUSES = ("graded", "failed", "skipped")
GRADER_VERSION = "tlcourse-grade-2"  # part of each result's fingerprint: bump when grading changes
BACKUPS_KEPT = 10


@dataclass
class Row:
    student: str
    assignment: str
    status: str  # graded | failed | skipped
    reason: str = ""  # why failed/skipped; for graded rows, what the grader had to work around
    score: float | None = None
    max_score: float | None = None
    by_question: dict[str, float] = field(default_factory=dict)
    max_by_question: dict[str, float] = field(default_factory=dict)
    needs_manual: list[str] = field(default_factory=list)  # written answers awaiting a human


@dataclass
class Limits:
    """What one submission may use. ``cell_timeout`` None means the course's nbgrader_config value."""
    cell_timeout: int | None = None
    memory_mb: int = 4096
    nproc: int = 512
    cpus: float | None = None  # CPU cores per kernel, a cgroup quota; None: the machine's cores / workers
    max_output_bytes: int = 1_000_000
    file_size_mb: int = 2048  # a converted SmolLM2 (notebook 03, cold cache) is ~540 MB
    submission_timeout: int | None = None  # wall clock for a whole submission; default 4 x cells x timeout
    guard: bool = True  # the kernel guard (kernel_guard.py); False only to show what it stops


class GradingBusy(RuntimeError):
    pass


# -- reading submissions -------------------------------------------------------------------------
def _source_notebooks(root: pathlib.Path, assignment: str) -> list[pathlib.Path]:
    return sorted((root / "solutions" / assignment).glob("*.ipynb"))


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:120] if text else ''}"


def _read_notebook(path: pathlib.Path):
    """(notebook, '') or (None, reason)."""
    import nbformat

    if path.stat().st_size == 0:
        return None, f"{path.name} is an empty file"
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:
        return None, f"{path.name} is not a readable notebook ({_short(exc)})"
    if not isinstance(nb.get("cells"), list):
        return None, f"{path.name} is not a readable notebook (no cells)"
    return nb, ""


def _repair(nb, source) -> list[str]:
    """Make a readable submission gradable; returns what was changed (for the reason column)."""
    notes = []
    source_ids = {c.metadata["nbgrader"]["grade_id"] for c in source.cells
                  if "nbgrader" in c.metadata and "grade_id" in c.metadata["nbgrader"]}
    stripped = 0
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader")
        if meta is None:
            continue
        if not isinstance(meta, dict) or meta.get("grade_id") not in source_ids:
            del cell.metadata["nbgrader"]  # metadata the release never had cannot claim points
            stripped += 1
    if stripped:
        notes.append(f"ignored grader metadata on {stripped} cell(s) the release did not have")
    kernel = nb.metadata.get("kernelspec", {}).get("name")
    if kernel != source.metadata.kernelspec.name:
        notes.append(f"saved with kernel {kernel!r}; graded with {source.metadata.kernelspec.name!r}")
        nb.metadata["kernelspec"] = dict(source.metadata.kernelspec)
    ids: list[str] = []
    duplicates = 0
    for cell in nb.cells:
        if "nbgrader" not in cell.get("metadata", {}):
            continue
        gid = cell.metadata["nbgrader"]["grade_id"]
        if gid in ids:  # nbgrader's own DeduplicateIds leaves a grade_id-less stub that crashes autograde
            del cell.metadata["nbgrader"]
            duplicates += 1
        else:
            ids.append(gid)
    if duplicates:
        notes.append(f"{duplicates} duplicated graded cell(s): the first copy counts")
    missing = source_ids - set(ids)
    if missing:
        notes.append(f"{len(missing)} graded cell(s) missing or stripped: graded with the original")
    return notes


def _prepare_submission(src: list[pathlib.Path], dest: pathlib.Path, expected: list[pathlib.Path]) -> tuple[str, list[str]]:
    """Copy ``src`` notebooks into ``dest`` (repaired); returns (failure reason or '', notes)."""
    import nbformat

    notes: list[str] = []
    by_name = {p.name: p for p in src}
    wanted = [p.name for p in expected]
    if not by_name:
        return "no notebook in the submission folder", notes
    unexpected = sorted(set(by_name) - set(wanted))
    if len(wanted) == 1 and wanted[0] not in by_name:
        if len(unexpected) == 1:
            notes.append(f"notebook {unexpected[0]!r} graded as {wanted[0]!r}")
            by_name[wanted[0]] = by_name.pop(unexpected[0])
        else:
            return f"expected {wanted[0]}; found {', '.join(sorted(by_name))}", notes
    missing = [n for n in wanted if n not in by_name]
    if missing:
        return f"expected {', '.join(missing)}; found {', '.join(sorted(by_name))}", notes
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for name, exp in zip(wanted, expected):
        nb, why = _read_notebook(by_name[name])
        if nb is None:
            return why, notes
        notes += _repair(nb, nbformat.read(exp, as_version=4))
        with atomic_open(dest / name, "w") as fh:
            nbformat.write(nb, fh)
    return "", notes


# -- the notebook's own imports, protected in the kernel -------------------------------------------
def trusted_imports(notebooks: list[pathlib.Path]) -> list[str]:
    """Top-level import statements of the source's non-solution cells, one binding each.

    A name the source notebook also assigns elsewhere is left out, so restoring it
    before a test can never undo the notebook's own code.
    """
    import nbformat

    imports: list[tuple[str, str]] = []
    assigned: set[str] = set()
    for path in notebooks:
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type != "code":
                continue
            code = "\n".join(ln for ln in cell.source.splitlines() if not ln.lstrip().startswith(("%", "!")))
            try:
                tree = ast.parse(code)
            except SyntaxError:
                continue
            solution = cell.metadata.get("nbgrader", {}).get("solution", False)
            for node in ast.walk(tree):
                if isinstance(node, (ast.Name,)) and isinstance(node.ctx, ast.Store):
                    assigned.add(node.id)
                elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    assigned.add(node.name)
            if solution:
                continue
            for node in tree.body:
                if isinstance(node, ast.Import):
                    for alias in node.names:
                        imports.append((alias.asname or alias.name.split(".")[0],
                                        ast.unparse(ast.Import(names=[alias]))))
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    for alias in node.names:
                        if alias.name != "*":
                            imports.append((alias.asname or alias.name, ast.unparse(
                                ast.ImportFrom(module=node.module, names=[alias], level=0))))
    seen, out = set(), []
    for name, statement in imports:
        if name not in assigned and statement not in seen:
            seen.add(statement)
            out.append(statement)
    return out


# -- bookkeeping ---------------------------------------------------------------------------------
def _fingerprint(files: list[pathlib.Path], sources: list[pathlib.Path], limits: Limits) -> str:
    h = hashlib.sha256(GRADER_VERSION.encode())
    h.update(json.dumps(asdict(limits), sort_keys=True).encode())
    for p in sources:
        h.update(b"source:" + p.name.encode() + b"\0" + p.read_bytes())
    for p in sorted(files):
        h.update(b"submission:" + p.name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def backup_gradebook(out: pathlib.Path) -> pathlib.Path | None:
    """Copy ``out/gradebook.db`` to ``out/backups/gradebook-<UTC time>.db``; keep the last few."""
    db = out / "gradebook.db"
    if not db.exists():
        return None
    backups = out / "backups"
    backups.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    dest = backups / f"gradebook-{stamp}.db"
    tmp = backups / f".{dest.name}.tmp"
    with sqlite3.connect(db) as src_conn, sqlite3.connect(tmp) as dst_conn:
        src_conn.backup(dst_conn)
    src_conn.close()
    dst_conn.close()
    os.replace(tmp, dest)
    for old in sorted(backups.glob("gradebook-*.db"))[:-BACKUPS_KEPT]:
        old.unlink()
    return dest


def _clean_stale_scratch(out: pathlib.Path) -> None:
    """Kill kernels and remove cgroups a killed earlier run left behind."""
    from .sandbox import Sandbox, kill_pidfile_group

    scratch_root = out / ".scratch"
    if not scratch_root.exists():
        return
    for state in scratch_root.glob("*/sandbox.json"):
        try:
            info = json.loads(state.read_text())
        except (OSError, ValueError):
            continue
        sb = Sandbox.__new__(Sandbox)
        sb.dirs, sb.kind = [pathlib.Path(d) for d in info.get("dirs", [])], info.get("kind")
        if sb.dirs:
            sb.destroy()
        else:
            kill_pidfile_group(info.get("pidfile", ""))
    shutil.rmtree(scratch_root, ignore_errors=True)


def _default_cache_dirs() -> tuple[str, str, str]:
    """Where the instructor's tlcourse, torch and matplotlib caches are (the kernels get a new HOME)."""
    home = os.path.expanduser("~")
    cache = os.environ.get("TLCOURSE_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME")
                                                             or os.path.join(home, ".cache"), "tlcourse")
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(home, ".cache", "torch")
    mpl = os.environ.get("MPLCONFIGDIR") or os.path.join(os.environ.get("XDG_CACHE_HOME")
                                                         or os.path.join(home, ".cache"), "matplotlib")
    return tuple(os.path.abspath(os.path.expanduser(p)) for p in (cache, torch_home, mpl))


# -- the parent ----------------------------------------------------------------------------------
@dataclass
class _Job:
    student: str
    assignment: str
    files: list[pathlib.Path]
    notes: list[str]
    fingerprint: str = ""


def _discover(submissions: pathlib.Path, root: pathlib.Path, only: list[str] | None) -> tuple[list[_Job], list[Row]]:
    known = assignments(root)
    if only:
        unknown = [a for a in only if a not in known]
        if unknown:
            raise ValueError(f"unknown assignment(s) {', '.join(unknown)}; known: {', '.join(known)}")
    wanted = list(only or known)
    notebook_owner = {p.name: a for a in known for p in _source_notebooks(root, a)}
    jobs: list[_Job] = []
    rows: list[Row] = []
    for student_dir in sorted(p for p in submissions.iterdir() if p.is_dir() and not p.name.startswith(".")):
        s = student_dir.name
        folders = {p.name: p for p in student_dir.iterdir() if p.is_dir() and not p.name.startswith(".")}
        loose = sorted(p for p in student_dir.glob("*.ipynb") if p.is_file())
        found = set()
        for name, folder in sorted(folders.items()):
            if name not in known:
                if not only:
                    rows.append(Row(s, name, "skipped", f"unknown assignment; known: {', '.join(known)}"))
                continue
            if name in wanted:
                found.add(name)
                jobs.append(_Job(s, name, sorted(p for p in folder.glob("*.ipynb") if p.is_file()), []))
        for nb in loose:
            a = notebook_owner.get(nb.name)
            if a in wanted and a not in found:
                found.add(a)
                jobs.append(_Job(s, a, [nb], [f"{nb.name} was not in an {a}/ folder"]))
        if only:
            for a in wanted:
                if a not in found:
                    seen = ", ".join(sorted(folders) + [p.name for p in loose]) or "nothing"
                    rows.append(Row(s, a, "failed", f"no {a}/ folder in {s}/ (found: {seen})"))
        elif not found and not any(r.student == s for r in rows):
            seen = ", ".join(sorted(folders) + [p.name for p in loose]) or "nothing"
            rows.append(Row(s, "", "failed", f"no assignment folder in {s}/ (found: {seen}); "
                                             f"expected {s}/<assignment>/<notebook>.ipynb"))
    return jobs, rows


def _count_code_cells(paths: list[pathlib.Path]) -> int:
    import nbformat
    return sum(c.cell_type == "code" for p in paths for c in nbformat.read(p, as_version=4).cells)


def grade(submissions: str | os.PathLike, out: str | os.PathLike = "grading", root: pathlib.Path | None = None,
          only: list[str] | None = None, *, workers: int = 1, limits: Limits | None = None,
          regrade: bool = False) -> list[Row]:
    """Grade every ``<student>/<assignment>`` under ``submissions`` into ``out``.

    Writes ``out/grades.csv``, ``out/report/<assignment>.png`` (a score
    histogram per question), ``out/autograded/<student>/<assignment>/`` and
    nbgrader's gradebook ``out/gradebook.db``. ``regrade=True`` grades every
    submission again even when an earlier result for the same files exists.
    """
    grading_environment()
    root = pathlib.Path(root or repo_root()).resolve()
    submissions = pathlib.Path(submissions).resolve()
    if not submissions.is_dir():
        raise FileNotFoundError(f"{submissions} is not a folder. Expected SUBMISSIONS/<student>/<assignment>/*.ipynb.")
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if limits is not None and limits.cpus is not None and not limits.cpus > 0:
        raise ValueError(f"cpus must be a positive number of cores per kernel (e.g. 1.5), got {limits.cpus}")
    limits = dataclasses.replace(limits) if limits else Limits()  # resolved below; the caller's stays as given
    out = pathlib.Path(out).resolve()
    if out == submissions or submissions in out.parents or out in submissions.parents:
        raise ValueError(f"--out {out} must be outside the submissions folder {submissions}")
    out.mkdir(parents=True, exist_ok=True)
    lock = open(out / ".grading.lock", "w")
    try:  # a POSIX lock: forked workers do not inherit it, so it dies with this process even under SIGKILL
        fcntl.lockf(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.close()
        raise GradingBusy(f"another `tlcourse grade` is writing to {out}; wait for it or choose another --out") from None
    try:
        return _grade_locked(submissions, out, root, only, workers, limits, regrade)
    finally:
        fcntl.lockf(lock, fcntl.LOCK_UN)
        lock.close()


def _grade_locked(submissions, out, root, only, workers, limits, regrade) -> list[Row]:
    from .sandbox import probe, sweep_orphans

    _clean_stale_scratch(out)
    for gone in sweep_orphans():  # left by a killed run that wrote elsewhere
        log.info("removed an orphaned sandbox cgroup: %s", gone)
    backup_gradebook(out)
    cfg = load_config(root, **{
        "CourseDirectory.source_directory": str(root / "solutions"),
        "CourseDirectory.release_directory": str(out / "release"),
        "CourseDirectory.submitted_directory": str(out / "submitted"),
        "CourseDirectory.autograded_directory": str(out / "autograded"),
        "CourseDirectory.feedback_directory": str(out / "feedback"),
        "CourseDirectory.db_url": f"sqlite:///{out}/gradebook.db",
    })
    if limits.cell_timeout is None:
        limits.cell_timeout = int(cfg.Execute.get("timeout", 600))
    jobs, rows = _discover(submissions, root, only)
    api = make_api(cfg)
    isolation = probe()
    cache_dir, torch_home, mpl_cache = _default_cache_dirs()
    # a CPU quota per kernel, so a busy kernel keeps to its share, and torch threads to match it
    cpus = limits.cpus or (os.cpu_count() or 1) / workers
    threads = max(1, int(cpus))
    per_assignment: dict[str, dict] = {}
    for a in sorted({j.assignment for j in jobs}):
        gen = api.generate_assignment(a, force=True)
        if not gen["success"]:
            raise RuntimeError(f"could not prepare {a} from solutions/: {gen.get('error') or gen.get('log')}")
        sources = _source_notebooks(root, a)
        template = out / ".templates" / f"{a}.db"
        from .worker import copy_sqlite
        copy_sqlite(out / "gradebook.db", template)
        per_assignment[a] = {"sources": sources, "template": template, "imports": trusted_imports(sources),
                             "code_cells": _count_code_cells(sources)}
    pending: list[tuple[_Job, dict]] = []
    for job in jobs:
        info = per_assignment[job.assignment]
        job.fingerprint = _fingerprint(job.files, info["sources"], limits)
        record = out / "results" / job.assignment / f"{job.student}.json"
        if not regrade and record.exists():
            try:
                saved = json.loads(record.read_text())
            except ValueError:
                saved = {}
            if saved.get("fingerprint") == job.fingerprint and saved.get("status") in STATUSES:
                rows.append(Row(job.student, job.assignment, saved["status"], saved.get("reason", "")))
                continue
        dest = out / "submitted" / job.student / job.assignment
        failure, notes = _prepare_submission(job.files, dest, info["sources"])
        job.notes += notes
        if failure:
            row = Row(job.student, job.assignment, "failed", failure)
            _commit_failure(cfg, row)
            _record(out, job, row)
            rows.append(row)
            continue
        timeout = limits.submission_timeout or 4 * limits.cell_timeout * max(1, info["code_cells"]) + 60
        pending.append((job, {
            "root": str(root), "student": job.student, "assignment": job.assignment, "submission_dir": str(dest),
            "template_db": str(info["template"]), "trusted_imports": info["imports"], "isolation": isolation,
            "cell_timeout": limits.cell_timeout, "memory_mb": limits.memory_mb, "nproc": limits.nproc,
            "cpus": cpus, "max_output_bytes": limits.max_output_bytes, "file_size_mb": limits.file_size_mb,
            "guard": limits.guard, "cache_dir": cache_dir, "mpl_cache": mpl_cache, "torch_home": torch_home,
            "threads": threads, "deadline_s": timeout}))
    rows += _run_workers(pending, out, cfg, workers)
    _fill_scores(cfg, rows)
    rows.sort(key=lambda r: (r.assignment, r.student))
    write_csv(out / "grades.csv", rows)
    for a in sorted({r.assignment for r in rows if r.status == "graded"}):
        plot_class_report(rows, a, out / "report" / f"{a}.png")
    shutil.rmtree(out / ".scratch", ignore_errors=True)
    return rows


def _run_workers(pending, out: pathlib.Path, cfg, workers: int) -> list[Row]:
    """Fork one child per submission, ``workers`` at a time; import each result as it lands."""
    from multiprocessing.connection import wait

    from .worker import run

    ctx = multiprocessing.get_context("fork")
    rows: list[Row] = []
    queue = list(pending)
    running: dict = {}
    while queue or running:
        while queue and len(running) < workers:
            job, spec = queue.pop(0)
            scratch = out / ".scratch" / f"{job.assignment}--{job.student}"
            shutil.rmtree(scratch, ignore_errors=True)
            scratch.mkdir(parents=True)
            spec["scratch"] = str(scratch)
            proc = ctx.Process(target=run, args=(spec,), daemon=False)
            proc.start()
            running[proc.sentinel] = (proc, job, scratch, time.monotonic() + spec["deadline_s"])
        ready = wait(list(running), timeout=1.0)
        now = time.monotonic()
        for sentinel in list(running):
            proc, job, scratch, deadline = running[sentinel]
            if sentinel not in ready and now < deadline:
                continue
            timed_out = sentinel not in ready
            if timed_out:
                proc.kill()
            proc.join()
            del running[sentinel]
            rows.append(_collect(out, cfg, job, scratch, proc.exitcode, timed_out, deadline))
    return rows


def _collect(out, cfg, job: _Job, scratch: pathlib.Path, exitcode, timed_out: bool, deadline) -> Row:
    from .sandbox import Sandbox, kill_pidfile_group

    state = scratch / "sandbox.json"
    if state.exists():  # whatever the child left running dies now
        info = json.loads(state.read_text())
        sb = Sandbox.__new__(Sandbox)
        sb.dirs, sb.kind = [pathlib.Path(d) for d in info.get("dirs", [])], info.get("kind")
        sb.destroy() if sb.dirs else kill_pidfile_group(info.get("pidfile", ""))
    if (scratch / "ipc-dir").exists():  # the kernel's socket folder, outside scratch (a killed child leaves it)
        shutil.rmtree((scratch / "ipc-dir").read_text(), ignore_errors=True)
    result_path = scratch / "result.json"
    result = json.loads(result_path.read_text()) if result_path.exists() else None
    if timed_out:
        row = Row(job.student, job.assignment, "failed", "grading ran past the submission's wall-clock limit")
    elif result is None:
        tail = (scratch / "worker.log").read_text(errors="replace").strip().splitlines()[-1:] \
            if (scratch / "worker.log").exists() else []
        row = Row(job.student, job.assignment, "failed",
                  f"the grading process exited with code {exitcode}: {tail[0][:200] if tail else 'no log'}")
    elif not result["ok"]:
        row = Row(job.student, job.assignment, "failed", result["error"])
    else:
        notes = list(job.notes) + _describe_events(result["events"])
        row = Row(job.student, job.assignment, "graded", "; ".join(notes))
        _commit_graded(cfg, row, result["notebooks"])
        _publish_autograded(out, job, scratch)
    if row.status == "failed":
        _commit_failure(cfg, row)
        _keep_log(out, job, scratch)
    _record(out, job, row)
    return row


def _keep_log(out: pathlib.Path, job: _Job, scratch: pathlib.Path) -> None:
    """A failed submission's grading log outlives the scratch folder: out/logs/<assignment>--<student>.log."""
    log = scratch / "worker.log"
    if log.exists():
        with atomic_open(out / "logs" / f"{job.assignment}--{job.student}.log", "w") as fh:
            fh.write(log.read_text(errors="replace"))


def _describe_events(events: list[dict]) -> list[str]:
    words = {"timeout": "timed out", "kernel_died": "killed the kernel", "guard_failed": "failed the integrity check",
             "output_capped": "output capped", "killed_strays": "left processes behind",
             "thread_explosion": "left too many threads running",
             "gave_up": "kernel could not be restored", "replay_failed": "replay after a restart failed",
             "replay_skipped": "not replayed after a restart (they had failed)"}
    by_kind: dict[str, list[int]] = {}
    for e in events:
        by_kind.setdefault(e["event"], []).append(e["cell"])
    return [f"{words.get(k, k)}: cell(s) {', '.join(map(str, sorted(set(v))))}" for k, v in by_kind.items()]


def _commit_graded(cfg, row: Row, notebooks: dict) -> None:
    import warnings

    from nbgrader.api import Gradebook

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


def _commit_failure(cfg, row: Row) -> None:
    """A failed submission must not linger in the gradebook as a 0 (or as an older grade)."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(cfg.CourseDirectory.db_url) as gb:
        try:
            gb.find_submission(row.assignment, row.student)
        except MissingEntry:
            return
        gb.remove_submission(row.assignment, row.student)


def _publish_autograded(out: pathlib.Path, job: _Job, scratch: pathlib.Path) -> None:
    """Swap the executed notebooks into out/autograded/<student>/<assignment>/ in one rename."""
    src = scratch / "autograded" / job.student / job.assignment
    dest = out / "autograded" / job.student / job.assignment
    dest.parent.mkdir(parents=True, exist_ok=True)
    staged = dest.parent / f".{job.assignment}.new"
    old = dest.parent / f".{job.assignment}.old"
    shutil.rmtree(staged, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)
    shutil.copytree(src, staged)
    if dest.exists():
        dest.rename(old)
    staged.rename(dest)
    shutil.rmtree(old, ignore_errors=True)


def _record(out: pathlib.Path, job: _Job, row: Row) -> None:
    with atomic_open(out / "results" / job.assignment / f"{job.student}.json", "w") as fh:
        json.dump({"fingerprint": job.fingerprint, "status": row.status, "reason": row.reason,
                   "graded_at": dt.datetime.now(dt.timezone.utc).isoformat()}, fh)


def _fill_scores(cfg, rows: list[Row]) -> None:
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(cfg.CourseDirectory.db_url) as gb:
        for r in rows:
            if r.status != "graded":
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
    counts = {s: sum(r.status == s for r in rows) for s in STATUSES}
    lines = [f"{counts['graded']} graded, {counts['failed']} failed, {counts['skipped']} skipped"]
    lines += [f"  {r.status.upper()}: {r.student}/{r.assignment}: {r.reason}" for r in rows if r.status != "graded"]
    notes = [r for r in rows if r.status == "graded" and r.reason]
    lines += [f"  note: {r.student}/{r.assignment}: {r.reason}" for r in notes]
    return "\n".join(lines)
