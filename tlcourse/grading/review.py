"""A static scan of what a student wrote: code reaching for the grader's machinery is sent to a person.

Only the cells a student wrote or changed are scanned (a cell whose source is one
of the release's own code cells is the course's, not the student's). A finding
does not change a score; it turns the row's status into ``needs_review`` and
says which cell reached for what, so a person decides. The course's notebooks
need none of these names in an answer, so an honest submission is not flagged.
"""
from __future__ import annotations

import ast
import pathlib
import re

# modules whose import in an answer has no place in this course's exercises
MODULES = {"ctypes", "sqlite3", "subprocess", "threading", "_thread", "multiprocessing", "signal", "socket",
           "_socket", "importlib", "inspect", "gc", "builtins", "pty", "fcntl", "resource", "mmap", "shutil",
           "zmq", "jupyter_client", "ipykernel", "IPython", "nbgrader", "nbformat", "nbclient", "pickle", "marshal"}
# builtins (as bare names) that run or reach code by other means than writing it
BUILTINS = {"get_ipython", "exec", "eval", "compile", "__import__", "globals", "setattr", "delattr", "breakpoint",
            "__builtins__", "__tlcourse_guard__"}
# attributes that reach for the interpreter, the kernel or the machine (model.eval() and model.modules() are fine)
ATTRS = {"kill", "killpg", "system", "popen", "fork", "forkpty", "execv", "execve", "spawnv", "settrace",
         "setprofile", "excepthook", "displayhook", "environ", "__subclasses__", "__globals__", "__code__",
         "f_back", "f_globals", "_getframe", "set_custom_exc", "input_transformers_post", "ast_transformers",
         "run_cell", "run_cell_async", "session", "shell_handlers", "__tlcourse_guard__"}
# text that points at the grader's files, other processes, or the course's answers
PATHS = re.compile(r"/proc\b|gradebook|solutions/|\.\./|TLCOURSE_ROOT|\.scratch|sandbox\.json|kernel_guard")


def _magic_free(source: str) -> str:
    return "\n".join(ln for ln in source.splitlines() if not ln.lstrip().startswith(("%", "!")))


def scan_source(source: str) -> list[str]:
    """What in one cell's code reaches for the grader's machinery (empty: nothing)."""
    found: list[str] = []
    if re.search(r"^\s*[!%]", source, re.M):
        found.append("a shell or magic command")
    for m in PATHS.finditer(source):
        found.append(f"the path or name {m.group(0)!r}")
    try:
        tree = ast.parse(_magic_free(source))
    except SyntaxError:
        return sorted(set(found))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names if a.name.split(".")[0] in MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in MODULES:
            found.append(f"from {node.module} import ...")
        elif isinstance(node, ast.Name) and node.id in BUILTINS:
            found.append(node.id)
        elif isinstance(node, ast.Attribute) and (node.attr in ATTRS or (
                node.attr == "modules" and isinstance(node.value, ast.Name) and node.value.id == "sys")):
            found.append(f".{node.attr}")
    return sorted(set(found))


def scan_notebook(submitted: pathlib.Path, released: pathlib.Path | None) -> list[str]:
    """Findings for every code cell of ``submitted`` that is not one of the release's own cells."""
    import nbformat

    nb = nbformat.read(submitted, as_version=4)
    course = set()
    if released is not None and released.exists():
        course = {c.source.strip() for c in nbformat.read(released, as_version=4).cells if c.cell_type == "code"}
    findings = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or cell.source.strip() in course:
            continue
        hits = scan_source(cell.source)
        if hits:
            findings.append(f"cell {i}: {', '.join(hits[:6])}")
    return findings
