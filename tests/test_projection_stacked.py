"""The stacked steps of the projection (``core.projection.stacked``) against the one-race computation.

``project_stacked`` runs the per-draw steps of races that share a shape once over
their stack; a race alone runs through the same code with a stack of one. Both
are checked here: a stack against its races one by one (bit for bit), and the
stacked kernels against the plain one-race expressions they replace (the ridge
solves of ``model``, the bootstrap written out below as it was before stacking,
and ``model._summarise``).
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sandik.core.projection import stacked
from sandik.core.projection.model import ModelParams, _design_dot, _project_steps, _solve, _solve_swing, _summarise, clear_draw_cache, project, project_stacked
from tests.test_projection_fastpath import PARAMS, _fresh, _race, _state


@st.composite
def shaped_races(draw):
    """Races drawn from a few shapes (so that stacks have several races), each with a count."""
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    parties = ["A", "B", "C", "D"]
    shapes = [(int(rng.integers(2, 50)), int(rng.integers(2, 5)), int(rng.integers(1, 7))) for _ in range(draw(st.integers(1, 3)))]
    items = []
    for r in range(draw(st.integers(2, 9))):
        n, k, g = shapes[int(rng.integers(len(shapes)))]
        fr = _race(rng, f"r{r}", n, k, g, parties)
        valid = np.minimum(rng.binomial(fr.registered, 0.8), fr.cap)
        votes = np.array([rng.multinomial(v, rng.dirichlet(np.ones(k) * 3)) for v in valid]).reshape(n, k)
        n_in = int(rng.integers(0, n + 1))
        items.append((fr, _state((votes, valid, rng.permutation(n)), n_in)))
    return items, draw(st.sampled_from([1, 4, 1 << 20]))


def _same(a, b) -> None:
    assert a.mode == b.mode and a.leader == b.leader and a.runner_up == b.runner_up
    for x, y in [(a.votes, b.votes), (a.draws, b.draws), (a.p_win, b.p_win), (a.share, b.share)]:
        assert x.shape == y.shape and x.tobytes() == y.tobytes()
    for lv in a.intervals:
        for x, y in list(zip(a.intervals[lv], b.intervals[lv])) + list(zip(a.share_intervals[lv], b.share_intervals[lv])):
            assert x.tobytes() == y.tobytes()
        assert a.margin_intervals[lv] == b.margin_intervals[lv]
        assert a.margin_points_intervals[lv] == b.margin_points_intervals[lv]
    assert a.margin == b.margin and repr(a.state) == repr(b.state)


@settings(max_examples=50, deadline=None)
@given(shaped_races())
def test_a_stack_of_races_equals_its_races_one_by_one(case):
    items, budget = case
    old = stacked.STACK_BUDGET
    stacked.STACK_BUDGET = budget  # stacks of one race, of a few, of all
    try:
        together = project_stacked([(fr, s, PARAMS, None) for fr, s in items])
    finally:
        stacked.STACK_BUDGET = old
    clear_draw_cache()
    for (fr, s), got in zip(items, together):
        _same(got, project(_fresh(fr), s, PARAMS))


def _plain_bootstrap(job: dict) -> tuple[np.ndarray, np.ndarray]:
    """The one-race bootstrap as ``model.project`` computed it before stacking: draws and point (B, K), (K,)."""
    rd = job["rd"]
    a_all1, L_prior, small = job["a1"], job["L_prior"], job["small"]
    a_draw = a_all1 + small * (rd.z_small @ L_prior.T) + rd.z_shift @ job["M_shift"].T * job["shift_scale"]
    mu_draw = job["mu1"] + job["c_turn"] * rd.z_turn[:, 0, 0] + job["c_shift"] * rd.z_turn[:, 1, 0]
    d_a = a_all1 - job["a0"]
    d_beta = job["beta1"] - job["beta0"]
    shift_fit = _design_dot(d_beta, job["Xrep"])
    shift_fit += d_a[:, None, :]
    shift_fit *= job["kg"][None, :, None]
    eps_draw = job["eps_hat"][None] - shift_fit
    z_g = rd.z_eps @ job["L_group"].T
    z_g *= job["sq_kg"][None, :, None]
    eps_draw += z_g
    if job["resample"] is not None:
        fresh, pool_r, pick, mix = job["resample"]
        eps_draw[:, fresh, :] = np.sqrt(mix) * pool_r[pick] + np.sqrt(1 - mix) * eps_draw[:, fresh, :]
    zeta_draw = job["zeta_hat"][None] + job["sq_kz"][None] * rd.z_turn[:, 2, :]
    noise = rd.z_unit @ job["L_unit"].T
    noise *= job["sq_SE2"][None, :, None]
    SE = job["SE"]
    shares = a_draw[..., None, :] * SE[:, None]
    shares += job["SEq"]
    shares += _design_dot(job["beta1"], job["SEX"])
    shares += eps_draw * SE[:, None]
    shares += noise
    np.clip(shares, 0.0, None, out=shares)
    shares *= job["avail"]
    tot = shares.sum(axis=-1, keepdims=True)
    pos = tot > 0
    shares /= np.where(pos, tot, 1.0)
    if not pos.all():
        np.copyto(shares, np.broadcast_to(job["fallback"], shares.shape), where=~pos)
    T = np.minimum(np.exp(mu_draw[..., None] + job["thz1"][..., None] * job["x3g"] + zeta_draw) * SE, job["capg"])
    shares *= T[..., None]
    lo, hi = job["bounds"]
    return np.clip(job["counted"][None, :] + shares.sum(axis=1), lo, hi), job["point"]


def _steps_to_draws(fr, s, params: ModelParams):
    """A race's generator driven to its bootstrap step with the plain ridge solves: (its draws job, the solve inputs)."""
    gen = _project_steps(fr, s, params, None)
    try:
        kind, _, payload = next(gen)
    except StopIteration:
        return None, None
    solve_in = None
    if kind == "solve":
        solve_in = payload
        om, swing, turn, lam = payload
        a, beta = _solve_swing(om, swing, lam)
        mz, bz = _solve(om, turn, lam)
        kind, _, payload = gen.send((a, beta, mz, bz))
    assert kind == "draws"
    return payload, solve_in


@settings(max_examples=50, deadline=None)
@given(shaped_races())
def test_stacked_kernels_equal_the_plain_one_race_expressions(case):
    items, _ = case
    jobs, solves = [], []
    for fr, s in items:
        job, solve_in = _steps_to_draws(_fresh(fr), s, PARAMS)
        if job is not None:
            jobs.append(job)
        if solve_in is not None:
            solves.append(solve_in)
    # the fits: a stack of races with the same weights against each race's plain ridge solves
    by_key: dict = {}
    for sv in solves:
        by_key.setdefault((id(sv[0]), sv[1].shape), []).append(sv)
    for group in by_key.values():
        for sv, (a, beta, mz, bz) in zip(group, stacked.solve_stacked(group)):
            a_ref, b_ref = _solve_swing(sv[0], sv[1], sv[3])
            mz_ref, bz_ref = _solve(sv[0], sv[2], sv[3])
            for x, y in [(a, a_ref), (beta, b_ref), (mz, mz_ref), (bz, bz_ref)]:
                assert x.tobytes() == y.tobytes()
    # the draws and their summary: stacks of races sharing their random numbers against the plain bootstrap and _summarise
    by_rd: dict = {}
    for j in jobs:
        by_rd.setdefault(id(j["rd"]), []).append(j)
    for group in by_rd.values():
        for j, got in zip(group, stacked.draws_and_summary(group)):
            draws, point = _plain_bootstrap(j)
            frame, counted, counted_valid, expected_total, pct_exp, remaining_cap, mode, notes = j["summary"]
            ref = _summarise(frame, counted, counted_valid, expected_total, pct_exp, point, draws, j["bounds"], remaining_cap, mode, notes, j["scale"])
            _same(got, ref)
