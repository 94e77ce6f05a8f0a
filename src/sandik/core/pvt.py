"""Parallel vote tabulation (PVT, "quick count") from observer-confirmed boxes (methods.md §3.3).

A stratified random sample of the boxes whose copy an organisation has
confirmed gives a *combined ratio estimate* of each candidate's share of the
valid votes (Estok, Nevitte & Cowan 2002; NDI):

    R_j = Σ_h N_h ȳ_jh / Σ_h N_h x̄_h                 (y = candidate votes, x = valid votes)
    V(R_j) ≈ Σ_h N_h² (1 - f_h) s²_dh / n_h / X̂²     (d_i = y_i - R_j x_i, f_h = n_h / N_h)

with N_h the boxes of stratum h in the race and n_h the sampled ones; the 99%
interval is R_j ± 2.576 √V. An alert is raised when the official running share
falls outside. While counting is under way the running share is itself a
biased estimate (boxes do not arrive at random); the alert says how much has
been counted so that a reader can weigh it.

Pure: arrays in, dicts out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sandik.errors import SandikError

Z99 = 2.5758293035489


class PVTError(SandikError):
    code = "pvt"


def draw_sample(strata: Sequence[str], n: int, seed: int, *, min_per_stratum: int = 2) -> np.ndarray:
    """Indices of a stratified random sample of size ~n from a frame with the given strata labels.

    Allocation is proportional to stratum size, with at least ``min_per_stratum``
    (when the stratum has that many) so every stratum's variance can be estimated.
    """
    if n < 1:
        raise PVTError(f"sample size must be at least 1, got {n}")
    labels = np.asarray(strata)
    if not len(labels):
        raise PVTError("the sampling frame is empty: no observer-confirmed boxes")
    rng = np.random.default_rng(seed)
    uniq, inv = np.unique(labels, return_inverse=True)
    sizes = np.bincount(inv)
    frac = min(1.0, n / len(labels))
    alloc = np.minimum(sizes, np.maximum(np.round(sizes * frac).astype(int), np.minimum(sizes, min_per_stratum)))
    out = []
    for h in range(len(uniq)):
        members = np.flatnonzero(inv == h)
        out.append(rng.choice(members, size=int(alloc[h]), replace=False))
    return np.sort(np.concatenate(out))


@dataclass(frozen=True)
class Estimate:
    candidates: tuple[str, ...]
    share: np.ndarray
    se: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    n_sample: int
    n_strata: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_sample": self.n_sample,
            "n_strata": self.n_strata,
            "level": 0.99,
            "candidates": [
                {"id": c, "share": float(self.share[j]), "se": float(self.se[j]), "lower": float(self.lower[j]), "upper": float(self.upper[j])}
                for j, c in enumerate(self.candidates)
            ],
        }


def ratio_estimate(candidates: Sequence[str], votes: np.ndarray, valid: np.ndarray, strata: Sequence[str], population: dict[str, int]) -> Estimate:
    """Combined ratio estimate of each candidate's share from sampled boxes.

    ``votes`` (n, C) and ``valid`` (n,) of the sampled boxes; ``strata`` their
    stratum; ``population`` stratum -> number of boxes in the race.
    """
    y = np.asarray(votes, dtype=np.float64)
    x = np.asarray(valid, dtype=np.float64)
    if y.ndim != 2 or y.shape[0] != len(x) or y.shape[1] != len(candidates):
        raise PVTError("votes must be (sampled boxes x candidates) and match valid and candidates")
    if not len(x):
        raise PVTError("the sample is empty")
    labels = np.asarray(strata)
    missing = sorted(set(labels.tolist()) - set(population))
    if missing:
        raise PVTError(f"sampled strata missing from the population counts: {missing[:5]}")
    Y = np.zeros(y.shape[1])
    X = 0.0
    groups = []
    for h in np.unique(labels):
        sel = labels == h
        n_h = int(sel.sum())
        N_h = int(population[h])
        if n_h > N_h:
            raise PVTError(f"stratum {h}: {n_h} sampled boxes but only {N_h} in the population")
        Y += N_h * y[sel].mean(axis=0)
        X += N_h * x[sel].mean()
        groups.append((sel, n_h, N_h))
    if X <= 0:
        raise PVTError("the sampled boxes have no valid votes")
    R = Y / X
    var = np.zeros_like(R)
    for sel, n_h, N_h in groups:
        if n_h < 2:
            continue  # a stratum of one box adds no variance estimate; draw_sample avoids it
        d = y[sel] - R[None, :] * x[sel][:, None]
        s2 = d.var(axis=0, ddof=1)
        var += N_h**2 * (1 - n_h / N_h) * s2 / n_h
    se = np.sqrt(var) / X
    return Estimate(tuple(candidates), R, se, np.clip(R - Z99 * se, 0, 1), np.clip(R + Z99 * se, 0, 1), len(x), len(groups))


def check(estimate: Estimate, official_shares: dict[str, float], *, counted_share: float | None = None) -> dict[str, Any]:
    """Compare the official running shares with the PVT intervals; alert on any outside."""
    rows = []
    for j, c in enumerate(estimate.candidates):
        off = official_shares.get(c)
        outside = off is not None and not (estimate.lower[j] <= off <= estimate.upper[j])
        rows.append({"id": c, "official": off, "lower": float(estimate.lower[j]), "upper": float(estimate.upper[j]), "pvt": float(estimate.share[j]), "outside": bool(outside)})
    alerts = [r for r in rows if r["outside"]]
    counted = "" if counted_share is None else f" with {100 * counted_share:.1f}% of registered voters' boxes counted"
    text = (
        f"ALERT: the official result{counted} falls outside the 99% PVT interval for {', '.join(r['id'] for r in alerts)}"
        if alerts
        else f"the official result{counted} lies inside the 99% PVT interval for every candidate"
    )
    return {"alert": bool(alerts), "candidates": rows, "counted_share": counted_share, "wording": text, "estimate": estimate.to_dict()}
