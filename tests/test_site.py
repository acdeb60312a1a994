"""tlcourse.site: the public build leaks no solution or hidden test; the instructor build shows them.

One public build of all six notebooks (rendered without executing; for 01
an "executed" notebook with planted outputs stands in for a real run) and
one instructor build of 01 serve every test here.
"""
from __future__ import annotations

import html
import pathlib
import re
import shutil
from html.parser import HTMLParser

import nbformat
import pytest

from tlcourse.cli import main as cli_main
from tlcourse.grading.config import assignments
from tlcourse.site import SiteError, build_site, headings, public_notebook

ROOT = pathlib.Path(__file__).resolve().parents[1]
ASSIGNMENTS = assignments(ROOT)
FIRST = "01_feature_extraction"
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
PLANTED_FIGURE = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
PLANTED_SOLUTION_OUTPUT = "output printed by a solution cell 7d1f"
PLANTED_TEST_OUTPUT = "output printed by a test cell 9c2e"
PLANTED_RESULT = "results table of a narrative cell 4b7a"


class _Text(HTMLParser):
    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        self._skip += tag in ("style", "script")

    def handle_endtag(self, tag):
        self._skip -= tag in ("style", "script")

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def page_text(path: pathlib.Path) -> str:
    """What a reader sees: the page's text without markup (code is split into highlighted spans)."""
    parser = _Text()
    parser.feed(path.read_text(encoding="utf-8"))
    return html.unescape("".join(parser.parts))


def _region(source: str, begin: str, end: str) -> list[str]:
    found = []
    for chunk in source.split(begin)[1:]:
        found += [ln.strip() for ln in chunk.split(end)[0].splitlines()]
    return [ln for ln in found if len(ln) > 25 and not ln.startswith("#")]


def secret_lines(assignment: str) -> dict[str, list[str]]:
    """Long solution lines (code and written answers) and hidden-test lines of a solution notebook."""
    secrets = {"solution": [], "hidden": []}
    for path in (ROOT / "solutions" / assignment).glob("*.ipynb"):
        for cell in nbformat.read(path, as_version=4).cells:
            secrets["solution"] += _region(cell.source, "BEGIN SOLUTION", "END SOLUTION")
            secrets["hidden"] += _region(cell.source, "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
    return secrets


def _planted(assignment: str) -> nbformat.NotebookNode:
    nb = nbformat.read(ROOT / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    narrative = [c for c in nb.cells if c.cell_type == "code" and "nbgrader" not in c.metadata]
    solution = [c for c in nb.cells if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution")]
    tests = [c for c in nb.cells if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")]
    narrative[-1].outputs = [nbformat.v4.new_output("display_data", data={"image/png": PLANTED_FIGURE,
                                                                          "text/plain": "<Figure>"}),
                             nbformat.v4.new_output("stream", name="stdout", text=PLANTED_RESULT)]
    solution[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text=PLANTED_SOLUTION_OUTPUT)]
    tests[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text=PLANTED_TEST_OUTPUT)]
    return nb


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("site")
    executed = tmp / "executed"
    for a in ASSIGNMENTS:  # unexecuted copies, except 01 with planted outputs
        (executed / a).mkdir(parents=True)
        for nb in (ROOT / "solutions" / a).glob("*.ipynb"):
            shutil.copy(nb, executed / a / nb.name)
    nbformat.write(_planted(FIRST), executed / FIRST / f"{FIRST}.ipynb")
    public = build_site(tmp / "public", executed=executed, root=ROOT, log=lambda *_: None).parent
    instructor = build_site(tmp / "instructor", kind="instructor", executed=executed, only=[FIRST], root=ROOT,
                            log=lambda *_: None).parent
    return public, instructor


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_public_build_leaks_no_solution_or_hidden_test(sites, assignment):
    public, _ = sites
    page = public / f"{assignment}.html"
    text = page_text(page)
    secrets = secret_lines(assignment)
    assert secrets["solution"] and secrets["hidden"], "the secret-line finder found nothing to look for"
    assert not [m for m in MARKERS if m in text], f"{page} shows nbgrader markers"
    leaked = [ln for kind in ("solution", "hidden") for ln in secrets[kind] if ln in text]
    assert not leaked, f"{page} leaks: {leaked[:3]}"
    assert "raise NotImplementedError()" in text, "the exercises should show the student stub"


def test_instructor_build_shows_what_the_public_build_hides(sites):
    _, instructor = sites
    text = page_text(instructor / f"{FIRST}.html")
    secrets = secret_lines(FIRST)
    # markdown emphasis and inline code render as tags, so compare without their markers on both sides
    plain = lambda t: t.replace("*", "").replace("`", "")  # noqa: E731
    missing = [ln for ln in secrets["solution"] if not ln.startswith("###") and plain(ln) not in plain(text)]
    assert not missing, missing[:3]
    assert any(ln in text for ln in secrets["hidden"])
    assert PLANTED_SOLUTION_OUTPUT in text and PLANTED_TEST_OUTPUT in text
    assert "Do not publish" in text


def test_public_build_keeps_figures_and_results_but_not_exercise_output(sites):
    public, _ = sites
    raw = (public / f"{FIRST}.html").read_text(encoding="utf-8")
    text = page_text(public / f"{FIRST}.html")
    assert f"data:image/png;base64,{PLANTED_FIGURE}" in raw
    assert PLANTED_RESULT in text
    assert PLANTED_SOLUTION_OUTPUT not in text and PLANTED_TEST_OUTPUT not in text


def test_index_lists_every_notebook_and_its_sections_with_working_anchors(sites):
    public, _ = sites
    index = (public / "index.html").read_text(encoding="utf-8")
    links = re.findall(r'href="([^"#]+\.html)(?:#([^"]*))?"', index)
    pages = {page for page, _ in links}
    assert pages == {f"{a}.html" for a in ASSIGNMENTS}
    for page, anchor in links:
        if anchor:
            ids = {hid for _, hid, _ in headings((public / page).read_text(encoding="utf-8"))}
            assert html.unescape(anchor) in ids, f"index links to a missing section {page}#{anchor}"
    assert sum(1 for _, anchor in links if anchor) >= 3 * len(ASSIGNMENTS)
    # every page links back to the contents and on to the next notebook
    first = (public / f"{ASSIGNMENTS[0]}.html").read_text(encoding="utf-8")
    assert 'href="index.html"' in first and f'href="{ASSIGNMENTS[1]}.html"' in first


def test_stale_release_is_refused_with_the_fix():
    student = nbformat.read(ROOT / "course" / FIRST / f"{FIRST}.ipynb", as_version=4)
    executed = nbformat.read(ROOT / "solutions" / FIRST / f"{FIRST}.ipynb", as_version=4)
    narrative = next(c for c in executed.cells if c.cell_type == "code" and "nbgrader" not in c.metadata)
    narrative.source += "\nprint('edited after the release')"
    with pytest.raises(SiteError, match="tlcourse release"):
        public_notebook(student, executed, FIRST)
    executed.cells.pop()
    with pytest.raises(SiteError, match="cells"):
        public_notebook(student, executed, FIRST)


def test_bad_requests_say_what_to_do(tmp_path):
    with pytest.raises(SiteError, match="choose from"):
        build_site(tmp_path / "s", execute=False, only=["99_nope"], root=ROOT)
    with pytest.raises(SiteError, match="no such folder"):
        build_site(tmp_path / "s", executed=tmp_path / "missing", root=ROOT)
    with pytest.raises(SiteError, match="is missing"):
        (tmp_path / "empty").mkdir()
        build_site(tmp_path / "s", executed=tmp_path / "empty", only=[FIRST], root=ROOT)
    assert not (tmp_path / "s").exists(), "a failed build must not leave a half-built site"


def test_cli_builds_a_site_and_replaces_the_old_one(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    out = tmp_path / "site"
    out.mkdir()
    (out / "stale.html").write_text("old")
    assert cli_main(["site", "--no-execute", "--assignment", FIRST, "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["01_feature_extraction.html", "index.html"]
    assert cli_main(["site", "--no-execute", "--assignment", "nope", "--out", str(out)]) == 1
    assert "choose from" in capsys.readouterr().err
    assert (out / "index.html").exists(), "a failed build must keep the previous site"


def _tiny_course(root: pathlib.Path) -> None:
    """A one-notebook course: a figure, a printed result, a widget check and one exercise."""
    def notebook(solution_source):
        exercise = nbformat.v4.new_code_cell(solution_source)
        exercise.metadata["nbgrader"] = {"solution": True, "grade": False, "grade_id": "ex", "locked": False,
                                         "schema_version": 3, "task": False}
        return nbformat.v4.new_notebook(cells=[
            nbformat.v4.new_markdown_cell("# Tiny course\n\n## A figure"),
            nbformat.v4.new_code_cell("import matplotlib.pyplot as plt\nplt.plot([0, 1], [1, 0])\n"
                                      "print('result 42')"),
            nbformat.v4.new_code_cell("from tlcourse.widgets import widget_frontend\n"
                                      "print('widgets shown:', widget_frontend())"),
            exercise], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                "language": "python"}})
    for folder, source in (("solutions", "### BEGIN SOLUTION\nsecret_answer_value = 7\n### END SOLUTION"),
                           ("course", "# YOUR CODE HERE\nraise NotImplementedError()")):
        (root / folder / "01_tiny").mkdir(parents=True)
        nbformat.write(notebook(source), root / folder / "01_tiny" / "01_tiny.ipynb")


def test_site_executes_the_solutions_headless_with_inline_figures(tmp_path):
    _tiny_course(tmp_path)
    index = build_site(tmp_path / "out", root=tmp_path, log=lambda *_: None)
    page = index.parent / "01_tiny.html"
    raw, text = page.read_text(encoding="utf-8"), page_text(page)
    assert "data:image/png;base64," in raw, "the figure was not captured (MPLBACKEND=Agg leaked in?)"
    assert "result 42" in text and "widgets shown: False" in text
    assert "secret_answer_value" not in text and "raise NotImplementedError()" in text
    assert 'href="01_tiny.html#A-figure"' in index.read_text(encoding="utf-8")
