"""A race whose count stays keeps its outcome while its pooled prior moves by less than
``ModelParams.prior_reuse_sd`` of the prior's own sds (``pool.prior_close``), measured from the
prior the outcome was made with, so that small moves cannot add up unseen."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sandik.core.projection import RaceState
from sandik.core.projection.calls import CallRule
from sandik.core.projection.model import ModelParams, SwingPrior, clear_draw_cache, multinomial_cov
from sandik.core.projection.pool import PoolStats, pooled_prior, prior_close, project_races
from tests.factories import race_frame


def _prior(rng: np.random.Generator, k: int, scope: str = "*") -> SwingPrior:
    cov = multinomial_cov(rng.dirichlet(np.ones(k)), rng.uniform(0.02, 0.1)) * 2 + np.diag(rng.uniform(1e-4, 4e-3, k))
    return SwingPrior(rng.normal(0, 0.05, k), cov, float(rng.normal(0, 0.1)), float(rng.uniform(0.03, 0.2)), "pooled", scope)


def _close_oracle(kept: SwingPrior, new: SwingPrior, tol: float) -> bool:
    """Entry by entry, in plain Python: the rule the docstring states."""
    k = len(new.mean)
    sd = [float(np.sqrt(max(new.cov[i, i], 0.0))) for i in range(k)]
    ok = kept.scope == new.scope and len(kept.mean) == k
    for i in range(k):
        ok = ok and abs(float(kept.mean[i]) - float(new.mean[i])) <= tol * sd[i]
    for i, j in itertools.product(range(k), repeat=2):
        ok = ok and abs(float(kept.cov[i, j]) - float(new.cov[i, j])) <= tol * sd[i] * sd[j]
    ok = ok and abs(kept.turnout - new.turnout) <= tol * new.turnout_sd
    return ok and abs(kept.turnout_sd - new.turnout_sd) <= tol * new.turnout_sd


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(2, 6), st.floats(0.001, 0.05), st.floats(0.0, 3.0), st.sampled_from(["mean", "cov", "turnout", "turnout_sd", "all"]))
def test_prior_close_is_the_entrywise_rule(seed, k, tol, size, what):
    rng = np.random.default_rng(seed)
    kept = _prior(rng, k)
    sd = np.sqrt(np.diag(kept.cov))
    step = size * tol  # in the kept prior's sds: below 1 x tol mostly close, above mostly not
    mean, cov, lt, lt_sd = kept.mean.copy(), kept.cov.copy(), kept.turnout, kept.turnout_sd
    if what in ("mean", "all"):
        mean = mean + step * sd * rng.choice([-1, 1], k)
    if what in ("cov", "all"):
        e = rng.choice([-1, 1], (k, k))
        cov = cov + step * np.outer(sd, sd) * (e + e.T) / 2
    if what in ("turnout", "all"):
        lt = lt + step * lt_sd
    if what in ("turnout_sd", "all"):
        lt_sd = lt_sd * (1 + step)
    new = SwingPrior(mean, cov, lt, lt_sd, "pooled, later", "*")
    assert prior_close(kept, new, tol) == _close_oracle(kept, new, tol)
    assert prior_close(kept, kept, tol)
    assert not prior_close(kept, dataclasses.replace(new, scope="tr.34"), tol)


def test_prior_close_edges():
    rng = np.random.default_rng(1)
    p = _prior(rng, 3)
    assert prior_close(None, None, 0.02)
    assert not prior_close(p, None, 0.02) and not prior_close(None, p, 0.02)
    assert not prior_close(p, _prior(np.random.default_rng(1), 4), 0.02)  # another number of candidates
    # 0: identical only, the source (how many races were pooled) included
    assert prior_close(p, dataclasses.replace(p), 0.0)
    assert not prior_close(p, dataclasses.replace(p, source="pooled over 2 races"), 0.0)
    assert not prior_close(p, dataclasses.replace(p, mean=p.mean + 1e-12), 0.0)
    assert prior_close(p, dataclasses.replace(p, mean=p.mean + 1e-12), 0.02)


def _stats(ym: float, lt: float = 0.0) -> PoolStats:
    # one scope, two parties: the prior's mean swing of A is ym (no slope), B's is -ym
    line = lambda y: (y, 0.0, 0.3, 0.01, 0.0009, 20)  # noqa: E731
    return PoolStats({"*": {"A": line(ym), "B": line(-ym)}}, {"*": (lt, 0.05)}, {"*": 20})


def test_a_kept_outcome_stands_until_its_prior_drifts_past_the_tolerance():
    """Three refreshes of one race with the same count: its prior's mean moves 0.6 x the tolerance
    (kept), then as much again (1.2 x from the prior the outcome was made with: redone), and the
    redone outcome is the one a fresh projection with that prior gives."""
    rng = np.random.default_rng(7)
    n = 40
    fr = race_frame(rng.integers(50, 300, n), rng.dirichlet(np.ones(2), n), rng.integers(0, 4, n), rng.integers(30, 250, n).astype(float), race_id="r", candidate_ids=("a", "b"), parties=("A", "B"))
    valid = np.minimum(rng.binomial(fr.registered, 0.8), fr.cap)
    votes = np.array([rng.multinomial(v, [0.55, 0.45]) for v in valid])
    rep = np.zeros(n, dtype=bool)
    rep[:6] = True  # six units in: the race still leans on the prior
    state = RaceState(rep, np.where(rep[:, None], votes, 0), np.where(rep, valid, 0))
    params, rule = ModelParams(draws=40), CallRule()
    tol = params.prior_reuse_sd
    s0 = _stats(0.02)
    p0 = pooled_prior(fr, s0, {}, params)
    sd_a = float(np.sqrt(p0.cov[0, 0]))
    step = 0.6 * tol * sd_a  # A's mean moves up by step, B's down by as much
    first = project_races({"r": fr}, {"r": state}, s0, {}, params, rule, ["r"])["r"]
    s1 = _stats(0.02 + step)
    assert prior_close(p0, pooled_prior(fr, s1, {}, params), tol)
    second = project_races({"r": fr}, {"r": state}, s1, {}, params, rule, ["r"])["r"]
    assert second is first
    s2 = _stats(0.02 + 2 * step)
    p2 = pooled_prior(fr, s2, {}, params)
    assert prior_close(pooled_prior(fr, s1, {}, params), p2, tol)  # a small move from the refresh before ...
    assert not prior_close(p0, p2, tol)  # ... but past the tolerance from the prior the outcome was made with
    third = project_races({"r": fr}, {"r": state}, s2, {}, params, rule, ["r"])["r"]
    assert third is not first
    fresh = race_frame(fr.registered, fr.base_share, fr.group, fr.expected, race_id="r", candidate_ids=("a", "b"), parties=("A", "B"))
    clear_draw_cache()
    ref = project_races({"r": fresh}, {"r": state}, s2, {}, params, rule, ["r"])["r"]
    np.testing.assert_array_equal(third.projection.votes, ref.projection.votes)
    np.testing.assert_array_equal(third.projection.p_win, ref.projection.p_win)
    assert third.projection.margin_intervals == ref.projection.margin_intervals
    # with no tolerance the first move is already a new outcome
    exact = dataclasses.replace(params, prior_reuse_sd=0.0)
    e0 = project_races({"r": fresh}, {"r": state}, s0, {}, exact, rule, ["r"])["r"]
    assert project_races({"r": fresh}, {"r": state}, s1, {}, exact, rule, ["r"])["r"] is not e0


def test_a_complete_race_takes_no_prior():
    """Nothing is out: the count is the result, so a moving prior never redoes it."""
    rng = np.random.default_rng(8)
    n = 5
    fr = race_frame(rng.integers(50, 300, n), rng.dirichlet(np.ones(2), n), np.zeros(n, dtype=int), rng.integers(30, 250, n).astype(float), race_id="r", candidate_ids=("a", "b"), parties=("A", "B"))
    valid = np.minimum(rng.binomial(fr.registered, 0.8), fr.cap)
    votes = np.array([rng.multinomial(v, [0.55, 0.45]) for v in valid])
    state = RaceState(np.ones(n, dtype=bool), votes, valid)
    params, rule = ModelParams(draws=40, prior_reuse_sd=0.0), CallRule()
    first = project_races({"r": fr}, {"r": state}, _stats(0.02), {}, params, rule, ["r"])["r"]
    assert first.projection.mode == "complete"
    assert project_races({"r": fr}, {"r": state}, _stats(0.2, 0.3), {}, params, rule, ["r"])["r"] is first
