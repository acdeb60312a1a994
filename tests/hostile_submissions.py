"""Tampered submissions, built from any released course notebook.

Each function takes a released notebook (an nbformat node, left unchanged)
and returns a tampered copy. Applied to an untouched release, every variant
must still score 0 on every autograded question: the tampering alone must
never earn a point. Applied to a notebook with wrong answers, the patching
variants must not turn a wrong answer into points.

    from hostile_submissions import VARIANTS
    for name, make in VARIANTS.items():
        nbformat.write(make(released), subs / f"hostile_{name}" / assignment / path.name)
"""
from __future__ import annotations

import copy
import secrets

import nbformat
from nbformat.v4 import new_code_cell


def is_test_cell(cell) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return cell.cell_type == "code" and bool(meta.get("grade")) and not meta.get("solution")


def is_graded_cell(cell) -> bool:
    return "nbgrader" in cell.get("metadata", {})


def _test_indices(nb) -> list[int]:
    found = [i for i, c in enumerate(nb.cells) if is_test_cell(c)]
    if not found:
        raise ValueError("this notebook has no autograded test cell to tamper with")
    return found


def delete_test_cells(nb):
    """Every autograded test cell removed."""
    out = copy.deepcopy(nb)
    drop = set(_test_indices(out))
    out.cells = [c for i, c in enumerate(out.cells) if i not in drop]
    return out


def replace_test_cells(nb):
    """Every test cell's code replaced by ``pass`` (metadata kept)."""
    out = copy.deepcopy(nb)
    for i in _test_indices(out):
        out.cells[i].source = "pass"
    return out


def strip_test_metadata(nb):
    """Every test cell loses its nbgrader metadata and its code: a plain ``pass`` cell."""
    out = copy.deepcopy(nb)
    for i in _test_indices(out):
        del out.cells[i].metadata["nbgrader"]
        out.cells[i].source = "pass"
    return out


def duplicate_cells(nb):
    """Every graded cell twice in a row, the copy with ``pass`` in place of test code."""
    out = copy.deepcopy(nb)
    cells = []
    for cell in out.cells:
        cells.append(cell)
        if is_graded_cell(cell):
            twin = copy.deepcopy(cell)
            if "id" in twin:
                twin.id = secrets.token_hex(4)  # cell ids must stay unique
            if is_test_cell(twin):
                twin.source = "pass"
            cells.append(twin)
    out.cells = cells
    return out


def prepend(nb, source: str):
    """``source`` as a new first code cell: it runs before the notebook's own imports."""
    out = copy.deepcopy(nb)
    out.cells.insert(0, new_code_cell(source))
    return out


# -- code a hostile student might put in front of the notebook ---------------------------------
PATCH_COMPARISONS = """
import builtins, math, operator
math.isclose = lambda *a, **k: True
operator.eq = lambda *a, **k: True
builtins.all = lambda *a, **k: True
try:
    import numpy as _np
    _np.allclose = _np.array_equal = lambda *a, **k: True
    _np.testing.assert_allclose = _np.testing.assert_array_equal = lambda *a, **k: None
    _np.testing.assert_array_almost_equal = _np.testing.assert_almost_equal = lambda *a, **k: None
    _np.testing.assert_equal = lambda *a, **k: None
except ImportError:
    pass
try:
    import torch as _torch
    _torch.allclose = _torch.equal = lambda *a, **k: True
    _torch.testing.assert_close = lambda *a, **k: None
    _torch.Tensor.allclose = _torch.Tensor.equal = lambda *a, **k: True
except ImportError:
    pass
"""

PATCH_CHECKS = """
try:
    from tlcourse.checks import _core
    _core.Question.grade = lambda self, *a, **k: None
    _core.Question.verdict = lambda self, *a, **k: _core.Verdict("correct", "")
    _core.QuestionSet.grade = lambda self, *a, **k: None
except Exception:
    pass
"""

FAKE_CHECK_MODULES = """
import sys, types

class _AlwaysRight:
    def grade(self, *a, **k):
        return None
    check = verdict = hint = grade

class _FakeChecks(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _AlwaysRight()

for _name in ("feature_extraction", "fine_tuning", "nlp_transfer", "distillation", "domain_adaptation",
              "zero_shot", "_core"):
    sys.modules["tlcourse.checks." + _name] = _FakeChecks("tlcourse.checks." + _name)
"""

CUSTOM_EXC = """
get_ipython().set_custom_exc((BaseException,), lambda shell, etype, value, tb, tb_offset=None: None)
"""

EXCEPTHOOK = """
import sys
sys.excepthook = lambda *a: None
"""

REDEFINE_ASSERTION_ERROR = """
import builtins
class AssertionError(Warning):
    pass
builtins.AssertionError = AssertionError
builtins.NotImplementedError = type("NotImplementedError", (Warning,), {})
"""

WRAP_CELLS_IN_TRY = """
def _swallow(lines):
    body = "".join(lines)
    if not body.strip():
        return lines
    inner = "".join("    " + ln if ln.strip() else ln for ln in body.splitlines(True))
    return ["try:\\n", inner.rstrip("\\n") + "\\n", "    pass\\n", "except BaseException:\\n", "    pass\\n"]
get_ipython().input_transformers_post.append(_swallow)
"""

STRIP_ASSERTS = """
import ast

class _NoAsserts(ast.NodeTransformer):
    def visit_Assert(self, node):
        return ast.Pass()

get_ipython().ast_transformers.append(_NoAsserts())
"""

REPLACE_RUN_CELL = """
_shell = get_ipython()
_real_run_cell_async = _shell.run_cell_async

async def _skip_tests(raw_cell, *a, **k):
    if "assert" in raw_cell or ".grade(" in raw_cell:
        raw_cell = "pass"
        k["transformed_cell"] = "pass\\n"  # IPython passes the cell a second time, already transformed
        k["preprocessing_exc_tuple"] = None
    return await _real_run_cell_async(raw_cell, *a, **k)

_shell.run_cell_async = _skip_tests
"""

ATTACKS = {
    "patch_comparisons": PATCH_COMPARISONS,
    "patch_checks": PATCH_CHECKS,
    "fake_check_modules": FAKE_CHECK_MODULES,
    "custom_exc": CUSTOM_EXC,
    "excepthook": EXCEPTHOOK,
    "redefine_assertion_error": REDEFINE_ASSERTION_ERROR,
    "wrap_cells_in_try": WRAP_CELLS_IN_TRY,
    "strip_asserts": STRIP_ASSERTS,
    "replace_run_cell": REPLACE_RUN_CELL,
}


def all_attacks(nb):
    """Every attack above in one prepended cell, plus every test cell replaced."""
    return prepend(replace_test_cells(nb), "\n".join(ATTACKS.values()))


VARIANTS = {
    "delete_test_cells": delete_test_cells,
    "replace_test_cells": replace_test_cells,
    "strip_test_metadata": strip_test_metadata,
    "duplicate_cells": duplicate_cells,
    **{name: (lambda nb, _src=src: prepend(nb, _src)) for name, src in ATTACKS.items()},
    "all_attacks": all_attacks,
}

# Three variants that together cover every attack above, for suites where each grading costs a minute.
RECOMMENDED = ("all_attacks", "strip_test_metadata", "duplicate_cells")


def write_variants(released_path, dest_root, assignment: str, prefix: str = "hostile_",
                   names=RECOMMENDED) -> list[str]:
    """Write the variants ``names`` of ``released_path`` as ``dest_root/<prefix><name>/<assignment>/<file>``."""
    nb = nbformat.read(released_path, as_version=4)
    students = []
    for name in names:
        make = VARIANTS[name]
        student = prefix + name
        path = dest_root / student / assignment / released_path.name
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(make(nb), path)
        students.append(student)
    return students


# Runaway code a student's own cell may hold. Each must cost only the cell it is in.
RUNAWAY_CELLS = {
    "infinite_loop": "while True:\n    pass",
    "loop_ignoring_interrupt": "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass",
    "os_exit": "import os\nos._exit(3)",
    "segfault": "import ctypes\nctypes.string_at(0)",
    "output_flood": "for _ in range(300):\n    print('x' * 1_000_000)",  # 300 MB
    "memory_blowup": "hog = b'x' * (6 * 1024 ** 3)",  # past the 4 GB default limit
    "fork_bomb": "import os\nwhile True:\n    os.fork()",
    "thread_explosion": ("import threading, time\nwhile True:\n"
                         "    threading.Thread(target=time.sleep, args=(600,), daemon=True).start()"),
}


# -- attacks on the grader itself (issue 18), each one cell a student could write ----------------------
# In-kernel: they beat the kernel guard of commit 37da1a9 and score wrong answers as right.
THREAD_READDS_TRANSFORMER = """
import threading, time
def _swallow(lines):
    body = "".join(lines)
    inner = "".join("    " + ln if ln.strip() else ln for ln in body.splitlines(True))
    return ["try:\\n", inner.rstrip("\\n") + "\\n", "    pass\\n", "except BaseException:\\n", "    pass\\n"]
_ip = get_ipython()
def _keep():
    while True:
        if _swallow not in _ip.input_transformers_post:
            _ip.input_transformers_post.append(_swallow)
        time.sleep(0.0005)
threading.Thread(target=_keep, daemon=True).start()
"""

PATCH_AST_PARSE = """
import ast as _ast
get_ipython().compile.ast_parse = lambda source, *a, **k: _ast.parse("pass")
"""

PATCH_SESSION_SEND = """
_kernel = get_ipython().kernel
_real_send = _kernel.session.send
def _no_errors(stream, msg_or_type, content=None, *a, **k):
    if msg_or_type == "error":
        return None
    if msg_or_type == "execute_reply" and isinstance(content, dict) and content.get("status") == "error":
        content = {"status": "ok", "execution_count": content.get("execution_count"), "payload": [],
                   "user_expressions": {}}
    return _real_send(stream, msg_or_type, content, *a, **k)
_kernel.session.send = _no_errors
"""

FORGE_GUARD = """
import ast, builtins, hashlib
class _NoAsserts(ast.NodeTransformer):
    def visit_Assert(self, node):
        return ast.Pass()
get_ipython().ast_transformers.append(_NoAsserts())
builtins.__tlcourse_guard__.restore = lambda nonce: print(hashlib.sha256(nonce.encode()).hexdigest())
"""

# Out of the kernel: they reach the course, the gradebook, the other students and the grader.
_FIND_COURSE_ROOTS = """
import glob, json, os
_roots = [os.environ.get("TLCOURSE_ROOT", "")]
for _pid in [p for p in os.listdir("/proc") if p.isdigit()]:
    try:
        _roots.append(os.readlink(f"/proc/{_pid}/cwd"))
    except OSError:
        pass
"""

EXEC_SOLUTIONS = _FIND_COURSE_ROOTS + """for _root in _roots:
    for _path in glob.glob(os.path.join(_root, "solutions", "*", "*.ipynb")) + glob.glob(
            os.path.join(_root, "tests", "fixtures", "grading", "solutions", "*", "*.ipynb")):
        try:
            for _cell in json.load(open(_path))["cells"]:
                _src = "".join(_cell["source"])
                if "BEGIN SOLUTION" in _src and _cell["cell_type"] == "code":
                    exec(_src, globals())
        except Exception:
            pass
"""

# An answer cell that runs the instructor's solution cell of the same grade id (set GRADE_ID first).
EXEC_SOLUTION_CELL = _FIND_COURSE_ROOTS + """for _path in {p for _root in _roots for p in glob.glob(os.path.join(_root, "solutions", "*", "*.ipynb"))}:
    for _cell in json.load(open(_path))["cells"]:
        if _cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == GRADE_ID:
            exec("".join(_cell["source"]), globals())
"""

GRADEBOOK_TRIGGER = """
import glob, os, sqlite3
for _db in glob.glob("../../../gradebook.db") + glob.glob("../../../../../gradebook.db"):
    try:
        _c = sqlite3.connect(_db)
        _c.execute("CREATE TRIGGER IF NOT EXISTS full_marks AFTER UPDATE ON grade BEGIN "
                   "UPDATE grade SET auto_score = (SELECT max_score FROM grade_cells WHERE id = NEW.cell_id) "
                   "WHERE id = NEW.id AND auto_score IS NOT (SELECT max_score FROM grade_cells WHERE id = NEW.cell_id); END")
        _c.commit()
    except Exception:
        pass
"""

SABOTAGE_OTHERS = """
import glob, json, time
for _ in range(100):  # wait for the others' copies, then blank their answers
    _theirs = [p for p in glob.glob("../../../../../submitted/*/*/*.ipynb") if "/zz_" in p]
    if _theirs:
        break
    time.sleep(0.05)
for _path in _theirs:
    _nb = json.load(open(_path))
    for _cell in _nb["cells"]:
        if _cell.get("metadata", {}).get("nbgrader", {}).get("solution") and _cell["cell_type"] == "code":
            _cell["source"] = "raise NotImplementedError()"
    json.dump(_nb, open(_path, "w"))
"""

OUT_OF_KERNEL_ATTACKS = {"exec_solutions": EXEC_SOLUTIONS, "gradebook_trigger": GRADEBOOK_TRIGGER,
                         "sabotage_others": SABOTAGE_OTHERS}
IN_KERNEL_ATTACKS = {"thread_readds_transformer": THREAD_READDS_TRANSFORMER, "patch_ast_parse": PATCH_AST_PARSE,
                     "patch_session_send": PATCH_SESSION_SEND, "forge_guard": FORGE_GUARD}


def confinement_probe(secrets: dict[str, str], grader_pid: int, canary: str, disk_mb: int) -> str:
    """A cell that tries what a confined kernel must not do, and prints what it managed as FACTS{json}.

    ``secrets``: label -> a path it must not read (a solution, the gradebook, another
    student's notebook); ``canary``: a folder it plants as the grader's socket folder.
    """
    return f"""
import glob, json, os, signal
facts = {{"uid": os.getuid(), "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
          "env_root": "TLCOURSE_ROOT" in os.environ, "read": {{}}, "wrote": {{}}}}
for label, path in {secrets!r}.items():
    try:
        open(path, "rb").read(10)
        facts["read"][label] = True
    except OSError:
        facts["read"][label] = False
for label, path in {{"solution_dir": os.path.dirname({secrets.get('solution', '/nonexistent')!r}) + "/planted.py",
                    "home_of_grader": "/root/planted", "usr": "/usr/planted"}}.items():
    try:
        open(path, "w").write("x")
        facts["wrote"][label] = True
    except OSError:
        facts["wrote"][label] = False
try:
    os.kill({grader_pid}, 0)
    facts["signal_grader"] = True
except OSError:
    facts["signal_grader"] = False
for link in glob.glob("../../../../ipc-dir") + glob.glob("../../../ipc-dir"):
    try:
        open(link, "w").write({canary!r})  # the grader rmtree()s what this file names
    except OSError:
        pass
try:
    for procs in glob.glob("/sys/fs/cgroup/*/cgroup.procs") + ["/sys/fs/cgroup/cgroup.procs"]:
        open(procs, "w").write(str(os.getpid()))
    facts["left_cgroup"] = True
except OSError:
    facts["left_cgroup"] = False
try:
    with open("big.bin", "wb") as fh:
        for _ in range({disk_mb} + 16):
            fh.write(b"x" * 2**20)
    facts["disk_cap"] = False
except OSError:
    facts["disk_cap"] = True
finally:
    if os.path.exists("big.bin"):
        os.remove("big.bin")
print("FACTS" + json.dumps(facts))
"""
