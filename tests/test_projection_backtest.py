"""A small, fast backtest on real data: a few İstanbul 2019 races at box level and a few 2024
metropolitan races at district level, replayed through the same code as `sandik backtest`."""

from __future__ import annotations

import pytest

from sandik.backtest.data import istanbul_case, turkey_case
from sandik.backtest.orders import ORDERS
from sandik.backtest.runner import replay, summarize
from sandik.commands.projection import _subset
from sandik.datasets.registry import shared_data_dir

SHARED = shared_data_dir()
needs_shared = pytest.mark.skipif(not (SHARED / "istanbul-2019-ballot-boxes").is_dir(), reason="shared real data not available")


def check(case, order: str) -> dict:
    res = replay(case, order, seed=1, step=0.1)
    s = summarize(res, case)
    assert s["wrong_calls"] == 0, s["wrong_call_list"]
    assert s["inverted_intervals"] == 0
    for lv, c in s["coverage"].items():
        assert c is None or 0.0 <= c <= 1.0
    for row in s["per_race"]:
        # the model never calls later than the lock alone would
        if row["lock_pct_expected"] is not None:
            assert row["call_pct_expected"] is not None and row["call_pct_expected"] <= row["lock_pct_expected"] + 1e-9
        # every race is called by the end of the count, for its real winner
        assert row["call_pct_expected"] is not None
    return s


@needs_shared
@pytest.mark.parametrize("order", ["random", "size", "chp_desc"])
def test_istanbul_boxes_small(order, ist_small):
    s = check(ist_small, order)
    assert s["races"] == 4


@needs_shared
def test_turkey_metros_small():
    case = turkey_case()
    keep = [r for r in case.frames if r.startswith(("tr.06:", "tr.35:", "tr.16:"))]
    s = check(_subset(case, keep), "arrival")
    assert s["races"] == 3


@pytest.fixture(scope="module")
def ist_small():
    case = istanbul_case()
    keep = ["tr.34.kadikoy:district_mayor", "tr.34.adalar:district_mayor", "tr.34.maltepe:district_mayor", "tr.34.esenler:district_mayor"]
    return _subset(case, keep)


def test_orders_are_permutations():
    import numpy as np

    from sandik.backtest.data import BacktestCase

    n = 50
    rng = np.random.default_rng(0)
    case = BacktestCase("t", "t", {}, {}, {}, {}, n, rng.integers(100, 400, n).astype(float), rng.random(n) * 300, rng.random(n) < 0.3,
                        rng.integers(0, 5, n), {"CHP": rng.random(n), "AKP": rng.random(n)}, {})  # fmt: skip
    for name, fn in ORDERS.items():
        o = fn(case, 3)
        assert sorted(o.tolist()) == list(range(n)), name
    assert (np.diff(case.g_registered[ORDERS["size"](case, 0)]) >= 0).all()
    assert not case.g_rural[ORDERS["urban_first"](case, 0)][: int((~case.g_rural).sum())].any()


def test_equal_width_compares_points_with_the_other_models_width():
    from sandik.backtest.runner import equal_width

    sandik = [  # margin error, own 90% width, covered by its own interval
        {"margin_err": 0.010, "width90": 0.030, "cov0.9": True},
        {"margin_err": 0.030, "width90": 0.040, "cov0.9": False},  # asymmetric interval: missed at 3 of 4 points
        {"margin_err": 0.050, "width90": 0.120, "cov0.9": True},
    ]
    peer = [
        {"margin_err": 0.020, "width90": 0.060, "cov0.9": True},
        {"margin_err": 0.010, "width90": 0.100, "cov0.9": True},
        {"margin_err": 0.070, "width90": 0.080, "cov0.9": False},
    ]
    d = equal_width(list(zip(sandik, peer)))
    assert d["n"] == 3
    assert d["sandik_at_sandik_width"] == pytest.approx(2 / 3, abs=1e-4) and d["peer_at_peer_width"] == pytest.approx(2 / 3, abs=1e-4)
    # sandik given the peer's widths: 0.010 <= 0.030, 0.030 <= 0.050, 0.050 > 0.040
    assert d["sandik_at_peer_width"] == pytest.approx(2 / 3, abs=1e-4)
    # the peer given sandik's widths: 0.020 > 0.015, 0.010 <= 0.020, 0.070 > 0.060
    assert d["peer_at_sandik_width"] == pytest.approx(1 / 3, abs=1e-4)
    assert equal_width([])["sandik_at_peer_width"] is None


def _summary(seed: int, n: int, cov: float, wrong: int, buckets: dict) -> dict:
    return {
        "order": "random", "seed": seed, "race_checkpoints": n, "coverage": {"90": cov}, "mean_width90_points": 2.0 + seed,
        "mean_margin_error_points": 0.5, "wrong_calls": wrong, "median_call_pct_expected_margin_gt10": 0.1 * (seed + 1),
        "median_call_pct_expected": 0.2 * (seed + 1),
        "by_bucket": {b: {"n": k, "coverage": {"90": c}} for b, (k, c) in buckets.items()},
    }  # fmt: skip


def test_pool_seeds_weights_coverage_by_checkpoints_and_sums_wrong_calls():
    from sandik.backtest.runner import pool_seeds

    a = _summary(0, 100, 0.80, 0, {"0%-10%": (60, 0.70), "10%-25%": (39, 0.10)})
    b = _summary(1, 300, 0.96, 2, {"0%-10%": (300, 0.96)})
    p = pool_seeds([a, b])
    assert p["pooled_coverage_90"] == pytest.approx((100 * 0.80 + 300 * 0.96) / 400)
    assert p["race_checkpoints"] == 400 and p["wrong_calls"] == 2
    assert [s["seed"] for s in p["seeds"]] == [0, 1]
    assert p["seeds"][0]["worst_bucket_90"] == 0.70  # the bucket of 39 checkpoints is too thin to count
    with pytest.raises(ValueError):
        pool_seeds([])


@needs_shared
def test_backtest_command_pools_seeds():
    import json

    from click.testing import CliRunner

    from sandik.cli import main

    r = CliRunner().invoke(main, ["backtest", "--data", "istanbul", "--races", "adalar", "--orders", "random", "--step", "0.1", "--seeds", "0,3", "--json"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    c = rep["cases"]["istanbul"]
    (p,) = c["seeds"]
    assert [s["seed"] for s in p["seeds"]] == [0, 3]  # --seed 0 first, the duplicate dropped
    assert p["seeds"][0]["coverage_90"] == c["orders"][0]["coverage"]["90"]
    covs = [s["coverage_90"] for s in p["seeds"]]
    assert min(covs) - 1e-9 <= p["pooled_coverage_90"] <= max(covs) + 1e-9
    bad = CliRunner().invoke(main, ["backtest", "--data", "istanbul", "--seeds", "x"])
    assert bad.exit_code != 0 and "seeds must be integers" in bad.output


@needs_shared
def test_synthetic_istanbul_metro_race_has_the_real_totals_and_is_not_called_before_the_end():
    """The 2019 metropolitan race below the province is synthetic (each box's alliance votes are its
    district race's, scaled), but its province totals are the real ones exactly, 0.16 points apart;
    replayed alone, the model leaves it uncalled until the count is complete."""
    import numpy as np

    from sandik.backtest.data import METRO_2019_TOTALS, METRO_RACE, istanbul_metro_case

    case = istanbul_metro_case()
    f = case.final_votes[METRO_RACE]
    assert f.sum(axis=0)[:2].tolist() == [t for _, t in METRO_2019_TOTALS]
    assert (f >= 0).all() and (f.sum(axis=1) == case.final_valid[METRO_RACE]).all()
    assert len(f) == case.n_global == 31_186
    margin = (f[:, 0].sum() - f[:, 1].sum()) / f.sum()
    assert 0.0015 < margin < 0.0017
    # the boxes keep their district races' split: CHP's share of the two alliances moves with it
    alliance = np.zeros((case.n_global, 2))
    for rid, fr in case.frames.items():
        if rid == METRO_RACE:
            continue
        for k, party in enumerate(fr.candidate_parties):
            if party in ("CHP", "IYI"):
                alliance[case.unit_of[rid], 0] += case.final_votes[rid][:, k]
            elif party in ("AKP", "MHP", "BBP"):
                alliance[case.unit_of[rid], 1] += case.final_votes[rid][:, k]
    ok = alliance.sum(axis=1) > 50
    a = alliance[ok, 0] / alliance[ok].sum(axis=1)
    b = f[ok, 0] / np.maximum(f[ok, :2].sum(axis=1), 1)
    assert np.corrcoef(a, b)[0, 1] > 0.99
    # The last per cent of the count in a random order: the draws leave little doubt near the end
    # (without the margin guard the model calls it), but 0.16 points is too close to call.
    from dataclasses import replace

    from sandik.core.projection import CallRule, RaceState, project_many

    one = _subset(case, [METRO_RACE])
    order = ORDERS["random"](one, 0)
    kinds, unguarded = [], []
    for frac in (0.98, 0.99, 0.995, 0.998):
        rep = np.zeros(one.n_global, dtype=bool)
        rep[order[: int(frac * one.n_global)]] = True
        st = {METRO_RACE: RaceState(rep, np.where(rep[:, None], f, 0), np.where(rep, one.final_valid[METRO_RACE], 0))}
        kinds.append(project_many(one.frames, st, region_of=one.region_of)[METRO_RACE].call.kind)
        loose = replace(CallRule(), min_margin_share=0.0)
        unguarded.append(project_many(one.frames, st, rule=loose, region_of=one.region_of)[METRO_RACE].call.kind)
    assert kinds == [None] * 4
    assert "statistical" in unguarded


@needs_shared
def test_backtest_command_replays_the_synthetic_metro_race():
    import json

    from click.testing import CliRunner

    from sandik.backtest.data import METRO_RACE
    from sandik.cli import main

    r = CliRunner().invoke(main, ["backtest", "--data", "istanbul-metro", "--races", "metro", "--orders", "random", "--step", "0.25", "--json"])
    assert r.exit_code == 0, r.output
    c = json.loads(r.stdout)["cases"]["istanbul-metro"]
    (s,) = c["orders"]
    (row,) = s["per_race"]
    assert row["race"] == METRO_RACE and row["winner"] == "imamoglu" and row["call_pct_expected"] == 1.0
    assert any("synthetic below the province" in n for n in c["notes"])
