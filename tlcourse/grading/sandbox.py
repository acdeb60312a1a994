"""Resource limits and network isolation for one grading kernel.

Two halves, standard library only (the launcher runs as a script, so
starting a kernel never imports torch through ``tlcourse/__init__``):

- :class:`Sandbox`, used by the grading worker: creates a cgroup (v1 or v2)
  with a process/thread limit (``pids.max``), a memory limit and, where the
  ``cpu`` controller is writable, a CPU quota (so a busy kernel keeps to its
  share of the machine), and later kills everything in it. A cgroup limit
  holds for root too, unlike ``RLIMIT_NPROC``. Where cgroups are not
  writable it falls back to rlimits (``RLIMIT_NPROC``, ``RLIMIT_AS``), which
  bind only a non-root user.
- the launcher (``python sandbox.py SPEC.json -- CMD ...``), named in the
  grading kernelspec: joins the cgroup, sets rlimits (no core files, a file
  size cap), enters a new network namespace when it can (root), records its
  pid, and execs the kernel.
"""
from __future__ import annotations

import ctypes
import json
import os
import pathlib
import resource
import signal
import sys
import time
import uuid

CLONE_NEWNET = 0x40000000
CGROUP_V1 = pathlib.Path("/sys/fs/cgroup")
PREFIX = "tlcourse-grade-"
# A cgroup of an unknown owner (another pid namespace, or named by an older
# tlcourse) is removed only once it is this old and empty.
FOREIGN_ORPHAN_AGE_S = 6 * 3600


def _pid_namespace() -> str:
    """An id for this pid namespace: cgroups are host-wide, pids are not."""
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return "0"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _try_unshare_net() -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.unshare(CLONE_NEWNET) == 0
    except Exception:
        return False


def probe() -> dict:
    """What isolation this machine allows.

    {'cgroup': 'v1'|'v2'|None, 'cpu_quota': bool, 'netns': bool, 'root': bool}
    """
    netns = False
    pid = os.fork()
    if pid == 0:  # probe in a throwaway child so this process keeps its network
        os._exit(0 if _try_unshare_net() else 1)
    _, status = os.waitpid(pid, 0)
    netns = os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    cgroup, cpu_quota = None, False
    try:
        probe_sb = Sandbox(nproc=64, memory_mb=256, cpus=1)
        cgroup, cpu_quota = probe_sb.kind, probe_sb.cpu_limited
        probe_sb.destroy()
    except OSError:
        pass
    return {"cgroup": cgroup, "cpu_quota": cpu_quota, "netns": netns, "root": os.geteuid() == 0}


def _cpu_period_us(parent: pathlib.Path) -> int:
    for name in ("cpu.cfs_period_us", "cpu.max"):
        try:
            return int((parent / name).read_text().split()[-1])
        except (OSError, ValueError, IndexError):
            continue
    return 100_000


class Sandbox:
    """A cgroup holding one kernel (and anything it spawns).

    ``cpus`` caps the CPU time of everything in it together, in cores (1.5
    means 150 ms of CPU per 100 ms); None leaves CPU unlimited. The cap is
    best effort: ``cpu_limited`` says whether it could be set.
    """

    def __init__(self, nproc: int, memory_mb: int, use_cgroup: bool = True, cpus: float | None = None):
        if cpus is not None and cpus <= 0:
            raise ValueError(f"cpus must be positive (cores per sandbox) or None for no limit, got {cpus}")
        self.nproc, self.memory_mb, self.cpus = nproc, memory_mb, cpus
        self.cpu_limited = False
        self.cpu_quota_us = self.cpu_period_us = None
        # the owner's pid is in the name, so a later run can tell an orphan from a cgroup in use
        self.name = f"{PREFIX}{_pid_namespace()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.dirs: list[pathlib.Path] = []
        self.kind = None
        if use_cgroup:
            self._create()

    def _create(self) -> None:
        v2 = CGROUP_V1 / "cgroup.controllers"
        try:
            if (CGROUP_V1 / "pids").is_dir() and (CGROUP_V1 / "memory").is_dir():
                pids, mem = CGROUP_V1 / "pids" / self.name, CGROUP_V1 / "memory" / self.name
                pids.mkdir()
                self.dirs.append(pids)
                (pids / "pids.max").write_text(str(self.nproc))
                mem.mkdir()
                self.dirs.append(mem)
                (mem / "memory.limit_in_bytes").write_text(str(self.memory_mb * 2**20))
                self.kind = "v1"
                if self.cpus and (CGROUP_V1 / "cpu").is_dir():
                    self._limit_cpu_v1(CGROUP_V1 / "cpu")
            elif v2.exists() and {"pids", "memory"} <= set(v2.read_text().split()):
                d = CGROUP_V1 / self.name
                d.mkdir()
                self.dirs.append(d)
                (d / "pids.max").write_text(str(self.nproc))
                (d / "memory.max").write_text(str(self.memory_mb * 2**20))
                self.kind = "v2"
                if self.cpus and (d / "cpu.max").exists():  # absent unless the parent delegates "cpu"
                    self._set_quota(CGROUP_V1)
                    try:
                        (d / "cpu.max").write_text(f"{self.cpu_quota_us} {self.cpu_period_us}")
                        self.cpu_limited = True
                    except OSError:  # the other limits still hold
                        self.cpu_quota_us = self.cpu_period_us = None
        except OSError:
            self.destroy()
            self.kind = None

    def _set_quota(self, parent: pathlib.Path) -> None:
        self.cpu_period_us = _cpu_period_us(parent)
        self.cpu_quota_us = max(1000, round(self.cpus * self.cpu_period_us))

    def _limit_cpu_v1(self, base: pathlib.Path) -> None:
        """The CPU quota lives in a third hierarchy; without it the other limits still hold."""
        cpu = base / self.name
        try:
            cpu.mkdir()
        except OSError:
            return
        try:
            self._set_quota(base)
            (cpu / "cpu.cfs_period_us").write_text(str(self.cpu_period_us))
            (cpu / "cpu.cfs_quota_us").write_text(str(self.cpu_quota_us))
        except OSError:
            cpu.rmdir()
            self.cpu_quota_us = self.cpu_period_us = None
            return
        self.dirs.append(cpu)
        self.cpu_limited = True

    def spec(self, pidfile: str | os.PathLike, file_size_mb: int, netns: bool) -> dict:
        """What the launcher needs to confine the kernel."""
        return {"procs_files": [str(d / "cgroup.procs") for d in self.dirs], "nproc": self.nproc,
                "memory_mb": self.memory_mb, "cpu_quota_us": self.cpu_quota_us, "cpu_period_us": self.cpu_period_us,
                "file_size_mb": file_size_mb, "netns": netns, "pidfile": str(pidfile)}

    def throttled(self) -> int:
        """How many CPU periods the quota has throttled this sandbox so far (0 without a quota)."""
        for d in self.dirs:
            try:
                stat = dict(line.split() for line in (d / "cpu.stat").read_text().splitlines())
            except (OSError, ValueError):
                continue
            return int(stat.get("nr_throttled", 0))
        return 0

    def pids(self) -> set[int]:
        found: set[int] = set()
        for d in self.dirs:
            try:
                found |= {int(p) for p in (d / "cgroup.procs").read_text().split()}
            except OSError:
                pass
        return found

    def kill_all(self, keep: set[int] = frozenset(), timeout: float = 5.0) -> int:
        """SIGKILL every process in the cgroup except ``keep``; returns how many were killed."""
        killed = 0
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            victims = self.pids() - set(keep)
            if not victims:
                break
            for pid in victims:
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed += 1
                except ProcessLookupError:
                    pass
            time.sleep(0.05)
        return killed

    def destroy(self) -> None:
        if self.dirs:
            self.kill_all()
        for d in reversed(self.dirs):
            for _ in range(50):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:  # the last processes are still being reaped
                    time.sleep(0.05)
        self.dirs = []


def _cgroup_bases() -> list[pathlib.Path]:
    if (CGROUP_V1 / "pids").is_dir() and (CGROUP_V1 / "memory").is_dir():
        return [CGROUP_V1 / c for c in ("pids", "memory", "cpu") if (CGROUP_V1 / c).is_dir()]
    if (CGROUP_V1 / "cgroup.controllers").exists():
        return [CGROUP_V1]
    return []


def _owner_here(d: pathlib.Path) -> int | None:
    """The pid of the process that made cgroup ``d``, if it was made in this pid namespace; else None."""
    parts = d.name[len(PREFIX):].split("-")
    if len(parts) == 3 and parts[0] == _pid_namespace() and parts[1].isdigit():
        return int(parts[1])
    return None


def _sandbox_cgroups() -> list[pathlib.Path]:
    return [d for base in _cgroup_bases() for d in base.glob(PREFIX + "*")]


def orphans() -> list[pathlib.Path]:
    """Sandbox cgroups of this pid namespace whose owning grading process is gone.

    A grading run removes its cgroups itself; these are what a run killed
    with SIGKILL (or a crashed machine) left behind.
    """
    return [d for d in _sandbox_cgroups() if (pid := _owner_here(d)) is not None and not _alive(pid)]


def sweep_orphans() -> list[pathlib.Path]:
    """Kill what runs in orphaned sandbox cgroups and remove them; returns what was removed.

    Cgroups of this pid namespace go as soon as their owner is dead. Ones this
    process cannot attribute (another pid namespace shares the cgroup tree, or
    an older tlcourse named them) go only when empty and older than
    FOREIGN_ORPHAN_AGE_S, since their owner may still be grading.
    """
    doomed = orphans()
    now = time.time()
    for d in _sandbox_cgroups():
        if d in doomed or _owner_here(d) is not None:
            continue  # already doomed, or ours with its owner alive
        try:
            old = now - d.stat().st_mtime > FOREIGN_ORPHAN_AGE_S
            empty = not (d / "cgroup.procs").read_text().split()
        except OSError:
            continue
        if old and empty:
            doomed.append(d)
    removed = []
    for d in doomed:
        sb = Sandbox.__new__(Sandbox)
        sb.dirs, sb.kind = [d], None
        sb.destroy()
        if not d.exists():
            removed.append(d)
    return removed


def kill_pidfile_group(pidfile: str | os.PathLike) -> None:
    """Without cgroups: kill the kernel's process group (jupyter starts kernels in a new session)."""
    try:
        pid = int(pathlib.Path(pidfile).read_text())
        os.killpg(pid, signal.SIGKILL)
    except (OSError, ValueError):
        pass


def _ensure_cgroup(d: pathlib.Path, spec: dict) -> None:
    """Recreate the kernel's cgroup, limits included, if it vanished before the kernel joined it.

    Seen only while the kernel could not start at all (its IPC socket path was
    too long, since fixed in worker._ipc_dir): a later launch found the folder
    gone. What removed it was not pinned down, so the launcher closes that
    window; once a process is inside, a cgroup cannot be removed.
    """
    if d.is_dir():
        return
    print(f"sandbox: {d} was missing when the kernel started; recreated", file=sys.stderr)
    d.mkdir(exist_ok=True)
    limits = {"pids.max": str(spec["nproc"]), "memory.limit_in_bytes": str(spec["memory_mb"] * 2**20),
              "memory.max": str(spec["memory_mb"] * 2**20)}
    if spec.get("cpu_quota_us"):
        limits.update({"cpu.cfs_period_us": str(spec["cpu_period_us"]), "cpu.cfs_quota_us": str(spec["cpu_quota_us"]),
                       "cpu.max": f"{spec['cpu_quota_us']} {spec['cpu_period_us']}"})
    for name, value in limits.items():
        if (d / name).exists():
            (d / name).write_text(value)


def launch(spec: dict, cmd: list[str]) -> None:
    pid = os.getpid()
    for procs in spec.get("procs_files", []):
        _ensure_cgroup(pathlib.Path(procs).parent, spec)
        with open(procs, "w") as fh:
            fh.write(str(pid))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    fsize = spec["file_size_mb"] * 2**20
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    if not spec.get("procs_files"):  # no cgroup: rlimits are the fallback (RLIMIT_NPROC binds non-root only)
        resource.setrlimit(resource.RLIMIT_NPROC, (spec["nproc"], spec["nproc"]))
        mem = spec["memory_mb"] * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    isolated = spec.get("netns") and _try_unshare_net()
    os.environ["TLCOURSE_GRADING_NETNS"] = "1" if isolated else "0"
    pathlib.Path(spec["pidfile"]).write_text(str(pid))
    os.execvp(cmd[0], cmd)


if __name__ == "__main__":
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        sys.exit("usage: sandbox.py SPEC.json -- COMMAND ...")
    launch(json.loads(pathlib.Path(sys.argv[1]).read_text()), sys.argv[3:])
