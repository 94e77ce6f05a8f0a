"""The projection's shortcuts against their references, on random small elections.

Three things make a refresh cheaper without changing what it computes: the
bootstrap's random numbers are drawn once per race shape and shared
(``model.shared_draws``), the swing fit solves its 3x3 systems entry by entry
(``model._solve_swing``), and a race whose count and prior did not change gets
its last outcome back (``pool.project_races``). Each is compared here with the
plain computation it replaces, so that they cannot drift apart.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sandik.core.projection import CallRule, RaceFrame, RaceState, project, project_many
from sandik.core.projection.model import LEVELS, ModelParams, _grouper, _solve, _solve_swing, _suff, _swing_sums, clear_draw_cache, draw_fresh, fit_counts, shared_draws
from sandik.core.projection.pool import state_key
from tests.factories import race_frame

# Exact priors: the one shortcut that changes what is computed (a kept outcome standing while its
# pooled prior moves within ModelParams.prior_reuse_sd) has its own tests (test_projection_prior_reuse.py).
PARAMS = ModelParams(draws=40, prior_reuse_sd=0.0)


def _fresh(frame: RaceFrame) -> RaceFrame:
    """The same race with nothing computed yet (no per-frame caches)."""
    fresh = copy.copy(frame)
    fresh.forget_all()
    return fresh


def _race(rng: np.random.Generator, rid: str, n: int, k: int, n_groups: int, parties: list[str]) -> RaceFrame:
    reg = rng.integers(20, 400, n)
    base = rng.dirichlet(np.ones(k), n) * rng.uniform(0.6, 1.0, (n, 1))
    groups = rng.integers(0, n_groups, n)
    expected = reg * rng.uniform(0.4, 0.95, n)
    return race_frame(reg, base, groups, expected, race_id=rid, candidate_ids=tuple(f"{rid}-c{i}" for i in range(k)), parties=tuple(parties[:k]))


@st.composite
def election(draw):
    """A few races over shared parties (so that the pooled prior has races to pool), their final counts, and an arrival order."""
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    n_races = draw(st.integers(4, 7))
    parties = ["A", "B", "C", "D"]
    frames, finals = {}, {}
    for r in range(n_races):
        # few distinct shapes, so that races share their draws
        n = int(rng.integers(3, 40))
        k = int(rng.choice([2, 3]))
        fr = _race(rng, f"r{r}", n, k, int(rng.integers(1, 6)), parties)
        valid = np.minimum(rng.binomial(fr.registered, 0.8), fr.cap)
        votes = np.array([rng.multinomial(v, rng.dirichlet(np.ones(k) * 3)) for v in valid]).reshape(n, k)
        frames[fr.race_id] = fr
        finals[fr.race_id] = (votes, valid, rng.permutation(n))
    region_of = {rid: ("north" if i % 2 else "south") for i, rid in enumerate(frames)}
    return frames, finals, region_of, rng


def _state(final, n_in: int, flagged: np.ndarray | None = None) -> RaceState:
    votes, valid, order = final
    rep = np.zeros(len(valid), dtype=bool)
    rep[order[:n_in]] = True
    return RaceState(rep, np.where(rep[:, None], votes, 0), np.where(rep, valid, 0), flagged)


def _assert_same_outcome(a, b) -> None:
    pa, pb = a.projection, b.projection
    assert pa.mode == pb.mode
    np.testing.assert_array_equal(pa.votes, pb.votes)
    if pa.draws is None:
        assert pb.draws is None
    else:
        np.testing.assert_array_equal(pa.draws, pb.draws)
    np.testing.assert_array_equal(pa.p_win, pb.p_win)
    for lv in LEVELS:
        assert pa.margin_intervals[lv] == pb.margin_intervals[lv]
        np.testing.assert_array_equal(pa.intervals[lv][0], pb.intervals[lv][0])
        np.testing.assert_array_equal(pa.intervals[lv][1], pb.intervals[lv][1])
    assert (a.call.candidate, a.call.kind, a.call.reasons) == (b.call.candidate, b.call.kind, b.call.reasons)


@settings(max_examples=40, deadline=None)
@given(election(), st.lists(st.floats(0.0, 1.0), min_size=2, max_size=4))
def test_refreshes_with_every_cache_equal_the_per_race_reference(el, fractions):
    """Refresh after refresh on the same frames (draws shared across races, outcomes kept between
    refreshes) versus each refresh from scratch: new frames, no shared draws."""
    frames, finals, region_of, rng = el
    rule = CallRule()
    for step, frac in enumerate(sorted(fractions)):
        states = {}
        for rid, fin in finals.items():
            n = len(fin[1])
            # most races move on, some stay where they were (their outcome comes back from the cache)
            n_in = int(round(frac * n)) if rng.random() < 0.7 or step == 0 else int(round(sorted(fractions)[step - 1] * n))
            flagged = (rng.random(n) < 0.1) if rng.random() < 0.2 else None
            states[rid] = _state(fin, n_in, flagged)
        warm = project_many(frames, states, params=PARAMS, rule=rule, region_of=region_of)
        again = project_many(frames, states, params=PARAMS, rule=rule, region_of=region_of)
        clear_draw_cache()
        ref = project_many({rid: _fresh(fr) for rid, fr in frames.items()}, states, params=PARAMS, rule=rule, region_of=region_of)
        for rid in frames:
            _assert_same_outcome(warm[rid], ref[rid])
            assert again[rid] is warm[rid]  # nothing changed in between: the outcome is reused


def _same_as_fresh(frames, states, params, region_of) -> None:
    """``project_many`` on ``frames`` (with whatever they keep) equals it on fresh frames, bit for bit."""
    got = project_many(frames, states, params=params, region_of=region_of)
    clear_draw_cache()
    ref = project_many({rid: _fresh(fr) for rid, fr in frames.items()}, states, params=params, region_of=region_of)
    for rid in frames:
        _assert_same_outcome(got[rid], ref[rid])
        assert repr(got[rid].projection.state) == repr(ref[rid].projection.state)


@settings(max_examples=40, deadline=None)
@given(election(), st.floats(0.1, 0.6), st.floats(0.05, 0.4))
def test_a_race_whose_count_stays_reuses_its_count_part_with_a_new_prior(el, frac, more):
    """After a batch that reaches only some races, the others keep their count but get a new
    pooled prior: their outcomes are redone from the kept count part (``RaceFrame._count_cache``),
    and must equal those of fresh frames, bit for bit."""
    frames, finals, region_of, rng = el
    rids = sorted(frames)
    moved = set(rids[: max(1, len(rids) // 2)])
    before, after = {}, {}
    for rid, fin in finals.items():
        n = len(fin[1])
        before[rid] = _state(fin, max(1, int(round(frac * n))))
        after[rid] = _state(fin, min(n, int(round((frac + more) * n))) if rid in moved else max(1, int(round(frac * n))))
    params = dataclasses.replace(PARAMS, min_units=2)
    project_many(frames, before, params=params, region_of=region_of)
    parts = {rid: fr._count_cache for rid, fr in frames.items()}
    _same_as_fresh(frames, after, params, region_of)
    for rid in frames:
        kept = parts[rid]
        if kept is not None and rid not in moved:
            assert frames[rid]._count_cache[2] is kept[2]  # the same count: its part was reused, not redone
            for v in vars(kept[2]).values():
                assert not isinstance(v, np.ndarray) or not v.flags.writeable  # kept for later refreshes: read-only
        elif kept is not None and not after[rid].reported.all() and not np.array_equal(before[rid].reported, after[rid].reported):
            assert frames[rid]._count_cache[2] is not kept[2]  # a new count (not complete: that needs no model): redone


@settings(max_examples=30, deadline=None)
@given(election(), st.floats(0.05, 1.0))
def test_count_parts_fitted_ahead_are_what_the_projection_computes(el, frac):
    """``model.fit_counts`` (a child process's work while its parent pools the swings) keeps each
    race's count part; the projection after it uses that part, and equals one of fresh frames bit
    for bit. A complete race needs none, and a second call fits nothing again."""
    frames, finals, region_of, _ = el
    states = {rid: _state(fin, max(1, int(round(frac * len(fin[1]))))) for rid, fin in finals.items()}
    keys = {rid: state_key(st) for rid, st in states.items()}
    params = dataclasses.replace(PARAMS, min_units=2)
    n = fit_counts([(frames[rid], states[rid], params, keys[rid]) for rid in frames])
    open_races = {rid for rid, st in states.items() if not st.reported.all()}
    assert n == len(open_races)
    fitted = {rid: fr._count_cache for rid, fr in frames.items()}
    for rid in frames:
        assert (fitted[rid] is not None) == (rid in open_races)
    assert fit_counts([(frames[rid], states[rid], params, keys[rid]) for rid in frames]) == 0
    _same_as_fresh(frames, states, params, region_of)
    for rid in frames:
        if rid in open_races:
            assert frames[rid]._count_cache[2] is fitted[rid][2]  # the projection took the part fitted ahead


def test_a_kept_outcome_is_dropped_when_its_inputs_change():
    rng = np.random.default_rng(3)
    fr = _race(rng, "r", 30, 3, 4, ["A", "B", "C"])
    valid = np.minimum(rng.binomial(fr.registered, 0.8), fr.cap)
    votes = np.array([rng.multinomial(v, [0.5, 0.3, 0.2]) for v in valid])
    fin = (votes, valid, rng.permutation(30))
    state = _state(fin, 15)
    first = project_many({"r": fr}, {"r": state}, params=PARAMS)["r"]
    # a corrected sheet: same units in, votes moved between candidates
    j = int(np.flatnonzero(state.reported)[0])
    moved = state.votes.copy()
    moved[j, 0], moved[j, 1] = moved[j, 1], moved[j, 0]
    corrected = RaceState(state.reported, moved, state.valid)
    second = project_many({"r": fr}, {"r": corrected}, params=PARAMS)["r"]
    assert second is not first
    _assert_same_outcome(second, project_many({"r": _fresh(fr)}, {"r": corrected}, params=PARAMS)["r"])
    # units put under review change the guards, other parameters the model: neither may come from the cache
    flagged = RaceState(corrected.reported, corrected.votes, corrected.valid, corrected.reported.copy())
    third = project_many({"r": fr}, {"r": flagged}, params=PARAMS)["r"]
    assert third is not second
    more = ModelParams(draws=41)
    fourth = project_many({"r": fr}, {"r": flagged}, params=more)["r"]
    assert fourth is not third and fourth.projection.draws.shape[0] == 41


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**31 - 1), st.lists(st.tuples(st.integers(1, 60), st.integers(0, 8), st.integers(1, 6), st.integers(0, 8)), min_size=1, max_size=6))
def test_shared_draws_are_those_of_a_fresh_generator(seed, shapes):
    """Whatever the order shapes are asked in, each gets the numbers a generator seeded for it gives, in the order the model always drew them."""
    clear_draw_cache()
    for B, G_R, K, Gu in shapes + shapes[::-1]:
        got = shared_draws(seed, B, G_R, K, Gu)
        rng = np.random.default_rng(seed)
        omega = np.ones((B + 1, G_R))
        if G_R >= 2:
            omega[1:] = rng.exponential(1.0, size=(B, G_R))
        np.testing.assert_array_equal(got.omega, omega)
        np.testing.assert_array_equal(got.z_shift, rng.standard_normal((B, K)))
        np.testing.assert_array_equal(got.z_small, rng.standard_normal((B, K)))
        np.testing.assert_array_equal(got.z_eps, rng.standard_normal((B, Gu, K)))
        np.testing.assert_array_equal(got.z_unit, rng.standard_normal((B, Gu, K)))
        np.testing.assert_array_equal(got.z_turn, rng.standard_normal((B, 3, Gu)))
        if G_R:
            n_fresh = 1 + seed % 3
            np.testing.assert_array_equal(got.picks(n_fresh), rng.integers(0, G_R, size=(B, n_fresh)))
        assert not got.omega.flags.writeable and not got.z_eps.flags.writeable  # shared: nobody may write into them


def test_projection_is_the_same_with_shared_or_fresh_draws():
    rng = np.random.default_rng(11)
    frames = [_race(rng, f"r{i}", 40, 3, 5, ["A", "B", "C"]) for i in range(3)]
    states = []
    for fr in frames:
        valid = np.minimum(rng.binomial(fr.registered, 0.8), fr.cap)
        votes = np.array([rng.multinomial(v, [0.45, 0.35, 0.2]) for v in valid])
        states.append(_state((votes, valid, rng.permutation(40)), 12))
    warm = [project(fr, s, PARAMS) for fr, s in zip(frames, states)]  # later races may reuse earlier races' draws
    for fr, s, w in zip(frames, states, warm):
        clear_draw_cache()
        cold = project(_fresh(fr), s, PARAMS)
        np.testing.assert_array_equal(w.draws, cold.draws)
        np.testing.assert_array_equal(w.votes, cold.votes)
    assert draw_fresh(0, 5, 3, 2, 1).z_eps.shape == (5, 1, 2)


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 60), st.integers(1, 6), st.integers(1, 8), st.integers(1, 30))
def test_entrywise_swing_solve_matches_the_general_ridge_solve(seed, m, K, G, D):
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, G, m)
    present = np.unique(groups)

    def gs(v: np.ndarray) -> np.ndarray:
        out = np.zeros((G, *v.shape[1:]))
        np.add.at(out, groups, v)
        return out[present]

    A = rng.uniform(0.0, 300.0, (m, K)) * (rng.random((m, K)) < 0.9)  # some candidates off some ballots
    x0 = rng.normal(0, 0.2, (m, K))
    x1 = rng.normal(0, 0.1, m)
    x2 = rng.normal(0, 0.1, m)
    y = rng.normal(0, 0.05, (m, K))
    X = np.stack([x0, np.broadcast_to(x1[:, None], (m, K)), np.broadcast_to(x2[:, None], (m, K))], axis=-1)
    om = np.vstack([np.ones(len(present)), rng.exponential(1.0, (D, len(present)))])
    a_fast, b_fast = _solve_swing(om, _swing_sums(A, x0, x1, x2, y, gs), 0.004)
    a_ref, b_ref = _solve(om, _suff(X, y, A, gs), 0.004)
    np.testing.assert_allclose(a_fast, a_ref, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(b_fast, b_ref, rtol=1e-7, atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 900), st.integers(1, 9), st.integers(1, 80))
def test_swing_sums_by_column_equal_the_interleaved_buffer(seed, m, K, G):
    """With a grouper whose sums are column by column (the sparse one, for m x groups > 4,000),
    the 14 products summed one by one equal the one wide sum, bit for bit; the dense grouper
    (a BLAS product, whose rounding may depend on the width) says it is not such a grouper."""
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, G, m)
    gsum = _grouper(groups, G)
    assert gsum.by_column == (m * G > 4_000)
    A = rng.uniform(0.0, 300.0, (m, K)) * (rng.random((m, K)) < 0.9)
    x0, y = rng.normal(0, 0.2, (m, K)), rng.normal(0, 0.05, (m, K))
    x1, x2 = rng.normal(0, 0.1, m), rng.normal(0, 0.1, m)
    rg = np.bincount(groups, minlength=G) > 0
    gs = lambda v: gsum(v)[rg]  # noqa: E731 - as _count_steps sums over the reported groups
    wide = _swing_sums(A, x0, x1, x2, y, gs)
    if gsum.by_column:
        by_col = _swing_sums(A, x0, x1, x2, y, gs, by_column=True)
        assert by_col.shape == wide.shape and by_col.tobytes() == wide.tobytes()


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(40, 120), st.floats(0.5, 0.9), st.floats(-0.005, 0.005))
def test_kept_conformal_odds_equal_a_fresh_fit(seed, n, frac, nudge):
    """The conformal check's covariate-shift odds are kept per (leader, runner-up) with the units
    in: a second check of the same units in (another projection: the prior moved) must give what
    a fresh frame gives, and new units in must refit them."""
    from sandik.core.projection.conformal import conformal_margin

    rng = np.random.default_rng(seed)
    fr = _race(rng, "r", n, 3, 5, ["A", "B", "C"])
    valid = np.minimum(rng.binomial(fr.registered, 0.8), fr.cap)
    votes = np.array([rng.multinomial(v, [0.5, 0.3, 0.2]) for v in valid])
    fin = (votes, valid, rng.permutation(n))
    state = _state(fin, int(frac * n))
    proj = project(fr, state, PARAMS)
    first = conformal_margin(fr, state, proj)
    kept = dict(fr._odds_cache or {})
    # the same units in, another projection (as after a move of the pooled prior)
    proj2 = dataclasses.replace(proj, state={**proj.state, "swing_intercept": proj.state["swing_intercept"] + nudge}, margin=proj.margin + 1000 * nudge)
    got = conformal_margin(fr, state, proj2)
    assert repr(got) == repr(conformal_margin(_fresh(fr), state, proj2))
    if "quantile" in first:  # the odds were fitted (enough calibration units, something out)
        assert kept and all(fr._odds_cache[k][1] is kept[k][1] for k in kept)  # reused, not refitted
    later = _state(fin, min(n - 1, int(frac * n) + 5))
    proj3 = project(fr, later, PARAMS)
    assert repr(conformal_margin(fr, later, proj3)) == repr(conformal_margin(_fresh(fr), later, proj3))
    assert repr(first) == repr(conformal_margin(_fresh(fr), state, proj))
