"""The package's layout: one room per lesson, and methods that are methods only."""
from __future__ import annotations

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
PKG = ROOT / "tlcourse"


def _imports(path: pathlib.Path) -> set[str]:
    """Every module ``path`` imports, relative imports resolved inside tlcourse."""
    here = path.relative_to(ROOT).with_suffix("").parts[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = here[:len(here) - node.level + 1] if node.level else ()
            mod = ".".join([*base, node.module] if node.module else base)
            out.add(mod)
            out |= {f"{mod}.{a.name}" for a in node.names}
    return out


def test_every_notebook_has_its_lesson_module_and_no_lesson_module_is_orphaned():
    topics = {p.name.split("_", 1)[1] for p in (ROOT / "solutions").iterdir() if p.is_dir()}
    lessons = {p.stem for p in (PKG / "lessons").glob("*.py") if p.stem != "__init__"}
    assert lessons <= topics, f"lesson modules without a notebook: {sorted(lessons - topics)}"
    assert {"feature_extraction", "fine_tuning", "nlp_transfer", "distillation", "domain_adaptation",
            "zero_shot"} <= lessons


def test_methods_import_no_lessons_widgets_data_or_plots():
    banned = ("tlcourse.lessons", "tlcourse.widgets", "tlcourse.plots", "tlcourse.data", "matplotlib", "ipywidgets")
    for path in (PKG / "methods").glob("*.py"):
        bad = sorted(m for m in _imports(path) if m.startswith(banned))
        assert not bad, f"{path.name} imports {bad}: methods hold losses and modules only"


def test_methods_docstrings_give_the_paper_and_an_example():
    for path in (PKG / "methods").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, (ast.ClassDef, ast.FunctionDef)) and not node.name.startswith("_"):
                doc = ast.get_docstring(node) or ""
                assert any(year in doc for year in ("19", "20")), f"{path.name}:{node.name} names no paper"
                assert ">>>" in doc or "Usage::" in doc, f"{path.name}:{node.name} has no example"


def test_no_lesson_imports_another_lesson():
    """A lesson's helpers are used by its notebook only; what two notebooks share lives outside lessons/."""
    for path in (PKG / "lessons").glob("*.py"):
        others = {m for m in _imports(path) if m.startswith("tlcourse.lessons.")} - {f"tlcourse.lessons.{path.stem}"}
        bad = sorted(m for m in others if m.split(".")[2] != path.stem)
        assert not bad, (f"lessons/{path.name} imports {bad}: move what both notebooks use to a shared module "
                         "(e.g. tlcourse.domains, tlcourse.train) instead")
