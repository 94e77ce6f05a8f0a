"""The oracle bound on early calls (backtest.call_bound): thresholds per band, first calls, wrong calls."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sandik.backtest.call_bound import OracleRow, band_of, band_thresholds, oracle_calls


def test_bands_are_right_closed_and_nothing_counted_is_no_band():
    assert band_of(0.0, 0.025) == -1
    assert band_of(0.025, 0.025) == 0
    assert band_of(0.0251, 0.025) == 1
    assert band_of(0.2, 0.05) == 3
    assert band_of(1.0, 0.1) == 9


def test_oracle_calls_a_race_once_its_margin_clears_the_bands_error():
    # Band 0 (0-10%): errors 0.30 and 0.05 -> threshold 0.30 at q 1; band 1 (10-20%): errors 0.02, 0.01.
    rows = [
        OracleRow("a", 0, 0.05, 0.25, -0.05, False),  # a's leader is wrong here, but 0.25 < 0.30: no call
        OracleRow("b", 0, 0.08, 0.20, 0.15, True),
        OracleRow("a", 1, 0.15, 0.12, 0.10, True),  # 0.12 > 0.02: called right at 15%
        OracleRow("b", 1, 0.18, 0.16, 0.15, True),  # called at 18%
    ]
    out = oracle_calls(rows, {"a": 0.10 + 1e-9, "b": 0.15}, q=1.0, width=0.10)
    assert out["wrong_calls"] == 0
    assert out["median_call_big"] == np.median([0.15, 0.18])
    assert out["called_big_by_20pct"] == 2
    assert out["threshold_points"] == {"0-10%": 30.0, "10-20%": 2.0}


def test_a_wrong_leader_clearing_the_threshold_is_a_wrong_call_and_the_race_counts_as_uncalled():
    rows = [
        OracleRow("a", 0, 0.05, 0.40, -0.05, False),
        OracleRow("b", 0, 0.05, 0.02, 0.03, True),
        OracleRow("c", 0, 0.06, 0.02, 0.03, True),
        OracleRow("d", 0, 0.07, 0.02, 0.03, True),
        OracleRow("a", 1, 0.50, 0.20, 0.20, True),
    ]
    # band 0's errors 0.01, 0.01, 0.01, 0.45: its median ("higher") is 0.01, which a's 0.40 clears
    out = oracle_calls(rows, {"a": 0.2, "b": 0.03, "c": 0.03, "d": 0.03}, q=0.5, width=0.10)
    assert out["wrong_calls"] == 1 and out["wrong"][0]["race"] == "a"
    assert out["median_call_big"] == 1.0  # a, the only race > 10 points, was never called right


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0.001, 0.999), st.floats(0, 0.5), st.floats(-0.5, 0.5)), min_size=1, max_size=40), st.sampled_from([0.5, 0.9, 1.0]))
def test_thresholds_are_the_higher_empirical_quantile_of_each_bands_errors(data, q):
    rows = [OracleRow(f"r{i}", 0, p, m, t, True) for i, (p, m, t) in enumerate(data)]
    h = band_thresholds(rows, q, 0.1)
    for b, v in h.items():
        errs = sorted(abs(m - t) for p, m, t in data if band_of(p, 0.1) == b)
        # "higher": the smallest error with at least a share q of the band's errors at or below it
        k = int(np.ceil(q * (len(errs) - 1)))
        assert v == errs[k]
        assert sum(e <= v for e in errs) >= q * len(errs) - 1e-9
