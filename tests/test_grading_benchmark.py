"""benchmarks/grading_throughput.py at a tiny size: it runs both ways and writes well-formed JSON (never a speed test)."""
import importlib.util
import json
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_grading_throughput_benchmark_runs_at_a_tiny_size(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("grading_throughput", ROOT / "benchmarks" / "grading_throughput.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "grading_throughput.json"
    assert bench.main(["--k", "2", "--workers", "1", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["k"] == 2 and result["same_scores"] is True
    assert result["scores"]["tlcourse"] == {"student_000": 5.0, "student_001": 0.0}
    assert result["nbgrader_cli_s"] > 0 and result["tlcourse_s"] > 0
    # the ratio is of the unrounded times; the times are stored rounded to 0.01 s
    assert result["ratio_nbgrader_over_tlcourse"] == pytest.approx(result["nbgrader_cli_s"] / result["tlcourse_s"],
                                                                   rel=0.01)
    assert result["started_utc"] and result["uptime_after"] and result["machine"]["cpus"] >= 1
    assert "ratio nbgrader/tlcourse" in capsys.readouterr().out
