"""Race calls: a mathematical lock, or a statistical call behind guards (methods.md §1.2).

Call if (1), or if (2) and (3) both hold:

1. **Lock**: the leader's counted lead over every other candidate exceeds every
   voter still possible in the units out (registered plus the by-law allowance).
   No model involved.
2. **Statistical**: in every bootstrap draw the leader beats every other
   candidate, the 99.9% interval of the leader's margin over the best other
   candidate excludes zero (also under a normal fit to the draws, because 200
   draws cannot resolve a 0.05% tail on their own), and the weighted-conformal
   interval of the margin (:mod:`.conformal`) excludes zero too.
3. **Guards**: the model is in its normal mode (a real baseline, enough units
   counted); at least ``min_counted`` of the expected vote is counted; every
   group holding ``min_group_share`` of the expected vote has a unit in; each
   size stratum has ``min_stratum_counted`` of its expected vote in; the
   valid votes of units under review (flagged) cannot flip the margin; and the
   projected margin is at least ``min_margin_share`` of the projected valid
   votes. A race closer than that (İstanbul's metropolitan race of 2019: 0.16
   points) is not called by the model on the night, however sure it is: only
   the lock or the complete count calls it, as recount practice does (0.5
   points is the common recount threshold).

Each decision carries the model state that made it, for the call log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sandik.core.projection.conformal import conformal_margin
from sandik.core.projection.frame import RaceFrame, RaceState
from sandik.core.projection.model import CALL_LEVEL, RaceProjection

Z_CALL = 3.2905  # two-sided 99.9% normal quantile


@dataclass(frozen=True)
class CallRule:
    level: float = CALL_LEVEL
    conformal_level: float = 0.90
    min_counted: float = 0.05
    min_group_share: float = 0.05
    min_stratum_counted: float = 0.10
    min_margin_share: float = 0.005
    use_conformal: bool = True
    statistical: bool = True  # False: lock-only (a peer in the backtests)
    # "raw": the draws as the bootstrap made them (what ships). "published": their spread around
    # the point scaled as the published intervals' is (``model.interval_scale_of``), for the
    # study of how early calls could come under another rule (scripts/call_bound.py); the
    # published scale was calibrated at 90%, not at the call's 99.9%.
    spread: str = "raw"

    def __post_init__(self) -> None:
        if self.spread not in ("raw", "published"):
            raise ValueError(f"CallRule.spread must be 'raw' or 'published', not {self.spread!r}")


@dataclass
class CallDecision:
    race_id: str
    candidate: str | None  # the called winner, or None
    kind: str | None  # "lock", "statistical", or None
    pct_expected_counted: float
    reasons: list[str] = field(default_factory=list)  # why called, or what blocked a call
    model: dict[str, Any] = field(default_factory=dict)

    @property
    def called(self) -> bool:
        return self.candidate is not None

    def to_dict(self) -> dict[str, Any]:
        from sandik.core.projection.model import _jsonable

        return {
            "race_id": self.race_id,
            "called": self.called,
            "candidate": self.candidate,
            "kind": self.kind,
            "pct_expected_vote_counted": self.pct_expected_counted,
            "reasons": list(self.reasons),
            "model": _jsonable(self.model),
        }


def _lower_quantile(x: np.ndarray, q: float) -> float:
    """The q-quantile by linear interpolation for a small q, from a partial sort: the same
    arithmetic as ``model._quantiles`` (``np.quantile`` may differ in the last bit)."""
    pos = q * (len(x) - 1)
    lo = int(np.floor(pos))
    part = np.partition(x, (lo, min(lo + 1, len(x) - 1)))
    frac = pos - lo
    return float(part[lo] * (1 - frac) + part[min(lo + 1, len(x) - 1)] * frac)


def lock_winner(counted: np.ndarray, remaining_cap: int) -> int | None:
    """Index of the candidate whose counted lead over every other exceeds every vote still possible."""
    if len(counted) == 0:
        return None
    order = np.argsort(-counted, kind="stable")
    lead = int(order[0])
    second = int(counted[order[1]]) if len(counted) > 1 else 0
    if int(counted[lead]) - second > remaining_cap:
        return lead
    return None


def _frame_totals(frame: RaceFrame) -> tuple[float, np.ndarray, np.ndarray]:
    """Expected vote in all, per group and per size stratum: fixed for the night, so kept on the frame."""
    hit = frame._guard_totals
    if hit is None:
        E = frame.expected
        S = int(frame.stratum.max()) + 1 if frame.n_units else 0
        hit = (float(E.sum()), np.bincount(frame.group, weights=E, minlength=frame.n_groups), np.bincount(frame.stratum, weights=E, minlength=S))
        frame._guard_totals = hit
    return hit


def guards(frame: RaceFrame, state: RaceState, proj: RaceProjection, rule: CallRule) -> list[str]:
    """What blocks a statistical call now (empty: nothing)."""
    blocked: list[str] = []
    if proj.mode != "model":
        blocked.append(f"model in '{proj.mode}' mode")
    if proj.pct_expected_counted < rule.min_counted:
        blocked.append(f"only {100 * proj.pct_expected_counted:.1f}% of expected vote counted (< {100 * rule.min_counted:g}%)")
    E = frame.expected
    tot, gE, sE = _frame_totals(frame)
    if tot > 0:
        g_in = np.bincount(frame.group[state.reported], minlength=frame.n_groups) > 0
        big_missing = np.flatnonzero((gE >= rule.min_group_share * tot) & ~g_in)
        if len(big_missing):
            names = ", ".join(frame.group_ids[i] for i in big_missing[:3])
            blocked.append(f"{len(big_missing)} group(s) with >= {100 * rule.min_group_share:g}% of the expected vote have no unit in ({names})")
        S = len(sE)
        sIn = np.bincount(frame.stratum, weights=np.where(state.reported, E, 0.0), minlength=S)
        low = [s for s in range(S) if sE[s] > 0 and sIn[s] < rule.min_stratum_counted * sE[s]]
        if low:
            blocked.append(f"size strata {low} have < {100 * rule.min_stratum_counted:g}% of their expected vote in")
    if abs(proj.margin_share) < rule.min_margin_share:
        blocked.append(f"projected margin {100 * abs(proj.margin_share):.2f} points (< {100 * rule.min_margin_share:g}): too close to call before the count is complete or locked")
    if state.flagged is not None and state.flagged.any():
        flagged_valid = int(state.valid[state.flagged & state.reported].sum())
        if flagged_valid >= abs(proj.margin):
            blocked.append(f"units under review hold {flagged_valid:,} valid votes, enough to flip the margin")
    return blocked


def decide(frame: RaceFrame, state: RaceState, proj: RaceProjection, rule: CallRule | None = None) -> CallDecision:
    rule = rule or CallRule()
    cid = proj.candidate_ids
    base_model = {
        "mode": proj.mode,
        "units_reported": proj.units_reported,
        "units_total": proj.units_total,
        "counted": proj.counted,
        "projected": proj.votes,
        "remaining_possible_voters": proj.remaining_cap,
        **proj.state,
    }
    if proj.mode == "complete":
        win = lock_winner(proj.counted, 0)
        if win is None:
            return CallDecision(proj.race_id, None, None, 1.0, ["count complete: tie for first"], base_model)
        return CallDecision(proj.race_id, cid[win], "lock", 1.0, ["count complete"], base_model)
    win = lock_winner(proj.counted, proj.remaining_cap)
    if win is not None:
        lead = int(proj.counted[win]) - int(np.sort(proj.counted)[-2] if len(proj.counted) > 1 else 0)
        return CallDecision(proj.race_id, cid[win], "lock", proj.pct_expected_counted, [f"counted lead {lead:,} > {proj.remaining_cap:,} voters still possible"], base_model)
    if not rule.statistical:
        return CallDecision(proj.race_id, None, None, proj.pct_expected_counted, ["lock-only rule"], base_model)
    blocked = guards(frame, state, proj, rule)
    d = proj.draws
    if d is not None and rule.spread == "published":
        s = float(proj.state.get("interval_scale", 1.0))
        d = np.clip(proj.votes + s * (d - proj.votes), proj.bounds[0], proj.bounds[1])
    L = proj.leader
    reasons: list[str] = []
    if d is None or len(cid) < 2:
        blocked.append("no draws")
    else:
        others = np.delete(d, L, axis=1)
        m = d[:, L] - others.max(axis=1)
        lo_q = (1 - rule.level) / 2
        m_lo = float(_lower_quantile(m, lo_q))
        m_norm = float(m.mean() - Z_CALL * m.std())
        base_model.update({"margin_draw_min": float(m.min()), "margin_lower_999": m_lo, "margin_lower_999_normal": m_norm, "p_win": proj.p_win})
        if (m <= 0).any():
            blocked.append(f"leader behind in {(m <= 0).mean():.1%} of draws")
        if m_lo <= 0 or m_norm <= 0:
            blocked.append(f"{100 * rule.level:g}% margin interval includes zero")
        if not blocked and rule.use_conformal:
            cf = conformal_margin(frame, state, proj, level=rule.conformal_level)
            base_model["conformal"] = cf
            if not (cf["lower"] > 0):
                blocked.append(f"weighted conformal {100 * rule.conformal_level:g}% margin interval includes zero ({cf['reason']})")
        reasons.append(f"margin {proj.margin:,.0f} votes, {rule.level:.1%} lower bound {min(m_lo, m_norm):,.0f}")
    if blocked:
        return CallDecision(proj.race_id, None, None, proj.pct_expected_counted, blocked, base_model)
    return CallDecision(proj.race_id, cid[L], "statistical", proj.pct_expected_counted, reasons, base_model)
