"""Projection of one race from partial results: a unit model of swing from the baseline.

For a reported unit j (a ballot box or a district) and candidate k, with p the
share of valid votes now and q the baseline share mapped to the candidate::

    p_jk - q_jk = a_k + b_k (q_jk - q̄_k) + c_k (u_j - ū) + ε_g(j),k + δ_jk
    log(T_j / E_j) = μ + ζ_g(j) + γ_j

where u_j = 1 - Σ_k q_jk is the baseline share of parties that have no
candidate here (their voters go somewhere: ``c`` learns where), g(j) is the
unit's group (the area just below the race), E_j the expected valid vote and T_j
the valid votes counted. Weights are the expected vote. Slopes are ridge-shrunk
towards uniform swing (b = c = 0), so a handful of units gives uniform swing and
a few hundred learn proportional patterns.

Uncertainty comes from a bootstrap of B draws, all candidates jointly:

* a Bayesian bootstrap over reported groups refits (a, b, c, μ): the swing seen
  so far might not be the race's;
* every group with units still out gets a group effect: for a partly reported
  group, its shrunk estimate plus the posterior spread; for an unreported
  group, a fresh draw from the between-group covariance (estimated from the
  reported groups, pooled with a prior so that two groups do not make it zero);
* the units still out add unit noise (the within-group covariance, summed over
  the units' expected votes), and the whole outstanding part shares one extra
  shift whose size shrinks as the count goes on: arrival order is not random
  (methods.md §1.2), and this term is what the adversarial backtests tune.

Draws are aggregated per group, not per unit (one normal per group for the
sum of its units' noise), so a race costs O(B x groups x candidates), whatever
its number of boxes. Every draw respects the hard bounds: a candidate ends with
at least what is counted and at most that plus every voter still possible.

Every race seeds its generator with the same ``params.seed``, so its random
numbers depend only on its shape (draws, groups reported, candidates, groups
out): they are drawn once per shape and shared between races and refreshes
(:func:`shared_draws`), the same numbers a fresh generator gives.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse

from sandik.core.projection.frame import RaceFrame, RaceState
from sandik.errors import ModelError

# The ufuncs behind np.clip (which picks clip, maximum or minimum as below), called without
# its three layers of Python wrappers: ~10 calls per race, the same results.
_um = np._core.umath if hasattr(np, "_core") else np.core.umath

LEVELS = (0.80, 0.90, 0.95, 0.99)
CALL_LEVEL = 0.999  # two-sided interval of the margin that must exclude zero for a statistical call


@dataclass(frozen=True)
class ModelParams:
    draws: int = 200
    seed: int = 0
    # Prior precision of the slopes b, c (share² units, added to the counted units' feature
    # variance): shrinks towards uniform swing, the more so the narrower the range of baselines
    # counted so far, where a slope is an extrapolation. 0.02 (from 0.004): the smallest mean
    # margin error over the nine arrival orders of the İstanbul replays on each half of its races
    # (2-fold, both halves chose 0.02; docs/backtests.md "Ridge").
    ridge: float = 0.02
    prior_group_sd: float = 0.12  # scale of the prior between-group swing covariance (multinomial shape)
    prior_unit_sd: float = 0.10  # floor scale of the within-group (unit) swing covariance
    prior_groups: float = 3.0  # pseudo-count of groups behind the prior covariances
    shift_sd: float = 0.01  # extra swing uncertainty of the whole outstanding vote
    shift_imbalance: float = 0.20  # ... plus this per unit of covariate imbalance (standardised mean difference) above:
    imbalance_free: float = 0.25  # imbalance that random arrival produces anyway
    turnout_prior_sd: float = 0.10  # prior sd of log turnout ratio between groups
    turnout_shift_sd: float = 0.05
    min_units: int = 3  # fewer reported units than this: the race's swing comes from the prior
    # Calibration of the published intervals (not of the draws that make calls; see
    # ``interval_scale_of``): the spread of the draws around the point is scaled by
    # interval_scale x (1 + interval_scale_z x (z - interval_z_free)+), where z is the
    # covariate imbalance between counted and outstanding units in units of what
    # random arrival would give; by interval_scale_prior while the race has too few
    # units of its own (the pooled prior). Tuned on the Turkey 2019 -> 2024 replays
    # only (docs/backtests.md; interval_scale 0.90 -> 0.85 when the ridge became 0.02).
    interval_scale: float = 0.85
    interval_scale_z: float = 0.75
    interval_z_free: float = 0.5
    interval_scale_prior: float = 0.88
    # The same three for races whose units are ballot boxes (``RaceFrame.units_are_boxes``):
    # the widening that a handful of districts needs is not needed with thousands of boxes.
    # Box-level races also get x (1 + box_interval_scale_early x (1 - counted / 25%)+), the
    # share of expected vote counted: with few boxes in, the bootstrap over the reported
    # neighbourhoods is too narrow. Tuned on the İstanbul 2014 -> 2019 box-level replays with
    # five seeds of every arrival order pooled (scripts/calibrate_intervals.py --data istanbul
    # --folds 2 --seeds 0,1,2,3,4: one permutation of the boxes is one draw, and constants tuned
    # on one seed fit its luck); these four are the pick on all 39 races, so İstanbul's figures
    # with them are in-sample; the held-out figures are the 2-fold cross-validation's
    # (docs/backtests.md). interval_scale_prior is shared: it calibrates the pooled prior.
    box_interval_scale: float = 0.55
    box_interval_scale_z: float = 1.0
    box_interval_z_free: float = 0.5
    box_interval_scale_early: float = 0.25
    # ... and, where arrival is far from random (imbalance z above box_interval_shrink_from: the
    # orders by box size or by a party's strength; random arrival of thousands of boxes stays
    # under z 2), / (1 + box_interval_shrink x (z - box_interval_shrink_from)). There the draws
    # already carry the arrival-order shift (shift_imbalance, which grows with the imbalance
    # itself), and the z widening on top of it made 90% intervals 64-68 points wide that covered
    # 99-100% of the İstanbul replays, against median errors of 1-2 points. Chosen on all 39
    # İstanbul races (five seeds, stored raw rows; so in-sample there): the narrowest intervals
    # under those five orders with each of them still covering >= 90% overall and every
    # adversarial bucket >= 85% (scripts/calibrate_intervals.py, ``search_shrink``; the 2-fold
    # held-out figures are in docs/backtests.md, "Narrowing"). Below z 3 nothing changes.
    box_interval_shrink: float = 1.5
    box_interval_shrink_from: float = 3.0
    # A race's last outcome stands while its count is the same and its pooled prior (which moves
    # whenever other races report) moved by less than this many of the prior's own sds, for every
    # candidate's mean swing, every entry of its covariance and the turnout (``pool.prior_close``).
    # After a batch of 2,000 sheets on the 2024 night the priors of the races no sheet reached
    # moved by a median 0.6% of their sd (99th percentile 2.7%), and redoing those races was
    # half the refresh of every race. A move of 2% of the prior's sd shifts a race's point by at
    # most that (less once the race's own units weigh in): about 1% of its 90% interval's half
    # width. 0: only an identical prior reuses the outcome.
    prior_reuse_sd: float = 0.02


@dataclass(frozen=True)
class SwingPrior:
    """What other races say before this race has counted much (cross-race pooling).

    ``mean`` is the expected swing a_k per candidate of this race, ``cov`` its
    between-race covariance; ``turnout`` the expected log turnout ratio and its sd.
    """

    mean: np.ndarray  # (K,)
    cov: np.ndarray  # (K, K)
    turnout: float = 0.0
    turnout_sd: float = 0.10
    source: str = "default"
    scope: str = ""  # where it was pooled ("*", a region); priors of different scopes are never interchangeable


@dataclass
class RaceProjection:
    race_id: str
    candidate_ids: tuple[str, ...]
    mode: str  # "complete", "model", "prior" (too little counted here: other races' swing), "no_baseline"
    units_total: int
    units_reported: int
    counted: np.ndarray  # (K,) votes counted
    counted_valid: int
    expected_total: float  # counted valid + expected valid of the units still out
    pct_expected_counted: float
    votes: np.ndarray  # (K,) projected final votes
    intervals: dict[float, tuple[np.ndarray, np.ndarray]]  # level -> (lo, hi) votes per candidate
    share: np.ndarray  # (K,)
    share_intervals: dict[float, tuple[np.ndarray, np.ndarray]]
    p_win: np.ndarray  # (K,)
    leader: int  # candidate index (projected)
    runner_up: int  # candidate index, -1 with one candidate
    margin: float  # projected votes, leader - runner-up
    margin_intervals: dict[float, tuple[float, float]]  # votes
    margin_points_intervals: dict[float, tuple[float, float]]  # share points (0..1)
    bounds: tuple[np.ndarray, np.ndarray]  # hard bounds per candidate: counted .. counted + every voter still possible
    remaining_cap: int  # voters still possible in units out
    notes: list[str] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)  # model state (coefficients, spreads, counts) for the call log
    draws: np.ndarray | None = field(default=None, repr=False)  # (B, K) final votes per draw

    @property
    def margin_share(self) -> float:
        tot = float(self.votes.sum())
        return self.margin / tot if tot > 0 else 0.0

    def uncertainty(self) -> list[str]:
        """Why this projection is less certain than usual, as codes a reader's page can put in its own
        language (``notes`` says it in English): ``few_units`` (the swing comes from other races),
        ``no_baseline``, ``arrival_far_from_random`` (the counted units unlike those still out)."""
        codes = {"prior": ["few_units"], "no_baseline": ["no_baseline"]}.get(self.mode, [])
        if self.state.get("arrival_far_from_random"):
            codes.append("arrival_far_from_random")
        return codes

    def to_dict(self, *, levels: tuple[float, ...] = LEVELS) -> dict[str, Any]:
        cands = []
        for k, cid in enumerate(self.candidate_ids):
            cands.append(
                {
                    "id": cid,
                    "counted": int(self.counted[k]),
                    "votes": round(float(self.votes[k])),
                    "share": float(self.share[k]),
                    "p_win": float(self.p_win[k]),
                    "votes_interval": {_lv(lv): [round(float(self.intervals[lv][0][k])), round(float(self.intervals[lv][1][k]))] for lv in levels},
                    "share_interval": {_lv(lv): [float(self.share_intervals[lv][0][k]), float(self.share_intervals[lv][1][k])] for lv in levels},
                    "bounds": [int(self.bounds[0][k]), int(self.bounds[1][k])],
                }
            )
        order = sorted(range(len(cands)), key=lambda i: -cands[i]["votes"])
        return {
            "race_id": self.race_id,
            "kind": "projection",
            "mode": self.mode,
            "units_total": self.units_total,
            "units_reported": self.units_reported,
            "pct_units_reported": self.units_reported / self.units_total if self.units_total else 0.0,
            "pct_expected_vote_counted": self.pct_expected_counted,
            "counted_valid": self.counted_valid,
            "expected_valid": round(self.expected_total),
            "leader": self.candidate_ids[self.leader] if self.candidate_ids else None,
            "runner_up": self.candidate_ids[self.runner_up] if self.runner_up >= 0 else None,
            "margin_votes": round(self.margin),
            "margin_points": 100 * self.margin_share,
            "margin_interval": {_lv(lv): [round(self.margin_intervals[lv][0]), round(self.margin_intervals[lv][1])] for lv in levels},
            "margin_points_interval": {_lv(lv): [100 * self.margin_points_intervals[lv][0], 100 * self.margin_points_intervals[lv][1]] for lv in levels},
            "remaining_possible_voters": self.remaining_cap,
            "candidates": [cands[i] for i in order],
            "notes": list(self.notes),
            "uncertainty": self.uncertainty(),
            "model": _jsonable(self.state),
        }


def _lv(level: float) -> str:
    return f"{round(level * 100, 1):g}"


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, (np.floating, float)):
        return round(float(x), 6)
    if isinstance(x, np.integer):
        return int(x)
    return x


def multinomial_cov(shares: np.ndarray, scale: float) -> np.ndarray:
    """scale² (diag(s) - s sᵀ): a swing covariance whose draws sum to zero over candidates."""
    s = _um.clip(np.asarray(shares, dtype=float), 0.0, 1.0)
    tot = s.sum()
    if tot > 0:
        s = s / tot
    return scale**2 * (np.diag(s) - np.outer(s, s))


def multinomial_sqrt(shares: np.ndarray, scale: float) -> np.ndarray:
    """L with L Lᵀ = multinomial_cov(shares, scale), in closed form: diag(√s) - s √sᵀ (no eigendecomposition)."""
    s = _um.clip(np.asarray(shares, dtype=float), 0.0, 1.0)
    tot = s.sum()
    if tot > 0:
        s = s / tot
    r = np.sqrt(s)
    return scale * (np.diag(r) - np.outer(s, r))


def psd_sqrt(cov: np.ndarray) -> np.ndarray:
    """A matrix L with L Lᵀ = cov, negative eigenvalues clipped (covariances estimated from few groups)."""
    cov = 0.5 * (cov + cov.T)
    vals, vecs = np.linalg.eigh(cov)
    return vecs * np.sqrt(_um.maximum(vals, 0.0))


def default_prior(frame: RaceFrame, params: ModelParams) -> SwingPrior:
    """No other race to learn from: expect no swing, with a wide multinomial-shaped spread."""
    k = frame.n_candidates
    base = frame.baseline_mean
    # A candidate with no baseline anywhere still needs room to win: give every
    # candidate at least an even share of the prior spread.
    s = np.maximum(base, 1.0 / max(k, 1))
    return SwingPrior(np.zeros(k), multinomial_cov(s, 2 * params.prior_group_sd), 0.0, params.turnout_prior_sd, "default")


@dataclass(eq=False)
class _Prepared:
    """What ``project`` needs from a frame that does not depend on the count (built once per frame)."""

    u: np.ndarray  # (n,) baseline share of parties with no candidate here
    qbar: np.ndarray
    ubar: float
    lE_mean: float
    sd_lE: float
    x3: np.ndarray  # (n,) scaled log expected vote
    X: np.ndarray  # (n, K, P) design
    onb_f: np.ndarray  # (n, K) float
    imb_F: np.ndarray  # (n, c) imbalance features
    imb_sd: np.ndarray
    # The default prior and its square root depend on the frame and two parameters
    # only: kept per (prior_group_sd, turnout_prior_sd) for the races that use it.
    default_priors: dict = field(default_factory=dict)
    # Where a group's outstanding shares all come out zero: the baseline's mean shares.
    fallback_share: np.ndarray | None = None


def prepared(frame: RaceFrame) -> _Prepared:
    pre = frame._pre
    if pre is not None:
        return pre
    n, K = frame.n_units, frame.n_candidates
    E = frame.expected
    q = frame.base_share
    u = np.clip(1.0 - q.sum(axis=1), 0.0, 1.0)
    qbar = frame.baseline_mean
    E_sum = float(E.sum())
    ubar = float((E * u).sum() / E.sum()) if E_sum > 0 else 0.0
    # Features: baseline share, unmapped baseline share, unit size (log expected
    # vote, scaled to the spread of a share so that one ridge fits all).
    lE = np.log(np.maximum(E, 1.0))
    sd_lE = float(lE.std()) if n > 1 else 0.0
    x3 = 0.1 * (lE - lE.mean()) / sd_lE if sd_lE > 1e-9 else np.zeros(n)
    X = np.ascontiguousarray(np.stack([q - qbar, np.broadcast_to((u - ubar)[:, None], (n, K)), np.broadcast_to(x3[:, None], (n, K))], axis=-1))  # (n, K, P)
    onb = frame.on_ballot if frame.on_ballot is not None else np.ones((n, K), dtype=bool)
    F = np.column_stack([q[:, np.argsort(-qbar)[: min(2, K)]], lE])
    if E_sum > 0:
        m_all = (E @ F) / E.sum()
        sd = np.sqrt((E @ (F - m_all) ** 2) / E.sum())
    else:
        m_all = np.zeros(F.shape[1])
        sd = np.zeros(F.shape[1])
    pre = _Prepared(u, qbar, ubar, float(lE.mean()) if n else 0.0, sd_lE, x3, X, onb.astype(float), F, sd)
    pre.fallback_share = np.maximum(qbar, 1e-9) / np.maximum(qbar, 1e-9).sum()
    frame._pre = pre
    return pre


def project(frame: RaceFrame, state: RaceState, params: ModelParams | None = None, prior: SwingPrior | None = None, *, key: bytes | None = None) -> RaceProjection:
    """Project one race's final result from the units counted so far.

    Every sum over units is taken over the units it concerns (fitted units, or
    units still out) by group, with the frame's count-independent parts
    (:func:`prepared`) reused between refreshes. ``key``: ``pool.state_key(state)``, if the
    caller has it: what depends on the count alone is then kept on the frame for a later
    refresh of the same count (see ``_project_steps``).
    """
    from sandik.core.projection.stacked import run_steps

    return run_steps([_project_steps(frame, state, params or ModelParams(), prior, key)])[0]


def project_stacked(items: list[tuple]) -> list[RaceProjection]:
    """``project`` of many races at once: the steps whose arrays have one row per bootstrap draw
    (the swing fits, the draws per group, the summary) run once per race shape over all races of
    that shape (:mod:`.stacked`), the rest race by race. The same projections, bit for bit.
    Items are (frame, state, params, prior), or the same and the count's digest (``key`` of
    :func:`project`)."""
    from sandik.core.projection.stacked import run_steps

    return run_steps([_project_steps(fr, st, params, prior, key) for fr, st, params, prior, key in (it if len(it) == 5 else (*it, None) for it in items)])


def _project_steps(frame: RaceFrame, state: RaceState, params: ModelParams, prior: SwingPrior | None, key: bytes | None = None):
    """``project`` as a generator: it yields the steps that are run over a stack of races
    (``("solve", key, inputs)``, ``("draws", key, job)``), is sent their results, and returns
    the projection. ``stacked.run_steps`` drives one race or many.

    ``key``: ``pool.state_key(state)``, when the caller has it. The part of the model that
    depends on the count alone (the fits, the residual spreads and their square roots, the
    sums over the units out: :func:`_count_steps`) is then kept on the frame with it, and a
    refresh whose count is the same (a race no sheet reached since, whose pooled prior moved)
    redoes only the part that depends on the prior."""
    state.check(frame)
    K = frame.n_candidates
    n = frame.n_units
    out_idx, counted, counted_valid, expected_total, pct_exp = _count_totals(frame, state)
    remaining_cap = int(frame.cap[out_idx].sum())
    bounds = (counted.copy(), counted + remaining_cap)
    notes = list(frame.notes)

    if K == 0:
        raise ModelError(f"race {frame.race_id} has no candidates: nothing to project")
    if not len(out_idx):
        return _complete(frame, state, counted, counted_valid, bounds, notes)

    pre = prepared(frame)
    B = params.draws
    qbar = pre.qbar

    if prior is None:
        dkey = (params.prior_group_sd, params.turnout_prior_sd)
        hit = pre.default_priors.get(dkey)
        if hit is None:
            dp = default_prior(frame, params)
            hit = pre.default_priors[dkey] = (dp, psd_sqrt(dp.cov))
        prior, L_prior_kept = hit
    else:
        L_prior_kept = None

    c = _kept_count_part(frame, key, params) if key is not None else None
    if c is None:
        c = yield from _count_steps(frame, state, params, pre, out_idx, counted, pct_exp)
        if key is not None:
            frame._count_cache = (key, params, c)
    n_fit, G_R, Gu, mode = c.n_fit, c.G_R, c.Gu, c.mode
    if mode == "no_baseline":
        notes.append("no baseline for this race: swing is measured from zero shares; wider intervals, no statistical call")
    if n_fit < params.min_units:
        notes.append(f"{n_fit} unit(s) counted (< {params.min_units}): the swing comes from {'other races' if prior.source != 'default' else 'a wide default prior'}; no statistical call")

    g_eff, m0 = c.g_eff, params.prior_groups
    a_all, mu_all = c.a_all, c.mu_all
    vz_group = (G_R * c.vz_between + m0 * prior.turnout_sd**2) / (G_R + m0)
    nG = c.nG
    kz = np.where(nG > 0, nG * vz_group / (nG * vz_group + c.vz_unit + 1e-12), 0.0)

    # Shrink the race's own swing towards the prior by precision: the race's
    # mean swing is known to about tau²/g_eff from g_eff groups, the prior's to
    # its own covariance.
    prior_var = float(np.trace(prior.cov))
    data_var = max(c.tau2 / g_eff, 1e-12) if g_eff > 0 else np.inf
    wr = (1.0 / data_var) / (1.0 / data_var + 1.0 / max(prior_var, 1e-12)) if g_eff > 0 else 0.0
    pz_var = prior.turnout_sd**2
    dz_var = max(vz_group / g_eff, 1e-12) if g_eff > 0 else np.inf
    wz = (1.0 / dz_var) / (1.0 / dz_var + 1.0 / max(pz_var, 1e-12)) if g_eff > 0 else 0.0
    a_all = wr * a_all + (1 - wr) * prior.mean[None, :]
    mu_all = wz * mu_all + (1 - wz) * prior.turnout
    a_hat, mu_hat = a_all[0], float(mu_all[0])
    zeta_hat = kz * c.Lg

    # --- outstanding units, per group (their sums: ``_count_steps``) ---------------------
    go = c.go
    SE, SEq, SEX, x3g, capg, avail = c.SE, c.SEq, c.SEX, c.x3g, c.capg, c.avail
    f_out = 1.0 - pct_exp

    # The race-level swing uncertainty that the bootstrap over groups cannot see
    # when few groups have reported, plus the arrival-order shift.
    # The Bayesian bootstrap over groups already spreads the race's swing once
    # several groups are in; with few, the prior's posterior spread stands in.
    few = min(1.0, 3.0 / G_R) if G_R else 1.0
    small = np.sqrt((1.0 - wr) * few)
    small_z = np.sqrt((1.0 - wz) * few)
    if small > 1e-3:
        L_prior = L_prior_kept if L_prior_kept is not None else psd_sqrt(prior.cov)
    else:
        L_prior = np.zeros((K, K))
    a_pt = a_hat
    beta_hat, thz_hat = c.beta_hat, c.thz_hat
    fallback_share = pre.fallback_share

    def group_votes(a, beta, mu, thz, eps, zeta, nz) -> np.ndarray:
        # a: (..., K); beta: (..., K, P); mu, thz: (...); eps, nz: (..., Gu, K); zeta: (..., Gu)
        # SEq + a SE + beta·SEX + eps SE + nz, accumulated in one array
        shares = a[..., None, :] * SE[:, None]
        shares += SEq
        shares += _design_dot(beta, SEX)
        shares += eps * SE[:, None]
        shares += nz
        np.clip(shares, 0.0, None, out=shares)
        shares *= avail
        tot = shares.sum(axis=-1, keepdims=True)
        pos = tot > 0
        shares /= np.where(pos, tot, 1.0)
        if not pos.all():
            np.copyto(shares, np.broadcast_to(fallback_share, shares.shape), where=~pos)
        T = np.minimum(np.exp(mu[..., None] + thz[..., None] * x3g + zeta) * SE, capg)
        shares *= T[..., None]
        return shares

    pt_groups = group_votes(a_pt, beta_hat, np.asarray(mu_hat), np.asarray(thz_hat), c.eps_hat_go, zeta_hat[go], np.zeros((Gu, K)))
    point = counted + pt_groups.sum(axis=0)
    point = _um.clip(point, bounds[0], bounds[1])

    iv_scale = c.iv_scale
    rd = shared_draws(params.seed, B, G_R, K, Gu)
    # Everything per draw (B rows) from here on runs over all races of this shape at once
    # (``stacked.draws_and_summary``: the same operations, in the same order, as one race alone).
    job = {
        "rd": rd, "a1": a_all[1:], "a0": a_all[0], "small": small, "L_prior": L_prior, "M_shift": c.M_shift, "shift_scale": c.shift_scale,
        "mu1": mu_all[1:], "c_turn": small_z * prior.turnout_sd, "c_shift": params.turnout_shift_sd * f_out,
        "beta1": c.beta_all[1:], "beta0": c.beta_all[0], "thz1": c.thz_all[1:], "Xrep": c.Xrep, "kg": c.kg_go, "eps_hat": c.eps_hat_go, "L_group": c.L_group, "sq_kg": c.sq_kg,
        "resample": c.resample, "zeta_hat": zeta_hat[go], "sq_kz": np.sqrt((1.0 - kz[go]) * vz_group), "L_unit": c.L_unit, "sq_SE2": c.sq_SE2,
        "SE": SE, "SEq": SEq, "SEX": SEX, "avail": avail, "fallback": fallback_share, "x3g": x3g, "capg": capg,
        "counted": counted, "bounds": bounds, "point": point, "scale": iv_scale,
        "summary": (frame, counted, counted_valid, expected_total, pct_exp, remaining_cap, mode, notes),
    }  # fmt: skip
    proj = yield ("draws", id(rd), job)
    proj.units_reported = n - len(out_idx)
    proj.state = {
        "mode": mode,
        "units_fitted": n_fit,
        "groups_reported": G_R,
        "groups_outstanding": Gu,
        "effective_groups": g_eff,
        "prior_weight": 1 - wr,
        "prior_weight_turnout": 1 - wz,
        "prior_source": prior.source,
        "swing_intercept": a_hat,
        "swing_slopes": beta_hat,  # per candidate: baseline share, unmapped share, size
        "feature_centres": {"baseline_share": qbar, "unmapped_share": pre.ubar, "log_expected_mean": pre.lE_mean, "log_expected_sd": pre.sd_lE},
        "turnout_slope_size": thz_hat,
        "log_turnout_ratio": mu_hat,
        "group_sd": c.group_sd,
        "unit_sd": c.unit_sd,
        "shift_sd": c.shift_scale,
        "imbalance": c.imbalance,
        "imbalance_z": c.imbalance_z,
        # the counted units unlike those still out, as far as the box regime's narrowing counts it
        "arrival_far_from_random": bool(c.mode == "model" and c.imbalance_z > params.box_interval_shrink_from),
        "interval_scale": iv_scale,
        "draws": B,
        "seed": params.seed,
    }
    return proj


def _count_totals(frame: RaceFrame, state: RaceState) -> tuple[np.ndarray, np.ndarray, int, float, float]:
    """The units still out, the votes and valid votes counted, the expected total and the share of it counted."""
    K = frame.n_candidates
    rep = state.reported
    out_idx = np.flatnonzero(~rep)
    counted = state.votes[rep].sum(axis=0).astype(np.int64) if K else np.zeros(0, dtype=np.int64)
    counted_valid = int(state.valid[rep].sum())
    rem_E = float(frame.expected[out_idx].sum())
    expected_total = counted_valid + rem_E
    pct_exp = counted_valid / expected_total if expected_total > 0 else (1.0 if not len(out_idx) else 0.0)
    return out_idx, counted, counted_valid, expected_total, pct_exp


def fit_counts(items: list[tuple[RaceFrame, RaceState, ModelParams, bytes]]) -> int:
    """The part of each race's projection that depends on its count alone (the fits under every
    bootstrap weight, the residual spreads, the sums over the units out), computed ahead of the
    projection and kept on the frame with the count's digest, as ``project`` with ``key`` keeps it.

    For a caller that has the counts before it has the pooled prior (a child process of
    ``live.projection_procs`` waits while the parent pools the swings): the projection that
    follows with the same count and parameters then does only the part that needs the prior.
    The fits are stacked over races as in :func:`project_stacked`, so what is kept is bit for bit
    what the projection would have computed. Returns the number of races fitted (a complete race,
    or one whose count part is kept already, needs none)."""
    from sandik.core.projection.stacked import run_steps

    return sum(bool(done) for done in run_steps([_fit_count_steps(*it) for it in items]))


def _kept_count_part(frame: RaceFrame, key: bytes, params: ModelParams) -> _CountPart | None:
    """The count part kept on the frame, if it was made from this count and these parameters."""
    kept = frame._count_cache
    return kept[2] if kept is not None and kept[0] == key and kept[1] == params else None


def _fit_count_steps(frame: RaceFrame, state: RaceState, params: ModelParams, key: bytes):
    state.check(frame)
    if frame.n_candidates == 0 or _kept_count_part(frame, key, params) is not None:
        return False
    out_idx, counted, _, _, pct_exp = _count_totals(frame, state)
    if not len(out_idx):
        return False  # complete: the projection is the count itself
    c = yield from _count_steps(frame, state, params, prepared(frame), out_idx, counted, pct_exp)
    frame._count_cache = (key, params, c)
    return True


@dataclass(eq=False)
class _CountPart:
    """What ``_project_steps`` computes from the frame, the count and the parameters alone (not
    the prior): kept on the frame with the count's digest (``RaceFrame._count_cache``). Its
    arrays are read-only, so that a later refresh gets them as they were made."""

    n_fit: int
    G_R: int
    Gu: int
    mode: str
    g_eff: float
    a_all: np.ndarray  # (B + 1, K): the fits under every bootstrap weight, before the prior
    beta_all: np.ndarray
    mu_all: np.ndarray
    thz_all: np.ndarray
    beta_hat: np.ndarray
    thz_hat: float
    nG: np.ndarray
    Lg: np.ndarray
    vz_unit: float
    vz_between: float
    tau2: float
    go: np.ndarray
    SE: np.ndarray
    SEq: np.ndarray
    SEX: np.ndarray
    x3g: np.ndarray
    capg: np.ndarray
    avail: np.ndarray
    sq_SE2: np.ndarray
    kg_go: np.ndarray
    sq_kg: np.ndarray
    eps_hat_go: np.ndarray
    L_group: np.ndarray
    L_unit: np.ndarray
    M_shift: np.ndarray
    shift_scale: float
    imbalance: float
    imbalance_z: float
    iv_scale: float
    Xrep: np.ndarray
    resample: tuple | None
    group_sd: np.ndarray
    unit_sd: np.ndarray


def _count_steps(frame: RaceFrame, state: RaceState, params: ModelParams, pre: _Prepared, out_idx: np.ndarray, counted: np.ndarray, pct_exp: float):
    """The part of ``_project_steps`` that depends on the count and not on the prior (a generator:
    it yields the stacked ``"solve"`` step). The same expressions, in the same order, as when they
    were written inline."""
    K = frame.n_candidates
    rep = state.reported
    E = frame.expected
    B = params.draws
    q = frame.base_share
    qbar, ubar, x3, X = pre.qbar, pre.ubar, pre.x3, pre.X
    P = X.shape[-1]
    any_base = bool(frame.has_base.any())

    # --- fit on reported units with votes ------------------------------------------
    fit_idx = np.flatnonzero(rep & (state.valid > 0) & (E > 0))
    n_fit = len(fit_idx)
    G = frame.n_groups
    mode = "model"
    if not any_base:
        mode = "no_baseline"
    if n_fit < params.min_units:
        mode = "prior" if any_base else "no_baseline"

    # Everything below on the fitted units only (f suffix): (m, ...) arrays.
    gfit = frame.group[fit_idx]
    validf = state.valid[fit_idx]
    yf = state.votes[fit_idx] / validf[:, None] - q[fit_idx]
    Xf = X[fit_idx]
    x3f = x3[fit_idx]
    lzf = _um.clip(np.log(np.maximum(validf, 1) / E[fit_idx]), -2.0, 1.0)
    wf = E[fit_idx]
    onbf = pre.onb_f[fit_idx]
    wkf = wf[:, None] * onbf  # a candidate not on a unit's ballot says nothing about its swing there

    gsum = _grouper(gfit, G)

    # Group sufficient statistics (reported units only): a refit per bootstrap
    # draw is then one (B x G) @ (G x ...) product.
    Sw = gsum(wf)
    rg = Sw > 0  # groups with reported units
    G_R = int(rg.sum())
    Swr = Sw[rg]
    Gu = int(np.count_nonzero(np.bincount(frame.group[out_idx], minlength=G)))
    rd = shared_draws(params.seed, B, G_R, K, Gu)
    omega = rd.omega
    lam = params.ridge

    def gs(v: np.ndarray) -> np.ndarray:
        return gsum(v)[rg]

    if n_fit >= params.min_units:
        # The swing and turnout fits under every bootstrap weight: run over all races of
        # this (draws, groups reported, candidates) in one go, with the same weights.
        swing = _swing_sums(wkf, Xf[:, :, 0], pre.u[fit_idx] - ubar, x3f, yf, gs, by_column=gsum.by_column)
        turn = _suff(x3f[:, None, None], lzf[:, None], wf[:, None], gs)
        a_all, beta_all, mz, bz = yield ("solve", (params.seed, B, G_R, K, lam), (omega, swing, turn, lam))
        mu_all, thz_all = mz[:, 0], bz[:, 0, 0]
    else:
        a_all = np.zeros((B + 1, K))
        beta_all = np.zeros((B + 1, K, P))
        mu_all = np.zeros(B + 1)
        thz_all = np.zeros(B + 1)

    g_eff = float(Swr.sum() ** 2 / (Swr**2).sum()) if G_R else 0.0
    if n_fit < params.min_units:
        g_eff = 0.0
    m0 = params.prior_groups
    a_hat, beta_hat, mu_hat, thz_hat = a_all[0], beta_all[0], float(mu_all[0]), float(thz_all[0])

    # --- residual spreads --------------------------------------------------------------
    residf = (yf - (a_hat + (Xf * beta_hat).sum(axis=-1))) * onbf
    Rg = np.zeros((G, K))
    Swk = gsum(wkf)
    Rg[rg] = gsum(wkf * residf)[rg] / np.maximum(Swk[rg], 1e-9)
    Lg = np.zeros(G)
    Lg[rg] = gsum(wf * (lzf - mu_hat - thz_hat * x3f))[rg] / Sw[rg]
    nG = np.bincount(gfit, minlength=G).astype(float)
    share_now = np.where(counted.sum() > 0, counted / max(counted.sum(), 1), np.maximum(qbar, 1.0 / K))
    floor_shape = np.maximum(share_now, 0.5 / K)
    cov_unit_prior = multinomial_cov(floor_shape, params.prior_unit_sd)
    if n_fit >= 2:
        d = residf - Rg[gfit]
        cov_unit = (d * wf[:, None]).T @ d / wf.sum()
        vz_unit = float((wf * (lzf - mu_hat - thz_hat * x3f - Lg[gfit]) ** 2).sum() / wf.sum())
    else:
        cov_unit = np.zeros((K, K))
        vz_unit = 0.0
    nu = max(n_fit - G_R, 0)
    # Every unit its own group (districts as units): unit and group deviations are
    # one and the same, and the group effect carries all of it.
    singletons = bool(frame.n_groups == frame.n_units)
    if singletons:
        cov_unit = np.zeros((K, K))
        vz_unit = 0.0
    else:
        cov_unit = (nu * cov_unit + 10.0 * cov_unit_prior) / (nu + 10.0)
        vz_unit = (nu * vz_unit + 10.0 * 0.15**2) / (nu + 10.0)

    cov_group_prior = multinomial_cov(floor_shape, params.prior_group_sd)
    if G_R >= 2:
        gw = Swr / Swr.sum()
        Rr = Rg[rg]
        mean_r = gw @ Rr
        dr = Rr - mean_r
        cov_between = (dr * gw[:, None]).T @ dr * G_R / max(G_R - 1, 1)
        # remove the part of the spread of group means that is only unit noise
        avg_unit_in_mean = float((gw * (1.0 / np.maximum(nG[rg], 1))).sum())
        cov_between = cov_between - cov_unit * avg_unit_in_mean
        vals, vecs = np.linalg.eigh(0.5 * (cov_between + cov_between.T))
        cov_between = (vecs * _um.maximum(vals, 0)) @ vecs.T
        vz_between = max(float(gw @ (Lg[rg] - gw @ Lg[rg]) ** 2) - vz_unit * avg_unit_in_mean, 0.0)
    else:
        cov_between = np.zeros((K, K))
        vz_between = 0.0
    cov_group = (G_R * cov_between + m0 * cov_group_prior) / (G_R + m0)

    tau2 = float(np.trace(cov_group))
    sig2 = float(np.trace(cov_unit))
    kg = np.where(nG > 0, nG * tau2 / (nG * tau2 + sig2 + 1e-12), 0.0)
    eps_hat = kg[:, None] * Rg

    # --- outstanding units, per group ----------------------------------------------------
    gout = frame.group[out_idx]
    Eo = E[out_idx]
    cnt_out = np.bincount(gout, minlength=G)
    go = np.flatnonzero(cnt_out > 0)  # groups with units out
    SE = np.bincount(gout, weights=Eo, minlength=G)[go]
    osum = _grouper(gout, G)
    SEq = osum(Eo[:, None] * q[out_idx])[go]
    # The design's columns are q - q̄, u - ū and x3 (the last two the same for every
    # candidate), so its expected-vote sums per group follow from three sums.
    SEu = np.bincount(gout, weights=Eo * pre.u[out_idx], minlength=G)[go]
    SEx3 = np.bincount(gout, weights=Eo * x3[out_idx], minlength=G)[go]
    SEX = np.empty((len(go), K, P))
    SEX[:, :, 0] = SEq - SE[:, None] * qbar
    SEX[:, :, 1] = (SEu - SE * ubar)[:, None]
    SEX[:, :, 2] = SEx3[:, None]
    x3g = SEx3 / np.maximum(SE, 1e-9)
    SE2 = np.bincount(gout, weights=Eo * Eo, minlength=G)[go]
    capg = np.bincount(gout, weights=frame.cap[out_idx].astype(float), minlength=G)[go]
    avail = osum(pre.onb_f[out_idx])[go] > 0  # (Gu, K): on some outstanding ballot

    L_group = psd_sqrt(cov_group)
    L_unit = psd_sqrt(cov_unit)

    # Covariate shift: how unlike the counted units the outstanding ones are
    # (standardised mean difference of baseline shares and size, the largest).
    imbalance, imbalance_z = _imbalance_pre(pre, E, rep)
    excess = max(imbalance - params.imbalance_free, 0.0)
    # A swing of the outstanding units: its effect on the race already scales with
    # the share still out, so it is not scaled down again here (under an adversarial
    # order the outstanding units stay unlike the counted ones to the end).
    shift_scale = float(np.hypot(params.shift_sd, params.shift_imbalance * excess))
    # A partly reported group's own mean holds its prediction in place: when a
    # draw moves the race's coefficients, the group's residual moves the other
    # way, by its shrinkage weight (otherwise the bootstrap counts twice).
    Xrep = np.zeros((Gu, K, P))
    sel = rg[go]
    Xrep[sel] = (gsum((wf[:, None, None] * Xf).reshape(n_fit, K * P))[go][sel] / Sw[go][sel, None]).reshape(-1, K, P)
    # Groups with nothing in yet: resample the residual vectors of reported groups
    # (all candidates together, heavy tails kept: a district where a party did not
    # run or a local hero stood is not Gaussian), mixed with the Gaussian prior
    # spread while few groups have reported.
    fresh = nG[go] == 0
    resample = None
    if G_R >= 5 and fresh.any():
        resample = (fresh, Rg[rg] * np.sqrt(G_R / max(G_R - P - 1, 1)), rd.picks(int(fresh.sum())), G_R / (G_R + m0))
    iv_scale = params.interval_scale_prior if n_fit < params.min_units else interval_scale_of(params, imbalance_z, boxes=frame.units_are_boxes, pct_counted=pct_exp)
    part = _CountPart(
        n_fit, G_R, Gu, mode, g_eff, a_all, beta_all, mu_all, thz_all, beta_hat, thz_hat, nG, Lg, vz_unit, vz_between, tau2,
        go, SE, SEq, SEX, x3g, capg, avail, np.sqrt(SE2), kg[go], np.sqrt(1.0 - kg[go]), eps_hat[go], L_group, L_unit,
        multinomial_sqrt(floor_shape, 1.0), shift_scale, imbalance, imbalance_z, iv_scale, Xrep, resample,
        np.sqrt(_um.maximum(np.diag(cov_group), 0)), np.sqrt(_um.maximum(np.diag(cov_unit), 0)),
    )  # fmt: skip
    for v in vars(part).values():
        if isinstance(v, np.ndarray):
            v.setflags(write=False)
    if resample is not None:
        resample[1].setflags(write=False)
        resample[0].setflags(write=False)
    return part


@dataclass(frozen=True, eq=False)
class SharedDraws:
    """The random numbers of one race's bootstrap, read-only.

    Every race seeds its generator with ``params.seed``, so the numbers a race
    draws depend only on (seed, draws, groups reported, candidates, groups out):
    races of the same shape draw the very same numbers. Drawing them (the
    2 x B x groups x candidates normals) is up to a quarter of a large race's
    time, so they are drawn once per shape and shared, bit for bit the values a fresh
    generator gives in the same order: the Bayesian-bootstrap weights, then one
    call for all the normals (five blocks), then, only if needed, the resampled
    groups (``generator()`` continues the stream from where the normals ended).
    """

    omega: np.ndarray  # (B + 1, G_R): row 0 the point fit (all ones)
    z_shift: np.ndarray  # (B, K)
    z_small: np.ndarray  # (B, K)
    z_eps: np.ndarray  # (B, Gu, K)
    z_unit: np.ndarray  # (B, Gu, K)
    z_turn: np.ndarray  # (B, 3, Gu)
    after: dict  # the bit generator's state after the normals
    _picks: dict = field(default_factory=dict, repr=False)

    def generator(self) -> np.random.Generator:
        bg = np.random.PCG64(0)
        bg.state = self.after
        return np.random.Generator(bg)

    def picks(self, n: int) -> np.ndarray:
        """(B, n) indices of reported groups, the generator's next draw after the normals (kept: building a generator costs more than the draw)."""
        hit = self._picks.get(n)
        if hit is None:
            B, G_R = self.omega.shape[0] - 1, self.omega.shape[1]
            hit = self.generator().integers(0, G_R, size=(B, n))
            hit.setflags(write=False)
            self._picks[n] = hit
        return hit


DRAW_CACHE_BYTES = 192 * 2**20  # races of one election come in a few hundred shapes; a big one is ~4 MB
_draw_cache: OrderedDict[tuple[int, int, int, int, int], SharedDraws] = OrderedDict()
_draw_cache_bytes = 0
_draw_lock = threading.Lock()


def draw_fresh(seed: int, B: int, G_R: int, K: int, Gu: int) -> SharedDraws:
    """The reference: the numbers a generator seeded with ``seed`` gives for this shape, drawn now."""
    rng = np.random.default_rng(seed)
    omega = np.ones((B + 1, G_R))
    if G_R >= 2:
        omega[1:] = rng.exponential(1.0, size=(B, G_R))
    # One call for all the normals (the generator fills them in sequence, so the
    # values are those of five calls in this order).
    z_all = rng.standard_normal(2 * B * K + 2 * B * Gu * K + 3 * B * Gu)
    omega.setflags(write=False)
    z_all.setflags(write=False)  # before the views are taken: they inherit it
    cuts = np.cumsum([B * K, B * K, B * Gu * K, B * Gu * K])
    z_shift, z_small, z_eps, z_unit, z_turn = np.split(z_all, cuts)
    return SharedDraws(omega, z_shift.reshape(B, K), z_small.reshape(B, K), z_eps.reshape(B, Gu, K), z_unit.reshape(B, Gu, K), z_turn.reshape(B, 3, Gu), rng.bit_generator.state)


def shared_draws(seed: int, B: int, G_R: int, K: int, Gu: int) -> SharedDraws:
    """``draw_fresh`` through a bounded cache (least recently used shapes go first)."""
    global _draw_cache_bytes
    key = (seed, B, G_R, K, Gu)
    with _draw_lock:
        hit = _draw_cache.get(key)
        if hit is not None:
            _draw_cache.move_to_end(key)
            return hit
    rd = draw_fresh(seed, B, G_R, K, Gu)
    size = rd.omega.nbytes + 8 * (2 * B * K + 2 * B * Gu * K + 3 * B * Gu)
    with _draw_lock:
        if key not in _draw_cache:
            _draw_cache[key] = rd
            _draw_cache_bytes += size
            while _draw_cache_bytes > DRAW_CACHE_BYTES and len(_draw_cache) > 1:
                _, old = _draw_cache.popitem(last=False)
                _draw_cache_bytes -= old.omega.nbytes + 8 * (old.z_shift.size + old.z_small.size + old.z_eps.size + old.z_unit.size + old.z_turn.size)
    return rd


def clear_draw_cache() -> None:
    """Forget the shared draws (benchmarks of a cold start; tests)."""
    global _draw_cache_bytes
    with _draw_lock:
        _draw_cache.clear()
        _draw_cache_bytes = 0


def _suff(Xs: np.ndarray, Ys: np.ndarray, ws: np.ndarray, gs) -> tuple[np.ndarray, ...]:
    """Per-group weighted sums of a design Xs (m, k, p), responses Ys (m, k), weights ws (m, k): ``gs`` sums rows per group."""
    k, pp = Xs.shape[1], Xs.shape[2]
    m = len(Xs)
    wX = ws[:, :, None] * Xs
    return gs(ws), gs(wX.reshape(m, -1)), gs((wX[..., :, None] * Xs[..., None, :]).reshape(m, -1)), gs(ws * Ys), gs((wX * Ys[..., None]).reshape(m, -1)), k, pp


def _solve(om: np.ndarray, st: tuple[np.ndarray, ...], lam: float) -> tuple[np.ndarray, np.ndarray]:
    """Ridge fits of (a, beta) per candidate under each row of group weights ``om`` (D, groups), from ``_suff``'s sums."""
    SW, Sx, Sxx, Sy, Sxy, k, pp = st
    D = om.shape[0]
    W = np.maximum(om @ SW, 1e-9)  # (D, k)
    Mx = (om @ Sx).reshape(D, k, pp) / W[:, :, None]
    My = (om @ Sy) / W
    C = (om @ Sxx).reshape(D, k, pp, pp) / W[:, :, None, None] - Mx[..., :, None] * Mx[..., None, :] + lam * np.eye(pp)
    cy = (om @ Sxy).reshape(D, k, pp) / W[:, :, None] - Mx * My[..., None]
    beta = _solve_small(C, cy)
    a = My - (beta * Mx).sum(axis=-1)
    return a, beta


def _swing_sums(A: np.ndarray, x0: np.ndarray, x1: np.ndarray, x2: np.ndarray, y: np.ndarray, gs, *, by_column: bool = False) -> np.ndarray:
    """``_suff`` for the swing design, whose last two columns x1, x2 (m,) are the same for every
    candidate (x0 and y are (m, K), A the weights): 14 weighted products of (m, K) arrays instead
    of the (m, K, 3, 3) outer products. Per group (rows of the result): w, w x_i (3),
    w x_i x_j (6: 00 01 02 11 12 22), w y, w x_i y (3).

    ``by_column``: ``gs`` sums every column on its own, in the same order whatever the other
    columns (``_grouper``'s sparse sums), so the 14 products can be summed one by one from
    contiguous arrays: the same values, in half the time for races of thousands of units (the
    interleaved (m, 14, K) buffer is written with strides of 14 K). A dense product (BLAS) may
    round differently for another width, so it gets the one wide array."""
    m, K = A.shape
    if by_column:
        t = np.empty((14, m, K))
        _swing_products(lambda c: t[c], A, x0, x1, x2, y)
        return np.stack([gs(t[c]) for c in range(14)], axis=1)
    buf = np.empty((m, 14, K))
    _swing_products(lambda c: buf[:, c], A, x0, x1, x2, y)
    S = gs(buf.reshape(m, 14 * K))
    return S.reshape(len(S), 14, K)


def _swing_products(slot, A: np.ndarray, x0: np.ndarray, x1: np.ndarray, x2: np.ndarray, y: np.ndarray) -> None:
    """The 14 products of ``_swing_sums``, each written into the (m, K) view ``slot(c)``: the same
    operations in the same order whichever buffer layout the views belong to."""
    x1 = x1[:, None]
    x2 = x2[:, None]
    slot(0)[...] = A
    np.multiply(A, x0, out=slot(1))
    np.multiply(A, x1, out=slot(2))
    np.multiply(A, x2, out=slot(3))
    np.multiply(slot(1), x0, out=slot(4))
    np.multiply(slot(1), x1, out=slot(5))
    np.multiply(slot(1), x2, out=slot(6))
    np.multiply(slot(2), x1, out=slot(7))
    np.multiply(slot(2), x2, out=slot(8))
    np.multiply(slot(3), x2, out=slot(9))
    np.multiply(A, y, out=slot(10))
    np.multiply(slot(1), y, out=slot(11))
    np.multiply(slot(2), y, out=slot(12))
    np.multiply(slot(3), y, out=slot(13))


def _solve_swing(om: np.ndarray, S: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """``_solve(om, _suff(X, y, w))`` from the 14 sums of ``_swing_sums``: one (D, K) array per
    distinct entry of the symmetric 3x3 systems rather than (D, K, 3, 3) arrays whose inner loops
    have length 3. Each entry is the same expression as in ``_solve``, and the products with
    ``om`` are the same five matrix products (a BLAS product's last bits depend on the width of
    the matrix, so they are not merged into one), so every value is the same."""
    D, K, gr = om.shape[0], S.shape[2], len(S)
    Sx = np.ascontiguousarray(S[:, 1:4].transpose(0, 2, 1)).reshape(gr, K * 3)
    Sxx = np.empty((gr, K, 3, 3))
    for (i, j), c in zip(((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)), range(4, 10)):
        Sxx[:, :, i, j] = S[:, c]
        Sxx[:, :, j, i] = S[:, c]
    Sxy = np.ascontiguousarray(S[:, 11:14].transpose(0, 2, 1)).reshape(gr, K * 3)
    W = np.maximum(om @ S[:, 0], 1e-9)
    Px = (om @ Sx).reshape(D, K, 3)
    Pxx = (om @ Sxx.reshape(gr, K * 9)).reshape(D, K, 3, 3)
    Pxy = (om @ Sxy).reshape(D, K, 3)
    My = (om @ S[:, 10]) / W
    m0, m1, m2 = Px[:, :, 0] / W, Px[:, :, 1] / W, Px[:, :, 2] / W
    # ``+ 0.0``: what adding the identity's off-diagonal zeros does in ``_solve``
    c00 = Pxx[:, :, 0, 0] / W - m0 * m0 + lam
    c01 = Pxx[:, :, 0, 1] / W - m0 * m1 + 0.0
    c02 = Pxx[:, :, 0, 2] / W - m0 * m2 + 0.0
    c11 = Pxx[:, :, 1, 1] / W - m1 * m1 + lam
    c12 = Pxx[:, :, 1, 2] / W - m1 * m2 + 0.0
    c22 = Pxx[:, :, 2, 2] / W - m2 * m2 + lam
    y0 = Pxy[:, :, 0] / W - m0 * My
    y1 = Pxy[:, :, 1] / W - m1 * My
    y2 = Pxy[:, :, 2] / W - m2 * My
    b0, b1, b2 = _solve3(c00, c01, c02, c11, c12, c22, y0, y1, y2)
    a = My - (b0 * m0 + b1 * m1 + b2 * m2)
    return a, np.stack([b0, b1, b2], axis=-1)


def _grouper(gidx: np.ndarray, n_groups: int):
    """Sums per group of the rows of an array, for one fixed assignment of rows to groups.

    Small cases (most races) use one dense 0/1 matrix product (one BLAS call);
    large ones a sparse incidence matrix (its product costs rows x columns, not
    groups x rows x columns).
    """
    m = len(gidx)
    if m * n_groups <= 4_000:
        H = (np.arange(n_groups)[:, None] == gidx[None, :]).astype(float)

        def dense(a: np.ndarray) -> np.ndarray:
            a = np.asarray(a, dtype=float)
            if a.ndim <= 2:
                return H @ a
            return (H @ a.reshape(m, -1)).reshape((n_groups, *a.shape[1:]))

        dense.by_column = False  # type: ignore[attr-defined]
        return dense

    # The incidence matrix built as CSR directly (rows: groups, columns: units in their order):
    # the same arrays scipy makes from (row, column) pairs, at half its cost.
    indptr = np.zeros(n_groups + 1, dtype=np.int32)
    np.cumsum(np.bincount(gidx, minlength=n_groups), out=indptr[1:])
    inc = sparse.csr_matrix((np.ones(m), np.argsort(gidx, kind="stable").astype(np.int32), indptr), shape=(n_groups, m))

    def sparse_sum(a: np.ndarray) -> np.ndarray:
        a = np.asarray(a, dtype=float)
        if a.ndim <= 1:
            return np.bincount(gidx, weights=a, minlength=n_groups)
        return np.asarray(inc @ a.reshape(m, -1)).reshape((n_groups, *a.shape[1:]))

    # each output column is its own sum over the units in CSR order: the same whatever the other columns
    sparse_sum.by_column = True  # type: ignore[attr-defined]
    return sparse_sum


def _solve_small(C: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Solve C x = c for a stack of small symmetric positive definite systems (..., p, p).

    The ridge keeps every C well conditioned, and p is 1 or 3 here: closed forms
    (division, the adjugate) over the whole stack cost a few array operations,
    where a batched LAPACK call pays its overhead per 3x3 system.
    """
    p = C.shape[-1]
    if p == 1:
        return c / C[..., 0]
    if p != 3:
        return np.linalg.solve(C, c[..., None])[..., 0]
    out = np.empty_like(c)
    out[..., 0], out[..., 1], out[..., 2] = _solve3(C[..., 0, 0], C[..., 0, 1], C[..., 0, 2], C[..., 1, 1], C[..., 1, 2], C[..., 2, 2], c[..., 0], c[..., 1], c[..., 2])
    return out


def _solve3(a, b, cc, d, e, f, y0, y1, y2):
    """The symmetric 3x3 system [[a b cc] [b d e] [cc e f]] x = y, elementwise over arrays, by the adjugate."""
    A00 = d * f - e * e
    A01 = cc * e - b * f
    A02 = b * e - cc * d
    A11 = a * f - cc * cc
    A12 = b * cc - a * e
    A22 = a * d - b * b
    det = a * A00 + b * A01 + cc * A02
    return (A00 * y0 + A01 * y1 + A02 * y2) / det, (A01 * y0 + A11 * y1 + A12 * y2) / det, (A02 * y0 + A12 * y1 + A22 * y2) / det


def _design_dot(beta: np.ndarray, SX: np.ndarray) -> np.ndarray:
    """Σ_p beta[..., k, p] SX[g, k, p] -> (..., G, K): one matmul per candidate."""
    if beta.ndim == 2:
        return np.einsum("kp,gkp->gk", beta, SX)
    # (K, B, P) @ (K, P, G) -> (K, B, G) -> (B, G, K)
    return np.matmul(beta.transpose(1, 0, 2), SX.transpose(1, 2, 0)).transpose(1, 2, 0)


def _imbalance_pre(pre: _Prepared, w: np.ndarray, rep: np.ndarray) -> tuple[float, float]:
    """Covariate imbalance between counted and outstanding units: the largest standardised
    mean difference of the features, and the largest one divided by its spread under random
    arrival (about sqrt(1/n_in + 1/n_out) with effective numbers of units): a handful of
    districts differs a lot by chance, thousands of boxes do not."""
    if not rep.any() or rep.all():
        return 0.0, 0.0
    F = pre.imb_F
    wr, wo = w * rep, w * ~rep
    sr, so = wr.sum(), wo.sum()
    if sr <= 0 or so <= 0:
        return 0.0, 0.0
    sd = pre.imb_sd
    d = np.abs((wr @ F) / sr - (wo @ F) / so) / np.where(sd > 1e-9, sd, np.inf)
    n_in = sr * sr / float(wr @ wr)
    n_out = so * so / float(wo @ wo)
    null_sd = float(np.sqrt(1.0 / n_in + 1.0 / n_out))
    return float(d.max()), float(d.max() / null_sd)


BOX_EARLY_UNTIL = 0.25  # share of expected vote counted below which box-level intervals widen


def interval_scale_of(params: ModelParams, imbalance_z: float, *, boxes: bool = False, pct_counted: float = 1.0) -> float:
    """Scale of the published intervals around the point (1: the draws as they are), for a
    race with units of its own; ``boxes``: its units are ballot boxes (the box-level constants,
    with their widening while less than ``BOX_EARLY_UNTIL`` of the expected vote is counted, and
    their narrowing where arrival is far from random: see ``ModelParams.box_interval_shrink``)."""
    if not boxes:
        return float(params.interval_scale * (1.0 + params.interval_scale_z * max(imbalance_z - params.interval_z_free, 0.0)))
    early = 1.0 + params.box_interval_scale_early * max(1.0 - pct_counted / BOX_EARLY_UNTIL, 0.0)
    widen = 1.0 + params.box_interval_scale_z * max(imbalance_z - params.box_interval_z_free, 0.0)
    shrink = 1.0 + params.box_interval_shrink * max(imbalance_z - params.box_interval_shrink_from, 0.0)
    return float(params.box_interval_scale * early * widen / shrink)


def _quantiles(a: np.ndarray, qs: np.ndarray) -> np.ndarray:
    """Linear-interpolated quantiles of each column of ``a`` (B x m) at ``qs``: one sort for all levels."""
    srt = np.sort(a, axis=0)
    B = len(srt)
    pos = qs * (B - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, B - 1)
    frac = (pos - lo)[:, None]
    return srt[lo] * (1 - frac) + srt[hi] * frac


def _summarise(frame, counted, counted_valid, expected_total, pct_exp, point, draws, bounds, remaining_cap, mode, notes, scale: float = 1.0) -> RaceProjection:
    K = frame.n_candidates
    # The intervals come from the draws' spread around the point, calibrated by
    # ``scale`` (and kept inside the hard bounds); P(win) and the calls use the raw draws.
    iv_draws = draws if scale == 1.0 else np.minimum(np.maximum(point + scale * (draws - point), bounds[0]), bounds[1])
    tot_d = iv_draws.sum(axis=1, keepdims=True)
    share_d = iv_draws / np.where(tot_d > 0, tot_d, 1.0)
    tot_p = point.sum()
    share_p = point / tot_p if tot_p > 0 else np.zeros(K)
    order = np.argsort(-point, kind="stable")
    lead = int(order[0])
    run = int(order[1]) if K > 1 else -1
    intervals, share_iv, m_iv, mp_iv = {}, {}, {}, {}
    margin_d = iv_draws[:, lead] - (iv_draws[:, run] if run >= 0 else 0.0)
    mshare_d = share_d[:, lead] - (share_d[:, run] if run >= 0 else 0.0)
    margin_p = float(point[lead] - (point[run] if run >= 0 else 0.0))
    mshare_p = float(share_p[lead] - (share_p[run] if run >= 0 else 0.0))
    # One sort of every drawn quantity, then all levels by index.
    levels = (*LEVELS, CALL_LEVEL)
    qs = np.array([(1 - lv) / 2 for lv in levels] + [1 - (1 - lv) / 2 for lv in levels])
    allq = _quantiles(np.column_stack([iv_draws, share_d, margin_d, mshare_d]), qs)  # (2 x levels, 2K + 2)
    nl = len(levels)
    # Never inverted, always around the point estimate, always inside the hard bounds
    # (all levels at once: rows 0..nl-1 are the lower ends, nl..2nl-1 the upper ends).
    lo_v = np.minimum(np.maximum(np.minimum(allq[:nl, :K], point), bounds[0]), bounds[1])
    hi_v = np.minimum(np.maximum(np.maximum(allq[nl:, :K], point), bounds[0]), bounds[1])
    lo_s = np.minimum(np.maximum(np.minimum(allq[:nl, K : 2 * K], share_p), 0.0), 1.0)
    hi_s = np.minimum(np.maximum(np.maximum(allq[nl:, K : 2 * K], share_p), 0.0), 1.0)
    lo_m, hi_m = allq[:nl, 2 * K].tolist(), allq[nl:, 2 * K].tolist()
    lo_mp, hi_mp = allq[:nl, 2 * K + 1].tolist(), allq[nl:, 2 * K + 1].tolist()
    for i, lv in enumerate(levels):
        intervals[lv] = (lo_v[i], hi_v[i])
        share_iv[lv] = (lo_s[i], hi_s[i])
        m_iv[lv] = (min(lo_m[i], margin_p), max(hi_m[i], margin_p))
        mp_iv[lv] = (min(lo_mp[i], mshare_p), max(hi_mp[i], mshare_p))
    winners = np.argmax(draws, axis=1)
    p_win = np.bincount(winners, minlength=K) / len(draws)
    return RaceProjection(
        race_id=frame.race_id,
        candidate_ids=frame.candidate_ids,
        mode=mode,
        units_total=frame.n_units,
        units_reported=0,
        counted=counted,
        counted_valid=counted_valid,
        expected_total=expected_total,
        pct_expected_counted=pct_exp,
        votes=point,
        intervals=intervals,
        share=share_p,
        share_intervals=share_iv,
        p_win=p_win,
        leader=lead,
        runner_up=run,
        margin=margin_p,
        margin_intervals=m_iv,
        margin_points_intervals=mp_iv,
        bounds=bounds,
        remaining_cap=remaining_cap,
        notes=notes,
        draws=draws,
    )


def _complete(frame: RaceFrame, state: RaceState, counted, counted_valid, bounds, notes) -> RaceProjection:
    pt = counted.astype(float)
    proj = _summarise(frame, counted, counted_valid, float(counted_valid), 1.0, pt, pt[None, :], bounds, 0, "complete", notes)
    proj.units_reported = int(state.reported.sum())
    # A tie for first is not a win for either.
    top = counted.max() if len(counted) else 0
    tied = (counted == top).sum() > 1
    proj.p_win = np.where(counted == top, 0.0 if tied else 1.0, 0.0)
    proj.state = {"mode": "complete"}
    return proj
