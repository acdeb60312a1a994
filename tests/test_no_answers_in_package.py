"""No graded answer can be imported from the installed package, and every library twin is guarded.

The scan compares normalised syntax trees (docstrings, annotations and local
names removed) of every function in the solutions' answer cells with every
function in the installed tlcourse. A package function that matches is allowed
only when it is a declared library twin of that very exercise: then the check
marks any answer that calls it wrong (tested in tests/test_checks_*.py).
"""
from __future__ import annotations

import ast
import difflib
import importlib
import inspect
import json
import pathlib
import shutil

import pytest

import tlcourse
from tlcourse.checks import _twins

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = pathlib.Path(tlcourse.__file__).resolve().parent
KEEP = {"F", "torch", "nn", "np", "math", "len", "range", "float", "int", "sum", "zip"}  # delegation stays visible
MIN_STATEMENTS = 3  # shorter bodies are too generic to be an answer


class _Normalise(ast.NodeTransformer):
    def __init__(self):
        self.names: dict[str, str] = {}

    def _rename(self, name: str) -> str:
        return self.names.setdefault(name, f"v{len(self.names)}")

    def visit_arg(self, node):
        node.arg, node.annotation = self._rename(node.arg), None
        return node

    def visit_Name(self, node):
        if node.id not in KEEP:
            node.id = self._rename(node.id)
        return node

    def visit_FunctionDef(self, node):
        node.name, node.returns, node.decorator_list = "f", None, []
        body = node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
        self.generic_visit(node)
        return node

    visit_AsyncFunctionDef = visit_FunctionDef


def _normalised(fn: ast.AST) -> str:
    fn = ast.parse(ast.unparse(fn)).body[0]
    return ast.dump(_Normalise().visit(fn), annotate_fields=False)


def _functions(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if sum(isinstance(n, ast.stmt) for n in ast.walk(node)) - 1 >= MIN_STATEMENTS:
                yield node


def answer_functions(root: pathlib.Path = ROOT) -> list[tuple[str, str, str, str]]:
    """(notebook folder, grade_id, function name, normalised body) for every answer-cell function."""
    out = []
    for path in sorted(root.glob("solutions/*/*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if cell["cell_type"] != "code" or not meta.get("solution"):
                continue
            for fn in _functions(ast.parse("".join(cell["source"]))):
                out.append((path.parent.name, meta["grade_id"], fn.name, _normalised(fn)))
    return out


def package_functions(package: pathlib.Path = PACKAGE) -> list[tuple[pathlib.Path, int, int, str, str]]:
    """(file, first line, last line, name, normalised body) for every function in the package."""
    out = []
    for path in sorted(package.rglob("*.py")):
        for fn in _functions(ast.parse(path.read_text())):
            out.append((path.resolve(), fn.lineno, fn.end_lineno, fn.name, _normalised(fn)))
    return out


def _same(a: str, b: str) -> bool:
    if a == b:
        return True
    m = difflib.SequenceMatcher(None, a, b, autojunk=False)
    return m.real_quick_ratio() >= 0.9 and m.quick_ratio() >= 0.9 and m.ratio() >= 0.9  # cheap bounds first


def _question(folder: str, grade_id: str):
    """The checks' Question of an answer cell (05_domain_adaptation, q2_coral_solution: domain_adaptation.q2)."""
    topic = folder.split("_", 1)[1]
    mod = importlib.import_module(f"tlcourse.checks.{topic}")
    return getattr(mod, grade_id.split("_", 1)[0])


def _twin_spans(question) -> list[tuple[pathlib.Path, int, int]]:
    spans = []
    for name in question.twins:
        for obj in _twins.resolve(name):
            lines, start = inspect.getsourcelines(obj)
            spans.append((pathlib.Path(inspect.getsourcefile(obj)).resolve(), start, start + len(lines) - 1))
    return spans


def scan(package: pathlib.Path = PACKAGE, root: pathlib.Path = ROOT) -> list[str]:
    """Each package function equivalent to a graded answer and not a declared twin of that exercise."""
    pkg = package_functions(package)
    hits = []
    for folder, gid, name, body in answer_functions(root):
        allowed = _twin_spans(_question(folder, gid))
        for path, first, last, pname, pbody in pkg:
            if not _same(body, pbody):
                continue
            if any(path == p and s <= first and last <= e for p, s, e in allowed):
                continue
            hits.append(f"{folder} {gid}: {name} ~ {path}:{first} {pname}")
    return hits


def test_no_graded_answer_in_the_installed_package():
    answers = answer_functions()
    assert len(answers) >= 15, "the scan found too few answer functions to mean anything"
    hits = scan()
    assert not hits, "graded answers a student could import:\n" + "\n".join(hits)


def test_the_scan_finds_a_copied_answer(tmp_path):
    # A copy of notebook 02's unfreeze_last, renamed and with other local names, put into a copy of the package.
    pkg = tmp_path / "tlcourse"
    shutil.copytree(PACKAGE, pkg, ignore=shutil.ignore_patterns("__pycache__", "_data", "assets"))
    (pkg / "helpers_extra.py").write_text('''
def _set_last(layers, count, opt, rate):
    """Looks harmless."""
    total = len(layers)
    for idx, layer in enumerate(layers):
        for w in layer.parameters():
            w.requires_grad_(idx >= total - count)
    have = {id(w) for g in opt.param_groups for w in g["params"]}
    fresh = [w for layer in layers for w in layer.parameters() if w.requires_grad and id(w) not in have]
    if fresh:
        opt.add_param_group({"params": fresh, "lr": rate})
''')
    hits = scan(pkg)
    assert any("q3_unfreeze_solution" in h and "helpers_extra.py" in h for h in hits), hits


def test_the_scan_lets_a_declared_twin_through_but_not_an_undeclared_one(tmp_path, monkeypatch):
    from tlcourse.checks import domain_adaptation

    # The library's CORAL loss matches notebook 05's answer; it is q2's declared twin, so the scan allows it ...
    spans = _twin_spans(domain_adaptation.q2)
    assert spans
    assert not [h for h in scan() if "q2_coral_solution" in h]
    # ... and without the declaration the same function is reported.
    monkeypatch.setattr(domain_adaptation.q2, "twins", ())
    found = [h for h in scan() if "q2_coral_solution" in h]
    assert found, "the library's CORAL loss no longer matches notebook 05's answer: update this test's example"


def _questions():
    for path in sorted((PACKAGE / "checks").glob("[a-z]*.py")):
        mod = importlib.import_module(f"tlcourse.checks.{path.stem}")
        for qid, q in vars(mod.questions).items():
            if not qid.startswith("_"):
                yield f"{path.stem}.{qid}", q


@pytest.mark.parametrize("name, question", list(_questions()), ids=lambda v: v if isinstance(v, str) else "")
def test_every_twin_name_resolves_to_library_code(name, question):
    for twin in question.twins:
        objs = _twins.resolve(twin)
        assert objs, twin
        assert _twins.code_objects([twin]), f"{name}: {twin} has no Python code to watch"
        for obj in objs:
            assert getattr(obj, "__module__", "").startswith("tlcourse.")
            assert not getattr(obj, "__module__", "").startswith("tlcourse.checks")


def test_a_moved_twin_is_found_by_name_and_a_missing_one_fails_loudly():
    from tlcourse.checks import domain_adaptation

    real = _twins.resolve(domain_adaptation.q2.twins[0])
    assert _twins.resolve("tlcourse.somewhere_else." + domain_adaptation.q2.twins[0].rsplit(".", 1)[1]) == real
    with pytest.raises(LookupError, match="no longer exists"):
        _twins.resolve("tlcourse.somewhere_else.no_such_function_anywhere")


def test_every_exercise_that_has_a_library_twin_declares_it():
    # The library functions known to implement a graded idea, by exercise; a new one belongs in both places.
    declared = {name: set(q.twins) for name, q in _questions()}
    assert all(declared[name] for name in (
        "feature_extraction.q1", "feature_extraction.q2", "feature_extraction.q3", "fine_tuning.q3",
        "nlp_transfer.q1", "nlp_transfer.q2", "nlp_transfer.q3", "distillation.q2",
        "domain_adaptation.q1", "domain_adaptation.q2", "domain_adaptation.q3", "zero_shot.q3"))
