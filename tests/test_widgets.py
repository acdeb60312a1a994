"""tlcourse.widgets: the frontend decision and the shared widget plumbing (the explorers are tested with their
lessons, in test_feature_extraction.py and test_fine_tuning_widgets.py)."""
from __future__ import annotations

import sys
import types

import matplotlib.pyplot as plt
import pytest

from tlcourse import widgets
from tlcourse.widgets import widget_frontend


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# ---------------------------------------------------------------- widget_frontend

def _fake_shell(monkeypatch, allow_stdin):
    parent = {"content": {"code": "x", "allow_stdin": allow_stdin}}
    kernel = types.SimpleNamespace(get_parent=lambda: parent)
    shell = types.SimpleNamespace(kernel=kernel)
    import IPython
    monkeypatch.setattr(IPython, "get_ipython", lambda: shell)


def test_no_kernel_means_no_widgets(monkeypatch):
    monkeypatch.delenv(widgets.WIDGETS_ENV, raising=False)
    assert widget_frontend() is False


@pytest.mark.parametrize("allow_stdin, expected", [(True, True), (False, False)])
def test_frontend_is_judged_from_the_execute_request(monkeypatch, allow_stdin, expected):
    monkeypatch.delenv(widgets.WIDGETS_ENV, raising=False)
    _fake_shell(monkeypatch, allow_stdin)
    assert widget_frontend() is expected


def test_environment_overrides_the_request(monkeypatch):
    _fake_shell(monkeypatch, allow_stdin=True)
    monkeypatch.setenv(widgets.WIDGETS_ENV, "static")
    assert widget_frontend() is False
    _fake_shell(monkeypatch, allow_stdin=False)
    monkeypatch.setenv(widgets.WIDGETS_ENV, "interactive")
    assert widget_frontend() is True


def test_bad_environment_value_says_what_to_do(monkeypatch):
    monkeypatch.setenv(widgets.WIDGETS_ENV, "sometimes")
    with pytest.raises(ValueError, match="auto, interactive, static"):
        widget_frontend()


def test_real_kernel_headless_and_interactive_requests():
    """In a real ipykernel: an executor's request (allow_stdin=False) gets the static path, a person's does not."""
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3")
    try:
        def run(code, allow_stdin):
            msg_id = kc.execute(code, allow_stdin=allow_stdin)
            text = []
            while True:
                msg = kc.get_iopub_msg(timeout=60)
                if msg["parent_header"].get("msg_id") != msg_id:
                    continue
                if msg["msg_type"] == "stream":
                    text.append(msg["content"]["text"])
                elif msg["msg_type"] == "error":
                    raise AssertionError("\n".join(msg["content"]["traceback"]))
                elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                    return "".join(text).strip()

        setup = "import os; os.environ.pop('TLCOURSE_WIDGETS', None); from tlcourse.widgets import widget_frontend"
        run(setup, False)
        assert run("print(widget_frontend())", allow_stdin=False) == "False"
        assert run("print(widget_frontend())", allow_stdin=True) == "True"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_module_imports_without_ipython_display(monkeypatch):
    # _display must be a no-op, not an error, when IPython.display is unavailable
    monkeypatch.setitem(sys.modules, "IPython.display", None)
    widgets._display(object())
