"""Intake: find each student's submission, read it defensively, repair what can be repaired.

Also the trust scan of the source: the import statements of the instructor's
notebook that the kernel guard preloads and protects.
"""
from __future__ import annotations

import ast
import pathlib
import shutil
from dataclasses import dataclass, field

from .._io import atomic_open
from .config import assignments
from .report import Row


@dataclass
class Job:
    student: str
    assignment: str
    files: list[pathlib.Path]
    notes: list[str]
    fingerprint: str = ""
    suspect: bool = False  # in flight when an earlier run's grader died
    review: list[str] = field(default_factory=list)  # what the static scan found (review.py)


def source_notebooks(root: pathlib.Path, assignment: str) -> list[pathlib.Path]:
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
    if not isinstance(nb.get("metadata"), dict):
        nb["metadata"] = nbformat.NotebookNode()
    for i, cell in enumerate(nb.cells):
        if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw"):
            kind = cell.get("cell_type") if isinstance(cell, dict) else type(cell).__name__
            return None, f"{path.name} is not a valid notebook (cell {i} has cell_type {kind!r})"
        if not isinstance(cell.get("source"), str):
            return None, f"{path.name} is not a valid notebook (cell {i} has no source text)"
    return nb, ""


def _repair(nb, source) -> list[str]:
    """Make a readable submission gradable; returns what was changed (for the reason column)."""
    notes = []
    source_ids = {c.metadata["nbgrader"]["grade_id"] for c in source.cells
                  if "nbgrader" in c.metadata and "grade_id" in c.metadata["nbgrader"]}
    stripped = 0
    for cell in nb.cells:
        if not isinstance(cell.get("metadata"), dict):
            cell["metadata"] = {}
        meta = cell.metadata.get("nbgrader")
        if meta is None:
            continue
        gid = meta.get("grade_id") if isinstance(meta, dict) else None
        if isinstance(gid, list) and len(gid) == 1 and gid[0] in source_ids:  # ["q1"]: what was meant is clear
            meta["grade_id"] = gid = gid[0]
            notes.append(f"grade_id of cell {gid!r} was a list; read as {gid!r}")
        if not isinstance(gid, str) or gid not in source_ids:
            del cell.metadata["nbgrader"]  # metadata the release never had cannot claim points
            stripped += 1
    if stripped:
        notes.append(f"ignored grader metadata on {stripped} cell(s) the release did not have")
    spec = nb.metadata.get("kernelspec")
    kernel = spec.get("name") if isinstance(spec, dict) else spec
    if kernel != source.metadata.kernelspec.name:
        notes.append(f"saved with kernel {kernel!r}; graded with {source.metadata.kernelspec.name!r}")
    if kernel != source.metadata.kernelspec.name or not isinstance(spec, dict):
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


def refuse(files: list[pathlib.Path], submissions: pathlib.Path, max_bytes: int) -> str:
    """Why a submission cannot be read at all (a symlink anywhere on its path, a notebook too big), or ''.

    A symlink could point at another student's work or at the grader's files; a huge
    notebook would cost the grader memory before any limit applies.
    """
    for path in files:
        rel = path.relative_to(submissions)
        for i in range(1, len(rel.parts) + 1):
            if (submissions / pathlib.Path(*rel.parts[:i])).is_symlink():
                return f"{pathlib.Path(*rel.parts[:i])} is a symbolic link; submissions must be plain files"
        size = path.stat().st_size
        if size > max_bytes:
            return f"{path.name} is {size / 2**20:.0f} MB, over the {max_bytes / 2**20:.0f} MB limit for a notebook"
    return ""


def prepare_submission(src: list[pathlib.Path], dest: pathlib.Path, expected: list[pathlib.Path]) -> tuple[str, list[str]]:
    """Copy ``src`` notebooks into ``dest`` (repaired); returns (failure reason or '', notes).

    Never raises for anything in a submission: whatever it holds becomes a reason.
    """
    notes: list[str] = []
    try:
        return _prepare(src, dest, expected, notes)
    except Exception as exc:
        return f"the submission could not be read ({_short(exc)})", notes


def _prepare(src, dest, expected, notes) -> tuple[str, list[str]]:
    import nbformat

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



def discover(submissions: pathlib.Path, root: pathlib.Path, only: list[str] | None) -> tuple[list[Job], list[Row]]:
    known = assignments(root)
    if only:
        unknown = [a for a in only if a not in known]
        if unknown:
            raise ValueError(f"unknown assignment(s) {', '.join(unknown)}; known: {', '.join(known)}")
    wanted = list(only or known)
    notebook_owner = {p.name: a for a in known for p in source_notebooks(root, a)}
    jobs: list[Job] = []
    rows: list[Row] = []
    # every folder is a student, whatever its name (".x", "*", "x[1]"): none may vanish from the report
    for student_dir in sorted(p for p in submissions.iterdir() if p.is_dir() or p.is_symlink()):
        s = student_dir.name
        if student_dir.is_symlink():
            rows.append(Row(s, "", "failed", f"{s} is a symbolic link; submissions must be plain folders"))
            continue
        folders = {p.name: p for p in student_dir.iterdir()
                   if (p.is_dir() or p.is_symlink()) and not p.name.startswith(".") and not p.name.endswith(".ipynb")}
        loose = sorted(p for p in student_dir.iterdir() if p.name.endswith(".ipynb") and (p.is_file() or p.is_symlink()))
        found = set()
        for name, folder in sorted(folders.items()):
            if name not in known:
                if not only:
                    rows.append(Row(s, name, "skipped", f"unknown assignment; known: {', '.join(known)}"))
                continue
            if name in wanted:
                found.add(name)
                files = [folder] if folder.is_symlink() else sorted(  # a linked folder is refused by refuse()
                    p for p in folder.iterdir() if p.name.endswith(".ipynb") and (p.is_file() or p.is_symlink()))
                jobs.append(Job(s, name, files, []))
        for nb in loose:
            a = notebook_owner.get(nb.name)
            if a in wanted and a not in found:
                found.add(a)
                jobs.append(Job(s, a, [nb], [f"{nb.name} was not in an {a}/ folder"]))
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


def count_code_cells(paths: list[pathlib.Path]) -> int:
    import nbformat
    return sum(c.cell_type == "code" for p in paths for c in nbformat.read(p, as_version=4).cells)

