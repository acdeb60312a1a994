"""Grade one submission in a child process, in a scratch course directory.

The parent forks one child per submission (so nbgrader is imported once, in
the parent). The child copies the parent's pristine copy of the submission
and the gradebook template into its scratch folder, gives the kernel its own
HOME, cgroup and network namespace through a kernelspec that starts the
sandbox launcher, runs nbgrader's autograde there against its *own* copy of
the gradebook, and writes ``result.json``. It never touches the class
gradebook or the output folder: the parent imports the result.
"""
from __future__ import annotations

import ctypes
import json
import os
import pathlib
import re
import shutil
import signal
import sqlite3
import sys
import tempfile
import traceback

from .._io import atomic_open

SANDBOX_SCRIPT = pathlib.Path(__file__).with_name("sandbox.py")
# Inside the scratch course every submission is graded under this id: nbgrader globs student ids,
# so a real folder name such as "*", "x[1]" or ".x" would match another folder, or none.
STUDENT_ID = "student"


def copy_sqlite(src: pathlib.Path, dest: pathlib.Path) -> None:
    """A consistent copy of an SQLite database, even while another connection has it open."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(src) as a, sqlite3.connect(dest) as b:
        a.backup(b)
    b.close()
    a.close()


def _die_with_parent() -> None:
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def _prepare(job: dict, scratch: pathlib.Path) -> dict:
    from .sandbox import Sandbox

    s, a = STUDENT_ID, job["assignment"]
    for sub in ("home", "runtime", "ipython", "mpl", "autograded", "jupyter/kernels/python3"):
        (scratch / sub).mkdir(parents=True, exist_ok=True)
    dest = scratch / "submitted" / s / a
    dest.mkdir(parents=True, exist_ok=True)
    for nb in pathlib.Path(job["submission_dir"]).glob("*.ipynb"):  # notebooks only: no planted numpy.py
        shutil.copyfile(nb, dest / nb.name)
    copy_sqlite(pathlib.Path(job["template_db"]), scratch / "gradebook.db")
    for font_cache in pathlib.Path(job["mpl_cache"]).glob("fontlist-*.json"):  # else each kernel rebuilds it
        shutil.copyfile(font_cache, scratch / "mpl" / font_cache.name)
    iso = job["isolation"]
    sandbox = Sandbox(job["nproc"], job["memory_mb"], use_cgroup=bool(iso.get("cgroup")), cpus=job.get("cpus"))
    pidfile = scratch / "kernel.pid"
    with atomic_open(scratch / "sandbox.json", "w") as fh:
        json.dump({"dirs": [str(d) for d in sandbox.dirs], "kind": sandbox.kind, "pidfile": str(pidfile)}, fh)
    confine = None
    if not iso.get("unconfined_because"):
        package = pathlib.Path(__file__).resolve().parents[1]  # tlcourse/, not the course around it
        confine = {"ro": [sys.base_prefix, sys.prefix, str(package)], "cache": [job["cache_dir"], job["torch_home"]],
                   "tmpfs": [str(scratch / d) for d in ("home", "ipython", "mpl")],
                   "files": [str(p) for p in (scratch / "mpl").glob("fontlist-*.json")],
                   "ipc_dir": str(_ipc_dir(scratch)), "size_mb": job.get("disk_mb", 1024)}
    with atomic_open(scratch / "launch.json", "w") as fh:
        json.dump(sandbox.spec(pidfile, job["file_size_mb"], bool(iso.get("netns")), confine), fh)
    kernel = {"argv": [sys.executable, str(SANDBOX_SCRIPT), str(scratch / "launch.json"), "--",
                       sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
              "display_name": "Python 3 (tlcourse grading)", "language": "python"}
    (scratch / "jupyter/kernels/python3/kernel.json").write_text(json.dumps(kernel))
    os.environ.update({
        "HOME": str(scratch / "home"), "JUPYTER_PATH": str(scratch / "jupyter"),
        "JUPYTER_RUNTIME_DIR": str(scratch / "runtime"), "JUPYTER_DATA_DIR": str(scratch / "jupyter"),
        "IPYTHONDIR": str(scratch / "ipython"), "MPLCONFIGDIR": str(scratch / "mpl"),
        "TLCOURSE_CACHE": job["cache_dir"], "TORCH_HOME": job["torch_home"], "TLCOURSE_PROFILE": "quick",
        "MPLBACKEND": "Agg", "OMP_NUM_THREADS": str(job["threads"]), "MKL_NUM_THREADS": str(job["threads"]),
        "TLCOURSE_THREADS": str(job["threads"]),  # what set_threads() in the notebooks then uses
        "TLCOURSE_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        "TLCOURSE_STUDENT": job["student"],  # the real folder name: the kernel draws this student's variant
    })
    os.environ.pop("JUPYTER_CONFIG_DIR", None)
    return {"sandbox": sandbox}


def _ipc_dir(scratch: pathlib.Path) -> pathlib.Path:
    """A short folder for the kernel's IPC sockets: a unix socket path may not exceed 107 bytes,
    and a scratch folder deep in an instructor's (or pytest's) tree easily does."""
    link = scratch / "ipc-dir"
    if not link.exists():
        short = pathlib.Path(tempfile.mkdtemp(prefix="tlg-"))
        link.write_text(str(short))
    return pathlib.Path(link.read_text())


def _config(job: dict, scratch: pathlib.Path):
    from nbconvert.preprocessors import ClearMetadataPreprocessor
    from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, IgnorePattern, LimitOutput,
                                        SaveAutoGrades)

    from .config import course_directories, load_config
    from .execute import GuardedExecute

    root = pathlib.Path(job["root"])
    cfg = load_config(root, **course_directories(root, scratch), **{
        "Execute.timeout": job["cell_timeout"],
        "Execute.interrupt_on_timeout": True,
        "GuardedExecute.trusted_imports": job["trusted_imports"],
        "GuardedExecute.block_network": True,
        "GuardedExecute.guard": job["guard"],
        "GuardedExecute.max_threads": max(16, job["nproc"] // 2),
        "GuardedExecute.max_output_bytes": job["max_output_bytes"],
        "GuardedExecute.events_path": str(scratch / "events.jsonl"),
        "GuardedExecute.sandbox_state": str(scratch / "sandbox.json"),
        "KernelManager.transport": "ipc",  # the kernel has no network, not even the parent's loopback
        "KernelManager.ip": str(_ipc_dir(scratch) / "k"),
        "Autograde.autograde_preprocessors": [GuardedExecute, IgnorePattern, ClearMetadataPreprocessor,
                                              LimitOutput, SaveAutoGrades, AssignLatePenalties, CheckCellMetadata],
    })
    return cfg


def _read_grades(db_url: str, assignment: str, student: str) -> dict:
    from nbgrader.api import Gradebook

    notebooks: dict = {}
    with Gradebook(db_url) as gb:
        sub = gb.find_submission(assignment, student)
        for nb in sub.notebooks:
            notebooks[nb.name] = {
                "grades": {g.name: {"auto_score": g.auto_score, "needs_manual_grade": bool(g.needs_manual_grade)}
                           for g in nb.grades},
                "comments": {c.name: c.auto_comment for c in nb.comments},
            }
    return notebooks


def _root_cause(log: str) -> str:
    """The most specific error line in nbgrader's log (its last line only says 'see above')."""
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    causes = [ln for ln in lines if re.match(r"^[\w.]*(Error|Exception|Exit)\b", ln) and "NbGraderException" not in ln]
    if causes:
        return causes[-1][:300]
    return lines[-1][:300] if lines else "no message from nbgrader"


def run(job: dict) -> None:
    """Child-process entry point: grade, write ``scratch/result.json``, exit."""
    _die_with_parent()
    scratch = pathlib.Path(job["scratch"])
    log = open(scratch / "worker.log", "a")
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    os.chdir(scratch)
    result: dict = {"ok": False, "error": "", "notebooks": {}, "events": []}
    sandbox = None
    try:
        sandbox = _prepare(job, scratch)["sandbox"]
        from .config import make_api

        api = make_api(_config(job, scratch))
        out = api.autograde(job["assignment"], STUDENT_ID, force=True)
        if out["success"]:
            result["notebooks"] = _read_grades(f"sqlite:///{scratch}/gradebook.db", job["assignment"], STUDENT_ID)
            result["ok"] = True
        else:
            text = "\n".join(filter(None, (out.get("log"), out.get("error"))))
            print(text)  # the whole story stays in worker.log, which the parent keeps for a failure
            result["error"] = "autograde failed: " + _root_cause(text)
    except BaseException as exc:
        traceback.print_exc()
        result["error"] = f"grader error: {type(exc).__name__}: {str(exc)[:300]}"
    finally:
        if sandbox is not None:
            sandbox.destroy()
        if (scratch / "ipc-dir").exists():
            shutil.rmtree((scratch / "ipc-dir").read_text(), ignore_errors=True)
    events = scratch / "events.jsonl"
    if events.exists():
        result["events"] = [json.loads(line) for line in events.read_text().splitlines() if line.strip()]
    with atomic_open(scratch / "result.json", "w") as fh:
        json.dump(result, fh)
