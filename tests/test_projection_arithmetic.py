"""Property tests of the projection arithmetic: D'Hondt, hard bounds, intervals, locks."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandik.core.projection import CallRule, RaceState, decide, dhondt, fraction_threshold, lock_winner, project
from sandik.core.projection.frame import max_voters
from sandik.core.projection.model import LEVELS, ModelParams
from sandik.core.projection.seats import seat_intervals
from tests.factories import race_frame


def naive_dhondt(votes: list[int], seats: int, eligible: list[bool]) -> list[int]:
    """The textbook procedure, one seat at a time: the oracle."""
    won = [0] * len(votes)
    for _ in range(seats):
        best = None
        for i, v in enumerate(votes):
            if not eligible[i] or v <= 0:
                continue
            key = (v / (won[i] + 1), v, -i)
            if best is None or key > best[0]:
                best = (key, i)
        if best is None:
            break
        won[best[1]] += 1
    return won


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 100_000), min_size=1, max_size=12), st.integers(0, 60), st.sampled_from([0.0, 0.05, 0.10]))
def test_dhondt_matches_the_one_seat_at_a_time_oracle(votes, seats, thr):
    got = dhondt(np.array(votes), seats, thr)
    tot = sum(votes)
    eligible = [v >= thr * tot for v in votes]
    assert got.tolist() == naive_dhondt(votes, seats, eligible)
    if any(e and v > 0 for e, v in zip(eligible, votes)):
        assert got.sum() == seats
    for i, v in enumerate(votes):
        if not eligible[i]:
            assert got[i] == 0


def test_dhondt_threshold_as_a_function():
    # a list needs 10% of valid votes (Turkish municipal councils)
    assert dhondt(np.array([500, 300, 90, 110]), 10, fraction_threshold(0.10)).tolist() == [6, 3, 0, 1]
    # any callable: only the first two lists may win
    assert dhondt(np.array([500, 300, 200]), 5, lambda v: np.array([True, True, False])).tolist() == [3, 2, 0]


def test_seat_intervals_from_draws_are_ordered():
    rng = np.random.default_rng(1)
    draws = rng.multinomial(10_000, [0.45, 0.35, 0.2], size=200).astype(float)
    out = seat_intervals(draws, 31, 0.10)
    for lv in ("80", "90", "95", "99"):
        lo, hi = out[lv]
        assert (lo <= hi).all()
        assert (lo <= out["median"]).all() and (out["median"] <= hi).all()


@st.composite
def race_and_state(draw):
    n = draw(st.integers(1, 40))
    k = draw(st.integers(1, 5))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    reg = rng.integers(0, 400, n)
    base = rng.dirichlet(np.ones(k), n) * rng.uniform(0.5, 1.0, (n, 1))
    has = rng.random(n) < draw(st.sampled_from([0.0, 0.5, 1.0]))
    base[~has] = 0
    groups = rng.integers(0, max(1, n // 4), n)
    expected = reg * rng.uniform(0.3, 0.95, n)
    frame = race_frame(reg, base, groups, expected, parties=tuple(f"P{i}" if i % 3 else None for i in range(k)), has_base=has)
    rep = rng.random(n) < draw(st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0]))
    valid = np.minimum(rng.binomial(reg, 0.8), max_voters(reg))
    votes = np.array([rng.multinomial(v, rng.dirichlet(np.ones(k))) for v in valid]).reshape(n, k)
    state = RaceState(rep, np.where(rep[:, None], votes, 0), np.where(rep, valid, 0))
    return frame, state


@settings(max_examples=120, deadline=None)
@given(race_and_state())
def test_projection_intervals_are_never_inverted_and_respect_hard_bounds(fs):
    frame, state = fs
    p = project(frame, state, ModelParams(draws=60))
    lo_b, hi_b = p.bounds
    counted = state.votes[state.reported].sum(axis=0)
    assert (lo_b == counted).all()
    assert (hi_b == counted + frame.cap[~state.reported].sum()).all()
    assert (p.votes >= lo_b - 1e-6).all() and (p.votes <= hi_b + 1e-6).all()
    for lv in LEVELS:
        lo, hi = p.intervals[lv]
        assert (lo <= p.votes + 1e-6).all() and (p.votes <= hi + 1e-6).all()
        assert (lo >= lo_b - 1e-6).all() and (hi <= hi_b + 1e-6).all()
        slo, shi = p.share_intervals[lv]
        assert (slo <= shi + 1e-12).all() and (slo >= 0).all() and (shi <= 1).all()
        mlo, mhi = p.margin_points_intervals[lv]
        assert mlo <= p.margin_share + 1e-9 <= mhi + 2e-9
    # wider levels contain narrower ones
    for a, b in zip(LEVELS, LEVELS[1:]):
        assert (p.intervals[b][0] <= p.intervals[a][0] + 1e-6).all() and (p.intervals[a][1] <= p.intervals[b][1] + 1e-6).all()
    assert abs(p.p_win.sum() - 1.0) < 1e-9 or p.mode == "complete"
    d = decide(frame, state, p, CallRule())
    if d.kind == "statistical":
        assert p.mode == "model" and abs(p.margin_share) >= CallRule().min_margin_share
    if not frame.has_base.any() and state.reported.any() and not state.reported.all():
        assert p.mode == "no_baseline" and d.kind != "statistical"
    if state.reported.all():
        assert p.mode == "complete" and (p.votes == counted).all()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 10_000), min_size=1, max_size=6), st.integers(0, 20_000))
def test_a_lock_survives_the_worst_case(counted, remaining):
    c = np.array(counted)
    w = lock_winner(c, remaining)
    if w is None:
        # then some other candidate could tie or win with every remaining vote
        if len(c) > 1:
            others = np.delete(c, np.argmax(c))
            assert c.max() - others.max() <= remaining
        return
    for j in range(len(c)):
        if j != w:
            assert c[j] + remaining < c[w]  # even every remaining voter for j is not enough


def test_closed_form_solves_match_lapack():
    from sandik.core.projection.model import _solve_small

    rng = np.random.default_rng(7)
    for p in (1, 3):
        A = rng.standard_normal((50, 6, p, p)) * rng.uniform(0.01, 1.0, (50, 6, 1, 1))
        C = A @ np.swapaxes(A, -1, -2) + 0.004 * np.eye(p)  # what the ridge fit solves: SPD, ridge-bounded
        c = rng.standard_normal((50, 6, p))
        want = np.linalg.solve(C, c[..., None])[..., 0]
        np.testing.assert_allclose(_solve_small(C, c), want, rtol=1e-8, atol=1e-10)


def test_group_sums_equal_the_incidence_product():
    from sandik.core.projection.model import _grouper

    rng = np.random.default_rng(3)
    for m, G in ((7, 3), (40, 5), (3000, 20)):  # the dense and the sparse path of _grouper
        g = rng.integers(0, G, m)
        H = (np.arange(G)[:, None] == g[None, :]).astype(float)
        gs = _grouper(g, G)
        for a in (rng.random(m), rng.random((m, 4)), rng.random((m, 4, 3))):
            want = (H @ a.reshape(m, -1)).reshape((G, *a.shape[1:]))
            np.testing.assert_allclose(gs(a), want, rtol=1e-12, atol=1e-12)


def _race(n=300, k=3, seed=5, frac=0.4):
    rng = np.random.default_rng(seed)
    reg = rng.integers(100, 400, n)
    base = rng.dirichlet(np.ones(k) * 3, n) * 0.97
    frame = race_frame(reg, base, np.arange(n) // 25, reg * 0.8)
    valid = rng.binomial(reg, 0.8)
    votes = np.array([rng.multinomial(v, b / b.sum()) for v, b in zip(valid, base)])
    rep = rng.random(n) < frac
    return frame, RaceState(rep, np.where(rep[:, None], votes, 0), np.where(rep, valid, 0))


def test_interval_calibration_scales_intervals_but_not_draws_or_calls():
    frame, state = _race()
    raw = ModelParams(interval_scale=1.0, interval_scale_z=0.0, interval_scale_prior=1.0, box_interval_scale=1.0, box_interval_scale_z=0.0)
    narrow = ModelParams(interval_scale=0.5, interval_scale_z=0.0, interval_scale_prior=0.5, box_interval_scale=0.5, box_interval_scale_z=0.0)
    a, b = project(frame, state, raw), project(frame, state, narrow)
    assert a.mode == b.mode == "model"
    np.testing.assert_array_equal(a.draws, b.draws)  # the calls and P(win) come from the raw draws
    np.testing.assert_array_equal(a.p_win, b.p_win)
    assert decide(frame, state, a).candidate == decide(frame, state, b).candidate
    assert b.state["interval_scale"] == 0.5 and a.state["interval_scale"] == 1.0
    for lv in LEVELS:
        wa = a.margin_points_intervals[lv][1] - a.margin_points_intervals[lv][0]
        wb = b.margin_points_intervals[lv][1] - b.margin_points_intervals[lv][0]
        # half as wide, up to the clamp around the point estimate
        assert 0.3 * wa <= wb <= 0.55 * wa + 1e-12


def test_pooled_swing_cache_sees_a_correction():
    from sandik.core.projection.pool import race_swings

    frame, state = _race()
    first = race_swings({"r": frame}, {"r": state})["r"][0]
    j = int(np.flatnonzero(state.reported)[0])
    votes = state.votes.copy()
    moved = min(int(votes[j, 0]), 50)
    votes[j, 0] -= moved  # a corrected sheet: same valid total, votes moved between candidates
    votes[j, 1] += moved
    second = race_swings({"r": frame}, {"r": RaceState(state.reported, votes, state.valid)})["r"][0]
    assert moved > 0 and first["P0"][0] > second["P0"][0] and first["P1"][0] < second["P1"][0]


def test_a_race_closer_than_half_a_point_is_not_called_by_the_model_however_sure():
    # 2,000 alike boxes, 99% counted, 0.33 points apart: the draws leave no doubt, and without the
    # margin guard the model calls it; with it, only the lock or the complete count will.
    n = 2000
    rng = np.random.default_rng(0)
    reg = np.full(n, 360)
    frame = race_frame(reg, np.tile([0.5, 0.5], (n, 1)), np.arange(n) % 40, reg * 0.85, parties=("P0", "P1"))
    a = np.where(np.arange(n) % 2 == 0, 151, 150)
    votes = np.column_stack([a, 300 - a])
    rep = np.ones(n, dtype=bool)
    rep[rng.choice(n, 20, replace=False)] = False
    state = RaceState(rep, np.where(rep[:, None], votes, 0), np.where(rep, 300, 0))
    p = project(frame, state, ModelParams())
    assert 0.003 < p.margin_share < 0.004 and p.pct_expected_counted > 0.98
    assert decide(frame, state, p, replace(CallRule(), min_margin_share=0.0)).kind == "statistical"
    d = decide(frame, state, p, CallRule())
    assert d.kind is None and any("too close to call" in r for r in d.reasons)
    full = RaceState(np.ones(n, dtype=bool), votes, np.full(n, 300))
    done = decide(frame, full, project(frame, full, ModelParams()), CallRule())
    assert done.kind == "lock" and done.candidate == frame.candidate_ids[0]


def test_calls_on_the_published_spread_scale_the_draws_margin_bound_towards_the_point():
    # The study rule of scripts/call_bound.py: the call's 99.9% bound read off the draws scaled as
    # the published intervals are. At scale 0.5 the bound's distance below the margin halves (up to
    # the hard bounds); at scale 1 it is the shipped rule's, bit for bit.
    frame, state = _race()
    for scale, ratio in ((0.5, 0.5), (1.0, 1.0)):
        p = project(frame, state, ModelParams(box_interval_scale=scale, box_interval_scale_z=0.0, box_interval_scale_early=0.0, interval_scale=scale, interval_scale_z=0.0))
        assert p.state["interval_scale"] == scale
        raw = decide(frame, state, p, CallRule()).model
        pub = decide(frame, state, p, CallRule(spread="published")).model
        gap_raw = p.margin - raw["margin_lower_999"]
        gap_pub = p.margin - pub["margin_lower_999"]
        assert gap_raw > 0
        assert abs(gap_pub - ratio * gap_raw) <= 0.02 * gap_raw
    with pytest.raises(ValueError, match="spread"):
        CallRule(spread="narrow")


def test_conformal_check_says_in_words_when_the_units_out_are_too_unlike_the_units_in():
    from sandik.core.projection.conformal import conformal_margin

    frame, state = _race(n=400, frac=1.0)
    full = state
    n = frame.n_units
    # the units where candidate 0 was weakest come in first (an order by a party's strength) ...
    weak_first = np.argsort(frame.base_share[:, 0], kind="stable")
    rep = np.zeros(n, dtype=bool)
    rep[weak_first[: n // 4]] = True
    far = RaceState(rep, np.where(rep[:, None], full.votes, 0), np.where(rep, full.valid, 0))
    cf = conformal_margin(frame, far, project(frame, far, ModelParams()), level=0.9)
    assert cf["lower"] == -np.inf and cf["upper"] == np.inf
    assert "too unlike" in cf["reason"] and "more than the 10%" in cf["reason"]
    # ... while the same number of units at random gives a bounded interval
    rnd = np.zeros(n, dtype=bool)
    rnd[np.random.default_rng(1).permutation(n)[: n // 4]] = True
    near = RaceState(rnd, np.where(rnd[:, None], full.votes, 0), np.where(rnd, full.valid, 0))
    cf2 = conformal_margin(frame, near, project(frame, near, ModelParams()), level=0.9)
    assert np.isfinite(cf2["lower"]) and "summed over" in cf2["reason"]
