"""Whole-election tests (methods.md §2.1, "whole election"): fingerprint, integer percentages, last digits.

* :func:`fingerprint` - the turnout x winner-share 2-D histogram of Klimek et
  al. (2012): ballot stuffing smears boxes towards (100%, 100%). The winner is
  each race's overall leader; data for a picture plus a few summary figures.
* :func:`integer_test` - Kobak, Shpilkin & Pshenichnikov (2016): excess boxes
  whose turnout or leader share lies within ±0.05 pp of a whole percentage,
  against a Monte-Carlo null (each box redrawn as Binomial(n_i, p̂_i), 1,000 x;
  boxes with >= 100 voters and shares <= 99%); significant above the null's
  99.9th percentile.
* :func:`last_digit_test` - Beber & Scacco (2012) χ² of the last digits of
  counts >= 10, per top-level area with Bonferroni correction. Weak evidence
  only: honest counts fail it too often to accuse anyone.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from sandik.core.forensics.boxchecks import METHOD_VERSION
from sandik.core.forensics.table import SheetTable


def _leader_share(tab: SheetTable) -> tuple[np.ndarray, np.ndarray]:
    """(leader votes, valid votes) per row, the leader being the race's overall winner."""
    lead = np.argmax(tab.race_totals, axis=1)[tab.race]
    v = tab.votes[np.arange(len(tab)), lead]
    return v, tab.col("valid")


def fingerprint(tab: SheetTable, *, bins: int = 100) -> dict[str, Any]:
    K = tab.col("registered")
    l3 = tab.col("total_voters")
    lv, valid = _leader_share(tab)
    ok = (K > 0) & (valid > 0)
    turnout = np.clip(l3[ok] / K[ok], 0, 1)
    share = np.clip(lv[ok] / valid[ok], 0, 1)
    h, _, _ = np.histogram2d(turnout, share, bins=bins, range=[[0, 1], [0, 1]])
    hv, _, _ = np.histogram2d(turnout, share, bins=bins, range=[[0, 1], [0, 1]], weights=valid[ok])
    corner = (turnout >= 0.95) & (share >= 0.95)
    corr = float(np.corrcoef(turnout, share)[0, 1]) if len(turnout) > 2 else float("nan")
    return {
        "method_version": METHOD_VERSION,
        "bins": bins,
        "x": "turnout (total voters / registered)",
        "y": "share of the race winner (of valid votes)",
        "counts": h.astype(int).tolist(),  # counts[i][j]: turnout bin i, share bin j
        "valid_weighted": np.round(hv).astype(int).tolist(),
        "boxes": int(ok.sum()),
        "corner_boxes": int(corner.sum()),
        "corner_share": float(corner.mean()) if len(corner) else 0.0,
        "turnout_share_correlation": corr,
        "note": "A smear towards the top-right corner (100% turnout, 100% for the winner) is what ballot stuffing leaves; heterogeneous regions can draw it too.",
    }


def _integer_hits(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    pct = 100.0 * num / den
    return np.abs(pct - np.round(pct)) <= 0.05


def _hit_probability(n: np.ndarray, p: np.ndarray, *, block: int = 20000) -> np.ndarray:
    """P(Binomial(n_i, p_i) / n_i lies within ±0.05 pp of a whole percentage), per box.

    Summed over the counts within 8 standard deviations of the mean (the rest
    carries < 1e-14 of the mass).
    """
    out = np.zeros(len(n))
    sd = np.sqrt(n * p * (1 - p))
    for s in range(0, len(n), block):
        nn, pp, ss = n[s : s + block], p[s : s + block], sd[s : s + block]
        lo = np.maximum(np.floor(nn * pp - 8 * ss - 1), 0)
        width = int(np.ceil(16 * ss.max() + 3)) if len(ss) else 0
        x = lo[:, None] + np.arange(width)[None, :]
        x = np.minimum(x, nn[:, None])
        first = np.concatenate([np.ones((len(nn), 1), bool), np.diff(x, axis=1) > 0], axis=1)  # clipped repeats count once
        pmf = stats.binom.pmf(x, nn[:, None], pp[:, None]) * first
        out[s : s + block] = (pmf * _integer_hits(x, nn[:, None])).sum(axis=1)
    return out


def integer_test(tab: SheetTable, *, draws: int = 1000, seed: int = 0, min_voters: int = 100, chunk: int = 50) -> dict[str, Any]:
    """Kobak's integer-percentage test with a Monte-Carlo null.

    Redrawing every box as Binomial(n_i, p̂_i) and counting hits is the same, in
    distribution, as drawing one Bernoulli(P_i) per box where P_i is the exact
    probability that the redrawn box hits; the latter is computed once per box
    from the binomial pmf, so the 1,000 draws cost one uniform number per box each.
    """
    rng = np.random.default_rng(seed)
    K = tab.col("registered")
    l3 = tab.col("total_voters")
    lv, valid = _leader_share(tab)
    out: dict[str, Any] = {"method_version": METHOD_VERSION, "draws": draws, "tests": {}}
    # Turnout belongs to the box, not the sheet: a box voting in several races counts once.
    first = np.zeros(len(tab), dtype=bool)
    first[np.unique(tab.box, return_index=True)[1]] = True
    for name, num, den, rows in (("turnout", l3, K, first), ("leader_share", lv, valid, np.ones(len(tab), dtype=bool))):
        ok = rows & (den >= min_voters) & (num <= 0.99 * den) & (num >= 0)
        n_i = den[ok].astype(np.float64)
        p_i = num[ok] / n_i
        observed = int(_integer_hits(num[ok], n_i).sum())
        P = _hit_probability(n_i, p_i)
        null = np.empty(draws, dtype=np.int64)
        for s in range(0, draws, chunk):
            m = min(chunk, draws - s)
            null[s : s + m] = (rng.random((m, len(P))) < P[None, :]).sum(axis=1)
        q999 = float(np.quantile(null, 0.999)) if draws else float("nan")
        out["tests"][name] = {
            "boxes": int(ok.sum()),
            "observed": observed,
            "expected": float(P.sum()),
            "null_mean": float(null.mean()) if draws else float("nan"),
            "null_q999": q999,
            "p_value": float((np.sum(null >= observed) + 1) / (draws + 1)),
            "significant": bool(observed > q999),
        }
    return out


def last_digit_test(tab: SheetTable, *, min_count: int = 10, alpha: float = 0.01) -> dict[str, Any]:
    """χ² of last digits of candidate counts >= min_count, nationally and per top-level area (Bonferroni)."""
    e = tab.election
    v = tab.votes
    sel = tab.mask & (v >= min_count)
    digits = (v % 10)[sel]
    rows = np.nonzero(sel)[0]
    # The top-level area under the root ("tr.34" for "tr.34.kadikoy...").
    root = e.root_id
    top_of_area: dict[int, str] = {}
    area_ids = tab.area_ids
    for i, a in enumerate(area_ids):
        rest = a[len(root) + 1 :] if a.startswith(root + ".") else a
        top_of_area[i] = f"{root}.{rest.split('.')[0]}" if rest else root
    tops = np.array([top_of_area[int(a)] for a in tab.area[rows]]) if len(rows) else np.array([], dtype=str)

    def chi(d: np.ndarray) -> dict[str, Any]:
        obs = np.bincount(d, minlength=10)
        if obs.sum() == 0:
            return {"counts": obs.tolist(), "n": 0, "chi2": float("nan"), "p_value": float("nan")}
        c2, p = stats.chisquare(obs)
        return {"counts": obs.tolist(), "n": int(obs.sum()), "chi2": float(c2), "p_value": float(p)}

    areas = {}
    names = np.unique(tops) if len(tops) else []
    for a in names:
        areas[str(a)] = chi(digits[tops == a])
    k = max(len(areas), 1)
    for r in areas.values():
        r["significant_bonferroni"] = bool(np.isfinite(r["p_value"]) and r["p_value"] < alpha / k)
    return {
        "method_version": METHOD_VERSION,
        "min_count": min_count,
        "alpha": alpha,
        "national": chi(digits),
        "areas": areas,
        "areas_significant": sorted(a for a, r in areas.items() if r["significant_bonferroni"]),
        "note": "Weak evidence only: last-digit tests flag honest counts too often to accuse anyone (Deckert, Myagkov & Ordeshook 2011).",
    }


def fingerprint_svg(fp: dict[str, Any], *, size: int = 400, title: str = "") -> str:
    """The fingerprint as a self-contained SVG (log colour scale), for docs and the website."""
    h = np.asarray(fp["counts"], dtype=float)
    bins = h.shape[0]
    cell = size / bins
    pad = 50
    mx = np.log1p(h.max()) if h.max() > 0 else 1.0
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size + pad + 20}" height="{size + pad + 30}" viewBox="0 0 {size + pad + 20} {size + pad + 30}" font-family="sans-serif" font-size="11">',
        f'<rect x="{pad}" y="20" width="{size}" height="{size}" fill="#ffffff" stroke="#888"/>',
    ]
    if title:
        parts.append(f'<text x="{pad}" y="14" font-size="12">{_esc(title)}</text>')
    ii, jj = np.nonzero(h)
    for i, j in zip(ii.tolist(), jj.tolist()):
        t = np.log1p(h[i, j]) / mx
        r, g, b = _ramp(t)
        x = pad + i * cell
        y = 20 + size - (j + 1) * cell
        parts.append(f'<rect x="{x:.2f}" y="{y:.2f}" width="{cell + 0.05:.2f}" height="{cell + 0.05:.2f}" fill="#{r:02x}{g:02x}{b:02x}"/>')
    for k in range(0, 101, 20):
        x = pad + size * k / 100
        y = 20 + size - size * k / 100
        parts.append(f'<text x="{x:.1f}" y="{size + 36}" text-anchor="middle">{k}%</text>')
        parts.append(f'<text x="{pad - 4}" y="{y + 4:.1f}" text-anchor="end">{k}%</text>')
    parts.append(f'<text x="{pad + size / 2}" y="{size + 52}" text-anchor="middle">turnout</text>')
    parts.append(f'<text x="12" y="{20 + size / 2}" text-anchor="middle" transform="rotate(-90 12 {20 + size / 2})">winner share</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _ramp(t: float) -> tuple[int, int, int]:
    # light yellow -> orange -> dark red -> black: readable on white, monotone in lightness
    stops = [(255, 247, 188), (254, 196, 79), (217, 95, 14), (127, 0, 0), (20, 0, 0)]
    t = min(max(t, 0.0), 1.0) * (len(stops) - 1)
    k = min(int(t), len(stops) - 2)
    f = t - k
    a, b = stops[k], stops[k + 1]
    return tuple(int(round(a[c] + (b[c] - a[c]) * f)) for c in range(3))  # type: ignore[return-value]


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
