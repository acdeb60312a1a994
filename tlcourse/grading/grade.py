"""Orchestration: grade a folder of submissions, one child process per submission, and export the class.

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

One file per idea: intake.py (finding and reading submissions, the trust scan
of the source), resume.py (result records, backups, clean-up after a killed
run), gradebook.py (the class gradebook), report.py (CSV, histograms,
summary), worker.py (one submission in a child), sandbox.py (the kernel's
confinement), execute.py and kernel_guard.py (running the cells).
"""
from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import logging
import multiprocessing
import os
import pathlib
import re
import shutil
import time
from dataclasses import dataclass

from .._io import atomic_open
from ..profile import RUNTIME_BUDGET_S
from .config import course_directories, grading_environment, load_config, make_api, repo_root
from .progress import GradingProgress
from .gradebook import commit_failure, commit_graded, fill_scores, remove_foreign_objects
from .intake import Job, count_code_cells, discover, prepare_submission, refuse, source_notebooks, trusted_imports
from .report import SCORED, UNCONFINED, Row, plot_class_report, summary, write_csv
from .resume import (backup_gradebook, clean_stale_scratch, fingerprint, forget, mark_in_progress,
                     previous_result, record)
from .review import scan_notebook
from .scores import UntrustedNotebook, read_executed, score_notebook
from .worker import STUDENT_ID

__all__ = ["Limits", "GradingBusy", "Row", "grade", "summary", "trusted_imports"]

log = logging.getLogger(__name__)


@dataclass
class Limits:
    """What one submission may use. ``cell_timeout`` None means the course's nbgrader_config value."""
    cell_timeout: int | None = None
    memory_mb: int = 4096
    nproc: int = 512
    cpus: float | None = None  # CPU cores per kernel, a cgroup quota; None: the machine's cores / workers
    max_output_bytes: int = 1_000_000
    file_size_mb: int = 2048  # a converted SmolLM2 (notebook 03, cold cache) is ~540 MB
    submission_timeout: int | None = None  # wall clock for a whole submission; default: see _deadline
    deadline_factor: float = 10.0  # deadline: this many times the solution's run time (a busy machine is ~4x slower)
    max_notebook_mb: int = 20  # a submitted notebook larger than this is refused before it is read
    confine: bool = True  # bubblewrap around each kernel where it can run (False: only to show what it stops)
    disk_mb: int = 1024  # each of a confined kernel's writable folders (working folder, HOME, /tmp) is capped at this
    guard: bool = True  # the kernel guard (kernel_guard.py); False only to show what it stops


class GradingBusy(RuntimeError):
    pass


def _default_cache_dirs() -> tuple[str, str, str]:
    """Where the instructor's tlcourse, torch and matplotlib caches are (the kernels get a new HOME)."""
    home = os.path.expanduser("~")
    cache = os.environ.get("TLCOURSE_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME")
                                                             or os.path.join(home, ".cache"), "tlcourse")
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(home, ".cache", "torch")
    mpl = os.environ.get("MPLCONFIGDIR") or os.path.join(os.environ.get("XDG_CACHE_HOME")
                                                         or os.path.join(home, ".cache"), "matplotlib")
    return tuple(os.path.abspath(os.path.expanduser(p)) for p in (cache, torch_home, mpl))


def _deadline(limits: Limits, code_cells: int, assignment: str = "") -> int:
    """Wall clock for one submission, in seconds.

    ``Limits.submission_timeout`` if set. Else ``deadline_factor`` times the solution's own run
    time (the notebook's budget on the 2-core reference machine, ``profile.RUNTIME_BUDGET_S``,
    found by the assignment's ``NN_`` prefix), plus two minutes to start a confined kernel,
    so a student whose code is slower than the solution has room but a stalled submission
    does not hold a worker for hours. Never more than the ceiling that per-cell timeouts
    already impose: every cell at its timeout once, plus the replays of up to three
    restarts (execute.py); an assignment with no known run time gets that ceiling.
    """
    if limits.submission_timeout:
        return limits.submission_timeout
    ceiling = 4 * limits.cell_timeout * max(1, code_cells) + 60
    solution_s = RUNTIME_BUDGET_S.get(assignment[:2]) if assignment[2:3] == "_" else None
    if solution_s is None:
        return ceiling
    return min(ceiling, int(limits.deadline_factor * solution_s) + 120)


# -- the parent ----------------------------------------------------------------------------------
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

    clean_stale_scratch(out)
    for gone in sweep_orphans():  # left by a killed run that wrote elsewhere
        log.info("removed an orphaned sandbox cgroup: %s", gone)
    backup_gradebook(out)
    for thing in remove_foreign_objects(out / "gradebook.db"):
        log.warning("removed %s from %s: the grader did not create it", thing, out / "gradebook.db")
    cfg = load_config(root, **course_directories(root, out))
    if limits.cell_timeout is None:
        limits.cell_timeout = int(cfg.Execute.get("timeout", 600))
    jobs, rows = discover(submissions, root, only)
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
        sources = source_notebooks(root, a)
        template = out / ".templates" / f"{a}.db"
        from .worker import copy_sqlite
        copy_sqlite(out / "gradebook.db", template)
        per_assignment[a] = {"sources": sources, "template": template, "imports": trusted_imports(sources),
                             "code_cells": count_code_cells(sources)}
    pending: list[tuple[Job, dict]] = []
    for job in jobs:
        info = per_assignment[job.assignment]

        def fail(why: str) -> None:
            row = Row(job.student, job.assignment, "failed", why)
            commit_failure(cfg, row)
            record(out, job, row)
            rows.append(row)

        refused = refuse(job.files, submissions, limits.max_notebook_mb * 2**20)
        job.fingerprint = fingerprint([] if refused else job.files, info["sources"], limits)
        saved, job.suspect = (None, False) if regrade else previous_result(out, job)
        if saved is not None and job.suspect:  # in flight alone when the grader died: the culprit
            fail(saved.reason)
            continue
        if saved is not None:
            rows.append(saved)
            continue
        if refused:
            fail(refused)
            continue
        dest = out / "submitted" / job.student / job.assignment
        failure, notes = prepare_submission(job.files, dest, info["sources"])
        job.notes += notes
        if failure:
            fail(failure)
            continue
        job.review = [f"{p.name} {finding}" for p in info["sources"] for finding in
                      scan_notebook(dest / p.name, out / "release" / job.assignment / p.name)]
        if isolation.get("unconfined_because") and limits.confine:
            job.notes.insert(0, UNCONFINED + isolation["unconfined_because"])
        elif not limits.confine:
            job.notes.insert(0, UNCONFINED + "confinement switched off (Limits.confine=False)")
        pending.append((job, {
            "root": str(root), "student": job.student, "assignment": job.assignment, "submission_dir": str(dest),
            "template_db": str(info["template"]), "trusted_imports": info["imports"],
            "isolation": isolation if limits.confine else dict(isolation, unconfined_because="switched off"),
            "cell_timeout": limits.cell_timeout, "memory_mb": limits.memory_mb, "nproc": limits.nproc,
            "cpus": cpus, "max_output_bytes": limits.max_output_bytes, "file_size_mb": limits.file_size_mb,
            "guard": limits.guard, "cache_dir": cache_dir, "mpl_cache": mpl_cache, "torch_home": torch_home,
            "threads": threads, "disk_mb": limits.disk_mb,
            "deadline_s": _deadline(limits, info["code_cells"], job.assignment)}))
    # suspects of a grader crash first, one at a time, so a second crash names its culprit
    with GradingProgress(total=len(rows) + len(pending), already_done=len(rows)) as progress:
        rows += _run_workers([p for p in pending if p[0].suspect], out, cfg, 1, progress)
        rows += _run_workers([p for p in pending if not p[0].suspect], out, cfg, workers, progress)
    fill_scores(cfg, rows)
    rows.sort(key=lambda r: (r.assignment, r.student))
    write_csv(out / "grades.csv", rows)
    for a in sorted({r.assignment for r in rows if r.status in SCORED}):
        plot_class_report(rows, a, out / "report" / f"{a}.png")
    shutil.rmtree(out / ".scratch", ignore_errors=True)
    return rows


def _run_workers(pending, out: pathlib.Path, cfg, workers: int, progress: GradingProgress | None = None) -> list[Row]:
    """Fork one child per submission, ``workers`` at a time; import each result as it lands."""
    from multiprocessing.connection import wait

    from .worker import run

    ctx = multiprocessing.get_context("fork")
    rows: list[Row] = []
    queue = list(pending)
    running: dict = {}
    try:
        _drain(queue, running, rows, out, cfg, workers, ctx, run, wait, progress)
    except BaseException:  # Ctrl-C, or a bug here: whoever was in flight is not to blame
        for proc, job, _, _ in running.values():
            proc.kill()
            forget(out, job)
        raise
    return rows


def _drain(queue, running, rows, out, cfg, workers, ctx, run, wait, progress=None) -> None:
    while queue or running:
        while queue and len(running) < workers:
            job, spec = queue.pop(0)
            scratch = out / ".scratch" / _scratch_name(job)
            shutil.rmtree(scratch, ignore_errors=True)
            scratch.mkdir(parents=True)
            spec["scratch"] = str(scratch)
            mark_in_progress(out, job, alone=job.suspect)
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
            if progress is not None:
                progress.done(job.student, job.assignment, failed=rows[-1].status == "failed")


def _scratch_name(job: Job) -> str:
    """A folder name free of glob characters (nbgrader globs the paths it is given), unique per student."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", job.student).lstrip(".")
    return f"{job.assignment}--{safe}-{hashlib.sha256(job.student.encode()).hexdigest()[:8]}"


def _collect(out, cfg, job: Job, scratch: pathlib.Path, exitcode, timed_out: bool, deadline) -> Row:
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
        try:
            notebooks = _score(cfg, job, scratch)
        except UntrustedNotebook as exc:
            row = Row(job.student, job.assignment, "failed", f"the executed notebook cannot be scored: {exc}")
        else:
            if _claims_more(result.get("notebooks"), notebooks):
                notes.append("the kernel-side gradebook claimed more points than the outputs show; "
                             "scored from the outputs")
            tripped = [e for e in result["events"] if e.get("event") == "tripwire"]
            review = job.review + [f"cell {e['cell']}: {str(e.get('detail', ''))[:200]}" for e in tripped]
            if review:
                notes.insert(0, "needs review: " + "; ".join(review))
            row = Row(job.student, job.assignment, "needs_review" if review else "graded", "; ".join(notes))
            commit_graded(cfg, row, notebooks)
            _publish_autograded(out, job, scratch)
    if row.status == "failed":
        commit_failure(cfg, row)
        _keep_log(out, job, scratch)
    record(out, job, row)
    return row


def _score(cfg, job: Job, scratch: pathlib.Path) -> dict:
    """Each notebook's scores, from its executed copy and this process's own gradebook (scores.py)."""
    from nbgrader.api import Gradebook

    folder = scratch / "autograded" / STUDENT_ID / job.assignment
    with Gradebook(cfg.CourseDirectory.db_url) as gb:
        names = [nb.name for nb in gb.find_assignment(job.assignment).notebooks]
        return {name: score_notebook(read_executed(folder / f"{name}.ipynb"), gb, name, job.assignment)
                for name in names}


def _claims_more(claimed, computed: dict) -> bool:
    """Did the child's gradebook (reachable by an unconfined kernel) hold more points than the outputs earn?"""
    try:
        for name, nb in computed.items():
            for gid, g in nb["grades"].items():
                theirs = claimed[name]["grades"][gid]["auto_score"]
                if theirs is not None and float(theirs) > (g["auto_score"] or 0.0) + 1e-9:
                    return True
    except (KeyError, TypeError, ValueError):
        return True
    return False


def _keep_log(out: pathlib.Path, job: Job, scratch: pathlib.Path) -> None:
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


def _publish_autograded(out: pathlib.Path, job: Job, scratch: pathlib.Path) -> None:
    """Swap the executed notebooks into out/autograded/<student>/<assignment>/ in one rename."""
    src = scratch / "autograded" / STUDENT_ID / job.assignment
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


