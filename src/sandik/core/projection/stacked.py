"""The per-draw steps of many race projections run at once, one stack per race shape.

A race's projection is some 400 numpy operations; on the ~1,400 races of a
night most of them are on small arrays, so their cost is the call, not the
arithmetic. The steps whose arrays have one row per bootstrap draw (the swing
and turnout fits under every bootstrap weight, the draws per outstanding group,
the summary's quantiles) are the same operations for every race of a shape
(draws, groups reported, candidates, groups out), which also share their random
numbers (``model.shared_draws``). ``run_steps`` advances each race's
``model._project_steps`` generator to such a step, runs the step once over the
stack of races that wait on it with the same key, and sends each its part.

Every stacked operation is the one-race operation with a leading race axis:
elementwise arithmetic, reductions along the same axis, and matrix products that
numpy's ``matmul`` runs matrix by matrix with the same shapes and strides as for
one race. The results are the same bit for bit (``tests/test_projection_stacked.py``
compares stacks against races one by one); a single race runs through the same
code with a stack of one.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from sandik.core.projection.model import CALL_LEVEL, LEVELS, RaceProjection, _solve3, _solve_small, _um


def run_steps(gens: list) -> list[RaceProjection]:
    """Drive ``model._project_steps`` generators to their ends, stacking the steps that wait on the same key."""
    results: list[Any] = [None] * len(gens)
    pending: dict[tuple, list[tuple[int, Any]]] = defaultdict(list)

    def advance(i: int, value: Any) -> None:
        try:
            kind, key, payload = gens[i].send(value)
        except StopIteration as stop:
            results[i] = stop.value
            return
        pending[(kind, key)].append((i, payload))

    for i in range(len(gens)):
        advance(i, None)
    while pending:
        (kind, _key), waiting = pending.popitem()
        # Stacks small enough that their arrays stay in a core's cache: a stack of 80 races
        # of 200 draws x 10 groups x 8 candidates is 10 MB per array, and runs slower per
        # element from memory than the same work in pieces.
        size = max(_size(kind, waiting[0][1]), 1)
        step = max(1, STACK_BUDGET // size)
        for c in range(0, len(waiting), step):
            part = waiting[c : c + step]
            payloads = [p for _, p in part]
            outs = solve_stacked(payloads) if kind == "solve" else draws_and_summary(payloads)
            for (i, _), out in zip(part, outs):
                advance(i, out)
    return results


STACK_BUDGET = 1 << 17  # array elements per race stack (x 8 bytes: 512 KB)


def _size(kind: str, payload: Any) -> int:
    """Elements of the largest per-draw array of one race in this step."""
    if kind == "solve":
        om, S = payload[0], payload[1]
        return om.shape[0] * S.shape[2] * 9
    rd = payload["rd"]
    return rd.z_eps.size


# --- the fits under every bootstrap weight ------------------------------------------------------


def solve_stacked(items: list[tuple]) -> list[tuple[np.ndarray, ...]]:
    """``model._solve_swing`` and ``model._solve`` (turnout) for races with the same weights ``om`` (D, groups)."""
    om, lam = items[0][0], items[0][3]
    S = np.array([it[1] for it in items])  # (R, gr, 14, K)
    a, beta = _solve_swing_stack(om, S, lam)
    mz, bz = _solve_stack(om, [it[2] for it in items], lam)
    return [(a[r], beta[r], mz[r], bz[r]) for r in range(len(items))]


def _solve_swing_stack(om: np.ndarray, S: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """``model._solve_swing`` with a leading race axis on S (R, groups, 14, K)."""
    R, gr, _, K = S.shape
    D = om.shape[0]
    Sx = np.ascontiguousarray(S[:, :, 1:4].transpose(0, 1, 3, 2)).reshape(R, gr, K * 3)
    Sxx = np.empty((R, gr, K, 3, 3))
    for (i, j), c in zip(((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)), range(4, 10)):
        Sxx[:, :, :, i, j] = S[:, :, c]
        Sxx[:, :, :, j, i] = S[:, :, c]
    Sxy = np.ascontiguousarray(S[:, :, 11:14].transpose(0, 1, 3, 2)).reshape(R, gr, K * 3)
    W = np.maximum(om @ S[:, :, 0], 1e-9)
    Px = (om @ Sx).reshape(R, D, K, 3)
    Pxx = (om @ Sxx.reshape(R, gr, K * 9)).reshape(R, D, K, 3, 3)
    Pxy = (om @ Sxy).reshape(R, D, K, 3)
    My = (om @ S[:, :, 10]) / W
    m0, m1, m2 = Px[..., 0] / W, Px[..., 1] / W, Px[..., 2] / W
    c00 = Pxx[..., 0, 0] / W - m0 * m0 + lam
    c01 = Pxx[..., 0, 1] / W - m0 * m1 + 0.0
    c02 = Pxx[..., 0, 2] / W - m0 * m2 + 0.0
    c11 = Pxx[..., 1, 1] / W - m1 * m1 + lam
    c12 = Pxx[..., 1, 2] / W - m1 * m2 + 0.0
    c22 = Pxx[..., 2, 2] / W - m2 * m2 + lam
    y0 = Pxy[..., 0] / W - m0 * My
    y1 = Pxy[..., 1] / W - m1 * My
    y2 = Pxy[..., 2] / W - m2 * My
    b0, b1, b2 = _solve3(c00, c01, c02, c11, c12, c22, y0, y1, y2)
    a = My - (b0 * m0 + b1 * m1 + b2 * m2)
    return a, np.stack([b0, b1, b2], axis=-1)


def _solve_stack(om: np.ndarray, sts: list[tuple], lam: float) -> tuple[np.ndarray, np.ndarray]:
    """``model._solve`` with a leading race axis (every race's sums of the same shapes)."""
    k, pp = sts[0][5], sts[0][6]
    SW, Sx, Sxx, Sy, Sxy = (np.array([st[i] for st in sts]) for i in range(5))
    R, D = len(sts), om.shape[0]
    W = np.maximum(om @ SW, 1e-9)  # (R, D, k)
    Mx = (om @ Sx).reshape(R, D, k, pp) / W[..., None]
    My = (om @ Sy) / W
    C = (om @ Sxx).reshape(R, D, k, pp, pp) / W[..., None, None] - Mx[..., :, None] * Mx[..., None, :] + lam * np.eye(pp)
    cy = (om @ Sxy).reshape(R, D, k, pp) / W[..., None] - Mx * My[..., None]
    beta = _solve_small(C, cy)
    a = My - (beta * Mx).sum(axis=-1)
    return a, beta


# --- the draws per outstanding group, and the summary ---------------------------------------------


def _design_dot(beta: np.ndarray, SX: np.ndarray) -> np.ndarray:
    """``model._design_dot`` for (R, B, K, P) coefficients and (R, G, K, P) sums -> (R, B, G, K)."""
    return np.matmul(beta.transpose(0, 2, 1, 3), SX.transpose(0, 2, 3, 1)).transpose(0, 2, 3, 1)


def draws_and_summary(jobs: list[dict]) -> list[RaceProjection]:
    """The bootstrap draws of races that share their random numbers, then their summaries."""
    rd = jobs[0]["rd"]
    R = len(jobs)

    def st(name: str) -> np.ndarray:
        # np.array of same-shaped arrays: the stack np.stack makes, without its Python layers
        return np.array([j[name] for j in jobs])

    def col(name: str, nd: int) -> np.ndarray:
        return np.array([j[name] for j in jobs], dtype=float).reshape((R,) + (1,) * nd)

    # the race's swing per draw: the refits, the prior's spread while few groups are in, the arrival-order shift
    a_draw = st("a1") + col("small", 2) * np.matmul(rd.z_small, st("L_prior").transpose(0, 2, 1)) + np.matmul(rd.z_shift, st("M_shift").transpose(0, 2, 1)) * col("shift_scale", 2)
    mu_draw = st("mu1") + col("c_turn", 1) * rd.z_turn[:, 0, 0] + col("c_shift", 1) * rd.z_turn[:, 1, 0]
    d_a = st("a1") - st("a0")[:, None, :]
    d_beta = st("beta1") - st("beta0")[:, None]
    shift_fit = _design_dot(d_beta, st("Xrep"))  # (R, B, Gu, K)
    shift_fit += d_a[:, :, None, :]
    shift_fit *= st("kg")[:, None, :, None]
    eps_draw = st("eps_hat")[:, None] - shift_fit
    z_g = np.matmul(rd.z_eps, st("L_group").transpose(0, 2, 1)[:, None])
    z_g *= st("sq_kg")[:, None, :, None]
    eps_draw += z_g
    for r, j in enumerate(jobs):
        if j["resample"] is not None:
            fresh, pool_r, pick, mix = j["resample"]
            e = eps_draw[r]
            e[:, fresh, :] = np.sqrt(mix) * pool_r[pick] + np.sqrt(1 - mix) * e[:, fresh, :]
    zeta_draw = st("zeta_hat")[:, None] + st("sq_kz")[:, None] * rd.z_turn[:, 2, :]
    noise = np.matmul(rd.z_unit, st("L_unit").transpose(0, 2, 1)[:, None])
    noise *= st("sq_SE2")[:, None, :, None]

    SE = st("SE")  # (R, Gu)
    shares = a_draw[..., None, :] * SE[:, None, :, None]
    shares += st("SEq")[:, None]
    shares += _design_dot(st("beta1"), st("SEX"))
    shares += eps_draw * SE[:, None, :, None]
    shares += noise
    _um.maximum(shares, 0.0, out=shares)
    shares *= st("avail")[:, None]
    tot = shares.sum(axis=-1, keepdims=True)
    pos = tot > 0
    shares /= np.where(pos, tot, 1.0)
    if not pos.all():
        np.copyto(shares, np.broadcast_to(st("fallback")[:, None, None, :], shares.shape), where=~pos)
    T = np.minimum(np.exp(mu_draw[..., None] + st("thz1")[..., None] * st("x3g")[:, None, :] + zeta_draw) * SE[:, None, :], st("capg")[:, None, :])
    shares *= T[..., None]
    counted = st("counted")
    lo_b = np.array([j["bounds"][0] for j in jobs])
    hi_b = np.array([j["bounds"][1] for j in jobs])
    draws = counted[:, None, :] + shares.sum(axis=2)
    draws = _um.clip(draws, lo_b[:, None, :], hi_b[:, None, :])
    return _summaries(jobs, draws, st("point"), lo_b, hi_b)


def _summaries(jobs: list[dict], draws: np.ndarray, point: np.ndarray, lo_b: np.ndarray, hi_b: np.ndarray) -> list[RaceProjection]:
    """``model._summarise`` of a stack of races with the same number of candidates."""
    R, B, K = draws.shape
    scale = np.array([j["scale"] for j in jobs], dtype=float)
    # The intervals come from the draws' spread around the point, calibrated by the
    # race's scale (and kept inside the hard bounds); P(win) and the calls use the raw draws.
    iv = np.minimum(np.maximum(point[:, None, :] + scale[:, None, None] * (draws - point[:, None, :]), lo_b[:, None, :]), hi_b[:, None, :])
    same = scale == 1.0
    if same.any():
        iv[same] = draws[same]
    tot_d = iv.sum(axis=2, keepdims=True)
    share_d = iv / np.where(tot_d > 0, tot_d, 1.0)
    tot_p = point.sum(axis=1)
    share_p = np.zeros((R, K))
    has = tot_p > 0
    share_p[has] = point[has] / tot_p[has, None]
    order = np.argsort(-point, axis=1, kind="stable")
    lead = order[:, 0]
    rows = np.arange(R)
    if K > 1:
        run = order[:, 1]
        margin_d = iv[rows, :, lead] - iv[rows, :, run]
        mshare_d = share_d[rows, :, lead] - share_d[rows, :, run]
        margin_p = point[rows, lead] - point[rows, run]
        mshare_p = share_p[rows, lead] - share_p[rows, run]
    else:
        run = np.full(R, -1)
        margin_d = iv[rows, :, lead] - 0.0
        mshare_d = share_d[rows, :, lead] - 0.0
        margin_p = point[rows, lead] - 0.0
        mshare_p = share_p[rows, lead] - 0.0
    levels = (*LEVELS, CALL_LEVEL)
    nl = len(levels)
    qs = np.array([(1 - lv) / 2 for lv in levels] + [1 - (1 - lv) / 2 for lv in levels])
    srt = np.sort(np.concatenate([iv, share_d, margin_d[..., None], mshare_d[..., None]], axis=2), axis=1)  # (R, B, 2K + 2)
    pos = qs * (B - 1)
    qlo = np.floor(pos).astype(np.int64)
    qhi = np.minimum(qlo + 1, B - 1)
    frac = (pos - qlo)[:, None]
    allq = srt[:, qlo] * (1 - frac) + srt[:, qhi] * frac  # (R, 2 nl, 2K + 2)
    # Never inverted, always around the point estimate, always inside the hard bounds.
    lo_v = np.minimum(np.maximum(np.minimum(allq[:, :nl, :K], point[:, None]), lo_b[:, None]), hi_b[:, None])
    hi_v = np.minimum(np.maximum(np.maximum(allq[:, nl:, :K], point[:, None]), lo_b[:, None]), hi_b[:, None])
    lo_s = np.minimum(np.maximum(np.minimum(allq[:, :nl, K : 2 * K], share_p[:, None]), 0.0), 1.0)
    hi_s = np.minimum(np.maximum(np.maximum(allq[:, nl:, K : 2 * K], share_p[:, None]), 0.0), 1.0)
    m_lo, m_hi = allq[:, :nl, 2 * K].tolist(), allq[:, nl:, 2 * K].tolist()
    mp_lo, mp_hi = allq[:, :nl, 2 * K + 1].tolist(), allq[:, nl:, 2 * K + 1].tolist()
    winners = np.argmax(draws, axis=2)
    out = []
    for r, j in enumerate(jobs):
        frame, counted, counted_valid, expected_total, pct_exp, remaining_cap, mode, notes = j["summary"]
        mp, msp = float(margin_p[r]), float(mshare_p[r])
        out.append(
            RaceProjection(
                race_id=frame.race_id,
                candidate_ids=frame.candidate_ids,
                mode=mode,
                units_total=frame.n_units,
                units_reported=0,
                counted=counted,
                counted_valid=counted_valid,
                expected_total=expected_total,
                pct_expected_counted=pct_exp,
                votes=j["point"],
                intervals={lv: (lo_v[r, i], hi_v[r, i]) for i, lv in enumerate(levels)},
                share=share_p[r],
                share_intervals={lv: (lo_s[r, i], hi_s[r, i]) for i, lv in enumerate(levels)},
                p_win=np.bincount(winners[r], minlength=K) / B,
                leader=int(lead[r]),
                runner_up=int(run[r]),
                margin=mp,
                margin_intervals={lv: (min(m_lo[r][i], mp), max(m_hi[r][i], mp)) for i, lv in enumerate(levels)},
                margin_points_intervals={lv: (min(mp_lo[r][i], msp), max(mp_hi[r][i], msp)) for i, lv in enumerate(levels)},
                bounds=j["bounds"],
                remaining_cap=remaining_cap,
                notes=notes,
                draws=draws[r],
            )
        )
    return out
