"""nbgrader's Execute step, hardened: each failure costs one cell, never the class.

- Before every test cell the kernel guard restores what a submission may
  have patched (see kernel_guard.py) and must answer sha256(nonce); if it
  cannot, the test cell is marked failed instead of being run.
- A cell that runs past the timeout, or kills the kernel (``os._exit``, a
  segfault, the memory limit), gets an error output; the kernel is
  restarted, the cells before it are replayed, and grading goes on. Cells
  that failed the first time are not replayed: they would only fail again,
  or repeat an earlier runaway (a second loop would cost a second timeout).
- Output beyond a per-cell byte budget is dropped as it arrives, with a note.
- After a failed cell, processes it left behind (a fork bomb) are killed.
"""
from __future__ import annotations

import copy
import hashlib
import json
import pathlib
import secrets

from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbclient.util import run_sync
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell
from nbgrader import utils
from nbgrader.preprocessors import Execute
from traitlets import Bool, Integer, List, Unicode

from .sandbox import Sandbox, kernel_processes, kill_pidfile_group

GUARD_SOURCE = (pathlib.Path(__file__).with_name("kernel_guard.py")).read_text()


def _error(ename: str, evalue: str) -> NotebookNode:
    return NotebookNode(output_type="error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


def _capped_error(content: dict, budget: int) -> dict:
    """An error output within ``budget`` bytes: a long message or traceback is cut, with a note."""
    budget = max(budget, 2000)
    ename = str(content.get("ename", ""))[:200]
    evalue = str(content.get("evalue", ""))
    note = f" [grader: cut to {budget // 2} characters]"
    if len(evalue) > budget // 2:
        evalue = evalue[:budget // 2] + note
    frames, used = [], len(ename) + len(evalue)
    for frame in content.get("traceback", []) or []:
        frame = str(frame)
        if used + len(frame) > budget:
            frames.append("[grader: the rest of the traceback was dropped]")
            break
        frames.append(frame)
        used += len(frame)
    return dict(content, ename=ename, evalue=evalue, traceback=frames)


class GuardedExecute(Execute):
    trusted_imports = List(Unicode(), help="import statements of the source notebook, preloaded and protected"
                           ).tag(config=True)
    block_network = Bool(True, help="install a socket guard in the kernel").tag(config=True)
    guard = Bool(True, help="restore patched state before test cells (off only to show the attacks work)"
                 ).tag(config=True)
    max_output_bytes = Integer(1_000_000, help="output kept per cell; the rest is dropped").tag(config=True)
    max_restarts = Integer(3, help="kernel restarts per notebook before the remaining cells are failed"
                           ).tag(config=True)
    max_threads = Integer(128, help="threads a kernel may keep after a failed cell before it is restarted"
                          ).tag(config=True)
    events_path = Unicode("", help="JSON lines file where restarts and guard failures are recorded"
                          ).tag(config=True)
    sandbox_state = Unicode("", help="JSON file naming the sandbox's cgroup dirs and pid file").tag(config=True)

    # -- bookkeeping -------------------------------------------------------------------------
    def _event(self, kind: str, cell_index: int, detail: str = "") -> None:
        if self.events_path:
            with open(self.events_path, "a") as fh:
                fh.write(json.dumps({"event": kind, "cell": cell_index, "detail": detail}) + "\n")

    def _sandbox(self) -> Sandbox | None:
        if not self.sandbox_state:
            return None
        state = json.loads(pathlib.Path(self.sandbox_state).read_text())
        sb = Sandbox.__new__(Sandbox)
        sb.dirs = [pathlib.Path(d) for d in state["dirs"]]
        sb.kind = state["kind"]
        return sb

    def _kernel_pid(self) -> int | None:
        if not self.sandbox_state:
            return None
        try:
            pidfile = json.loads(pathlib.Path(self.sandbox_state).read_text())["pidfile"]
            return int(pathlib.Path(pidfile).read_text())
        except (OSError, ValueError, KeyError):
            return None

    def _kill_kernel_tree(self) -> None:
        sb = self._sandbox()
        if sb is not None and sb.dirs:
            sb.kill_all()
        elif self.sandbox_state:
            kill_pidfile_group(json.loads(pathlib.Path(self.sandbox_state).read_text())["pidfile"])

    def _reap_strays(self, cell_index: int) -> None:
        sb = self._sandbox()
        launcher = self._kernel_pid()
        if sb is None or not sb.dirs or launcher is None:
            return
        keep, kernel = kernel_processes(launcher, sb.pids())
        killed = sb.kill_all(keep=keep)
        if killed:
            self._event("killed_strays", cell_index, f"{killed} processes left by the cell")
        try:
            status = pathlib.Path(f"/proc/{kernel}/status").read_text()
            threads = int(status.split("Threads:")[1].split()[0])
        except (OSError, IndexError, ValueError):
            return
        if threads > self.max_threads:  # a thread explosion would starve every later cell
            self._event("thread_explosion", cell_index, f"{threads} threads")
            self._needs_restart = "too many threads"

    # -- output cap --------------------------------------------------------------------------
    def output(self, outs, msg, display_id, cell_index):
        if msg.get("msg_type") == "error":  # an error always counts, however much came before it
            msg = dict(msg, content=_capped_error(msg.get("content", {}), self.max_output_bytes))
            return super().output(outs, msg, display_id, cell_index)
        size = len(json.dumps(msg.get("content", {}), default=str))
        used = self._output_bytes.get(cell_index, 0)
        if used >= self.max_output_bytes:
            return None
        self._output_bytes[cell_index] = used + size
        if used + size > self.max_output_bytes:
            outs.append(NotebookNode(output_type="stream", name="stdout",
                                     text=f"\n[grader: output beyond {self.max_output_bytes} bytes was dropped]\n"))
            self._event("output_capped", cell_index)
            return None
        return super().output(outs, msg, display_id, cell_index)

    # -- kernel lifecycle --------------------------------------------------------------------
    def _execute_aside(self, cell, index: int, store_history: bool) -> None:
        """Execute a cell that is not (or no longer) the notebook's: nbclient writes it back at ``index``."""
        index = max(index, 0)
        saved = self.nb.cells[index] if index < len(self.nb.cells) else None
        try:
            self.execute_cell(cell, index, store_history=store_history)
        finally:
            if saved is not None:
                self.nb.cells[index] = saved

    def _run_hidden(self, code: str, cell_index: int) -> str:
        cell = new_code_cell(code)
        self._execute_aside(cell, cell_index, store_history=False)
        return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")

    def _install_guard(self) -> None:
        if not self.guard:
            return
        code = (GUARD_SOURCE + f"\ninstall({self.trusted_imports!r}, {self.block_network!r})\n"
                "del install, Guard, _Snapshot\n")
        # run in a private namespace so none of the guard's names land in the student's
        self._run_hidden(f"exec({code!r}, {{'__name__': '_tlcourse_guard'}})", -1)

    def _restart(self) -> None:
        self._kill_kernel_tree()

        async def restart():
            if self.kc is not None:
                self.kc.stop_channels()
            await self.km.restart_kernel(now=True)
            await self.async_start_new_kernel_client()

        run_sync(restart)()
        self._install_guard()

    def _guard_ok(self, cell_index: int) -> tuple[bool, str]:
        if not self.guard:
            return True, ""
        nonce = secrets.token_hex(16)
        try:
            out = self._run_hidden(f"__tlcourse_guard__.restore({nonce!r})", cell_index)
        except (CellTimeoutError, DeadKernelError) as exc:
            return False, f"the grader's integrity check did not complete ({type(exc).__name__})"
        for line in out.splitlines():
            if line.startswith("tlcourse-guard-tripwire:"):
                self._event("tripwire", cell_index, line.split(":", 1)[1].strip()[:200])
        if hashlib.sha256(nonce.encode()).hexdigest() in out:
            return True, ""
        return False, "the grader's integrity check failed: " + (out.strip()[:200] or "no answer from the kernel")

    def _recover(self, cells, index: int) -> bool:
        """Restart the kernel and replay the code cells before ``index``; False when that fails."""
        if self._restarts >= self.max_restarts:
            return False
        self._restarts += 1
        try:
            self._restart()
            skipped = sorted(i for i in self._failed_cells if i < index)
            for i in skipped:
                self._event("replay_skipped", i, f"failed the first time; not replayed before cell {index}")
            for i in range(index):
                cell = cells[i]
                if cell.cell_type == "code" and cell.source.strip() and i not in self._failed_cells:
                    if utils.is_grade(cell) and not self._guard_ok(i)[0]:
                        return False
                    self._execute_aside(copy.deepcopy(cell), i, store_history=True)
            return True
        except (CellTimeoutError, DeadKernelError, RuntimeError) as exc:
            self._event("replay_failed", index, repr(exc))
            return False

    # -- the loop ----------------------------------------------------------------------------
    def preprocess(self, nb, resources=None, km=None):
        from nbclient import NotebookClient

        NotebookClient.__init__(self, nb, km)
        self.reset_execution_trackers()
        self._check_assign_resources(resources)
        self._output_bytes: dict[int, int] = {}
        self._restarts = 0
        self._failed_cells: set[int] = set()
        with self.setup_kernel():
            info = self.wait_for_reply(self.kc.kernel_info())
            self.nb.metadata["language_info"] = info["content"]["language_info"]
            self._install_guard()
            dead_reason = ""
            for index, cell in enumerate(self.nb.cells):
                if cell.cell_type != "code" or not cell.source.strip():
                    continue
                if dead_reason:
                    cell.outputs = [_error("GradingAborted", dead_reason)]
                    continue
                self._run_cell(cell, index)
                if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
                    self._failed_cells.add(index)
                if getattr(self, "_needs_restart", ""):
                    failure, self._needs_restart = self._needs_restart, ""
                    if not self._recover(self.nb.cells, index):
                        dead_reason = (f"not run: the kernel could not be restored after cell {index} ({failure})")
                        self._event("gave_up", index, dead_reason)
        self.set_widgets_metadata()
        return self.nb, self.resources

    def _run_cell(self, cell, index: int) -> None:
        is_test = utils.is_grade(cell)
        if is_test:
            ok, why = self._guard_ok(index)
            if not ok:
                self._event("guard_failed", index, why)
                cell.outputs = [_error("GraderIntegrityError", why)]
                self._needs_restart = why
                return
        try:
            self.execute_cell(cell, index, store_history=True)
        except CellTimeoutError:
            why = f"the cell ran past the {self.timeout} s limit; the kernel was restarted"
            cell.outputs = list(cell.get("outputs", [])) + [_error("CellTimeoutError", why)]
            self._event("timeout", index, why)
            self._needs_restart = "timeout"
            return
        except DeadKernelError:
            why = "the kernel died in this cell (os._exit, a crash or the memory limit); it was restarted"
            cell.outputs = list(cell.get("outputs", [])) + [_error("KernelDied", why)]
            self._event("kernel_died", index, why)
            self._needs_restart = "kernel died"
            return
        if any(o.output_type == "error" for o in cell.outputs):
            self._reap_strays(index)
