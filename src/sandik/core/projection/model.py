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
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse

from sandik.core.projection.frame import RaceFrame, RaceState
from sandik.errors import ModelError

LEVELS = (0.80, 0.90, 0.95, 0.99)
CALL_LEVEL = 0.999  # two-sided interval of the margin that must exclude zero for a statistical call


@dataclass(frozen=True)
class ModelParams:
    draws: int = 200
    seed: int = 0
    ridge: float = 0.004  # prior precision of the slopes b, c (share² units): shrinks towards uniform swing
    prior_group_sd: float = 0.12  # scale of the prior between-group swing covariance (multinomial shape)
    prior_unit_sd: float = 0.10  # floor scale of the within-group (unit) swing covariance
    prior_groups: float = 3.0  # pseudo-count of groups behind the prior covariances
    shift_sd: float = 0.01  # extra swing uncertainty of the whole outstanding vote
    shift_imbalance: float = 0.20  # ... plus this per unit of covariate imbalance (standardised mean difference) above:
    imbalance_free: float = 0.25  # imbalance that random arrival produces anyway
    turnout_prior_sd: float = 0.10  # prior sd of log turnout ratio between groups
    turnout_shift_sd: float = 0.05
    min_units: int = 3  # fewer reported units than this: the race's swing comes from the prior


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
    s = np.clip(np.asarray(shares, dtype=float), 0.0, 1.0)
    tot = s.sum()
    if tot > 0:
        s = s / tot
    return scale**2 * (np.diag(s) - np.outer(s, s))


def multinomial_sqrt(shares: np.ndarray, scale: float) -> np.ndarray:
    """L with L Lᵀ = multinomial_cov(shares, scale), in closed form: diag(√s) - s √sᵀ (no eigendecomposition)."""
    s = np.clip(np.asarray(shares, dtype=float), 0.0, 1.0)
    tot = s.sum()
    if tot > 0:
        s = s / tot
    r = np.sqrt(s)
    return scale * (np.diag(r) - np.outer(s, r))


def psd_sqrt(cov: np.ndarray) -> np.ndarray:
    """A matrix L with L Lᵀ = cov, negative eigenvalues clipped (covariances estimated from few groups)."""
    cov = 0.5 * (cov + cov.T)
    vals, vecs = np.linalg.eigh(cov)
    return vecs * np.sqrt(np.clip(vals, 0.0, None))


def default_prior(frame: RaceFrame, params: ModelParams) -> SwingPrior:
    """No other race to learn from: expect no swing, with a wide multinomial-shaped spread."""
    k = frame.n_candidates
    base = frame.baseline_mean
    # A candidate with no baseline anywhere still needs room to win: give every
    # candidate at least an even share of the prior spread.
    s = np.maximum(base, 1.0 / max(k, 1))
    return SwingPrior(np.zeros(k), multinomial_cov(s, 2 * params.prior_group_sd), 0.0, params.turnout_prior_sd, "default")


def project(frame: RaceFrame, state: RaceState, params: ModelParams | None = None, prior: SwingPrior | None = None) -> RaceProjection:
    """Project one race's final result from the units counted so far."""
    params = params or ModelParams()
    state.check(frame)
    K = frame.n_candidates
    n = frame.n_units
    rep = state.reported
    out = ~rep
    counted = state.votes[rep].sum(axis=0).astype(np.int64) if K else np.zeros(0, dtype=np.int64)
    counted_valid = int(state.valid[rep].sum())
    E = frame.expected
    rem_E = float(E[out].sum())
    expected_total = counted_valid + rem_E
    pct_exp = counted_valid / expected_total if expected_total > 0 else (1.0 if not out.any() else 0.0)
    remaining_cap = int(frame.cap[out].sum())
    bounds = (counted.copy(), counted + remaining_cap)
    notes = list(frame.notes)

    if K == 0:
        raise ModelError(f"race {frame.race_id} has no candidates: nothing to project")
    if not out.any():
        return _complete(frame, state, counted, counted_valid, bounds, notes)

    rng = np.random.default_rng(params.seed)
    B = params.draws
    q = frame.base_share
    u = np.clip(1.0 - q.sum(axis=1), 0.0, 1.0)
    qbar = frame.baseline_mean
    ubar = float((E * u).sum() / E.sum()) if E.sum() > 0 else 0.0
    any_base = bool(frame.has_base.any())

    # --- fit on reported units with votes ------------------------------------------
    fit = rep & (state.valid > 0) & (E > 0)
    n_fit = int(fit.sum())
    G = frame.n_groups
    inc = frame.incidence
    if prior is None:
        prior = default_prior(frame, params)
    mode = "model"
    if not any_base:
        mode = "no_baseline"
        notes.append("no baseline for this race: swing is measured from zero shares; wider intervals, no statistical call")
    if n_fit < params.min_units:
        mode = "prior" if any_base else "no_baseline"
        notes.append(f"{n_fit} unit(s) counted (< {params.min_units}): the swing comes from {'other races' if prior.source != 'default' else 'a wide default prior'}; no statistical call")

    p = np.zeros((n, K))
    p[fit] = state.votes[fit] / state.valid[fit, None]
    y = p - q
    # Features: baseline share, unmapped baseline share, unit size (log expected
    # vote, scaled to the spread of a share so that one ridge fits all).
    lE = np.log(np.maximum(E, 1.0))
    sd_lE = float(lE.std()) if n > 1 else 0.0
    x3 = 0.1 * (lE - lE.mean()) / sd_lE if sd_lE > 1e-9 else np.zeros(n)
    X = np.stack([q - qbar, np.broadcast_to((u - ubar)[:, None], (n, K)), np.broadcast_to(x3[:, None], (n, K))], axis=-1)  # (n, K, P)
    P = X.shape[-1]
    lz = np.zeros(n)
    lz[fit] = np.clip(np.log(np.maximum(state.valid[fit], 1) / E[fit]), -2.0, 1.0)
    w = np.where(fit, E, 0.0)

    # Group sufficient statistics (reported units only): a refit per bootstrap
    # draw is then one (B x G) @ (G x ...) product.
    # Every array summed here is weighted by w (zero outside the fitted units), so
    # the sums run over the fitted units only.
    fit_idx = np.flatnonzero(fit)
    inc_fit = sparse.csr_matrix((np.ones(len(fit_idx)), (frame.group[fit_idx], np.arange(len(fit_idx)))), shape=(G, len(fit_idx)))

    def gsum(a: np.ndarray) -> np.ndarray:
        return np.asarray(inc_fit @ a[fit_idx])

    onb = frame.on_ballot if frame.on_ballot is not None else np.ones((n, K), dtype=bool)
    wk = w[:, None] * onb  # a candidate not on a unit's ballot says nothing about its swing there
    Sw = gsum(w)
    rg = Sw > 0  # groups with reported units
    G_R = int(rg.sum())
    Swr = Sw[rg]
    omega = np.ones((B + 1, G_R))
    if G_R >= 2:
        omega[1:] = rng.exponential(1.0, size=(B, G_R))
    lam = params.ridge

    def suff(Xf: np.ndarray, Y: np.ndarray, wts: np.ndarray) -> tuple[np.ndarray, ...]:
        k, pp = Xf.shape[1], Xf.shape[2]
        Xs, ws, Ys = Xf[fit_idx], wts[fit_idx], Y[fit_idx]
        m = len(fit_idx)
        wX = ws[:, :, None] * Xs

        def gs(a: np.ndarray) -> np.ndarray:
            return np.asarray(inc_fit @ a)[rg]

        return gs(ws), gs(wX.reshape(m, -1)), gs((wX[..., :, None] * Xs[..., None, :]).reshape(m, -1)), gs(ws * Ys), gs((wX * Ys[..., None]).reshape(m, -1)), k, pp

    def solve(om: np.ndarray, st: tuple[np.ndarray, ...]) -> tuple[np.ndarray, np.ndarray]:
        SW, Sx, Sxx, Sy, Sxy, k, pp = st
        D = om.shape[0]
        W = np.maximum(om @ SW, 1e-9)  # (D, k)
        Mx = (om @ Sx).reshape(D, k, pp) / W[:, :, None]
        My = (om @ Sy) / W
        C = (om @ Sxx).reshape(D, k, pp, pp) / W[:, :, None, None] - Mx[..., :, None] * Mx[..., None, :] + lam * np.eye(pp)
        cy = (om @ Sxy).reshape(D, k, pp) / W[:, :, None] - Mx * My[..., None]
        beta = np.linalg.solve(C, cy[..., None])[..., 0]
        a = My - (beta * Mx).sum(axis=-1)
        return a, beta

    if n_fit >= params.min_units:
        a_all, beta_all = solve(omega, suff(X, y, wk))
        mz, bz = solve(omega, suff(x3[:, None, None], lz[:, None], w[:, None]))
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
    resid = np.zeros((n, K))
    if n_fit:
        resid[fit] = (y[fit] - (a_hat + (X[fit] * beta_hat).sum(axis=-1))) * onb[fit]
    Rg = np.zeros((G, K))
    Swk = gsum(wk)
    Rg[rg] = gsum(wk * resid)[rg] / np.maximum(Swk[rg], 1e-9)
    Lg = np.zeros(G)
    Lg[rg] = gsum(w * (lz - mu_hat - thz_hat * x3))[rg] / Sw[rg]
    nG = np.asarray(inc @ fit.astype(float))
    share_now = np.where(counted.sum() > 0, counted / max(counted.sum(), 1), np.maximum(qbar, 1.0 / K))
    floor_shape = np.maximum(share_now, 0.5 / K)
    cov_unit_prior = multinomial_cov(floor_shape, params.prior_unit_sd)
    if n_fit >= 2:
        d = resid[fit] - Rg[frame.group[fit]]
        wf = w[fit]
        cov_unit = (d * wf[:, None]).T @ d / wf.sum()
        vz_unit = float((wf * (lz[fit] - mu_hat - thz_hat * x3[fit] - Lg[frame.group[fit]]) ** 2).sum() / wf.sum())
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
        cov_between = (vecs * np.clip(vals, 0, None)) @ vecs.T
        vz_between = max(float(gw @ (Lg[rg] - gw @ Lg[rg]) ** 2) - vz_unit * avg_unit_in_mean, 0.0)
    else:
        cov_between = np.zeros((K, K))
        vz_between = 0.0
    cov_group = (G_R * cov_between + m0 * cov_group_prior) / (G_R + m0)
    vz_group = (G_R * vz_between + m0 * prior.turnout_sd**2) / (G_R + m0)

    tau2 = float(np.trace(cov_group))
    sig2 = float(np.trace(cov_unit))
    kg = np.where(nG > 0, nG * tau2 / (nG * tau2 + sig2 + 1e-12), 0.0)
    kz = np.where(nG > 0, nG * vz_group / (nG * vz_group + vz_unit + 1e-12), 0.0)
    eps_hat = kg[:, None] * Rg

    # Shrink the race's own swing towards the prior by precision: the race's
    # mean swing is known to about tau²/g_eff from g_eff groups, the prior's to
    # its own covariance.
    prior_var = float(np.trace(prior.cov))
    data_var = max(tau2 / g_eff, 1e-12) if g_eff > 0 else np.inf
    wr = (1.0 / data_var) / (1.0 / data_var + 1.0 / max(prior_var, 1e-12)) if g_eff > 0 else 0.0
    pz_var = prior.turnout_sd**2
    dz_var = max(vz_group / g_eff, 1e-12) if g_eff > 0 else np.inf
    wz = (1.0 / dz_var) / (1.0 / dz_var + 1.0 / max(pz_var, 1e-12)) if g_eff > 0 else 0.0
    a_all = wr * a_all + (1 - wr) * prior.mean[None, :]
    mu_all = wz * mu_all + (1 - wz) * prior.turnout
    a_hat, mu_hat = a_all[0], float(mu_all[0])
    zeta_hat = kz * Lg

    # --- outstanding units, per group ----------------------------------------------------
    Eo = np.where(out, E, 0.0)
    SE = np.asarray(inc @ Eo)
    go = np.flatnonzero(np.asarray(inc @ out.astype(float)) > 0)  # groups with units out
    SE = SE[go]
    SEq = np.asarray(inc @ (Eo[:, None] * q))[go]
    SEX = np.asarray(inc @ (Eo[:, None, None] * X).reshape(n, -1))[go].reshape(-1, K, P)
    x3g = np.asarray(inc @ (Eo * x3))[go] / np.maximum(SE, 1e-9)
    SE2 = np.asarray(inc @ (Eo * Eo))[go]
    capg = np.asarray(inc @ np.where(out, frame.cap, 0).astype(float))[go]
    avail = np.asarray(inc @ (onb & out[:, None]).astype(float))[go] > 0  # (Gu, K): on some outstanding ballot
    Gu = len(go)

    L_group = psd_sqrt(cov_group)
    L_unit = psd_sqrt(cov_unit)
    f_out = 1.0 - pct_exp

    z_shift = rng.standard_normal((B, K))
    z_small = rng.standard_normal((B, K))
    z_eps = rng.standard_normal((B, Gu, K))
    z_unit = rng.standard_normal((B, Gu, K))
    z_turn = rng.standard_normal((B, 3, Gu))

    # The race-level swing uncertainty that the bootstrap over groups cannot see
    # when few groups have reported, plus the arrival-order shift.
    # The Bayesian bootstrap over groups already spreads the race's swing once
    # several groups are in; with few, the prior's posterior spread stands in.
    few = min(1.0, 3.0 / G_R) if G_R else 1.0
    small = np.sqrt((1.0 - wr) * few)
    small_z = np.sqrt((1.0 - wz) * few)
    L_prior = psd_sqrt(prior.cov) if small > 1e-3 else np.zeros((K, K))
    # Covariate shift: how unlike the counted units the outstanding ones are
    # (standardised mean difference of baseline shares and size, the largest).
    imbalance = _imbalance(np.column_stack([q[:, np.argsort(-qbar)[: min(2, K)]], lE]), E, rep)
    excess = max(imbalance - params.imbalance_free, 0.0)
    # A swing of the outstanding units: its effect on the race already scales with
    # the share still out, so it is not scaled down again here (under an adversarial
    # order the outstanding units stay unlike the counted ones to the end).
    shift_scale = float(np.hypot(params.shift_sd, params.shift_imbalance * excess))
    a_draw = a_all[1:] + small * (z_small @ L_prior.T) + z_shift @ multinomial_sqrt(floor_shape, 1.0).T * shift_scale
    mu_draw = mu_all[1:] + small_z * prior.turnout_sd * z_turn[:, 0, 0] + params.turnout_shift_sd * f_out * z_turn[:, 1, 0]
    a_pt = a_hat
    # A partly reported group's own mean holds its prediction in place: when a
    # draw moves the race's coefficients, the group's residual moves the other
    # way, by its shrinkage weight (otherwise the bootstrap counts twice).
    Xrep = np.zeros((Gu, K, P))
    Xrep[rg[go]] = (gsum((w[:, None, None] * X).reshape(n, -1))[go][rg[go]] / Sw[go][rg[go], None]).reshape(-1, K, P)
    d_a = a_all[1:] - a_all[0]
    d_beta = beta_all[1:] - beta_all[0]
    shift_fit = d_a[:, None, :] + (d_beta[:, None, :, :] * Xrep[None]).sum(axis=-1)  # (B, Gu, K)
    eps_draw = eps_hat[go][None] - kg[go][None, :, None] * shift_fit + np.sqrt(1.0 - kg[go])[None, :, None] * (z_eps @ L_group.T)
    # Groups with nothing in yet: resample the residual vectors of reported groups
    # (all candidates together, heavy tails kept: a district where a party did not
    # run or a local hero stood is not Gaussian), mixed with the Gaussian prior
    # spread while few groups have reported.
    fresh = nG[go] == 0
    if G_R >= 5 and fresh.any():
        pool_r = Rg[rg] * np.sqrt(G_R / max(G_R - P - 1, 1))
        pick = rng.integers(0, G_R, size=(B, int(fresh.sum())))
        mix = G_R / (G_R + m0)
        eps_draw[:, fresh, :] = np.sqrt(mix) * pool_r[pick] + np.sqrt(1 - mix) * eps_draw[:, fresh, :]
    zeta_draw = zeta_hat[go][None] + np.sqrt((1.0 - kz[go]) * vz_group)[None] * z_turn[:, 2, :]
    noise = (z_unit @ L_unit.T) * np.sqrt(SE2)[None, :, None]

    def group_votes(a, beta, mu, thz, eps, zeta, nz) -> np.ndarray:
        # a: (..., K); beta: (..., K, P); mu, thz: (...); eps, nz: (..., Gu, K); zeta: (..., Gu)
        shares = SEq + a[..., None, :] * SE[:, None] + (beta[..., None, :, :] * SEX).sum(axis=-1) + eps * SE[:, None] + nz
        shares = np.clip(shares, 0.0, None) * avail
        tot = shares.sum(axis=-1, keepdims=True)
        fallback = np.broadcast_to(np.maximum(qbar, 1e-9) / np.maximum(qbar, 1e-9).sum(), shares.shape)
        shares = np.where(tot > 0, shares / np.where(tot > 0, tot, 1.0), fallback)
        T = np.minimum(np.exp(mu[..., None] + thz[..., None] * x3g + zeta) * SE, capg)
        return shares * T[..., None]

    pt_groups = group_votes(a_pt, beta_hat, np.asarray(mu_hat), np.asarray(thz_hat), eps_hat[go], zeta_hat[go], np.zeros((Gu, K)))
    point = counted + pt_groups.sum(axis=0)
    dr_groups = group_votes(a_draw, beta_all[1:], mu_draw, thz_all[1:], eps_draw, zeta_draw, noise)
    draws = counted[None, :] + dr_groups.sum(axis=1)
    draws = np.clip(draws, bounds[0], bounds[1])
    point = np.clip(point, bounds[0], bounds[1])

    proj = _summarise(frame, counted, counted_valid, expected_total, pct_exp, point, draws, bounds, remaining_cap, mode, notes)
    proj.units_reported = int(rep.sum())
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
        "feature_centres": {"baseline_share": qbar, "unmapped_share": ubar, "log_expected_mean": float(lE.mean()), "log_expected_sd": sd_lE},
        "turnout_slope_size": thz_hat,
        "log_turnout_ratio": mu_hat,
        "group_sd": np.sqrt(np.clip(np.diag(cov_group), 0, None)),
        "unit_sd": np.sqrt(np.clip(np.diag(cov_unit), 0, None)),
        "shift_sd": shift_scale,
        "imbalance": imbalance,
        "draws": B,
        "seed": params.seed,
    }
    return proj


def _imbalance(F: np.ndarray, w: np.ndarray, rep: np.ndarray) -> float:
    """Largest standardised mean difference of the columns of F between reported and outstanding units."""
    if not rep.any() or rep.all():
        return 0.0
    wr, wo = w * rep, w * ~rep
    if wr.sum() <= 0 or wo.sum() <= 0:
        return 0.0
    m_all = (w @ F) / w.sum()
    sd = np.sqrt((w @ (F - m_all) ** 2) / w.sum())
    d = np.abs((wr @ F) / wr.sum() - (wo @ F) / wo.sum()) / np.where(sd > 1e-9, sd, np.inf)
    return float(d.max())


def _quantiles(a: np.ndarray, qs: np.ndarray) -> np.ndarray:
    """Linear-interpolated quantiles of each column of ``a`` (B x m) at ``qs``: one sort for all levels."""
    srt = np.sort(a, axis=0)
    B = len(srt)
    pos = qs * (B - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, B - 1)
    frac = (pos - lo)[:, None]
    return srt[lo] * (1 - frac) + srt[hi] * frac


def _summarise(frame, counted, counted_valid, expected_total, pct_exp, point, draws, bounds, remaining_cap, mode, notes) -> RaceProjection:
    K = frame.n_candidates
    tot_d = draws.sum(axis=1, keepdims=True)
    share_d = draws / np.where(tot_d > 0, tot_d, 1.0)
    tot_p = point.sum()
    share_p = point / tot_p if tot_p > 0 else np.zeros(K)
    order = np.argsort(-point, kind="stable")
    lead = int(order[0])
    run = int(order[1]) if K > 1 else -1
    intervals, share_iv, m_iv, mp_iv = {}, {}, {}, {}
    margin_d = draws[:, lead] - (draws[:, run] if run >= 0 else 0.0)
    mshare_d = share_d[:, lead] - (share_d[:, run] if run >= 0 else 0.0)
    margin_p = float(point[lead] - (point[run] if run >= 0 else 0.0))
    mshare_p = float(share_p[lead] - (share_p[run] if run >= 0 else 0.0))
    # One sort of every drawn quantity, then all levels by index.
    levels = (*LEVELS, CALL_LEVEL)
    qs = np.array([(1 - lv) / 2 for lv in levels] + [1 - (1 - lv) / 2 for lv in levels])
    allq = _quantiles(np.column_stack([draws, share_d, margin_d, mshare_d]), qs)  # (2 x levels, 2K + 2)
    nl = len(levels)
    for i, lv in enumerate(levels):
        lo_r, hi_r = allq[i], allq[nl + i]
        # Never inverted, always around the point estimate, always inside the hard bounds.
        lo = np.clip(np.minimum(lo_r[:K], point), bounds[0], bounds[1])
        hi = np.clip(np.maximum(hi_r[:K], point), bounds[0], bounds[1])
        intervals[lv] = (lo, hi)
        share_iv[lv] = (np.clip(np.minimum(lo_r[K : 2 * K], share_p), 0, 1), np.clip(np.maximum(hi_r[K : 2 * K], share_p), 0, 1))
        m_iv[lv] = (min(float(lo_r[2 * K]), margin_p), max(float(hi_r[2 * K]), margin_p))
        mp_iv[lv] = (min(float(lo_r[2 * K + 1]), mshare_p), max(float(hi_r[2 * K + 1]), mshare_p))
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
