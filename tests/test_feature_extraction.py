"""tlcourse.lessons.feature_extraction: the label-budget explorer, headless (a static figure and a printed
table) and interactive (ipywidgets built without a frontend; moving the slider must change the numbers and the
picture)."""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import pytest

from tlcourse.lessons.feature_extraction import label_budget_explorer, labels_to_match

RESULTS = {
    "pretrained features + linear head": {10: [0.72, 0.74], 50: [0.79, 0.80], 200: [0.84, 0.83]},
    "pixels + linear head": {10: [0.70, 0.69], 50: [0.74, 0.75], 200: [0.77, 0.78]},
    "CNN from scratch": {10: [0.50], 50: [0.70], 200: [0.85]},
}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")



def test_labels_to_match_interpolates_in_log_budget():
    curve = {10: 0.5, 100: 0.7}
    k, how = labels_to_match(curve, 0.6)
    assert how == "about" and k == pytest.approx(math.sqrt(10 * 100))
    assert labels_to_match(curve, 0.4) == (10.0, "at most")
    assert labels_to_match(curve, 0.9) == (100.0, "more than")
    # a dip in the curve: the first crossing counts
    assert labels_to_match({10: 0.5, 50: 0.8, 200: 0.6}, 0.65)[1] == "about"


def test_label_budget_explorer_headless_prints_every_budget(capsys):
    fig = label_budget_explorer(RESULTS, chance=0.1, interactive=False)
    text = capsys.readouterr().out
    assert isinstance(fig, plt.Figure)
    for k in (10, 50, 200):
        assert f"{k} labels per class" in text
    # pretrained at 10 labels: 0.73; scratch reaches it between 50 (0.70) and 200 (0.85)
    expected = math.exp(math.log(50) + (0.73 - 0.70) / (0.85 - 0.70) * (math.log(200) - math.log(50)))
    assert f"needs about {expected:.0f} labels per class" in text
    assert f"{expected / 10:.1f}x the labels" in text


def test_label_budget_explorer_slider_updates_numbers_and_picture():
    box = label_budget_explorer(RESULTS, interactive=True)
    slider, (image, summary) = box.children[0], box.children[1].children
    first_html, first_png = summary.value, bytes(image.value)
    assert "10 labels per class" in first_html and first_png.startswith(b"\x89PNG")
    slider.value = 200
    assert "200 labels per class" in summary.value and "0.835" in summary.value
    assert bytes(image.value) != first_png


def test_label_budget_explorer_names_the_methods_it_knows():
    with pytest.raises(KeyError, match="pixels"):
        label_budget_explorer(RESULTS, reference="no such method", interactive=False)
