"""Hints teach without giving the answer away: no hint holds code of its exercise's solution.

A question ``qN`` of ``tlcourse/checks/<topic>.py`` belongs to the solution cells
whose grade id starts with ``qN_`` in ``solutions/NN_<topic>/``. Text is compared
with white space removed: a hint fails when it contains a whole line of the
answer, or when one of its inline code spans (between backticks) is a piece of
the answer of 12 or more characters that is a computation — a hint may name a
function, an attribute or a flag (`torch.no_grad()`, `requires_grad`), not
type the computation (`(a + b).backward()`, `not freeze`).
"""
from __future__ import annotations

import importlib
import json
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
MIN_SPAN, MIN_LINE = 12, 15


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _lessons() -> list[tuple[str, str]]:
    out = []
    for folder in sorted((ROOT / "solutions").iterdir()):
        topic = folder.name.split("_", 1)[1] if "_" in folder.name else folder.name
        if (ROOT / "tlcourse" / "checks" / f"{topic}.py").exists():
            out.append((folder.name, topic))
    return out


def _answers(assignment: str) -> dict[str, list[str]]:
    """Question id -> the code lines of its solution regions."""
    out: dict[str, list[str]] = {}
    for path in (ROOT / "solutions" / assignment).glob("*.ipynb"):
        for cell in json.loads(path.read_text())["cells"]:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if cell["cell_type"] != "code" or not meta.get("solution"):
                continue
            qid = meta["grade_id"].split("_", 1)[0]
            source = "".join(cell["source"])
            regions = re.findall(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", source, flags=re.S)
            lines = [ln.split("#", 1)[0].strip() for region in regions for ln in region.splitlines()]
            out.setdefault(qid, []).extend(ln for ln in lines if ln)
    return out


def leaks(hint: str, answer_lines: list[str]) -> list[str]:
    """The pieces of ``hint`` that give away code of the answer."""
    squashed_hint = _squash(hint)
    answer = "\n".join(_squash(ln) for ln in answer_lines)
    found = [ln for ln in answer_lines if len(_squash(ln)) >= MIN_LINE and _squash(ln) in squashed_hint]
    for span in re.findall(r"`([^`]+)`", hint):
        if re.fullmatch(r"[\w.]+(\(\))?", span.strip()):
            continue  # a bare name: where to look, not what to write
        if len(_squash(span)) >= MIN_SPAN and _squash(span) in answer:
            found.append(span)
    return found


_TOKEN = re.compile(r"[A-Za-z_]\w*|\d+(?:\.\d+)?|\*\*|//|[-+*/@%\[\]()]")
_ARITH = {"+", "-", "*", "/", "//", "**", "@", "%"}
MIN_TOKENS = 6


def _shape(text: str) -> list[str]:
    """Code tokens with every name made the same: `len(prompt) - 1 + i` and `len(ids) - 1 + k` look alike."""
    return ["N" if re.fullmatch(r"[A-Za-z_]\w*", t) else t for t in _TOKEN.findall(text)]


def _expressions(answer_lines: list[str]) -> list[str]:
    """The arithmetic sub-expressions of the answer (an index computation, a normalisation...)."""
    import ast
    out = []
    for line in answer_lines:
        for text in (line, line + "\n    pass"):
            try:
                tree = ast.parse(text.strip())
                break
            except SyntaxError:
                tree = None
        if tree is None:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.BinOp):
                out.append(ast.unparse(node))
    return out


def shape_leaks(hint: str, answer_lines: list[str]) -> list[str]:
    """Arithmetic of the answer that the hint spells out, whatever the names it uses in it."""
    hint_shape = " " + " ".join(_shape(hint)) + " "
    found = []
    for expr in _expressions(answer_lines):
        shape = _shape(expr)
        if len(shape) >= MIN_TOKENS and _ARITH & set(shape) and " " + " ".join(shape) + " " in hint_shape:
            found.append(expr)
    return found


LESSONS = _lessons()


@pytest.mark.parametrize("assignment,topic", LESSONS, ids=[a for a, _ in LESSONS])
def test_no_hint_contains_code_of_its_answer(assignment, topic):
    checks = importlib.import_module(f"tlcourse.checks.{topic}")
    answers = _answers(assignment)
    questions = [v for k, v in vars(checks).items() if re.fullmatch(r"q\d+", k)]
    assert questions, f"tlcourse/checks/{topic}.py defines no q1, q2, ..."
    bad = {}
    for q in questions:
        for level, hint in enumerate(q.hints, start=1):
            found = leaks(hint, answers.get(q.qid, [])) + shape_leaks(hint, answers.get(q.qid, []))
            if found:
                bad[f"{q.qid} hint {level}"] = found
    assert not bad, f"hints that type the answer (say it in words instead): {bad}"


@pytest.mark.parametrize("assignment,topic", LESSONS, ids=[a for a, _ in LESSONS])
def test_every_question_has_three_tiers_of_hints(assignment, topic):
    checks = importlib.import_module(f"tlcourse.checks.{topic}")
    for k, q in vars(checks).items():
        if re.fullmatch(r"q\d+", k):
            assert len(q.hints) == 3, f"{topic}.{k}: concept -> where to look -> the computation in words"


def test_the_leak_rule_catches_a_typed_answer_and_passes_words():
    answer = ["loss = F.cross_entropy(logits / temperature, targets)", "return loss.item()"]
    assert leaks("Divide the logits by the temperature, then use cross-entropy.", answer) == []
    assert leaks("Use `F.cross_entropy` on the scaled logits, then `loss.item()`.", answer) == []  # names are fine
    assert leaks("Write `F.cross_entropy(logits / temperature, targets)`.", answer)
    assert leaks("The last line is return loss . item ( )", answer) == ["return loss.item()"]  # spacing does not hide it
    assert leaks("loss = F.cross_entropy(logits/temperature, targets) does it", answer)


def test_the_shape_rule_catches_an_index_typed_with_other_names():
    answer = ["return sum(logprobs[len(prompt_ids) - 1 + i, tok].item() for i, tok in enumerate(label_ids))"]
    assert shape_leaks("for each label position i pick row len(prompt) - 1 + i at column label_ids[i]", answer)
    assert not shape_leaks("each label token is scored by the position just before it", answer)
    assert not shape_leaks("use log-softmax over the vocabulary, then add the label tokens' scores", answer)
