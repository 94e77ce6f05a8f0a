"""Detection and false-flag rates of the per-box checks on real sheets with injected manipulations.

For each (kind, mode, rate): inject into a copy of the real table, run the
checks, and count, per signal and per tier,

* detection: injected rows that the signal (tier) flags, over injected rows;
  also over the *material* injected rows, those that moved the race margin by
  at least ``material`` of the box's valid votes (a swap of two near-equal
  counts changes nothing that matters and cannot be seen);
* false flags: untouched rows that the signal (tier) flags, over untouched rows.

The untouched real election is itself run once; its rates are the baseline.
Real sheets that break a tally rule are real errors, not false flags; the
baseline reports them apart, and every run gives the false-flag rate twice:
over all untouched rows, and over the untouched rows whose sheet obeys every
tally rule in the file (``false_flag_rule_abiding``: what the statistical
signals alone cost).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from sandik.core.forensics.boxchecks import TIER_RANK, BoxChecks, Thresholds, run_checks
from sandik.core.forensics.inject import inject
from sandik.core.forensics.table import SheetTable

DEFAULT_SCENARIOS: tuple[tuple[str, str], ...] = (
    ("stuffing", "-"),
    ("swap", "-"),
    ("swap_adjacent", "-"),
    ("shift", "-"),
    ("magnitude", "raw"),
    ("magnitude", "balanced"),
    ("digit", "raw"),
    ("digit", "balanced"),
)


def breaks_rule(checks: BoxChecks) -> np.ndarray:
    """Per row: the sheet breaks some tally rule (E1-E8)."""
    out = np.zeros(len(checks.table), dtype=bool)
    for m in checks.arithmetic.values():
        out |= m
    return out


def baseline(checks: BoxChecks) -> dict[str, Any]:
    masks = checks.signal_masks()
    rank = checks.tier_rank()
    n = len(rank)
    arith = breaks_rule(checks)
    return {
        "rows": n,
        "per_signal": {k: {"flagged": int(m.sum()), "rate": float(m.mean()) if n else 0.0} for k, m in masks.items()},
        "per_tier": {t: {"flagged": int((rank <= r).sum()), "rate": float((rank <= r).mean()) if n else 0.0} for t, r in TIER_RANK.items()},
        "arithmetic_errors": int(arith.sum()),
        "high_tier_without_arithmetic": {"flagged": int(((rank == 0) & ~arith).sum()), "rate": float(((rank == 0) & ~arith).mean()) if n else 0.0},
    }


def evaluate(tab: SheetTable, *, rates: tuple[float, ...] = (0.001, 0.01, 0.05), scenarios: tuple[tuple[str, str], ...] = DEFAULT_SCENARIOS, seed: int = 1, material: float = 0.10, thresholds: Thresholds | None = None) -> dict[str, Any]:
    t0 = time.perf_counter()
    base = run_checks(tab, thresholds)
    arith = breaks_rule(base)
    out: dict[str, Any] = {"baseline": baseline(base), "baseline_seconds": time.perf_counter() - t0, "runs": []}
    for kind, mode in scenarios:
        for rate in rates:
            bad, inj = inject(tab, kind, rate, seed, mode=mode if mode != "-" else "raw")
            ch = run_checks(bad, thresholds)
            masks = ch.signal_masks()
            rank = ch.tier_rank()
            touched = np.zeros(len(tab), dtype=bool)
            touched[inj.rows] = True
            valid = tab.col("valid")[inj.rows]
            mat = np.abs(inj.delta_margin) >= material * np.maximum(valid, 1)
            run: dict[str, Any] = {
                "kind": kind, "mode": mode, "rate": rate, "injected": int(len(inj.rows)), "material": int(mat.sum()),
                "per_signal": {}, "per_tier": {},
            }  # fmt: skip
            for name, m in masks.items():
                det = m[inj.rows]
                run["per_signal"][name] = {
                    "detected": float(det.mean()) if len(det) else 0.0,
                    "detected_material": float(det[mat].mean()) if mat.any() else float("nan"),
                    "false_flag": float(m[~touched].mean()),
                }
            for tier, r in TIER_RANK.items():
                det = rank[inj.rows] <= r
                run["per_tier"][tier] = {
                    "detected": float(det.mean()) if len(det) else 0.0,
                    "detected_material": float(det[mat].mean()) if mat.any() else float("nan"),
                    "false_flag": float((rank[~touched] <= r).mean()),
                    "false_flag_rule_abiding": float((rank[~touched & ~arith] <= r).mean()),
                }
            out["runs"].append(run)
    return out
