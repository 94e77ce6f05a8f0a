"""Weighted conformal interval of a race margin: the cross-check of the bootstrap.

Split conformal (as in washingtonpost/elex-live-model) scores each reported
unit by how far its margin per expected vote is from the model's prediction
for a unit *without its own group effect* (what the model can say about a unit
in a group that has not reported). Reported and outstanding units are not
exchangeable when arrival is not random, so each score is weighted by the
odds that a unit like it is still out, p(out | x) / p(in | x) (Tibshirani,
Barber, Candès & Ramdas 2019), with p fitted live by a small logistic
regression on log expected vote and the baseline shares of the two leaders.

The race interval sums the unit bounds (every outstanding unit off by the
quantile in the same direction), which is conservative, as in elex-live-model's
nonparametric mode. The per-unit fit uses the calibration units too; with three
coefficients per candidate and hundreds of units the optimism is small, and it
is noted here rather than hidden.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sandik.core.projection.frame import RaceFrame, RaceState
from sandik.core.projection.model import RaceProjection, _um, prepared


def _logistic(X: np.ndarray, y: np.ndarray, steps: int = 12, l2: float = 1.0) -> np.ndarray:
    """Ridge logistic regression by Newton's method (tiny design: a handful of columns)."""
    beta = np.zeros(X.shape[1])
    for _ in range(steps):
        eta = _um.clip(X @ beta, -30, 30)
        p = 1.0 / (1.0 + np.exp(-eta))
        g = X.T @ (y - p) - l2 * beta
        H = (X * (p * (1 - p))[:, None]).T @ X + l2 * np.eye(X.shape[1])
        step = np.linalg.solve(H, g)
        beta = beta + step
        if float(np.abs(step).max()) < 1e-10:
            break  # converged: further Newton steps change nothing that matters
    return beta


def weighted_quantile_with_infinity(scores: np.ndarray, weights: np.ndarray, test_weight: float, level: float) -> float:
    """Quantile at ``level`` of Σ p_i δ(s_i) + p_test δ(+inf) (the weighted-conformal correction)."""
    order = np.argsort(scores)
    s = scores[order]
    w = weights[order]
    tot = w.sum() + test_weight
    if tot <= 0:
        return float("inf")
    cum = np.cumsum(w) / tot
    i = np.searchsorted(cum, level, side="left")
    return float(s[i]) if i < len(s) else float("inf")


def conformal_margin(frame: RaceFrame, state: RaceState, proj: RaceProjection, level: float = 0.9) -> dict[str, Any]:
    L, R = proj.leader, proj.runner_up
    out = ~state.reported
    fit = state.reported & (state.valid > 0) & (frame.expected > 0)
    n_cal = int(fit.sum())
    rem = float(frame.expected[out].sum())
    res: dict[str, Any] = {"level": level, "calibration_units": n_cal, "lower": -np.inf, "upper": np.inf, "reason": ""}
    if R < 0 or not out.any():
        res.update(lower=proj.margin, upper=proj.margin, reason="nothing outstanding")
        return res
    need = int(np.ceil((1 + level) / (1 - level)))
    if n_cal < need:
        res["reason"] = f"{n_cal} calibration units < {need} needed at {level:.0%}"
        return res
    st = proj.state
    q = frame.base_share
    E = frame.expected
    fc = st["feature_centres"]
    qbar = np.asarray(fc["baseline_share"])
    # The model's own features of the units (unmapped share, scaled size), built once per frame.
    pre = prepared(frame)
    u, x3 = pre.u, pre.x3
    # What depends on the frame and the two leaders alone is kept per frame.
    kept = frame._conformal
    if kept is None:
        kept = frame._conformal = {}
    a = np.asarray(st["swing_intercept"])
    beta = np.asarray(st["swing_slopes"])
    mu = float(st["log_turnout_ratio"]) + float(st["turnout_slope_size"]) * x3
    idx = np.flatnonzero(fit)
    two = [L, R]
    X = np.stack([q[idx][:, two] - qbar[two], np.repeat((u[idx] - fc["unmapped_share"])[:, None], 2, axis=1), np.repeat(x3[idx, None], 2, axis=1)], axis=-1)
    pred_share = _um.clip(q[idx][:, two] + a[two] + (X * beta[two]).sum(axis=-1), 0, 1)
    pred_m = np.exp(mu[idx]) * (pred_share[:, 0] - pred_share[:, 1])
    actual_m = (state.votes[idx, L] - state.votes[idx, R]) / E[idx]
    scores = np.abs(actual_m - pred_m)
    # Covariate-shift weights: odds that a unit like this one is still out.
    X = kept.get(("X", L, R))
    if X is None:
        X = np.column_stack([np.ones(frame.n_units), np.log1p(E), q[:, L], q[:, R], u])
        X[:, 1:] = (X[:, 1:] - X[:, 1:].mean(axis=0)) / (X[:, 1:].std(axis=0) + 1e-9)
        X.setflags(write=False)
        kept[("X", L, R)] = X
    # The odds depend on the units in (and the two leaders) alone: kept for the last set of
    # units in, so that a refresh of a race no sheet reached (its prior moved) does not refit them.
    rep_key = np.packbits(state.reported).tobytes()
    odds_kept = frame._odds_cache
    if odds_kept is None:
        odds_kept = frame._odds_cache = {}
    hit = odds_kept.get((L, R))
    if hit is not None and hit[0] == rep_key:
        odds = hit[1]
    else:
        beta = _logistic(X, state.reported.astype(float))
        p_in = 1.0 / (1.0 + np.exp(-_um.clip(X @ beta, -30, 30)))
        odds = _um.clip((1 - p_in) / np.maximum(p_in, 1e-9), 0.05, 20.0)
        odds.setflags(write=False)
        odds_kept[(L, R)] = (rep_key, odds)
    test_w = float(odds[out].mean())
    Q = weighted_quantile_with_infinity(scores, odds[idx], test_w, level)
    if not np.isfinite(Q):
        # The quantile is infinite exactly when the weight of a unit still out exceeds 1 - level of
        # all the weight: say so in words, for the call log and the website (arrival far from random).
        out_share = test_w / (float(odds[idx].sum()) + test_w)
        res["reason"] = (
            f"the units still out are too unlike the {n_cal} units in: a unit like them carries {out_share:.0%} of the "
            f"covariate-shift weight, more than the {1 - level:.0%} a {level:.0%} quantile leaves, so the interval is unbounded"
        )
        res["quantile"] = Q
        return res
    # Margin of the outstanding units, predicted the same way, bounded by Q per expected vote.
    res.update(
        lower=proj.margin - Q * rem,
        upper=proj.margin + Q * rem,
        quantile=Q,
        reason=f"unit margin error <= {Q:.3f} of expected vote, summed over {rem:,.0f} expected votes out",
    )
    return res
