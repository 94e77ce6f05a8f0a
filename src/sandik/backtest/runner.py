"""Replay a case in an arrival order through the projection and call code, and score it.

At each checkpoint (every ``step`` of the case's total expected vote) every race
is projected and called by :func:`sandik.core.projection.project_many`, the
function the live path uses, from exactly the units reported so far. Scored
per race x checkpoint against the race's final result:

* coverage of the 80/90/95/99% intervals of the margin (leader minus runner-up,
  in points, both as projected at that checkpoint) and of every candidate's
  final share, bucketed by the race's own share of expected vote counted;
* the 90% margin interval's width and the error of the projected margin;
* the Brier score of P(win) (summed over candidates);
* calls: a call for anyone but the final winner at any checkpoint is a wrong
  call; otherwise the share of expected vote at the first correct call.

Peers on the same replays: lock-only calls (no model), uniform swing (every
outstanding unit moves by the mean swing of the reported ones; a point
estimate only), and optionally the Washington Post's elex-model
(:mod:`sandik.backtest.elex_peer`).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sandik.backtest.data import BacktestCase
from sandik.backtest.orders import ORDERS
from sandik.core.projection.calls import CallRule, lock_winner
from sandik.core.projection.frame import RaceFrame, RaceState
from sandik.core.projection.model import LEVELS, ModelParams
from sandik.core.projection.pool import project_many

BUCKETS = ((0.0, 0.0), (0.0, 0.1), (0.1, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.0))


def bucket_name(lo: float, hi: float) -> str:
    return "0%" if hi == 0 else f"{lo:.0%}-{hi:.0%}"


def bucket_of(pct: float) -> str | None:
    if pct >= 1.0:
        return None
    if pct <= 0.0:
        return "0%"
    for lo, hi in BUCKETS[1:]:
        if lo < pct <= hi or (lo == 0 and pct <= hi):
            return bucket_name(lo, hi)
    return None


def uniform_swing(frame: RaceFrame, st: RaceState) -> np.ndarray:
    """Final votes by uniform swing: outstanding units get their baseline shares plus the mean swing so far."""
    rep = st.reported & (st.valid > 0) & (frame.expected > 0)
    counted = st.votes[st.reported].sum(axis=0).astype(float)
    out = ~st.reported
    if rep.any():
        E = frame.expected[rep]
        p = st.votes[rep] / st.valid[rep, None]
        swing = ((p - frame.base_share[rep]) * E[:, None]).sum(axis=0) / E.sum()
        ratio = st.valid[rep].sum() / E.sum()
    else:
        swing = np.zeros(frame.n_candidates)
        ratio = 1.0
    share = np.clip(frame.base_share[out] + swing, 0, None)
    tot = share.sum(axis=1, keepdims=True)
    share = np.where(tot > 0, share / np.where(tot > 0, tot, 1), 1.0 / frame.n_candidates)
    return counted + (share * (frame.expected[out] * ratio)[:, None]).sum(axis=0)


def checkpoints(case: BacktestCase, order: np.ndarray, step: float) -> list[int]:
    """Numbers of units reported at each checkpoint: every ``step`` of the total expected vote, then all."""
    cum = np.cumsum(case.g_expected[order])
    tot = cum[-1]
    out = []
    for lv in np.arange(step, 1.0, step):
        k = int(np.searchsorted(cum, lv * tot, side="left")) + 1
        if not out or k > out[-1]:
            out.append(min(k, len(order)))
    out.append(len(order))
    return out


@dataclass
class RaceTrack:
    race_id: str
    final_margin_points: float
    winner: str
    calls: list[tuple[float, str, str]] = field(default_factory=list)  # (pct, candidate, kind)
    lock_calls: list[tuple[float, str]] = field(default_factory=list)


@dataclass
class OrderResult:
    order: str
    seed: int
    rows: list[dict[str, Any]]
    tracks: dict[str, RaceTrack]
    seconds: float
    peer_rows: list[dict[str, Any]] = field(default_factory=list)


def race_tracks(case: BacktestCase) -> dict[str, RaceTrack]:
    """Every race's final margin (share of its valid votes) and winner ("" for a tie), with no calls yet."""
    tracks = {}
    for rid in case.frames:
        F = case.final(rid)
        cid = case.frames[rid].candidate_ids
        o = np.argsort(-F, kind="stable")
        tot = F.sum()
        fm = (F[o[0]] - (F[o[1]] if len(F) > 1 else 0)) / tot if tot else 0.0
        tracks[rid] = RaceTrack(rid, float(fm), cid[o[0]] if F[o[0]] > (F[o[1]] if len(F) > 1 else -1) else "")
    return tracks


def replay(
    case: BacktestCase,
    order_name: str,
    *,
    seed: int = 0,
    step: float = 0.025,
    params: ModelParams | None = None,
    rule: CallRule | None = None,
    peers: tuple[str, ...] = ("lock", "uniform"),
    elex: Callable[..., Any] | None = None,
    on_checkpoint: Callable[[dict[str, RaceState], dict[str, Any]], None] | None = None,
) -> OrderResult:
    """``on_checkpoint(states, outcomes)``: called at each checkpoint with every race's state and the
    outcomes of the races projected there (every race not complete before), for studies of the
    replay that need more than its rows (scripts/call_bound.py)."""
    params = params or ModelParams()
    rule = rule or CallRule()
    order = ORDERS[order_name](case, seed)
    pos = np.empty(case.n_global, dtype=np.int64)
    pos[order] = np.arange(case.n_global)
    finals = {rid: case.final(rid) for rid in case.frames}
    tracks = race_tracks(case)
    rows: list[dict[str, Any]] = []
    peer_rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    prev_n: dict[str, int] = {}
    for cp, n_in in enumerate(checkpoints(case, order, step)):
        states = {}
        changed = []
        for rid, fr in case.frames.items():
            mask = pos[case.unit_of[rid]] < n_in
            states[rid] = RaceState(mask, np.where(mask[:, None], case.final_votes[rid], 0), np.where(mask, case.final_valid[rid], 0))
            k = int(mask.sum())
            # A race whose units are all in and were all in before has nothing new to score.
            if not (prev_n.get(rid) == k == fr.n_units):
                changed.append(rid)
            prev_n[rid] = k
        outcomes = project_many(case.frames, states, params=params, rule=rule, region_of=case.region_of, races=changed)
        if on_checkpoint is not None:
            on_checkpoint(states, outcomes)
        for rid in changed:
            oc = outcomes[rid]
            pr, call = oc.projection, oc.call
            tr = tracks[rid]
            F = finals[rid]
            Ft = F.sum()
            if call.called:
                tr.calls.append((pr.pct_expected_counted, call.candidate, call.kind))
            if "lock" in peers:
                lw = lock_winner(pr.counted, pr.remaining_cap)
                if lw is not None:
                    tr.lock_calls.append((pr.pct_expected_counted, pr.candidate_ids[lw]))
            b = bucket_of(pr.pct_expected_counted)
            if b is None or Ft == 0:
                continue
            L, R = pr.leader, pr.runner_up
            true_m = (F[L] - (F[R] if R >= 0 else 0)) / Ft
            row = {
                "race": rid,
                "cp": cp,
                "pct": pr.pct_expected_counted,
                "bucket": b,
                "margin_err": abs(pr.margin_share - true_m),
                "width90": pr.margin_points_intervals[0.9][1] - pr.margin_points_intervals[0.9][0],
                "inverted": any(pr.margin_points_intervals[lv][0] > pr.margin_points_intervals[lv][1] for lv in LEVELS),
                "brier": float(((pr.p_win - (F == F.max()).astype(float) / max((F == F.max()).sum(), 1)) ** 2).sum()),
                "right_leader": bool(F[L] >= F.max()),
                # for calibration scripts: the projected and true margin, the raw interval, the covariate imbalance
                "margin_pt": pr.margin_share,
                "margin_true": true_m,
                "imbalance": float(pr.state.get("imbalance", 0.0)),
                "imbalance_z": float(pr.state.get("imbalance_z", 0.0)),
                "interval_scale": float(pr.state.get("interval_scale", 1.0)),
                "units_fitted": int(pr.state.get("units_fitted", 0)),
            }
            true_share = F / Ft
            for lv in LEVELS:
                lo, hi = pr.margin_points_intervals[lv]
                row[f"cov{lv}"] = bool(lo - 1e-12 <= true_m <= hi + 1e-12)
                row[f"iv{lv}"] = (lo, hi)
                slo, shi = pr.share_intervals[lv]
                row[f"scov{lv}"] = float(((slo - 1e-12 <= true_share) & (true_share <= shi + 1e-12)).mean())
            rows.append(row)
            if "uniform" in peers:
                us = uniform_swing(case.frames[rid], states[rid])
                ust = us.sum()
                usm = (us[L] - (us[R] if R >= 0 else 0)) / ust if ust else 0.0
                # its own leader and runner-up too, for scripts that call races from its point (call_bound)
                uo = np.argsort(-us, kind="stable")
                u2 = us[uo[1]] if len(us) > 1 else 0.0
                f2 = F[uo[1]] if len(F) > 1 else 0.0
                top = (us[uo[0]] - u2) / ust if ust else 0.0
                peer_rows.append({
                    "peer": "uniform", "race": rid, "cp": cp, "pct": pr.pct_expected_counted, "bucket": b, "margin_err": abs(usm - true_m),
                    "right_leader": bool(F[uo[0]] >= F.max()), "margin_pt": float(top), "margin_true": float((F[uo[0]] - f2) / Ft),
                })  # fmt: skip
        if elex is not None:
            peer_rows.extend({**r, "cp": cp} for r in elex(case, states, finals, changed))
    return OrderResult(order_name, seed, rows, tracks, time.perf_counter() - t0, peer_rows)


def summarize(res: OrderResult, case: BacktestCase) -> dict[str, Any]:
    rows = res.rows
    out: dict[str, Any] = {"order": res.order, "seed": res.seed, "seconds": round(res.seconds, 1), "race_checkpoints": len(rows)}
    wrong = []
    call_pct = []
    call_pct_big = []
    lock_pct = []
    never_called_big = 0
    per_race = []
    for rid, tr in res.tracks.items():
        bad = [c for c in tr.calls if c[1] != tr.winner]
        first_ok = next((c for c in tr.calls if c[1] == tr.winner), None)
        if bad:
            wrong.append({"race": rid, "called": bad[0][1], "winner": tr.winner, "pct": bad[0][0], "final_margin_points": 100 * tr.final_margin_points})
        if first_ok:
            call_pct.append(first_ok[0])
            if tr.final_margin_points > 0.10:
                call_pct_big.append(first_ok[0])
        elif tr.final_margin_points > 0.10:
            never_called_big += 1
        lk = next((c for c in tr.lock_calls if c[1] == tr.winner), None)
        if lk:
            lock_pct.append(lk[0])
        per_race.append(
            {
                "race": rid,
                "winner": tr.winner,
                "final_margin_points": round(100 * tr.final_margin_points, 3),
                "call_pct_expected": round(first_ok[0], 4) if first_ok else None,
                "call_kind": first_ok[2] if first_ok else None,
                "wrong_call": bool(bad),
                "lock_pct_expected": round(lk[0], 4) if lk else None,
            }
        )
    out["wrong_calls"] = len(wrong)
    out["wrong_call_list"] = wrong
    out["races"] = len(res.tracks)
    out["median_call_pct_expected"] = _med(call_pct)
    out["median_call_pct_expected_margin_gt10"] = _med(call_pct_big)
    out["races_margin_gt10"] = sum(1 for t in res.tracks.values() if t.final_margin_points > 0.10)
    out["median_lock_pct_expected"] = _med(lock_pct)
    cov_rows = [r for r in rows]
    out["coverage"] = {f"{round(lv * 100):d}": _mean([r[f"cov{lv}"] for r in cov_rows]) for lv in LEVELS}
    out["coverage_partial"] = {f"{round(lv * 100):d}": _mean([r[f"cov{lv}"] for r in cov_rows if r["bucket"] != "0%"]) for lv in LEVELS}
    out["share_coverage"] = {f"{round(lv * 100):d}": _mean([r[f"scov{lv}"] for r in cov_rows]) for lv in LEVELS}
    out["inverted_intervals"] = sum(r["inverted"] for r in rows)
    out["mean_width90_points"] = _mean([100 * r["width90"] for r in rows])
    out["mean_margin_error_points"] = _mean([100 * r["margin_err"] for r in rows])
    out["brier"] = _mean([r["brier"] for r in rows])
    by_b = defaultdict(list)
    for r in rows:
        by_b[r["bucket"]].append(r)
    out["by_bucket"] = {
        b: {
            "n": len(rs),
            "coverage": {f"{round(lv * 100):d}": _mean([r[f"cov{lv}"] for r in rs]) for lv in LEVELS},
            "width90_points": _mean([100 * r["width90"] for r in rs]),
            "margin_error_points": _mean([100 * r["margin_err"] for r in rs]),
            "brier": _mean([r["brier"] for r in rs]),
        }
        for b, rs in sorted(by_b.items(), key=lambda kv: [bucket_name(*x) for x in BUCKETS].index(kv[0]))
    }
    peers: dict[str, Any] = {}
    for name in sorted({p["peer"] for p in res.peer_rows}):
        allr = [p for p in res.peer_rows if p["peer"] == name]
        pr = [p for p in allr if "error" not in p]
        d: dict[str, Any] = {"n": len(pr), "failed": len(allr) - len(pr), "mean_margin_error_points": _mean([100 * p["margin_err"] for p in pr]), "right_leader": _mean([p["right_leader"] for p in pr])}
        if any("cov0.9" in p for p in pr):
            d["coverage"] = {"90": _mean([p["cov0.9"] for p in pr])}
            d["mean_width90_points"] = _mean([100 * p["width90"] for p in pr])
            d["inverted_intervals"] = sum(bool(p.get("inverted")) for p in pr)
            # sandik's model on exactly the same race checkpoints, for a fair comparison
            keys = {(p["race"], p["cp"]) for p in pr}
            same = [r for r in rows if (r["race"], r["cp"]) in keys]
            d["sandik_same_rows"] = {
                "n": len(same),
                "coverage": {"90": _mean([r["cov0.9"] for r in same])},
                "mean_width90_points": _mean([100 * r["width90"] for r in same]),
                "mean_margin_error_points": _mean([100 * r["margin_err"] for r in same]),
            }
            mine = {(r["race"], r["cp"]): r for r in same}
            d["equal_width"] = equal_width([(mine[(p["race"], p["cp"])], p) for p in pr if (p["race"], p["cp"]) in mine])
        peers[name] = d
    peers["model_same_rows"] = {"mean_margin_error_points": out["mean_margin_error_points"], "right_leader": _mean([r["right_leader"] for r in rows])}
    peers["lock_only"] = {"median_call_pct_expected": _med(lock_pct), "races_called": len(lock_pct), "wrong_calls": 0}
    out["peers"] = peers
    out["per_race"] = per_race
    return out


def equal_width(pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> dict[str, Any]:
    """Coverage at equal width over (sandik row, peer row) pairs of the same race checkpoint.

    Each model's 90% margin interval is given the other's width, centred on its own point
    (symmetric then, as the peer's gaussian one is): which point lies nearer the result,
    with the widths taken out of the comparison. Rows carry margin_err, width90 and cov0.9.
    """
    return {
        "n": len(pairs),
        "sandik_at_sandik_width": _mean([r["cov0.9"] for r, _p in pairs]),
        "sandik_at_peer_width": _mean([r["margin_err"] <= p["width90"] / 2 for r, p in pairs]),
        "peer_at_peer_width": _mean([p["cov0.9"] for _r, p in pairs]),
        "peer_at_sandik_width": _mean([p["margin_err"] <= r["width90"] / 2 for r, p in pairs]),
    }


def _mean(xs: list) -> float | None:
    return round(float(np.mean(xs)), 4) if len(xs) else None


def _med(xs: list) -> float | None:
    return round(float(np.median(xs)), 4) if len(xs) else None


def pool_seeds(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """One order replayed with several seeds (``summarize`` of each): the figures per seed and,
    pooled, the 90% coverage over all their race checkpoints (weighted by checkpoints, as if one
    long replay) and the wrong calls summed. One permutation of thousands of boxes is one draw:
    a single seed's coverage moves by several points (docs/backtests.md)."""
    if not summaries:
        raise ValueError("pool_seeds needs at least one summary")
    per_seed = []
    for s in summaries:
        buckets = [b["coverage"]["90"] for b in s["by_bucket"].values() if b["n"] >= 40 and b["coverage"]["90"] is not None]
        per_seed.append({
            "seed": s["seed"], "race_checkpoints": s["race_checkpoints"], "coverage_90": s["coverage"]["90"], "width90_points": s["mean_width90_points"],
            "margin_error_points": s["mean_margin_error_points"], "wrong_calls": s["wrong_calls"], "worst_bucket_90": min(buckets) if buckets else None,
            "median_call_pct_expected_margin_gt10": s["median_call_pct_expected_margin_gt10"], "median_call_pct_expected": s["median_call_pct_expected"],
        })  # fmt: skip
    weighted = [(p["coverage_90"], p["race_checkpoints"]) for p in per_seed if p["coverage_90"] is not None]
    n = sum(k for _, k in weighted)
    return {
        "order": summaries[0]["order"],
        "seeds": per_seed,
        "pooled_coverage_90": sum(c * k for c, k in weighted) / n if n else None,
        "race_checkpoints": n,
        "wrong_calls": sum(p["wrong_calls"] for p in per_seed),
    }

