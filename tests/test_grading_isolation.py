"""Runaway code is contained: each case costs at most the cell it is in, and grading goes on.

The sandbox itself is tested directly first (fast): a cgroup process limit
holds even for root, where RLIMIT_NPROC does not.
"""
from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import subprocess
import sys
import time

import nbformat
import pytest

from hostile_submissions import RUNAWAY_CELLS

HERE = pathlib.Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("grading_fixture_course", HERE / "fixtures/grading/fixture_course.py")
fc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fc)

A = fc.TINY
FULL = {"q1_add_tests": 2.0, "q2_normalize_tests": 3.0}
CELL_TIMEOUT = 5
OUTPUT_CAP = 100_000

RUNAWAY = RUNAWAY_CELLS
PROBE = """import json, os, socket, _socket
facts = {"home": os.environ["HOME"], "cgroup": open("/proc/self/cgroup").read(),
         "interfaces": [name for _, name in socket.if_nameindex()]}
for label, connect in (("raw", lambda: _socket.socket().connect(("192.0.2.1", 80))),
                       ("socket", lambda: socket.create_connection(("192.0.2.1", 80), timeout=2))):
    try:
        connect()
        facts[label] = "connected"
    except OSError as exc:
        facts[label] = str(exc)
from tlcourse.device import _cgroup_cpu_quota, set_threads
facts.update(threads=set_threads(), cpu_quota=_cgroup_cpu_quota())  # what a notebook's set-up cell gets
print("FACTS" + json.dumps(facts))"""


def _can_isolate() -> dict:
    from tlcourse.grading.sandbox import probe
    return probe()


def test_cgroup_process_limit_holds_for_root(tmp_path):
    from tlcourse.grading.sandbox import Sandbox

    iso = _can_isolate()
    if not iso["cgroup"]:
        pytest.skip("cgroups are not writable here; the rlimit fallback applies (see docs/GRADING.md)")
    sb = Sandbox(nproc=20, memory_mb=256)
    try:
        spec = tmp_path / "spec.json"
        spec.write_text(json.dumps(sb.spec(tmp_path / "pid", 16, netns=iso["netns"])))
        code = ("import os, threading, time\nn = 0\ntry:\n    while True:\n"
                "        threading.Thread(target=time.sleep, args=(30,), daemon=True).start()\n        n += 1\n"
                "except RuntimeError:\n    print(n)\n    os._exit(0)")
        script = pathlib.Path(sys.modules["tlcourse.grading.sandbox"].__file__)
        proc = subprocess.run([sys.executable, str(script), str(spec), "--", sys.executable, "-c", code],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert int(proc.stdout) < 20, "the process/thread limit did not hold"
    finally:
        sb.destroy()
    assert not sb.dirs


SPINNERS = """import os, resource, sys, time
t0 = time.monotonic()
end = t0 + float(sys.argv[1])
for _ in range(24):  # a fork bomb's CPU appetite, without its growth: 24 busy processes
    if os.fork() == 0:
        while time.monotonic() < end:
            pass
        os._exit(0)
for _ in range(24):
    os.wait()
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print((usage.ru_utime + usage.ru_stime) / (time.monotonic() - t0))"""
CPU_SHARE = """import time
t0, c0 = time.monotonic(), time.process_time()
while time.monotonic() - t0 < 3:
    pass
print((time.process_time() - c0) / (time.monotonic() - t0))"""


def _in_sandbox(sb, tmp_path, name: str, code: str, *args: str) -> subprocess.Popen:
    """Start ``python -c code`` the way a grading kernel starts: through the launcher, in its own session."""
    spec = tmp_path / f"{name}.json"
    spec.write_text(json.dumps(sb.spec(tmp_path / f"{name}.pid", 16, netns=False)))
    script = pathlib.Path(sys.modules["tlcourse.grading.sandbox"].__file__)
    return subprocess.Popen([sys.executable, str(script), str(spec), "--", sys.executable, "-c", code, *args],
                            stdout=subprocess.PIPE, text=True, start_new_session=True)


def _cores_used(proc: subprocess.Popen) -> float:
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    return float(out)


def test_cpu_quota_keeps_a_fork_bomb_to_its_own_share(tmp_path):
    """Each kernel gets cores / workers. A bomb of 24 busy processes uses its quota and no more, even on
    an idle machine, and a kernel beside it keeps most of the CPU it gets alone."""
    from tlcourse.grading.sandbox import Sandbox

    if not _can_isolate()["cpu_quota"]:
        pytest.skip("no writable cgroup cpu controller here; docs/GRADING.md states what that leaves open")
    with pytest.raises(ValueError, match="cpus must be positive"):
        Sandbox(nproc=20, memory_mb=256, cpus=0)
    share = max(0.5, (os.cpu_count() or 1) / 2)  # two workers
    bomb_sb = Sandbox(nproc=64, memory_mb=512, cpus=share)
    victim_sb = Sandbox(nproc=20, memory_mb=256, cpus=share)
    try:
        assert bomb_sb.cpu_limited and bomb_sb.cpu_quota_us == round(share * bomb_sb.cpu_period_us)
        quota_file = "cpu.cfs_quota_us" if bomb_sb.kind == "v1" else "cpu.max"
        written = [d / quota_file for d in bomb_sb.dirs if (d / quota_file).exists()]
        assert [int(f.read_text().split()[0]) for f in written] == [bomb_sb.cpu_quota_us]

        alone = _cores_used(_in_sandbox(bomb_sb, tmp_path, "bomb", SPINNERS, "3"))
        assert bomb_sb.throttled() > 0, "the bomb's processes were never throttled: no quota in force"
        assert alone <= 1.15 * share + 0.05, f"the bomb used {alone:.2f} cores with a quota of {share}"

        victim_alone = _cores_used(_in_sandbox(victim_sb, tmp_path, "victim", CPU_SHARE))
        bomb = _in_sandbox(bomb_sb, tmp_path, "bomb2", SPINNERS, "4.5")
        time.sleep(0.5)
        beside_bomb = _cores_used(_in_sandbox(victim_sb, tmp_path, "victim2", CPU_SHARE))
        _cores_used(bomb)
        assert beside_bomb >= 0.5 * victim_alone, \
            f"beside the bomb the kernel got {beside_bomb:.2f} of a core, alone {victim_alone:.2f}"
    finally:
        bomb_sb.destroy()
        victim_sb.destroy()


def test_a_killed_graders_cgroup_is_swept_and_a_live_ones_is_kept(tmp_path):
    """A grading process killed with SIGKILL leaves its cgroup (and maybe a kernel) behind; the next run
    removes both, whichever output folder it writes to, and leaves cgroups in use alone."""
    from tlcourse.grading import sandbox

    if not _can_isolate()["cgroup"]:
        pytest.skip("cgroups are not writable here")
    spec = tmp_path / "spec.json"
    script = pathlib.Path(sandbox.__file__)
    # the dead owner: a child makes a sandbox, starts a "kernel" in it, and dies without cleaning up
    child = subprocess.run([sys.executable, "-c", f"""
import json, subprocess, sys
from tlcourse.grading.sandbox import Sandbox
sb = Sandbox(nproc=20, memory_mb=256)
open({str(spec)!r}, "w").write(json.dumps(sb.spec({str(tmp_path / "pid")!r}, 16, netns=False)))
subprocess.Popen([sys.executable, {str(script)!r}, {str(spec)!r}, "--", "sleep", "600"], start_new_session=True,
                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(json.dumps([str(d) for d in sb.dirs]))
"""], capture_output=True, text=True, timeout=60)
    assert child.returncode == 0, child.stderr
    dead_dirs = [pathlib.Path(d) for d in json.loads(child.stdout)]
    for _ in range(100):
        if (tmp_path / "pid").exists():
            break
        time.sleep(0.05)
    kernel = int((tmp_path / "pid").read_text())
    live = sandbox.Sandbox(nproc=20, memory_mb=256)  # owned by this (live) process
    try:
        assert set(dead_dirs) <= set(sandbox.orphans())
        assert not set(live.dirs) & set(sandbox.orphans())
        removed = sandbox.sweep_orphans()
        assert set(dead_dirs) <= set(removed)
        assert not any(d.exists() for d in dead_dirs)
        assert all(d.is_dir() for d in live.dirs), "a cgroup whose owner is alive was removed"
        time.sleep(0.2)
        state = pathlib.Path(f"/proc/{kernel}/stat")
        assert not state.exists() or state.read_text().split(") ")[1][0] == "Z", "the orphaned kernel survived"
    finally:
        live.destroy()
        try:
            os.kill(kernel, 9)
        except ProcessLookupError:
            pass


@pytest.mark.slow
def test_runaway_cells_cost_only_their_cell(tmp_path):
    from tlcourse.grading import grade
    from tlcourse.grading.grade import Limits

    subs = tmp_path / "subs"
    for name, source in RUNAWAY.items():  # a student's own cell between two answered questions
        fc.write(fc.insert_after(fc.right(A), "q1_add", source), subs, name, A)
    fc.write(fc.insert_after(fc.right(A), "q1_add", PROBE), subs, "probe", A)
    # two runaways in one notebook: the restart after the second must not replay the first
    two = fc.insert_after(fc.right(A), "q1_add", RUNAWAY["os_exit"])
    fc.write(fc.insert_after(two, "q1_add", RUNAWAY["loop_ignoring_interrupt"]), subs, "two_runaways", A)
    fc.write(fc.answered(fc.right(A), {"q1_add": "def add(a, b):\n    while True:\n        pass"}),
             subs, "loop_in_answer", A)
    original = {p: p.read_bytes() for p in subs.rglob("*.ipynb")}
    rows = grade(subs, out=tmp_path / "out", root=fc.ROOT, workers=2,
                 limits=Limits(cell_timeout=CELL_TIMEOUT, memory_mb=600, nproc=64, max_output_bytes=OUTPUT_CAP))
    by = {r.student: r for r in rows}
    from tlcourse.grading.review import scan_source  # runaway code that reaches for the machine goes to a person
    sources = {**RUNAWAY, "probe": PROBE, "two_runaways": RUNAWAY["os_exit"] + "\n" + RUNAWAY["loop_ignoring_interrupt"], "loop_in_answer": ""}
    assert {r.student: r.status for r in rows} == {
        s: "needs_review" if scan_source(src) else "graded" for s, src in sources.items()}, \
        {r.student: r.reason for r in rows}
    for name in [*RUNAWAY, "two_runaways"]:
        got = {q: by[name].by_question[q] for q in FULL}
        assert got == FULL, f"{name}: {got} ({by[name].reason})"
    # a runaway answer costs that question only
    assert by["loop_in_answer"].by_question == {"q1_add_tests": 0.0, "q2_normalize_tests": 3.0, "q3_written": 0.0}
    assert "timed out" in by["loop_ignoring_interrupt"].reason
    for name in ("os_exit", "segfault", "memory_blowup"):
        assert "killed the kernel" in by[name].reason, by[name].reason
    assert all(w in by["two_runaways"].reason for w in ("timed out", "killed the kernel", "not replayed")), \
        by["two_runaways"].reason
    flood = tmp_path / "out" / "autograded" / "output_flood" / A / f"{A}.ipynb"
    assert flood.stat().st_size < 20 * OUTPUT_CAP, "the output cap did not hold"
    probe_nb = nbformat.read(tmp_path / "out" / "autograded" / "probe" / A / f"{A}.ipynb", as_version=4)
    text = "".join(o.get("text", "") for c in probe_nb.cells if c.cell_type == "code" for o in c.outputs)
    facts = json.loads(text.split("FACTS", 1)[1].splitlines()[0])
    assert facts["home"].startswith(str(tmp_path / "out" / ".scratch")) and facts["home"] != os.environ.get("HOME")
    assert "network access is disabled" in facts["socket"]
    iso = _can_isolate()
    if iso["netns"]:
        assert facts["interfaces"] == ["lo"] and "unreachable" in facts["raw"].lower(), facts
    if iso["cgroup"]:
        assert "tlcourse-grade-" in facts["cgroup"]
    cores = os.cpu_count() or 1  # two workers: each kernel's torch gets half the cores, never all of them
    assert facts["threads"] == max(1, cores // 2), facts
    if iso["cpu_quota"]:
        assert facts["cpu_quota"] == pytest.approx(cores / 2), facts
    assert {p: p.read_bytes() for p in subs.rglob("*.ipynb")} == original
    from tlcourse.grading.sandbox import orphans
    assert not orphans(), "a sandbox cgroup leaked"


@pytest.mark.slow
def test_an_explicit_cpu_quota_sets_the_kernels_threads_too(tmp_path):
    """--cpus 1 on one worker: torch gets 1 thread, not every core (more threads than quota are throttled)."""
    from tlcourse.grading import grade
    from tlcourse.grading.grade import Limits

    fc.write(fc.insert_after(fc.right(A), "q1_add", PROBE), tmp_path / "subs", "probe", A)
    rows = grade(tmp_path / "subs", out=tmp_path / "out", root=fc.ROOT, workers=1,
                 limits=Limits(cell_timeout=60, cpus=1))
    assert [r.status for r in rows] == ["needs_review"], rows[0].reason  # the probe imports socket: flagged
    probe_nb = nbformat.read(tmp_path / "out" / "autograded" / "probe" / A / f"{A}.ipynb", as_version=4)
    text = "".join(o.get("text", "") for c in probe_nb.cells if c.cell_type == "code" for o in c.outputs)
    facts = json.loads(text.split("FACTS", 1)[1].splitlines()[0])
    assert facts["threads"] == 1, facts
    if _can_isolate()["cpu_quota"]:
        assert facts["cpu_quota"] == pytest.approx(1.0), facts


def test_one_run_per_output_folder_and_the_lock_dies_with_its_holder(tmp_path):
    from tlcourse.grading import grade
    from tlcourse.grading.grade import GradingBusy

    (tmp_path / "subs").mkdir()
    out = tmp_path / "out"
    out.mkdir()
    holder = ("import fcntl, os, sys, time\nfh = open(sys.argv[1], 'w')\nfcntl.lockf(fh, fcntl.LOCK_EX)\n"
              "if os.fork() == 0:\n    time.sleep(60)\n    os._exit(0)\nprint('locked', flush=True)\ntime.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", holder, str(out / ".grading.lock")], stdout=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(GradingBusy, match="another `tlcourse grade`"):
            grade(tmp_path / "subs", out=out, root=fc.ROOT)
        proc.kill()  # SIGKILL the holder; its forked child lives on but holds no lock
        proc.wait()
        assert grade(tmp_path / "subs", out=out, root=fc.ROOT) == []
    finally:
        try:
            os.killpg(proc.pid, 9)
        except ProcessLookupError:
            pass
