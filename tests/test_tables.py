"""tlcourse.tables: the course's shared results tables."""
from __future__ import annotations

import pytest

from tlcourse.tables import mean_std, paired_gain_table


def test_paired_gain_table_pairs_by_seed_and_counts_wins():
    table = paired_gain_table({"base": [0.5, 0.6, 0.7], "m": [0.6, 0.5, 0.8]}, "base", metric="target accuracy")
    lines = table.splitlines()
    assert lines[0] == "| method | target accuracy (mean ± std) | paired gain over base | seeds won |"
    assert "| base | 0.600 ± 0.082 |  |  |" in lines
    # paired: gains +0.1, -0.1, +0.1 (not the difference of the means alone, and 2 of 3 won)
    assert "| m | 0.633 ± 0.125 | +0.033 ± 0.094 | 2/3 |" in lines
    assert mean_std([0.5, 0.6, 0.7]) == pytest.approx((0.6, 0.0816496), abs=1e-6)


def test_paired_gain_table_rejects_what_cannot_be_paired():
    with pytest.raises(KeyError, match="baseline 'scratch' is not among the results: a, b"):
        paired_gain_table({"a": [0.1], "b": [0.2]}, "scratch")
    with pytest.raises(ValueError, match="'b' has 2 seeds and the baseline 3"):
        paired_gain_table({"a": [0.1, 0.2, 0.3], "b": [0.2, 0.3]}, "a")
