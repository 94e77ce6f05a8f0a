"""How early could any call rule built on a point estimate call races, and stay right?

A statistical call of a race at some share of its expected vote rests on the projected
margin clearing the error the projection can have at that share. This module asks the
most generous form of that question of a backtest's rows: an *oracle* rule is told the
actual errors of the same replay (every race, one arrival order) and calls a race at
its first checkpoint whose projected margin exceeds the ``q`` quantile of the absolute
margin errors of all races in the same band of expected vote counted. No real rule
knows those errors in advance, and the call rule of methods.md §1.2 asks for 99.9%,
so where even this oracle calls the races decided by more than 10 points later than a
target share, the target is out of reach of the estimator, not of the guards.

It bounds rules that use one threshold per band for all races; a rule that could tell
in advance which races' projections are off would do better, and the model's own draws
are the attempt at that (docs/backtests.md reports both).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class OracleRow:
    race: str
    cp: int
    pct: float  # the race's own share of expected vote counted
    margin_pt: float  # projected margin of the projected leader over the runner-up (share)
    margin_true: float  # the final margin between the same two (share; negative: the order flips)
    right_leader: bool  # the projected leader is the final winner


def band_of(pct: float, width: float) -> int:
    """Band index of a share counted: (0, w] is 0, (w, 2w] is 1, ...; nothing counted is -1."""
    if pct <= 0:
        return -1
    return int(np.ceil(pct / width - 1e-12)) - 1


def band_thresholds(rows: list[OracleRow], q: float, width: float) -> dict[int, float]:
    """The q quantile of |projected - final margin| per band (the oracle's threshold)."""
    errs: dict[int, list[float]] = defaultdict(list)
    for r in rows:
        b = band_of(r.pct, width)
        if b >= 0 and r.pct < 1.0:
            errs[b].append(abs(r.margin_pt - r.margin_true))
    return {b: float(np.quantile(np.asarray(v), q, method="higher")) for b, v in errs.items()}


def oracle_calls(rows: list[OracleRow], final_margin: dict[str, float], *, q: float, width: float = 0.025, big: float = 0.10) -> dict[str, Any]:
    """First call per race under the oracle rule, the wrong calls it makes, and the median share
    at the first call of races decided by more than ``big`` (an uncalled race counts at 100%)."""
    h = band_thresholds(rows, q, width)
    by_race: dict[str, list[OracleRow]] = defaultdict(list)
    for r in rows:
        by_race[r.race].append(r)
    first: dict[str, float] = {}
    wrong: list[dict[str, Any]] = []
    for race, rs in by_race.items():
        for r in sorted(rs, key=lambda x: x.cp):
            b = band_of(r.pct, width)
            if b < 0 or r.pct >= 1.0 or r.margin_pt <= h[b]:
                continue
            if r.right_leader:
                first[race] = r.pct
            else:
                wrong.append({"race": race, "pct": r.pct, "margin_pt": r.margin_pt, "threshold": h[b]})
            break
    big_races = [race for race, m in final_margin.items() if m > big]
    at = sorted(first.get(race, 1.0) for race in big_races)
    return {
        "q": q,
        "band_width": width,
        "races_big": len(big_races),
        "median_call_big": float(np.median(at)) if at else None,
        "called_big_by_20pct": sum(1 for x in at if x <= 0.20),
        "wrong_calls": len(wrong),
        "wrong": wrong,
        "threshold_points": {f"{100 * b * width:g}-{100 * (b + 1) * width:g}%": round(100 * v, 2) for b, v in sorted(h.items())},
    }
