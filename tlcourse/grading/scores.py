"""Scores computed by the parent, outside any kernel, from the executed notebook and the instructor's cells.

The child's own gradebook sits where (without confinement) student code could
reach it, so its numbers are never imported. The parent reads the executed
notebook (size-capped, parsed defensively) and takes everything that decides a
score from its own gradebook, which it built from solutions/: which cells are
graded, their points, which are written answers, and the release's checksums.
From the executed notebook it takes only each cell's outputs (and, for a written
answer, its text). A score is clamped to [0, points]; a written answer never
gets an automatic score other than 0 for an untouched stub.
"""
from __future__ import annotations

import pathlib

MAX_EXECUTED_BYTES = 200 * 2**20  # per-cell output is capped at 1 MB by default; this is far above any honest notebook


class UntrustedNotebook(ValueError):
    """The executed notebook cannot be scored (too big, not JSON, not a notebook)."""


def read_executed(path: pathlib.Path, max_bytes: int = MAX_EXECUTED_BYTES):
    import nbformat

    try:
        size = path.lstat().st_size
    except OSError:
        raise UntrustedNotebook(f"{path.name}: no executed notebook") from None
    if path.is_symlink() or not path.is_file():
        raise UntrustedNotebook(f"{path.name}: not a plain file")
    if size > max_bytes:
        raise UntrustedNotebook(f"{path.name}: the executed notebook is {size / 2**20:.0f} MB")
    try:
        nb = nbformat.reads(path.read_text(errors="replace"), as_version=4)  # joins multi-line sources
    except Exception as exc:
        raise UntrustedNotebook(f"{path.name}: not a notebook ({type(exc).__name__}: {str(exc)[:100]})") from None
    if not isinstance(nb.get("cells"), list):
        raise UntrustedNotebook(f"{path.name}: no cells")
    return nb


def _first_by_grade_id(nb) -> dict:
    found: dict = {}
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {}) if isinstance(cell, dict) else {}
        gid = meta.get("grade_id") if isinstance(meta, dict) else None
        if isinstance(gid, str) and gid not in found:
            found[gid] = cell
    return found


def _outputs(cell) -> list:
    outs = cell.get("outputs", []) if cell is not None else []
    return [o for o in outs if isinstance(o, dict)] if isinstance(outs, list) else []


def score_notebook(executed, gb, notebook: str, assignment: str) -> dict:
    """{"grades": {grade_id: {"auto_score", "needs_manual_grade"}}, "comments": {grade_id: text or None}}."""
    from nbformat import NotebookNode
    from nbgrader.utils import compute_checksum, determine_grade

    nb_record = gb.find_notebook(notebook, assignment)
    cells = _first_by_grade_id(executed)
    source = {c.name: c for c in nb_record.source_cells}
    solution_ids = {c.name for c in nb_record.solution_cells}
    grades: dict = {}
    for gc in nb_record.grade_cells:
        cell = cells.get(gc.name)
        points = float(gc.max_score)
        is_solution = gc.name in solution_ids
        src = source[gc.name]
        trusted = NotebookNode(
            cell_type=src.cell_type,
            source=str(cell.get("source", "")) if (cell is not None and is_solution) else src.source,
            outputs=_outputs(cell) if src.cell_type == "code" else [],
            metadata=NotebookNode(nbgrader=NotebookNode(grade=True, solution=is_solution, points=points,
                                                       grade_id=gc.name, checksum=src.checksum)))
        if src.cell_type == "code":
            trusted.execution_count = None
        if cell is None and not is_solution:
            auto = 0.0  # a test the notebook no longer holds was never run
        else:
            try:
                auto, _ = determine_grade(trusted)
            except Exception:
                auto = 0.0 if not is_solution else None
        if is_solution and auto not in (None, 0):
            auto = None  # a written answer gets a person's score, never an automatic one
        if auto is not None:
            auto = min(max(float(auto), 0.0), points)
        grades[gc.name] = {"auto_score": auto, "needs_manual_grade": auto is None}
    comments: dict = {}
    points_of = {gc.name: float(gc.max_score) for gc in nb_record.grade_cells}
    for sc in nb_record.solution_cells:
        cell = cells.get(sc.name)
        src = source[sc.name]
        meta = NotebookNode(grade=sc.name in points_of, solution=True, grade_id=sc.name)
        if sc.name in points_of:
            meta.points = points_of[sc.name]
        probe = NotebookNode(cell_type=src.cell_type, metadata=NotebookNode(nbgrader=meta),
                             source=str(cell.get("source", "")) if cell is not None else src.source)
        comments[sc.name] = "No response." if compute_checksum(probe) == src.checksum else None
    return {"grades": grades, "comments": comments}
