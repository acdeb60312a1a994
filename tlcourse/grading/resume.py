"""Resume and backup: result records that let a rerun skip finished students, gradebook backups,
and the clean-up of what a killed run left behind."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import pathlib
import shutil
import sqlite3
from dataclasses import asdict

from .._io import atomic_open
from .intake import Job
from .report import STATUSES, Row

GRADER_VERSION = "tlcourse-grade-2"  # part of each result's fingerprint: bump when grading changes
BACKUPS_KEPT = 10


def fingerprint(files: list[pathlib.Path], sources: list[pathlib.Path], limits) -> str:
    """What a result was graded from: grader version, limits (a dataclass), source and submission bytes."""
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


def clean_stale_scratch(out: pathlib.Path) -> None:
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



def record(out: pathlib.Path, job: Job, row: Row) -> None:
    _write_record(out, job, {"status": row.status, "reason": row.reason})


def mark_in_progress(out: pathlib.Path, job: Job, alone: bool) -> None:
    """Written before a submission is graded: if the grader itself dies, the next run knows who was in flight."""
    _write_record(out, job, {"status": "in_progress", "alone": alone})


def forget(out: pathlib.Path, job: Job) -> None:
    """Drop an in-progress record (the run stopped on its own, not because of this submission)."""
    (out / "results" / job.assignment / f"{job.student}.json").unlink(missing_ok=True)


def _write_record(out: pathlib.Path, job: Job, fields: dict) -> None:
    with atomic_open(out / "results" / job.assignment / f"{job.student}.json", "w") as fh:
        json.dump({"fingerprint": job.fingerprint, **fields,
                   "graded_at": dt.datetime.now(dt.timezone.utc).isoformat()}, fh)


def previous_result(out: pathlib.Path, job: Job) -> tuple[Row | None, bool]:
    """What an earlier run left for this very submission (same fingerprint): (row, suspect).

    (row, False): a finished result to reuse. (None, True): in flight when the grader
    died. (row, True): the culprit, a new failed verdict to record. (None, False): grade it.

    A finished result is reused. A submission that was in flight when the grader
    died is a suspect: it is graded again, alone, so that if the grader dies again
    the culprit is known; one that was in flight alone when the grader died fails.
    """
    path = out / "results" / job.assignment / f"{job.student}.json"
    try:
        saved = json.loads(path.read_text()) if path.stat().st_size < 1_000_000 else {}
    except (OSError, ValueError):
        return None, False
    if not isinstance(saved, dict) or saved.get("fingerprint") != job.fingerprint:
        return None, False
    if saved.get("status") in STATUSES:
        return Row(job.student, job.assignment, saved["status"], str(saved.get("reason", ""))), False
    if saved.get("status") == "in_progress":
        if saved.get("alone"):
            return Row(job.student, job.assignment, "failed",
                       "the grader itself died while grading this submission alone (twice in flight when it died); "
                       "not graded again: look at it, then rerun with --regrade"), True
        return None, True
    return None, False
