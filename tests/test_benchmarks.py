"""The benchmark scripts on tiny sizes: they run, write well-formed JSON, and the report renders it.

Correctness only: no test here asserts a speed or a ratio's size.
"""
from __future__ import annotations

import importlib.util
import json
import pathlib
import sys

import nbformat
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"


def _script(name: str):
    """Import benchmarks/<name>.py as a module (the folder is not a package)."""
    sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _experiment(topic: str):
    """Import benchmarks/experiments/<topic>.py (benchmark code, not installed with tlcourse)."""
    sys.path.insert(0, str(BENCH))
    return importlib.import_module(f"experiments.{topic}")


def _summary_ok(s: dict) -> None:
    assert s["n"] == len(s["values"]) >= 1
    assert s["min"] <= s["median"] <= s["max"]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """One tiny run of each CPU benchmark into a shared folder, for the per-script tests and the report."""
    out = tmp_path_factory.mktemp("results")
    data = {
        "fit_overhead": _script("fit_overhead").main(["--pairs", "2", "--epochs", "1", "--train", "128",
                                                       "--out", str(out)]),
        "feature_cache": _script("feature_cache").main(["--epochs", "2", "--repeats", "2", "--images", "64",
                                                         "--image-size", "32", "--out", str(out)]),
        "transfer_gains": _script("transfer_gains").main(
            ["--seeds", "2", "--only", "domain_adaptation", "--out", str(out),
             "--sizes", json.dumps({"domain_adaptation": {"epochs": 0.2, "width": 4}})]),
    }
    return out, data


def test_fit_overhead_reaches_the_same_weights_as_the_plain_loop(results):
    out, data = results
    saved = json.loads((out / "fit_overhead.json").read_text())
    assert saved["rows"] == json.loads(json.dumps(data["fit_overhead"]["rows"]))
    row = saved["rows"][0]
    for key in ("fit_s", "loop_s", "ratio"):
        _summary_ok(row[key])
    assert row["ratio"]["n"] == 2 and row["ratio_of_minimums"] > 0
    # Same model, data, seed and optimizer settings: the library loop must not change the maths.
    assert row["same_weights"] and row["max_weight_difference"] <= 1e-5
    assert saved["machine"]["cpus"] >= 1 and "load average" in saved["uptime_before"]


def test_feature_cache_heads_agree_and_ratio_is_reported(results):
    out, _ = results
    row = json.loads((out / "feature_cache.json").read_text())["rows"][0]
    for key in ("cached_s", "extraction_s", "recomputed_s", "ratio"):
        _summary_ok(row[key])
    assert row["same_head"], row["max_head_weight_difference"]
    assert row["ratio_of_minimums"] > 0
    assert row["disk_cache_hit_s"] >= 0


def test_transfer_gains_rows_are_paired_per_seed(results):
    out, _ = results
    saved = json.loads((out / "transfer_gains.json").read_text())
    rows = saved["rows"]
    assert [r["method"] for r in rows] == ["DANN", "CORAL", "control: target in BatchNorm only", "DANN", "CORAL",
                                           "oracle (labelled target)"]
    assert [r["baseline"] for r in rows[3:5]] == ["control: target in BatchNorm only"] * 2, \
        "DANN and CORAL are also compared with the BatchNorm-only control, not only with source-only"
    for r in rows:
        assert r["seeds"] == len(r["method_acc"]) == len(r["baseline_acc"]) == 2
        assert r["gains"] == pytest.approx([m - b for m, b in zip(r["method_acc"], r["baseline_acc"])])
        assert all(0.0 <= a <= 1.0 for a in r["method_acc"] + r["baseline_acc"])
        assert r["key"] == "domain_adaptation" and r["published"]["method"] == pytest.approx(0.7666)


def test_transfer_gains_only_keeps_the_other_experiments_rows(tmp_path):
    old_row = {"key": "nlp", "experiment": "MiniLM vs TF-IDF", "method": "frozen MiniLM"}
    (tmp_path / "transfer_gains.json").write_text(json.dumps({"started_utc": "earlier", "rows": [old_row]}))
    data = _script("transfer_gains").main(["--seeds", "1", "--only", "domain_adaptation", "--out", str(tmp_path),
                                           "--sizes", json.dumps({"domain_adaptation": {"epochs": 0.1, "width": 4}})])
    keys = [r["key"] for r in data["rows"]]
    assert keys[0] == "nlp" and keys.count("domain_adaptation") == 6  # report order: notebook 03 before 05
    assert data["rows"][0]["measured_utc"] == "earlier"


def test_comparison_pairs_by_seed_and_takes_a_fixed_reference():
    comparison = _experiment("_rows").comparison

    r = comparison("e", "s", "base", "m", [0.5, 0.6, 0.7], [0.6, 0.6, 0.9], seconds=1.0)
    assert r["gains"] == pytest.approx([0.1, 0.0, 0.2])
    assert r["gain_positive"] == 2 and r["method_mean"] == pytest.approx(0.7)
    chance = comparison("e", "s", "chance", "m", [1 / 3], [0.5, 0.2], seconds=0.0, chance=1 / 3)
    assert chance["gains"] == pytest.approx([0.5 - 1 / 3, 0.2 - 1 / 3]) and chance["gain_positive"] == 1
    with pytest.raises(ValueError, match="no results"):
        comparison("e", "s", "b", "m", [0.5], [], seconds=0.0)


def test_experiment_sizes_reject_unknown_keys():
    domain_adaptation = _experiment("domain_adaptation").domain_adaptation

    with pytest.raises(KeyError, match="unknown size.*epoch"):
        domain_adaptation(seeds=(0,), sizes={"epoch": 1})


def test_course_runtime_on_a_tiny_notebook_then_append(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import math"), nbformat.v4.new_markdown_cell("text"),
                nbformat.v4.new_code_cell("x = sum(range(10))"),
                nbformat.v4.new_code_cell("import time\nt = time.process_time()\n"
                                          "while time.process_time() - t < 0.5: pass")]
    path = tmp_path / "01_tiny.ipynb"
    nbformat.write(nb, path)
    course_runtime = _script("course_runtime")
    args = ["--notebook", str(path), "--out", str(tmp_path), "--baseline-images", "64", "--repeats", "1"]
    data = course_runtime.main(args)
    row = data["rows"][0]
    assert data["rounds_completed"] == 1 and row["wall_s"]["n"] == 1
    assert row["budget_s"] == 90 and 0 < row["import_share"] <= 1 and row["ratio_to_baseline"] > 0
    assert row["cpu_s"]["median"] >= 0.5, "the kernel burnt half a CPU second in its last cell"
    again = course_runtime.main(args + ["--append"])
    assert again["rounds_completed"] == 2 and again["rows"][0]["wall_s"]["n"] == 2
    assert again["baseline_s"]["n"] == 2 and again["rows"][0]["runs"][0] == data["rows"][0]["runs"][0]
    _summary_ok(again["rows"][0]["wall_s"])
    with pytest.raises(SystemExit):
        course_runtime.main(["--notebook", str(tmp_path / "missing.ipynb"), "--out", str(tmp_path)])


def test_gpu_script_skips_cleanly_without_cuda(tmp_path, monkeypatch, capsys):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    gpu = _script("gpu")
    assert gpu.main(["--out", str(tmp_path)]) == 0
    assert "no CUDA device" in capsys.readouterr().out
    saved = json.loads((tmp_path / "gpu.json").read_text())
    assert saved["status"] == "skipped" and saved["reason"] == gpu.SKIP_MESSAGE
    # A real measurement from a GPU machine is never overwritten by a later skip.
    (tmp_path / "gpu.json").write_text(json.dumps({"status": "measured", "rows": []}))
    assert gpu.main(["--out", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "gpu.json").read_text())["status"] == "measured"


def test_gpu_throughput_code_runs_on_cpu():
    # The CUDA path cannot run here; this exercises the same code with autocast off (CPU) at a tiny size.
    row = _script("gpu").amp_throughput(pairs=1, steps=1, batch_size=2, device="cpu")
    for key in ("amp_images_per_s", "fp32_images_per_s", "ratio_amp_over_fp32"):
        _summary_ok(row[key])
    assert row["images_per_run"] == 2 and row["amp_dtype"] == "None"


def test_report_renders_every_result_and_lists_the_missing(results, tmp_path):
    out, _ = results
    _script("gpu").main(["--out", str(out)]) if not (out / "gpu.json").exists() else None
    report = _script("report")
    md = tmp_path / "RESULTS.md"
    text = report.build(out, md)
    assert md.read_text() == text
    for heading in ("## Machine", "## Transfer gains", "## Training-loop overhead", "## Feature cache",
                    "### Published numbers beside ours", "## Not measured yet"):
        assert heading in text
    assert "course_runtime" in text.split("## Not measured yet")[1]
    assert (out / "transfer_gains.png").stat().st_size > 1000
    # every table row has as many cells as its header
    for block in text.split("\n\n"):
        lines = [ln for ln in block.splitlines() if ln.startswith("|")]
        if lines:
            assert len({ln.count(" | ") for ln in lines if not ln.startswith("|---")}) == 1, block


def test_report_names_the_command_for_a_corrupt_result(tmp_path):
    (tmp_path / "fit_overhead.json").write_text("{not json")
    with pytest.raises(SystemExit, match="fit_overhead.py"):
        _script("report").build(tmp_path, tmp_path / "RESULTS.md")


def test_distillation_rows_pair_every_student_and_give_fitnets_the_same_steps():
    distillation = _experiment("distillation").distillation

    rows = distillation(seeds=(0, 1), sizes={"image_size": 32, "teacher_train": 200, "train": 160, "labelled": 40,
                                             "test": 100, "student_epochs": 2})
    by = {(r["baseline"], r["method"]): r for r in rows}
    assert [r["method"] for r in rows] == ["distilled student", "hard pseudo-labels from the teacher",
                                           "distilled student", "FitNets: 1 hint + 1 KD epochs (same steps)"]
    distilled = by["student alone (labelled images only)", "distilled student"]["method_acc"]
    fitnets = rows[3]
    assert fitnets["baseline"] == "distilled student" and fitnets["baseline_acc"] == distilled
    assert fitnets["gains"] == pytest.approx([m - b for m, b in zip(fitnets["method_acc"], distilled)])
    assert all(0.0 <= a <= 1.0 for a in fitnets["method_acc"])
    # a different training path, so the accuracies differ from the plain distilled student's on some seed
    assert fitnets["method_acc"] != distilled


def test_headline_counts_a_single_run_as_one_run_not_a_paired_win():
    report = _script("report")
    comparison = _experiment("_rows").comparison
    rows = [comparison("zero-shot", "text", "chance", "text zero-shot", [0.5], [0.627], 1.0),
            comparison("zero-shot", "images", "chance", "DeViSE", [1 / 3], [0.86, 0.88, 0.87], 1.0),
            comparison("probe", "budget", "scratch", "probe", [0.5, 0.6, 0.7], [0.7, 0.5, 0.8], 1.0)]
    lines = dict(line.split("**: ", 1) for line in report.headline({"rows": rows}))
    zero, probe = lines["- **zero-shot"], lines["- **probe"]
    assert "text zero-shot vs chance: 1 run, no spread (gain +0.127)" in zero
    assert zero.startswith("the transfer method won every paired run (1 comparison(s)")  # DeViSE's 3 seeds only
    assert "mixed: the transfer method won 2 of 3 paired runs" in probe
    only_single = report.headline({"rows": rows[:1]})[0]
    assert "won" not in only_single and "1 run, no spread" in only_single
    assert report._wins(rows[0]) == "1 run, no spread" and report._wins(rows[1]) == "3/3"


def test_lm_prompting_pairs_raw_and_bias_removed_per_wording_and_example_set():
    nlp = _experiment("nlp_transfer")
    rows = nlp.lm_prompting(seeds=(0, 1), sizes={"test": 8, "train": 60, "shots_per_class": 1})
    assert [r["setting"].split(",")[1].strip() for r in rows] == ["zero-shot", "zero-shot", "2-shot", "2-shot"]
    for r in rows[:3]:  # raw vs bias removed, one pair per wording / example set
        assert r["seeds"] == 2 and len(r["baseline_acc"]) == 2 and r["method"] == "bias removed"
        assert all(0 <= a <= 1 for a in r["baseline_acc"] + r["method_acc"])
    # the control: zero-shot with the notebook's wording (the first), bias removed, against each example set
    assert rows[3]["baseline_acc"] == [rows[0]["method_acc"][0]] and rows[3]["method_acc"] == rows[2]["method_acc"]
    with pytest.raises(ValueError, match="3 wordings"):
        nlp.lm_prompting(seeds=(0, 1, 2, 3), sizes={"test": 8, "train": 60})
