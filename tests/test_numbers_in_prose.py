"""Numbers in a notebook's conclusions come from the run, or say where they come from.

The rule (docs/DESIGN.md, "Numbers in prose"): in the prose that draws conclusions, i.e.

* the model answer of a written question (a markdown cell that nbgrader grades by hand:
  ``grade: true, solution: true``),
* a section whose heading names a conclusion (take-aways, conclusions, results, "... in practice",
  "reading the table honestly", ...), up to the next heading that does not, and
* the markdown after the notebook's last code cell (where a notebook ends, it concludes),

every number with a decimal point, and every percentage, is either printed by a code cell from the run's
variables, or carries a label in the same sentence that says where it comes from:
``(published: Hinton et al. 2015)``, ``(development run, 2 seeds)``, ``(docs/RESULTS.md, 3 seeds)``.
Mathematics (``$...$``) and code (backticks) are not prose and are not scanned.
"""
from __future__ import annotations

import json
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "solutions").glob("*/*.ipynb"))

# Notebooks whose owners are rewriting their prose while this test lands (issue 19): the scan's findings
# were reported to the lead. Strict, so the entry must go once the notebook passes.
PENDING: dict[str, str] = {}

CONCLUSION_HEADING = re.compile(
    r"take[- ]?aways?|conclu|results|in practice|reading the (table|results)|can and cannot"
    r"|right choice|what (did|do) we (buy|learn)", re.I)
BOLD_LEAD = re.compile(r"^\*\*(reading the (table|results)[^*]*|take[- ]?aways?[^*]*|in short[^*]*)\*\*", re.I)
NUMBER = re.compile(r"(?<![\w.])(?:\d+(?:\.\d+)?\s?%|\d*\.\d+(?!\w|\.\d))")
LABEL = re.compile(
    r"\([^()]*?\b(?:published:\s*[A-Z][^()]*\d{4}|development runs?,\s*\d+\s+seeds?"
    r"|docs/RESULTS\.md,\s*\d+\s+(?:seeds?|runs?))[^()]*\)")
NOT_PROSE = re.compile(r"```.*?```|\$\$.*?\$\$|\$[^$\n]+\$|`[^`\n]+`", re.S)
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z*_\[])|\n\s*\n|\n\s*[-*]\s|\n#")


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _heading(text: str) -> str | None:
    first = text.lstrip().splitlines()[0] if text.strip() else ""
    return first.lstrip("#").strip() if first.startswith("#") else None


def conclusion_cells(nb: dict) -> list[tuple[int, str, str]]:
    """(cell index, why it is a conclusion, text) for every markdown cell the rule covers."""
    cells = nb["cells"]
    last_code = max((i for i, c in enumerate(cells) if c["cell_type"] == "code"), default=-1)
    found, in_section = [], None
    for i, cell in enumerate(cells):
        if cell["cell_type"] != "markdown":
            continue
        text = _source(cell)
        meta = cell.get("metadata", {}).get("nbgrader", {})
        # a cell can hold several headings; the section it leaves open is set by its last one
        for line in text.splitlines():
            head = _heading(line) if line.startswith("#") else None
            if head is not None:
                in_section = head if CONCLUSION_HEADING.search(head) else None
        lead = BOLD_LEAD.match(text.strip())
        if meta.get("grade") and meta.get("solution"):
            found.append((i, f"model answer {meta.get('grade_id')}", text))
        elif any(CONCLUSION_HEADING.search(h) for h in
                 (_heading(ln) for ln in text.splitlines() if ln.startswith("#")) if h):
            found.append((i, "conclusion section", text))
        elif in_section:
            found.append((i, f"section '{in_section}'", text))
        elif lead:
            found.append((i, f"'{lead.group(1)}'", text))
        elif i > last_code:
            found.append((i, "after the last code cell", text))
    return found


def unlabelled_numbers(text: str) -> list[tuple[str, str]]:
    """(number, its sentence) for each decimal or percentage in prose without a source label."""
    prose = NOT_PROSE.sub(" ", text.replace("### BEGIN SOLUTION", "").replace("### END SOLUTION", ""))
    out = []
    for sentence in SENTENCE_END.split(prose):
        if not sentence or LABEL.search(sentence):
            continue
        for m in NUMBER.finditer(sentence):
            out.append((m.group(0), " ".join(sentence.split())[:160]))
    return out


def findings(path: pathlib.Path) -> list[str]:
    nb = json.loads(path.read_text())
    return [f"cell {i} ({why}): {num!r} in: {sentence}"
            for i, why, text in conclusion_cells(nb) for num, sentence in unlabelled_numbers(text)]


@pytest.mark.parametrize("path", [
    pytest.param(p, id=p.parent.name, marks=[pytest.mark.xfail(strict=True, reason=PENDING[p.parent.name])]
                 if p.parent.name in PENDING else [])
    for p in NOTEBOOKS])
def test_conclusions_state_only_numbers_from_the_run_or_labelled(path):
    found = findings(path)
    assert not found, (
        f"{path.relative_to(ROOT)}: numbers typed into conclusion prose without a source. Print them from the "
        "run's variables in a code cell, or label them in the same sentence, e.g. '(published: Hinton et al. "
        "2015)', '(development runs, 2 seeds)', '(docs/RESULTS.md, 3 seeds)':\n  " + "\n  ".join(found))


def test_every_solution_notebook_is_scanned():
    assert len(NOTEBOOKS) >= 6 and all(p.parent.name[:2].isdigit() for p in NOTEBOOKS)
    for p in NOTEBOOKS:
        nb = json.loads(p.read_text())
        assert conclusion_cells(nb), f"{p.parent.name}: no conclusion prose found to scan (how is it marked?)"


def _nb(*cells):
    return {"cells": [{"cell_type": t, "source": s, "metadata": m} for t, s, m in cells]}


ANSWER = {"nbgrader": {"grade": True, "solution": True, "grade_id": "q9_written", "points": 2}}


@pytest.mark.parametrize("text", [
    "### BEGIN SOLUTION\nThe probe reached about 0.74 against 0.5 from scratch.\n### END SOLUTION",
    "### BEGIN SOLUTION\nDistillation kept 93% of the teacher's accuracy.\n### END SOLUTION",
    "### BEGIN SOLUTION\nIt won (published: Ganin et al. 2016). Ours reached .75 on digits.\n### END SOLUTION",
])
def test_an_unlabelled_number_in_a_model_answer_is_found(text):
    nb = _nb(("code", "x = 1", {}), ("markdown", text, ANSWER), ("code", "y = 2", {}))
    assert [n for _, _, t in conclusion_cells(nb) for n in unlabelled_numbers(t)]


@pytest.mark.parametrize("cells", [
    [("code", "x = 1", {}), ("markdown", "## 9. Results\nSource-only reaches 0.45.", {}), ("code", "t", {})],
    [("code", "x = 1", {}), ("markdown", "## What to take away\n- **Cost:** fine", {}),
     ("markdown", "- soft targets lost 1.1 points on every seed", {}), ("code", "t", {})],
    [("code", "x = 1", {}), ("markdown", "**Reading the table honestly.** DANN gets 0.73.", {}), ("code", "t", {})],
    [("code", "x = 1", {}), ("markdown", "## Next steps\nIt reached 0.8 in our runs.", {})],
])
def test_an_unlabelled_number_in_a_conclusion_section_is_found(cells):
    found = [n for _, _, t in conclusion_cells(_nb(*cells)) for n in unlabelled_numbers(t)]
    assert found


@pytest.mark.parametrize("text", [
    "The teacher scored 0.824 (docs/RESULTS.md, 3 seeds).",
    "Distilled at T=20 it made 74 errors, 0.9926 accuracy (published: Hinton et al. 2015, MNIST).",
    "With 10 epochs the hard pseudo-labels reached 0.802 ± 0.002 (development runs, 2 seeds).",
    "The domain loss stays near $\\log 2 \\approx 0.69$, and the profile sets `lr=0.001`.",
    "The gap to the oracle shrinks by about half, on every seed.",
])
def test_labelled_or_formal_numbers_pass(text):
    nb = _nb(("code", "x = 1", {}), ("markdown", "## Take-aways\n" + text, {}))
    assert conclusion_cells(nb) and not unlabelled_numbers(conclusion_cells(nb)[0][2])


def test_prose_outside_conclusions_is_not_scanned():
    nb = _nb(("markdown", "## 2. Data\nMobileNetV2 (71.9% top-1) is the backbone.", {}), ("code", "x", {}))
    assert not conclusion_cells(nb)


RESULTS_MD = ROOT / "docs" / "RESULTS.md"
RESULTS_LABEL = re.compile(r"\([^()]*docs/RESULTS\.md,\s*\d+\s+(?:seeds?|runs?)[^()]*\)")
THREE_DECIMALS = re.compile(r"(?<![\w.])[+-]?\d\.\d{3}(?![\d])")


def numbers_missing_from_results(text: str, results: str) -> list[tuple[str, str]]:
    """(number, sentence) for each three-decimal figure in a sentence labelled '(docs/RESULTS.md, ...)' that
    docs/RESULTS.md does not contain: a quoted result that drifted from the table it cites."""
    prose = NOT_PROSE.sub(" ", text)
    out = []
    for sentence in SENTENCE_END.split(prose):
        if sentence and RESULTS_LABEL.search(sentence):
            for m in THREE_DECIMALS.finditer(sentence):
                if m.group(0).lstrip("+") not in results:
                    out.append((m.group(0), " ".join(sentence.split())[:160]))
    return out


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.parent.name for p in NOTEBOOKS])
def test_figures_cited_from_results_are_in_results(path):
    results = RESULTS_MD.read_text()
    nb = json.loads(path.read_text())
    missing = [f"cell {i}: {num} in: {sentence}"
               for i, cell in enumerate(nb["cells"]) if cell["cell_type"] == "markdown"
               for num, sentence in numbers_missing_from_results(_source(cell), results)]
    assert not missing, (f"{path.relative_to(ROOT)} cites docs/RESULTS.md for figures it does not contain (rerun "
                         "moved them?): quote the current figures:\n  " + "\n  ".join(missing))


def test_a_drifted_results_figure_is_found():
    results = "| DANN | 0.728 ± 0.041 | source-only | 0.456 ± 0.169 | +0.272 ± 0.135 | 3/3 |"
    assert not numbers_missing_from_results("DANN reached 0.728, +0.272 over 0.456 (docs/RESULTS.md, 3 seeds).",
                                            results)
    assert numbers_missing_from_results("DANN reached 0.733 (docs/RESULTS.md, 3 seeds).", results) == [
        ("0.733", "DANN reached 0.733 (docs/RESULTS.md, 3 seeds).")]
    assert not numbers_missing_from_results("DANN reached 0.733 (development run, 1 seed).", results)
