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
  size cap), records its pid, and then either confines the kernel with
  bubblewrap (below) or, where bwrap cannot run, enters a new network
  namespace when it can (root) and execs the kernel as the grader's user.

Confinement (``spec["confine"]``, see :func:`bwrap_argv`): bubblewrap, run by
the (root) grader, gives the kernel its own mount, pid, network, IPC and UTS
namespaces and a filesystem of its own: read-only the system (/usr), the
Python environment, the tlcourse package and the course caches; size-capped
tmpfs for its working folder, HOME and /tmp (new cache entries land in a tmpfs
over the cache); its socket folder; nothing else (no solutions/, no output
folder, no gradebook, no other student, no /proc of other processes). Inside,
``sandbox.py --drop UID -- CMD`` switches to a fresh unprivileged uid (not the
grader's), enters a user namespace of its own, sets no_new_privs, and execs
the kernel with no capabilities and an allow-listed environment.
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
    return {"cgroup": cgroup, "cpu_quota": cpu_quota, "netns": netns, "root": os.geteuid() == 0,
            "unconfined_because": probe_bwrap()}


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

    def spec(self, pidfile: str | os.PathLike, file_size_mb: int, netns: bool, confine: dict | None = None) -> dict:
        """What the launcher needs to confine the kernel (``confine``: see :func:`bwrap_argv`)."""
        return {"procs_files": [str(d / "cgroup.procs") for d in self.dirs], "nproc": self.nproc,
                "memory_mb": self.memory_mb, "cpu_quota_us": self.cpu_quota_us, "cpu_period_us": self.cpu_period_us,
                "file_size_mb": file_size_mb, "netns": netns, "pidfile": str(pidfile), "confine": confine}

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


def kernel_processes(launcher: int, pids: set[int]) -> tuple[set[int], int]:
    """(processes that make up the kernel, the kernel's pid) among ``pids``, given the launcher's pid.

    Unconfined, the launcher execs the kernel: one process. Confined, the launcher
    execs bwrap, whose child is pid 1 of the kernel's pid namespace and the kernel
    pid 2; anything else in the cgroup was started by student code.
    """
    keep, kernel = {launcher}, launcher
    for pid in pids:
        try:
            status = pathlib.Path(f"/proc/{pid}/status").read_text()
            nspid = status.split("NSpid:")[1].splitlines()[0].split()
        except (OSError, IndexError):
            continue
        if len(nspid) >= 2 and nspid[-1] in ("1", "2") and _descends_from(pid, launcher):
            keep.add(pid)
            if nspid[-1] == "2":
                kernel = pid
    return keep, kernel


def _descends_from(pid: int, ancestor: int) -> bool:
    for _ in range(4):
        try:
            pid = int(pathlib.Path(f"/proc/{pid}/status").read_text().split("PPid:")[1].split()[0])
        except (OSError, IndexError, ValueError):
            return False
        if pid == ancestor:
            return True
    return False


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


# What a kernel may inherit from the grader's environment; everything else (the instructor's tokens,
# TLCOURSE_ROOT, paths into the course) is dropped.
ALLOWED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "IPYTHONDIR", "MPLCONFIGDIR", "MPLBACKEND",
               "OMP_NUM_THREADS", "MKL_NUM_THREADS", "TLCOURSE_CACHE", "TLCOURSE_THREADS", "TLCOURSE_PROFILE",
               "TLCOURSE_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "TORCH_HOME",
               "PYDEVD_DISABLE_FILE_VALIDATION", "TLCOURSE_GRADING_NETNS", "TLCOURSE_GRADING_CONFINED",
               "TLCOURSE_STUDENT")  # the submission's folder name: per-student variants (tlcourse/variants.py)
FIRST_UID = 200_000  # kernel uids are FIRST_UID + the launcher's pid: unique among live kernels, owned by nobody
CACHE_FILES_MAX = 20_000  # a cache with more files than this is bound read-only as a whole


def bwrap_path() -> str | None:
    import shutil

    return shutil.which("bwrap")


def probe_bwrap() -> str:
    """'' when bubblewrap can confine a kernel here (as root: namespaces, a uid switch), else why not."""
    import subprocess

    exe = bwrap_path()
    if exe is None:
        return "bubblewrap (bwrap) is not installed: run `make bwrap` (Debian package bubblewrap)"
    if os.geteuid() != 0:
        return "the grader is not root, so kernels cannot be given a uid of their own"
    spec = {"ro": [sys.base_prefix, sys.prefix], "tmpfs": [], "cache": [], "files": [], "ipc_dir": "",
            "cwd": "/", "size_mb": 16}
    argv = bwrap_argv(spec, [sys.executable, "-c", "import os; os.setuid(65534); print('ok')"], drop=False)
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bwrap failed to start: {exc}"
    if proc.returncode != 0 or proc.stdout.strip() != "ok":
        return f"bwrap cannot create namespaces here: {(proc.stderr or proc.stdout).strip()[:200]}"
    return ""


def _system_binds() -> list[str]:
    args = []
    for top in ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = pathlib.Path("/") / top
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    for name in ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "fonts", "localtime", "mime.types"):
        if os.path.exists(f"/etc/{name}"):
            args += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
    return args


def _cache_binds(path: str, size_mb: int) -> list[str]:
    """A cache the kernel reads but cannot change: every existing file read-only, new files in a tmpfs."""
    files = []
    for dirpath, dirnames, filenames in os.walk(path):
        files += [(os.path.join(dirpath, d), "dir") for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
        files += [(os.path.join(dirpath, n), "file") for n in filenames + [d for d in dirnames
                                                                          if os.path.islink(os.path.join(dirpath, d))]]
        if len(files) > CACHE_FILES_MAX:
            return ["--ro-bind", path, path]
    args = ["--perms", "1777", "--size", str(size_mb * 2**20), "--tmpfs", path]
    for name, kind in files:
        args += ["--perms", "1777", "--dir", name] if kind == "dir" else ["--ro-bind", name, name]
    return args


def _traversable_parents(dests: list[str]) -> list[str]:
    """bwrap makes missing parents of a mount point mode 0700, which the kernel's uid could not cross."""
    mounted = {os.path.normpath(d) for d in dests} | {"/", "/tmp", "/usr", "/proc", "/dev", "/etc", "/sys"}
    parents = set()
    for dest in dests:
        p = os.path.dirname(os.path.normpath(dest))
        while p not in mounted and not any(p.startswith(m + "/") for m in mounted if m not in ("/", "/tmp")):
            parents.add(p)
            p = os.path.dirname(p)
    args = []
    for p in sorted(parents, key=lambda p: p.count("/")):
        args += ["--perms", "0755", "--dir", p]
    return args


def bwrap_argv(spec: dict, cmd: list[str], drop: bool = True) -> list[str]:
    """The bwrap command line that runs ``cmd`` confined as described in the module docstring."""
    size = str(spec["size_mb"] * 2**20)
    args = [bwrap_path() or "bwrap", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
            "--die-with-parent", "--hostname", "grading",
            "--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID",  # for the uid switch only
            *_system_binds(), "--proc", "/proc", "--dev", "/dev",
            "--perms", "0755", "--dir", "/sys", "--perms", "0755", "--dir", "/sys/fs",
            "--ro-bind-try", "/sys/fs/cgroup", "/sys/fs/cgroup",  # read-only: set_threads() reads its CPU quota
            "--perms", "1777", "--size", size, "--tmpfs", "/tmp"]
    dests = [*spec["ro"], *spec["cache"], *spec["tmpfs"], *spec["files"], spec["ipc_dir"], spec["cwd"]]
    args += _traversable_parents([d for d in dests if d])
    for path in spec["ro"]:
        if os.path.exists(path):
            args += ["--ro-bind", path, path]
    for path in spec["cache"]:
        # a cache that does not exist yet (a cold TORCH_HOME) would be an unmounted, root-owned path the
        # kernel's uid cannot create: make it, so the kernel gets the usual tmpfs over it
        os.makedirs(path, exist_ok=True)
        args += _cache_binds(path, spec["size_mb"])
    for path in spec["tmpfs"]:
        args += ["--perms", "1777", "--size", size, "--tmpfs", path]
    for path in spec["files"]:  # read-only files placed inside the tmpfs folders above (the font cache)
        if os.path.isfile(path):
            args += ["--ro-bind", path, path]
    if spec["ipc_dir"]:
        args += ["--bind", spec["ipc_dir"], spec["ipc_dir"]]
    args += ["--chdir", spec["cwd"], "--"]
    if drop:
        uid = FIRST_UID + os.getpid()
        cmd = [sys.executable, str(pathlib.Path(__file__).resolve()), "--drop", str(uid), "--", *cmd]
    return args + cmd


def drop_privileges(uid: int, cmd: list[str]) -> None:
    """Inside bwrap: become ``uid`` (no groups, no capabilities, no way back), in a user namespace, then exec."""
    libc = ctypes.CDLL(None, use_errno=True)
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)  # from root to a non-root uid: every capability is dropped
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS: no setuid binary can give them back
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
    libc.prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE, cleared by the uid change: else /proc/self is root's
    if libc.unshare(0x10000000) == 0:  # CLONE_NEWUSER: a user namespace of its own, mapping only itself
        pathlib.Path("/proc/self/setgroups").write_text("deny")
        pathlib.Path("/proc/self/uid_map").write_text(f"{uid} {uid} 1")
        pathlib.Path("/proc/self/gid_map").write_text(f"{uid} {uid} 1")
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # the launcher ignored it; the kernel handles its own
    os.execv(cmd[0], cmd)


def _confine(spec: dict, cmd: list[str]) -> None:
    """Exec bwrap around the kernel: the kernel's connection file moves into its socket folder."""
    cwd = os.getcwd()  # the notebook's folder: the kernel gets an empty, size-capped one at the same path
    conf = dict(spec["confine"], cwd=cwd, tmpfs=[*spec["confine"]["tmpfs"], cwd])
    ipc = pathlib.Path(conf["ipc_dir"])
    uid = FIRST_UID + os.getpid()
    if "-f" in cmd:  # the connection file lives in the grader's runtime folder, which the kernel cannot see
        i = cmd.index("-f") + 1
        copy = ipc / pathlib.Path(cmd[i]).name
        copy.write_bytes(pathlib.Path(cmd[i]).read_bytes())
        os.chown(copy, uid, uid)
        os.chmod(copy, 0o600)
        cmd = [*cmd[:i], str(copy), *cmd[i + 1:]]
    os.chown(ipc, uid, uid)  # the kernel creates its sockets here; no other kernel can see this folder
    os.chmod(ipc, 0o700)
    env = {k: v for k, v in os.environ.items() if k in ALLOWED_ENV}
    env.update(conf.get("env", {}), TLCOURSE_GRADING_NETNS="1", TLCOURSE_GRADING_CONFINED="1",
               USER="student", LOGNAME="student")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # an interrupt is for the kernel, not for bwrap
    argv = bwrap_argv(conf, cmd)
    os.execve(argv[0], argv, env)


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
    pathlib.Path(spec["pidfile"]).write_text(str(pid))
    if spec.get("confine"):
        _confine(spec, cmd)
    isolated = spec.get("netns") and _try_unshare_net()
    os.environ["TLCOURSE_GRADING_NETNS"] = "1" if isolated else "0"
    os.execvp(cmd[0], cmd)


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "--drop" and sys.argv[3] == "--":
        drop_privileges(int(sys.argv[2]), sys.argv[4:])
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        sys.exit("usage: sandbox.py SPEC.json -- COMMAND ...")
    launch(json.loads(pathlib.Path(sys.argv[1]).read_text()), sys.argv[3:])
