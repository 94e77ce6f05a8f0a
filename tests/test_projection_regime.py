"""The two regimes of the interval calibration: races projected from ballot boxes and races
whose units are whole districts (``RaceFrame.units_are_boxes``, ``ModelParams.box_interval_*``)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from sandik.core.projection import RaceFrame, RaceState, project
from sandik.core.projection.frame import BOX_MAX_REGISTERED
from sandik.core.projection.model import BOX_EARLY_UNTIL, ModelParams, interval_scale_of
from sandik.datasets.registry import shared_data_dir
from tests.factories import race_frame

SHARED = shared_data_dir()
needs_shared = pytest.mark.skipif(not (SHARED / "istanbul-2019-ballot-boxes").is_dir(), reason="shared real data not available")
# Box constants far from the district ones: whatever is tuned, a test sees which set a race used.
ODD_BOX = {"box_interval_scale": 0.37, "box_interval_scale_z": 2.5, "box_interval_z_free": 0.1, "box_interval_scale_early": 3.0}


def _frame(reg: np.ndarray, seed: int = 5, k: int = 3) -> RaceFrame:
    rng = np.random.default_rng(seed)
    n = len(reg)
    base = rng.dirichlet(np.ones(k) * 3, n) * 0.97
    return race_frame(reg, base, np.arange(n) // max(n // 8, 1), reg * 0.8)


def _state(frame: RaceFrame, frac: float, seed: int = 6) -> RaceState:
    rng = np.random.default_rng(seed)
    valid = rng.binomial(frame.registered, 0.8)
    votes = np.array([rng.multinomial(v, b / b.sum()) for v, b in zip(valid, frame.base_share)])
    rep = rng.random(frame.n_units) < frac
    return RaceState(rep, np.where(rep[:, None], votes, 0), np.where(rep, valid, 0))


def test_regime_is_the_median_unit_size():
    rng = np.random.default_rng(0)
    assert _frame(rng.integers(100, 400, 300)).units_are_boxes
    assert not _frame(rng.integers(5_000, 400_000, 30)).units_are_boxes
    # the median decides: a few big units among boxes do not change the regime, and back
    mixed = np.r_[np.full(11, 300), np.full(10, 50_000)]
    assert _frame(mixed).units_are_boxes and not _frame(mixed[::-1][:20]).units_are_boxes
    assert _frame(np.array([BOX_MAX_REGISTERED] * 4)).units_are_boxes
    assert not _frame(np.array([BOX_MAX_REGISTERED + 1] * 4)).units_are_boxes


def test_interval_scale_follows_the_regime():
    params = dataclasses.replace(ModelParams(), **ODD_BOX)
    rng = np.random.default_rng(1)
    for reg, boxes in ((rng.integers(100, 400, 300), True), (rng.integers(5_000, 90_000, 40), False)):
        fr = _frame(reg)
        p = project(fr, _state(fr, 0.5), params)
        assert p.mode == "model"
        z = p.state["imbalance_z"]
        pct = p.pct_expected_counted
        assert p.state["interval_scale"] == interval_scale_of(params, z, boxes=boxes, pct_counted=pct)
        other = interval_scale_of(params, z, boxes=not boxes, pct_counted=pct)
        assert p.state["interval_scale"] != other
        # the draws (P(win), calls) are the same under either set of constants
        np.testing.assert_array_equal(p.draws, project(fr, _state(fr, 0.5), ModelParams()).draws)
    # box-level races widen while less than BOX_EARLY_UNTIL of the expected vote is counted, district ones do not
    for boxes in (True, False):
        late = interval_scale_of(params, 0.0, boxes=boxes, pct_counted=BOX_EARLY_UNTIL)
        assert interval_scale_of(params, 0.0, boxes=boxes, pct_counted=1.0) == late
        assert (interval_scale_of(params, 0.0, boxes=boxes, pct_counted=0.0) > late) == boxes
    s0, early = params.box_interval_scale, params.box_interval_scale_early  # z = 0: no z term
    assert interval_scale_of(params, 0.0, boxes=True, pct_counted=0.0) == pytest.approx(s0 * (1 + early))
    assert interval_scale_of(params, 0.0, boxes=True, pct_counted=BOX_EARLY_UNTIL / 2) == pytest.approx(s0 * (1 + early / 2))
    # the pooled-prior scale is shared by both regimes
    fr = _frame(rng.integers(100, 400, 300))
    st = RaceState.empty(fr)
    assert project(fr, st, params).state["interval_scale"] == params.interval_scale_prior


@pytest.fixture(scope="module")
def ist():
    from sandik.backtest.data import istanbul_case

    return istanbul_case()


@pytest.fixture(scope="module")
def tr():
    from sandik.backtest.data import turkey_case

    return turkey_case()


@needs_shared
def test_real_cases_fall_in_the_expected_regimes(ist, tr):
    assert len(ist.frames) == 39 and all(f.units_are_boxes for f in ist.frames.values())
    min_units = ModelParams().min_units
    multi = {rid for rid, f in tr.frames.items() if f.n_units >= min_units}
    assert len(multi) == 30 and all(rid.endswith(":metropolitan_mayor") for rid in multi)
    assert not any(tr.frames[rid].units_are_boxes for rid in multi)
    # A few single-unit belde races are box-sized; they never use a unit scale (one unit:
    # the pooled prior until complete), so no Turkey interval depends on the box constants.
    assert all(f.n_units < min_units for f in tr.frames.values() if f.units_are_boxes)


@needs_shared
def test_turkey_replay_does_not_depend_on_the_box_constants(tr):
    from sandik.backtest.runner import replay
    from sandik.commands.projection import _subset

    case = tr
    keep = [r for r in case.frames if r.startswith(("tr.06", "tr.35", "tr.16"))]  # 3 metros, their districts, beldes
    case = _subset(case, keep)
    odd = dataclasses.replace(ModelParams(), **ODD_BOX)
    a = replay(case, "chp_desc", step=0.2, peers=()).rows
    b = replay(case, "chp_desc", step=0.2, params=odd, peers=()).rows
    assert len(a) == len(b) > 0
    assert any(r["units_fitted"] >= 3 for r in a)  # metropolitan races with units of their own are in
    for ra, rb in zip(a, b):
        assert ra == rb


@needs_shared
def test_istanbul_intervals_do_depend_on_the_box_constants(ist):
    from sandik.backtest.runner import replay
    from sandik.commands.projection import _subset

    case = _subset(ist, ["tr.34.adalar:district_mayor", "tr.34.esenler:district_mayor"])
    odd = dataclasses.replace(ModelParams(), **ODD_BOX)
    a = replay(case, "random", step=0.2, peers=()).rows
    b = replay(case, "random", step=0.2, params=odd, peers=()).rows
    assert [r["margin_pt"] for r in a] == [r["margin_pt"] for r in b]
    assert any(ra["iv0.9"] != rb["iv0.9"] for ra, rb in zip(a, b) if ra["units_fitted"] >= 3)


def test_live_frames_are_box_level():
    """On the night the units are ballot boxes: every race built by build_frames, the
    metropolitan ones included, is in the box regime."""
    from sandik.core.projection.election import build_frames
    from tests.factories import make_election

    frames = build_frames(make_election(3, districts=4, boxes=30), None)
    assert any(rid.endswith(":metro") for rid in frames)
    assert frames and all(f.units_are_boxes for f in frames.values())


def test_box_scale_narrows_only_far_from_random_arrival():
    """Oracle of the box regime's scale: s0 x early x (1 + s1 (z - zf)+) / (1 + d (z - zd)+);
    the narrowing starts at ``box_interval_shrink_from`` and never touches the district regime."""
    params = dataclasses.replace(ModelParams(), **ODD_BOX, box_interval_shrink=0.8, box_interval_shrink_from=4.0)
    flat = dataclasses.replace(params, box_interval_shrink=0.0)
    s0, s1, zf, se = 0.37, 2.5, 0.1, 3.0
    for z in (0.0, 1.0, 3.9, 4.0, 4.5, 7.0, 30.0):
        for pct in (0.0, 0.1, 0.5):
            early = 1 + se * max(1 - pct / BOX_EARLY_UNTIL, 0)
            want = s0 * early * (1 + s1 * max(z - zf, 0)) / (1 + 0.8 * max(z - 4.0, 0))
            got = interval_scale_of(params, z, boxes=True, pct_counted=pct)
            assert got == pytest.approx(want, rel=1e-12)
            assert (got < interval_scale_of(flat, z, boxes=True, pct_counted=pct)) == (z > 4.0)
            assert interval_scale_of(params, z, boxes=False, pct_counted=pct) == interval_scale_of(flat, z, boxes=False, pct_counted=pct)


@needs_shared
def test_istanbul_far_orders_get_narrower_intervals_same_points_and_calls(ist):
    """Under an order by a party's strength the imbalance z of box-level races runs to 10-30: the
    narrowing shortens the published intervals there, while the points, P(win) and the calls
    (made from the raw draws) stay as they were; random order (z under 3) is not touched."""
    from sandik.backtest.runner import replay
    from sandik.commands.projection import _subset

    case = _subset(ist, ["tr.34.adalar:district_mayor", "tr.34.esenler:district_mayor", "tr.34.kadikoy:district_mayor"])
    flat = dataclasses.replace(ModelParams(), box_interval_shrink=0.0)
    for order in ("chp_asc", "random"):
        a = replay(case, order, step=0.1, peers=())
        b = replay(case, order, step=0.1, params=flat, peers=())
        assert [r["margin_pt"] for r in a.rows] == [r["margin_pt"] for r in b.rows]
        assert [t.calls for t in a.tracks.values()] == [t.calls for t in b.tracks.values()]
        far = [(ra, rb) for ra, rb in zip(a.rows, b.rows) if ra["units_fitted"] >= 3 and ra["imbalance_z"] > ModelParams().box_interval_shrink_from]
        near = [(ra, rb) for ra, rb in zip(a.rows, b.rows) if ra["imbalance_z"] <= ModelParams().box_interval_shrink_from]
        assert all(ra["iv0.9"] == rb["iv0.9"] for ra, rb in near)
        if order == "chp_asc":
            assert len(far) >= 10
            assert all(ra["width90"] <= rb["width90"] for ra, rb in far)
            assert sum(ra["width90"] for ra, _ in far) < 0.6 * sum(rb["width90"] for _, rb in far)


def test_uncertainty_codes_say_when_arrival_is_far_from_random():
    """Counting the boxes with the lowest baseline share of candidate 0 first makes the counted boxes
    unlike the rest (imbalance z far above 3): the projection's ``uncertainty`` says so; a random
    half of the same boxes does not; a race with two boxes counted says its swing is borrowed."""
    rng = np.random.default_rng(4)
    fr = _frame(rng.integers(100, 400, 300))
    full = _state(fr, 1.0)
    low = np.zeros(fr.n_units, dtype=bool)
    low[np.argsort(fr.base_share[:, 0])[:100]] = True
    half = np.random.default_rng(5).random(fr.n_units) < 1 / 3

    def counted(rep):
        return RaceState(rep, np.where(rep[:, None], full.votes, 0), np.where(rep, full.valid, 0))

    skewed = project(fr, counted(low))
    assert skewed.mode == "model" and skewed.state["imbalance_z"] > ModelParams().box_interval_shrink_from
    assert skewed.uncertainty() == ["arrival_far_from_random"] and skewed.to_dict()["uncertainty"] == ["arrival_far_from_random"]
    rand = project(fr, counted(half))
    assert rand.mode == "model" and rand.state["imbalance_z"] < ModelParams().box_interval_shrink_from and rand.uncertainty() == []
    two = np.zeros(fr.n_units, dtype=bool)
    two[:2] = True
    assert project(fr, counted(two)).uncertainty() == ["few_units"]
