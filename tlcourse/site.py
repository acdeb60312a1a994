"""A static HTML course site, for reading the course without installing anything.

``tlcourse site`` builds one of two sites:

- **public** (default): the student notebooks of ``course/`` (exercises
  blank, no hidden tests), with the figures and results tables of an
  executed run of the solutions copied into every cell that is not an
  exercise or a test. Solution and test cells show no output.
- **instructor** (``--instructor``): the executed solution notebooks as
  they are, solutions and hidden tests included. Not for publishing.

The executed notebooks come from ``--executed DIR``
(``DIR/<assignment>/<notebook>.ipynb``), or are executed now in the quick
profile unless ``TLCOURSE_PROFILE`` says otherwise (a few minutes per
notebook), or with ``--no-execute`` are rendered without outputs. Each
build writes ``index.html`` (table of contents: every notebook and its
sections) and one page per notebook, images embedded, into a fresh folder
that replaces the old one only when the build succeeded.
"""
from __future__ import annotations

import html
import os
import pathlib
import shutil
import sys
import tempfile
from html.parser import HTMLParser
from typing import Sequence

import nbformat

from .grading.config import assignments, repo_root


class SiteError(RuntimeError):
    """The site cannot be built as asked; the message says what to do."""


PUBLIC, INSTRUCTOR = "public", "instructor"


# ---------------------------------------------------------------- notebooks

def _is_nbgrader_cell(cell) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return bool(meta.get("solution") or meta.get("grade") or meta.get("task"))


def public_notebook(student: nbformat.NotebookNode, executed: nbformat.NotebookNode,
                    name: str = "notebook") -> nbformat.NotebookNode:
    """The student notebook with the executed solution's outputs in every non-exercise, non-test cell.

    Exercise, test and written-answer cells (any cell nbgrader marks) keep
    the student version with no output, so neither solution code, hidden
    tests, nor output printed by them reaches the page. Every other cell
    must match between the two notebooks; if not, the release is stale.
    """
    out = nbformat.from_dict(student)
    if len(student.cells) != len(executed.cells):
        raise SiteError(f"{name}: course/ has {len(student.cells)} cells but the executed solution has "
                        f"{len(executed.cells)}; run `tlcourse release` (or re-execute the solutions) first")
    for i, (cell, done) in enumerate(zip(out.cells, executed.cells)):
        marked = _is_nbgrader_cell(done) or _is_nbgrader_cell(cell)
        if not marked and (cell.cell_type != done.cell_type or cell.source != done.source):
            raise SiteError(f"{name}: cell {i} differs between course/ and the executed solution; "
                            "run `tlcourse release`, and re-execute if the executed notebooks are old")
        if cell.cell_type != "code":
            continue
        if marked:
            cell.outputs, cell.execution_count = [], None
        else:
            cell.outputs = [o for o in done.get("outputs", [])]
            cell.execution_count = done.get("execution_count")
    return out


def execute_notebook(path: pathlib.Path, timeout: int = 600) -> nbformat.NotebookNode:
    """Run a copy of ``path`` headless in its folder; raises :class:`SiteError` naming a failing cell."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(path, as_version=4)
    env = dict(os.environ)
    env.setdefault("TLCOURSE_PROFILE", "quick")
    env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"  # Agg would drop every figure
    env["TLCOURSE_WIDGETS"] = "static"  # a page cannot run a kernel: static figures
    bindir = str(pathlib.Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    try:
        client.execute(env=env)
    except CellExecutionError as exc:
        raise SiteError(f"{path} failed while executing for the site:\n{str(exc)[-2000:]}") from exc
    return nb


# ---------------------------------------------------------------- HTML

class _Headings(HTMLParser):
    """(level, id, text) of every h1/h2 with an id, in order (nbconvert gives headings ids)."""

    def __init__(self):
        super().__init__()
        self.found: list[tuple[int, str, str]] = []
        self._open: tuple[int, str] | None = None
        self._text: list[str] = []
        self._in_anchor = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("h1", "h2") and attrs.get("id"):
            self._open, self._text = (int(tag[1]), attrs["id"]), []
        elif tag == "a" and "anchor-link" in (attrs.get("class") or ""):
            self._in_anchor = True

    def handle_endtag(self, tag):
        if tag == "a":
            self._in_anchor = False
        elif self._open and tag == f"h{self._open[0]}":
            self.found.append((*self._open, "".join(self._text).strip()))
            self._open = None

    def handle_data(self, data):
        if self._open and not self._in_anchor:
            self._text.append(data)


def headings(page_html: str) -> list[tuple[int, str, str]]:
    parser = _Headings()
    parser.feed(page_html)
    return parser.found


_STYLE = """<style>
.tl-nav{position:sticky;top:0;z-index:10;background:#f4f6f8;border-bottom:1px solid #ccd;
        padding:6px 16px;font:14px sans-serif}
.tl-nav a{margin-right:14px}.tl-banner{font:14px sans-serif;padding:8px 16px;background:#fff6d6}
.tl-banner.instructor{background:#ffd9d9}
</style>"""

_BANNERS = {
    PUBLIC: "Public build: exercises are blank and tests are hidden. Outputs, where shown, come from an "
            "executed run of the reference solutions. To run the notebooks yourself, see the README.",
    INSTRUCTOR: "Instructor build: contains the solutions and hidden tests. Do not publish.",
}


def _nav(kind: str, prev: tuple[str, str] | None, nxt: tuple[str, str] | None) -> str:
    links = ['<a href="index.html">contents</a>']
    if prev:
        links.append(f'<a href="{prev[0]}">&larr; {html.escape(prev[1])}</a>')
    if nxt:
        links.append(f'<a href="{nxt[0]}">{html.escape(nxt[1])} &rarr;</a>')
    return (f'<div class="tl-nav">{"".join(links)}</div>'
            f'<div class="tl-banner {kind}">{html.escape(_BANNERS[kind])}</div>')


def _insert_after_body(page: str, fragment: str) -> str:
    start = page.find("<body")
    if start < 0:
        raise SiteError("nbconvert produced a page without <body>; cannot add navigation")
    end = page.index(">", start) + 1
    page = page[:end] + fragment + page[end:]
    return page.replace("</head>", _STYLE + "</head>", 1)


def render(nb: nbformat.NotebookNode) -> str:
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab")
    body, _ = exporter.from_notebook_node(nb)
    return body


# ---------------------------------------------------------------- the build

def _sources(root: pathlib.Path, only: Sequence[str] | None) -> list[tuple[str, pathlib.Path]]:
    known = assignments(root)
    chosen = list(only) if only else known
    unknown = [a for a in chosen if a not in known]
    if unknown:
        raise SiteError(f"unknown assignment(s) {unknown}; choose from {known}")
    pairs = []
    for a in chosen:
        for nb in sorted((root / "solutions" / a).glob("*.ipynb")):
            pairs.append((a, nb))
    if not pairs:
        raise SiteError(f"no solution notebooks found for {chosen} under {root / 'solutions'}")
    return pairs


def build_site(out: str | os.PathLike | None = None, kind: str = PUBLIC,
               executed: str | os.PathLike | None = None, execute: bool = True,
               only: Sequence[str] | None = None, root: pathlib.Path | None = None,
               log=print) -> pathlib.Path:
    """Build the ``kind`` site (``"public"`` or ``"instructor"``) into ``out``; returns its index.html."""
    if kind not in (PUBLIC, INSTRUCTOR):
        raise SiteError(f"kind must be {PUBLIC!r} or {INSTRUCTOR!r}, not {kind!r}")
    root = pathlib.Path(root) if root else repo_root()
    out = pathlib.Path(out) if out else root / "site" / kind
    executed_dir = pathlib.Path(executed) if executed else None
    if executed_dir is not None and not executed_dir.is_dir():
        raise SiteError(f"--executed {executed_dir}: no such folder (expected <assignment>/<notebook>.ipynb)")

    pages = []  # (file name, title, html)
    for assignment, solution_path in _sources(root, only):
        name = solution_path.name
        if executed_dir is not None:
            run_path = executed_dir / assignment / name
            if not run_path.is_file():
                raise SiteError(f"{run_path} is missing; execute the solutions into {executed_dir} "
                                "or build without --executed")
            done = nbformat.read(run_path, as_version=4)
        elif execute:
            log(f"executing solutions/{assignment}/{name} for the site ...")
            done = execute_notebook(solution_path)
        else:
            done = nbformat.read(solution_path, as_version=4)
        if kind == PUBLIC:
            student_path = root / "course" / assignment / name
            if not student_path.is_file():
                raise SiteError(f"{student_path} is missing; run `tlcourse release` first")
            page_nb = public_notebook(nbformat.read(student_path, as_version=4), done, f"{assignment}/{name}")
        else:
            page_nb = done
        body = render(page_nb)
        found = headings(body)
        title = found[0][2] if found else assignment
        pages.append((f"{solution_path.stem}.html", title, body, found))

    out.parent.mkdir(parents=True, exist_ok=True)
    staged = pathlib.Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        for i, (fname, title, body, _) in enumerate(pages):
            prev = pages[i - 1][:2] if i > 0 else None
            nxt = pages[i + 1][:2] if i + 1 < len(pages) else None
            (staged / fname).write_text(_insert_after_body(body, _nav(kind, prev, nxt)), encoding="utf-8")
        (staged / "index.html").write_text(_index(kind, pages), encoding="utf-8")
        old = None
        if out.exists():
            old = out.with_name(f".{out.name}-old")
            shutil.rmtree(old, ignore_errors=True)
            out.rename(old)
        staged.rename(out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    log(f"{kind} site: {len(pages)} notebook page(s) in {out} (open {out / 'index.html'})")
    return out / "index.html"


def _index(kind: str, pages) -> str:
    items = []
    for fname, title, _, found in pages:
        sections = "".join(f'<li><a href="{fname}#{html.escape(hid, quote=True)}">{html.escape(text)}</a></li>'
                           for level, hid, text in found if level == 2)
        items.append(f'<li><a href="{fname}">{html.escape(title)}</a><ul>{sections}</ul></li>')
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>tlcourse: transfer learning, hands-on"
            f"</title>{_STYLE}<style>body{{font:16px/1.5 sans-serif;max-width:900px;margin:auto}}</style>"
            f"</head><body><div class='tl-banner {kind}'>{html.escape(_BANNERS[kind])}</div>"
            "<h1>tlcourse: transfer learning, hands-on</h1><h2>Contents</h2>"
            f"<ol class='tl-toc'>{''.join(items)}</ol></body></html>")
