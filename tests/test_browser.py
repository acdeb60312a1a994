"""The course where people meet it: JupyterLab in headless Chromium, driven by Playwright.

One JupyterLab server (127.0.0.1, random token, temporary HOME and Jupyter
folders) serves a copy of the course whose notebook 01 is the
solution-filled one. The module runs it once, top to bottom, and the tests
then check, from the notebook model and from the page:

- no cell raised; progress bars and figures rendered; the label-budget
  slider answers a key press;
- nbgrader's Formgrader and Assignment List list the course's assignments;
- a page of the static course site built from that run shows its figures
  and no solution.

Screenshots go to ``tests/artifacts/browser/`` (gitignored; CI keeps them as
artefacts). Needs ``/usr/bin/chromium`` (``make test`` installs Debian's
chromium and chromium-driver when it is missing) and the ``playwright``
package; ``playwright install`` is never needed. Run apart with
``pytest -m browser``; skip with ``-m "not browser"``.
"""
from __future__ import annotations

import json
import os
import re
import pathlib
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from tlcourse.grading.config import assignments

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = pathlib.Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "tests" / "artifacts" / "browser"
CHROMIUM = pathlib.Path("/usr/bin/chromium")
NOTEBOOK = "course/01_feature_extraction/01_feature_extraction.ipynb"
ASSIGNMENTS = assignments(ROOT)
# Keep Chromium off the network and quiet (see ../shared/notes/browser-test.md).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _course_copy(base: pathlib.Path) -> pathlib.Path:
    """A course folder for JupyterLab: course/ with 01 solution-filled, solutions/, an nbgrader exchange."""
    root = base / "course-root"
    shutil.copytree(ROOT / "solutions", root / "solutions")
    shutil.copytree(ROOT / "course", root / "course")
    shutil.copy(ROOT / "solutions" / NOTEBOOK.split("/", 1)[1], root / NOTEBOOK)
    exchange = base / "exchange"
    exchange.mkdir()
    os.chmod(exchange, 0o777)  # nbgrader refuses an exchange that students could not write to
    config = (ROOT / "nbgrader_config.py").read_text()
    config += (f"\nc.Exchange.root = {str(exchange)!r}\n"
               f"c.CourseDirectory.db_url = 'sqlite:///{root}/gradebook.db'\n"
               f"c.CourseDirectory.root = {str(root)!r}\n")
    (root / "nbgrader_config.py").write_text(config)
    return root


def _release_to_exchange(root: pathlib.Path, env: dict) -> None:
    """Put every assignment in the gradebook and the exchange, as an instructor's release would."""
    script = (
        "import sys\n"
        "from nbgrader.apps import NbGraderAPI\n"
        "from nbgrader.coursedir import CourseDirectory\n"
        "from nbgrader.api import Gradebook\n"
        "from traitlets.config.loader import PyFileConfigLoader\n"
        "cfg = PyFileConfigLoader('nbgrader_config.py', path='.').load_config()\n"
        "api = NbGraderAPI(coursedir=CourseDirectory(config=cfg), config=cfg)\n"
        "with Gradebook(cfg.CourseDirectory.db_url) as gb:\n"
        "    for a in sys.argv[1:]:\n"
        "        gb.update_or_create_assignment(a)\n"
        "for a in sys.argv[1:]:\n"
        "    r = api.release_assignment(a)\n"
        "    assert r['success'], r.get('error') or r.get('log')\n"
    )
    subprocess.run([sys.executable, "-c", script, *ASSIGNMENTS], cwd=root, env=env, check=True,
                   capture_output=True, timeout=300)


def _jupyter_env(home: pathlib.Path) -> dict:
    env = dict(os.environ)
    for key in ("MPLBACKEND", "TLCOURSE_WIDGETS"):  # Agg would hide every figure; widgets decide for themselves
        env.pop(key, None)
    bindir = str(pathlib.Path(sys.executable).parent)
    env.update(HOME=str(home), JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_DATA_DIR=str(home / "data"),
               JUPYTER_RUNTIME_DIR=str(home / "runtime"), PATH=bindir + os.pathsep + env.get("PATH", ""),
               TLCOURSE_PROFILE="quick", TLCOURSE_CACHE=str(home / "cache"))  # cold: features show a bar
    settings = home / "config" / "lab" / "user-settings" / "@jupyterlab"
    (settings / "apputils-extension").mkdir(parents=True)
    (settings / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    (settings / "notebook-extension").mkdir(parents=True)
    # Render every cell, not only those in view, so the page can be checked as a whole.
    (settings / "notebook-extension" / "tracker.jupyterlab-settings").write_text(
        json.dumps({"windowingMode": "none"}))
    return env


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium chromium-driver); "
                    "or deselect these tests with -m 'not browser'")
    try:
        import playwright.sync_api as playwright_api
    except ImportError:
        pytest.fail("playwright is missing: `make setup` (pip install -r requirements/test.txt) installs it; "
                    "or deselect these tests with -m 'not browser'")
    base = tmp_path_factory.mktemp("browser")
    root = _course_copy(base)
    env = _jupyter_env(base / "home")
    _release_to_exchange(root, env)
    port, token = _free_port(), secrets.token_hex(16)
    jupyter = pathlib.Path(sys.executable).parent / "jupyter"
    log = open(base / "jupyterlab.log", "wb")
    server = subprocess.Popen(
        [str(jupyter), "lab", "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", "--LabApp.expose_app_in_browser=True",
         f"--ServerApp.root_dir={root}"],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("JupyterLab did not start:\n"
                                         + (base / "jupyterlab.log").read_text(errors="replace")[-3000:])
                time.sleep(0.5)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        with playwright_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(120_000)
            yield dict(page=page, url=url, token=token, root=root, base=base)
            browser.close()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()


def _shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


MODEL_OUTPUTS_JS = """() => {
  const model = window.jupyterapp.shell.currentWidget.content.model;
  const cells = [];
  for (let i = 0; i < model.cells.length; i++) {
    const cell = model.cells.get(i);
    cells.push({type: cell.type, outputs: cell.type === 'code' ? cell.outputs.toJSON() : []});
  }
  return cells;
}"""


LIVE_PROGRESS_JS = """() => {
  const bar = document.querySelector('.widget-hprogress .progress-bar');
  if (!bar) return null;
  bar.scrollIntoView({block: 'center'});
  const row = bar.closest('.widget-hbox');
  return {width: bar.style.width, counts: row ? [row.innerText] : []};
}"""


@pytest.fixture(scope="module")
def notebook_run(lab):
    """Open course/01 (solution-filled), wait for the kernel, run every cell; returns the model's cells."""
    page, url, token = lab["page"], lab["url"], lab["token"]
    page.goto(f"{url}/lab/tree/{NOTEBOOK}?reset&token={token}")
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell")
    page.evaluate("async () => { await window.jupyterapp.shell.currentWidget.sessionContext.ready; }")
    page.wait_for_function(
        "() => window.jupyterapp.shell.currentWidget.sessionContext.session?.kernel?.status === 'idle'")
    t0 = time.perf_counter()
    page.evaluate("() => { window._tlRunAll = window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    # tqdm bars use leave=False: they exist only while their loop runs, so catch one live.
    progress = page.wait_for_function(LIVE_PROGRESS_JS, timeout=600_000).json_value()
    _shot(page, "01_progress_bar")
    ok = page.evaluate("async () => await window._tlRunAll")
    seconds = time.perf_counter() - t0
    cells = page.evaluate(MODEL_OUTPUTS_JS)
    page.evaluate("async () => await window.jupyterapp.commands.execute('docmanager:save')")
    print(f"run-all of {NOTEBOOK} in JupyterLab: {seconds:.0f} s")
    return dict(ok=ok, cells=cells, seconds=seconds, progress=progress)


def _outputs(cells, kind=None):
    return [o for c in cells for o in c["outputs"] if kind is None or kind in o.get("data", {})]


def test_notebook_runs_without_errors(notebook_run):
    errors = [f"{o['ename']}: {o['evalue']}" for c in notebook_run["cells"] for o in c["outputs"]
              if o["output_type"] == "error"]
    assert not errors, f"cells raised: {errors}"
    assert notebook_run["ok"] is True
    unrun = [i for i, c in enumerate(notebook_run["cells"]) if c["type"] == "code" and not c["outputs"]]
    assert len(unrun) < len([c for c in notebook_run["cells"] if c["type"] == "code"]), "nothing ran"


def test_figures_and_progress_bars_render(lab, notebook_run):
    page = lab["page"]
    assert len(_outputs(notebook_run["cells"], "image/png")) >= 4, "expected the notebook's figures"
    assert _outputs(notebook_run["cells"], "application/vnd.jupyter.widget-view+json"), "no widget output"
    images = page.locator(".jp-OutputArea-output[data-mime-type='image/png'] img")
    widths = images.evaluate_all("els => els.map(e => e.naturalWidth)")
    assert sum(w > 100 for w in widths) >= 4, f"rendered figure widths: {widths}"
    progress = notebook_run["progress"]  # a tqdm bar seen live during the run
    assert re.fullmatch(r"\d+(\.\d+)?%", progress["width"]), progress
    # caught at its first paint: the bar and tqdm's description ("features"); the n/N text comes later
    assert any("features" in t for t in progress["counts"]), f"not extract_features' bar: {progress}"
    page.locator(".jp-OutputArea-output[data-mime-type='image/png'] img").first.scroll_into_view_if_needed()
    _shot(page, "01_notebook_figures")


def test_label_budget_slider_responds(lab, notebook_run):
    page = lab["page"]
    explorer = page.locator(".widget-vbox", has=page.locator(".widget-hslider")).filter(
        has_text="labels per class").first
    explorer.scroll_into_view_if_needed()
    summary = explorer.locator(".widget-html-content").filter(has_text="labels per class")
    first = summary.inner_text()
    image = explorer.locator("img.widget-image").first
    first_src = image.get_attribute("src")
    handle = explorer.locator(".widget-hslider [role=slider]")
    before = handle.get_attribute("aria-valuenow")
    handle.focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_function("([el, old]) => el.innerText !== old", arg=[summary.element_handle(), first])
    assert handle.get_attribute("aria-valuenow") != before
    assert summary.inner_text() != first and "labels per class" in summary.inner_text()
    page.wait_for_function("([el, old]) => el.getAttribute('src') !== old", arg=[image.element_handle(), first_src])
    _shot(page, "01_label_budget_slider")


def test_formgrader_and_assignment_list_show_the_course(lab):
    page = lab["page"]
    page.evaluate("async () => await window.jupyterapp.commands.execute('nbgrader:open-formgrader')")
    frame = page.frame_locator(".lm-DockPanel-widget:visible iframe")
    for a in ASSIGNMENTS:
        frame.get_by_text(a, exact=True).first.wait_for()
    _shot(page, "formgrader")
    page.evaluate("async () => await window.jupyterapp.commands.execute('nbgrader:open-assignment-list')")
    page.get_by_text("Released assignments").first.wait_for()
    panel = page.locator(".lm-DockPanel-widget:visible").filter(has_text="Released assignments").first
    for a in ASSIGNMENTS:
        panel.get_by_text(a, exact=True).first.wait_for()
    _shot(page, "assignment_list")


def test_site_page_built_from_the_run(lab, notebook_run, tmp_path):
    """The public site page of 01, built from the notebook JupyterLab just ran and saved."""
    from tlcourse.site import build_site

    executed = tmp_path / "executed" / "01_feature_extraction"
    executed.mkdir(parents=True)
    shutil.copy(lab["root"] / NOTEBOOK, executed / "01_feature_extraction.ipynb")
    index = build_site(tmp_path / "site", executed=tmp_path / "executed", only=["01_feature_extraction"],
                       root=ROOT, log=lambda *_: None)
    page = lab["page"]
    page.goto(index.as_uri())
    page.get_by_role("link", name="01 · Feature extraction", exact=False).first.click()
    page.wait_for_load_state("load")
    widths = page.locator("img").evaluate_all("els => els.map(e => e.naturalWidth)")
    assert sum(w > 100 for w in widths) >= 4, f"site page figure widths: {widths}"
    text = page.locator("body").inner_text()
    assert "raise NotImplementedError()" in text and "BEGIN SOLUTION" not in text
    assert "p.requires_grad_(False)" not in text, "the public page shows the solution of exercise 1"
    page.get_by_text("How many labels does transfer save?").first.scroll_into_view_if_needed()
    _shot(page, "site_page_01")


def test_feedback_page_in_the_browser(lab, tmp_path):
    """A student's feedback page as `tlcourse feedback` renders it: score, messages, hints that open, class link."""
    from tlcourse.grading.feedback import Question, render_class, render_submission

    row = {"student": "ada", "assignment": "01_feature_extraction", "status": "graded", "score": "6.0",
           "max_score": "10.0", "needs_manual_grading": "q4_written"}
    questions = [
        Question("q1_freeze_tests", 2.0, 2.0),
        Question("q2_extract_tests", 3.0, 0.0, messages=["Not quite: the features differ between two calls on the "
                 "same images: the backbone is still in training mode, so BatchNorm uses batch statistics."],
                 hints=["Features must be deterministic and must not build an autograd graph.",
                        "Put the backbone in evaluation mode and switch gradient tracking off.",
                        "Collect every batch's outputs and labels, and join them once at the end."]),
        Question("q3_head_tests", 3.0, 2.0, hidden_failed=True),
        Question("q4_written", 2.0, None, manual=True, comment="Good reasoning; say which numbers you compared."),
    ]
    folder = tmp_path / "feedback"
    (folder / "ada").mkdir(parents=True)
    (folder / "class").mkdir()
    (folder / "ada" / "01_feature_extraction.html").write_text(render_submission(row, questions))
    (folder / "class" / "01_feature_extraction.html").write_text(
        render_class("01_feature_extraction", [(row, questions), (dict(row, student="bo"), questions)]))
    page = lab["page"]
    page.goto((folder / "ada" / "01_feature_extraction.html").as_uri())
    page.get_by_text("Hints").first.click()
    assert page.get_by_text("evaluation mode").first.is_visible()
    text = page.locator("body").inner_text()
    assert "Score: 6.0 / 10.0" in text and "A hidden test of this question failed" in text
    assert "Grader's comment" in text
    _shot(page, "feedback_page")
    page.get_by_role("link", name="where the class struggled").click()
    page.wait_for_load_state("load")
    assert "2 students: Not quite" in page.locator("body").inner_text()
    assert "ada" not in page.content()
    _shot(page, "feedback_class_page")
