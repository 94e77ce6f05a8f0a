"""Council seats: D'Hondt with a legal threshold, on counted votes or on projection draws.

The threshold is a function so that any country's rule fits: ``fraction_threshold(0.10)``
is Turkey's municipal-council rule (a list needs 10% of the valid votes), and
any callable ``votes -> eligible mask`` works.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sandik.errors import ModelError

Threshold = Callable[[np.ndarray], np.ndarray]


def fraction_threshold(fraction: float) -> Threshold:
    """Lists with at least ``fraction`` of all votes are eligible."""
    if not 0.0 <= fraction < 1.0:
        raise ModelError(f"threshold fraction must be in [0, 1), got {fraction}")

    def rule(votes: np.ndarray) -> np.ndarray:
        v = np.asarray(votes, dtype=float)
        return v >= fraction * v.sum()

    return rule


def no_threshold(votes: np.ndarray) -> np.ndarray:
    return np.ones(len(votes), dtype=bool)


def dhondt(votes: np.ndarray, seats: int, threshold: Threshold | float | None = None) -> np.ndarray:
    """Seats per list by D'Hondt (highest averages v/1, v/2, ...).

    Ties between equal quotients go to the list with more votes, then to the
    earlier list (deterministic). Lists below the threshold, or with no
    votes, get no seat; if no list is eligible, no seat is given.
    """
    v = np.asarray(votes, dtype=float)
    if seats < 0:
        raise ModelError(f"seats must be non-negative, got {seats}")
    if (v < 0).any():
        raise ModelError("votes must be non-negative")
    rule = fraction_threshold(threshold) if isinstance(threshold, (int, float)) else (threshold or no_threshold)
    ok = np.asarray(rule(v), dtype=bool) & (v > 0)
    out = np.zeros(len(v), dtype=np.int64)
    idx = np.flatnonzero(ok)
    if seats == 0 or len(idx) == 0:
        return out
    div = np.arange(1, seats + 1, dtype=float)
    quot = v[idx, None] / div[None, :]  # (lists, seats)
    lists = np.repeat(idx, seats)
    q = quot.ravel()
    # sort by quotient desc, then list votes desc, then list index asc
    order = np.lexsort((lists, -v[lists], -q))
    winners = lists[order[:seats]]
    np.add.at(out, winners, 1)
    return out


def seat_intervals(draws: np.ndarray, seats: int, threshold: Threshold | float | None = None, levels: tuple[float, ...] = (0.8, 0.9, 0.95, 0.99)) -> dict[str, object]:
    """Seat distribution per list over projection draws (B x lists): median and intervals."""
    alloc = np.stack([dhondt(d, seats, threshold) for d in np.asarray(draws)])
    out: dict[str, object] = {"median": np.median(alloc, axis=0)}
    for lv in levels:
        lo = np.quantile(alloc, (1 - lv) / 2, axis=0, method="lower")
        hi = np.quantile(alloc, 1 - (1 - lv) / 2, axis=0, method="higher")
        out[f"{round(lv * 100, 1):g}"] = (lo, hi)
    out["p_majority"] = (alloc * 2 > seats).mean(axis=0)
    return out
