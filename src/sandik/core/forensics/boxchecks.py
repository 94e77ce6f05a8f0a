"""Per-box forensic checks (methods.md §2.1), vectorised over every sheet of an election.

Each check is a *signal*; a box with any signal gets a *flag* that lists the
signals, their values and thresholds, the method version, a tier and the
box's possible effect on the race margin. A flag is a reason to look at a
sheet again, never a finding of fraud.

Signals (tier in brackets; thresholds in :class:`Thresholds`; docs/forensics.md has the table):

* ``arithmetic:E1..E8`` [high] the tally rules of ``core/validation.py``, column-wise.
* ``zero_major`` [high] a candidate at 0 where the reference gives them >= 20%, the box
  would expect >= 10 votes and z <= -6 (the 2019 "CHP oyları sıfır" rows).
* ``swapped_candidates`` [high if the pair's |z| >= 8, else medium] swapping two of the
  race's top four candidates, or two adjacent columns of the sheet, removes >= 90% of the
  box's deviance from its reference, and some |z| >= 4.
* ``shifted_columns`` [high if the deviance >= 100, else medium (>= 25)] moving every count
  from some column on by one position (either way, the end wrapping round) removes >= 90%
  of the deviance.
* ``magnitude`` [high if |z| >= 8, else medium (>= 4.5)] a count is 6-16x or 1/16-1/6 of
  what the reference predicts (>= 20 expected votes).
* ``sibling_z`` [medium at |z| >= 4.5, low at >= 4] share of a candidate against the
  pooled share of the other boxes of the same neighbourhood (leave-one-out), z = (p - p̄) /
  sqrt(φ p̄(1-p̄)(1/n + 1/n_sib)). Boxes without siblings of >= 50 valid votes are compared
  with the rest of their race instead ("race" level). φ (overdispersion) is estimated per
  race, level and candidate column as median(z0²) / 0.4549 (the median of a χ²₁), floored
  at 1; only candidates expecting >= 5 votes are tested.
* ``extreme_corner`` [medium] turnout >= 98% and the box winner's share >= 90%.
* ``turnout_and_leader`` [medium] robust turnout z >= 3 within the race and the race
  leader's sibling z >= 3: the pattern ballot stuffing leaves.
* ``cross_race`` [medium] total voters (3) differ from the median of the same box's sheets
  by >= 2% or >= 15 (W5's rule).
* ``robust_turnout``, ``robust_invalid``, ``robust_by_law`` [low] within-race
  (district/belde) double-MAD robust z >= 3.5 (high side; turnout both sides).
* ``equal_counts`` [low] two candidates with the same count >= 20.

The effect on the margin is the box's contribution to (leader - runner-up) of
its race minus what its siblings' shares predict for the same valid votes (for
a turnout outlier: for the turnout of its race's median box).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any

import numpy as np

from sandik.core.forensics.groups import dense, double_mad_z, group_median, group_sum
from sandik.core.forensics.table import HEADER, SheetTable

METHOD_VERSION = "sandik-forensics/1.0"
NOT_AN_ACCUSATION = (
    "A flag says that this sheet is unusual enough to be looked at again (the photo, the copy "
    "of the observers, the count). It is not an accusation: honest boxes can be unusual, and "
    "most flags have an innocent explanation."
)
TIERS = ("high", "medium", "low")
TIER_RANK = {t: i for i, t in enumerate(TIERS)}
CHI1_MEDIAN = 0.454936  # median of a chi-square with 1 degree of freedom


@dataclass(frozen=True)
class Thresholds:
    sibling_z_medium: float = 4.5
    sibling_z_low: float = 4.0
    min_sibling_valid: int = 50
    min_expected: float = 5.0
    min_valid: int = 20  # boxes with fewer valid votes are not share-tested
    zero_major_share: float = 0.20
    zero_major_expected: float = 10.0
    zero_major_min_z: float = 6.0
    swap_reduction: float = 0.90
    swap_min_z: float = 4.0
    swap_top: int = 4
    swap_high_z: float = 8.0  # below it a swap signature is a medium-tier signal
    shift_reduction: float = 0.90
    shift_min_deviance: float = 25.0
    shift_high_deviance: float = 100.0
    magnitude_lo: float = 6.0
    magnitude_hi: float = 16.0
    magnitude_min_z: float = 4.5
    magnitude_min_expected: float = 20.0
    magnitude_high_z: float = 8.0
    extreme_turnout: float = 0.98
    extreme_share: float = 0.90
    extreme_min_valid: int = 50
    mad_z: float = 3.5
    stuffing_turnout_z: float = 3.0  # robust turnout z and the leader's sibling z both at least this
    stuffing_leader_z: float = 3.0
    mad_min_group: int = 5
    cross_race_abs: int = 15
    cross_race_rel: float = 0.02
    equal_min: int = 20

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Signal:
    name: str
    tier: str
    value: float
    threshold: float
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "tier": self.tier, "value": _num(self.value), "threshold": _num(self.threshold), "detail": self.detail}


@dataclass(frozen=True)
class Flag:
    row: int
    box_id: str
    race_id: str
    tier: str
    signals: tuple[Signal, ...]
    effect_on_margin: int  # votes; + = the box helps the race leader more than its siblings predict
    method_version: str = METHOD_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {
            "box_id": self.box_id,
            "race_id": self.race_id,
            "tier": self.tier,
            "signals": [s.to_dict() for s in self.signals],
            "signal_names": [s.name for s in self.signals],
            "effect_on_margin": self.effect_on_margin,
            "method_version": self.method_version,
            "note": NOT_AN_ACCUSATION,
        }


def _num(v: float) -> float | int:
    if isinstance(v, (int, np.integer)):
        return int(v)
    f = float(v)
    return round(f, 4) if np.isfinite(f) else f


@dataclass(eq=False)
class BoxChecks:
    """The raw outcome of every check, column-wise (one entry per table row)."""

    table: SheetTable
    thresholds: Thresholds
    arithmetic: dict[str, np.ndarray]  # rule -> bool
    ref: np.ndarray  # (n, C) reference share of each candidate (siblings or race, leave-one-out)
    level: np.ndarray  # 0 = siblings, 1 = race, -1 = not tested
    phi: np.ndarray  # (n, C) overdispersion used for each cell
    z: np.ndarray  # (n, C) sibling z, NaN where not tested
    tested: np.ndarray  # (n, C) bool: |z| counts for the sibling_z signal
    zero_major: np.ndarray  # column index or -1
    swap_pair: np.ndarray  # (n, 2) column indices or -1
    swap_reduction: np.ndarray
    shift_from: np.ndarray  # column index or -1
    shift_dir: np.ndarray  # +1 counts moved right, -1 left, 0 none
    shift_reduction: np.ndarray
    deviance: np.ndarray
    swap_z: np.ndarray  # largest |z| over the swapped pair's columns
    magnitude: np.ndarray  # column index or -1
    magnitude_ratio: np.ndarray
    extreme: np.ndarray
    cross_race: np.ndarray
    cross_race_median: np.ndarray
    mad: dict[str, np.ndarray]  # "turnout" / "invalid" / "by_law" -> robust z
    equal_counts: np.ndarray
    stuffing: np.ndarray  # high turnout for the race and the leader above the siblings' share
    effect: np.ndarray  # float votes
    leader_col: np.ndarray  # per race
    runner_col: np.ndarray  # per race

    @cached_property
    def max_abs_z(self) -> np.ndarray:
        a = np.where(self.tested, np.abs(np.nan_to_num(self.z)), 0.0)
        return a.max(axis=1) if a.shape[1] else np.zeros(len(a))

    # --- signals per row ---------------------------------------------------------
    @cached_property
    def _masks(self) -> dict[str, np.ndarray]:
        return self._signal_masks()

    def signal_masks(self) -> dict[str, np.ndarray]:
        """Signal name -> bool per row (for evaluation and counts)."""
        return dict(self._masks)

    def _signal_masks(self) -> dict[str, np.ndarray]:
        t = self.thresholds
        mz = self.max_abs_z
        out: dict[str, np.ndarray] = {f"arithmetic:{r}": m for r, m in self.arithmetic.items()}
        out["zero_major"] = self.zero_major >= 0
        out["swapped_candidates"] = self.swap_pair[:, 0] >= 0
        out["shifted_columns"] = self.shift_from >= 0
        out["magnitude"] = self.magnitude >= 0
        out["sibling_z"] = mz >= t.sibling_z_low
        out["extreme_corner"] = self.extreme
        out["turnout_and_leader"] = self.stuffing
        out["cross_race"] = self.cross_race
        out["robust_turnout"] = np.abs(np.nan_to_num(self.mad["turnout"])) >= t.mad_z
        out["robust_invalid"] = np.nan_to_num(self.mad["invalid"]) >= t.mad_z
        out["robust_by_law"] = np.nan_to_num(self.mad["by_law"]) >= t.mad_z
        out["equal_counts"] = self.equal_counts
        return out

    def tier_rank(self) -> np.ndarray:
        """Per row: 0 high, 1 medium, 2 low, 3 no flag."""
        return self._rank

    @cached_property
    def _rank(self) -> np.ndarray:
        t = self.thresholds
        m = self._masks
        rank = np.full(len(self.table), 3, dtype=np.int8)
        low = m["robust_turnout"] | m["robust_invalid"] | m["robust_by_law"] | m["equal_counts"] | m["sibling_z"]
        medium = (self.max_abs_z >= t.sibling_z_medium) | m["extreme_corner"] | m["cross_race"] | m["turnout_and_leader"]
        strong = self._strong
        medium = medium | m["swapped_candidates"] | m["shifted_columns"] | m["magnitude"]
        high = m["zero_major"] | strong["swapped_candidates"] | strong["shifted_columns"] | strong["magnitude"]
        for r, a in self.arithmetic.items():
            high = high | a
        rank[low] = 2
        rank[medium] = 1
        rank[high] = 0
        return rank

    @cached_property
    def _strong(self) -> dict[str, np.ndarray]:
        """Entry-error signatures strong enough for the high tier."""
        t = self.thresholds
        m = self._masks
        zmag = np.abs(np.nan_to_num(np.take_along_axis(self.z, np.maximum(self.magnitude, 0)[:, None], 1)[:, 0]))
        return {
            "swapped_candidates": m["swapped_candidates"] & (self.swap_z >= t.swap_high_z),
            "shifted_columns": m["shifted_columns"] & (self.deviance >= t.shift_high_deviance),
            "magnitude": m["magnitude"] & (zmag >= t.magnitude_high_z),
        }

    def flags(self, *, min_tier: str = "low") -> list[Flag]:
        """Every flag at ``min_tier`` or above, ranked by |effect on the margin| (largest first)."""
        rank = self.tier_rank()
        rows = np.flatnonzero(rank <= TIER_RANK[min_tier])
        rows = rows[np.argsort(-np.abs(self.effect[rows]), kind="stable")]
        return [self.flag(int(i), int(rank[i])) for i in rows]

    def flag(self, i: int, rank: int | None = None) -> Flag:
        tab, t = self.table, self.thresholds
        if rank is None:
            rank = int(self.tier_rank()[i])
        cands = tab.candidate_ids(i)
        sig: list[Signal] = []
        for rule, m in self.arithmetic.items():
            if m[i]:
                sig.append(Signal(f"arithmetic:{rule}", "high", 1, 0, _RULE_TEXT[rule]))
        if self.zero_major[i] >= 0:
            j = int(self.zero_major[i])
            sig.append(Signal("zero_major", "high", float(self.ref[i, j]), t.zero_major_share, f"{cands[j]} has 0 votes; comparable boxes give {100 * self.ref[i, j]:.1f}%"))
        if self.swap_pair[i, 0] >= 0:
            a, b = (int(x) for x in self.swap_pair[i])
            sig.append(Signal("swapped_candidates", "high" if self._strong["swapped_candidates"][i] else "medium", float(self.swap_reduction[i]), t.swap_reduction, f"swapping {cands[a]} ({tab.votes[i, a]}) and {cands[b]} ({tab.votes[i, b]}) removes {100 * self.swap_reduction[i]:.0f}% of the deviation from comparable boxes"))
        if self.shift_from[i] >= 0:
            k = int(self.shift_from[i])
            d = "right" if self.shift_dir[i] > 0 else "left"
            sig.append(Signal("shifted_columns", "high" if self._strong["shifted_columns"][i] else "medium", float(self.shift_reduction[i]), t.shift_reduction, f"the counts from {cands[k]} on look shifted one column to the {d} (removes {100 * self.shift_reduction[i]:.0f}% of the deviation)"))
        if self.magnitude[i] >= 0:
            j = int(self.magnitude[i])
            sig.append(Signal("magnitude", "high" if self._strong["magnitude"][i] else "medium", float(self.magnitude_ratio[i]), t.magnitude_lo, f"{cands[j]}: {tab.votes[i, j]} votes, {self.magnitude_ratio[i]:.1f}x (or 1/x) what comparable boxes predict"))
        mz = self.max_abs_z[i]
        if mz >= t.sibling_z_low:
            zi = np.where(self.tested[i], np.abs(np.nan_to_num(self.z[i])), 0)
            j = int(zi.argmax())
            where = "neighbourhood" if self.level[i] == 0 else "race"
            tier = "medium" if mz >= t.sibling_z_medium else "low"
            p = tab.votes[i, j] / max(tab.col("valid")[i], 1)
            sig.append(Signal("sibling_z", tier, float(self.z[i, j]), t.sibling_z_medium if tier == "medium" else t.sibling_z_low, f"{cands[j]}: {100 * p:.1f}% here vs {100 * self.ref[i, j]:.1f}% in the rest of the {where} (φ = {self.phi[i, j]:.2f})"))
        if self.extreme[i]:
            row = tab.header[i : i + 1]
            K, l3 = row[0, HEADER.index("registered")], row[0, HEADER.index("total_voters")]
            ws = tab.votes[i].max() / max(int(tab.col("valid")[i]), 1)
            sig.append(Signal("extreme_corner", "medium", l3 / max(K, 1), t.extreme_turnout, f"turnout {100 * l3 / max(K, 1):.1f}% and the box winner has {100 * ws:.1f}%"))
        if self.stuffing[i]:
            j = int(self.leader_col[tab.race[i]])
            sig.append(Signal("turnout_and_leader", "medium", float(self.mad["turnout"][i]), t.stuffing_turnout_z, f"turnout unusually high for the race (robust z {self.mad['turnout'][i]:.1f}) and {cands[j]} above comparable boxes (z {self.z[i, j]:.1f}): the pattern ballot stuffing leaves"))
        if self.cross_race[i]:
            sig.append(Signal("cross_race", "medium", float(tab.col("total_voters")[i]), float(self.cross_race_median[i]), f"total voters (3) = {tab.col('total_voters')[i]} here, {self.cross_race_median[i]:.0f} on the box's other sheets (median)"))
        for key, name, label in (("turnout", "robust_turnout", "turnout"), ("invalid", "robust_invalid", "invalid-vote rate"), ("by_law", "robust_by_law", "share of voters by law")):
            z = self.mad[key][i]
            if np.isfinite(z) and (z >= t.mad_z or (key == "turnout" and z <= -t.mad_z)):
                sig.append(Signal(name, "low", float(z), t.mad_z, f"{label}: robust z = {z:.1f} within the race (double MAD)"))
        if self.equal_counts[i]:
            sig.append(Signal("equal_counts", "low", 1, t.equal_min, "two candidates have the same count"))
        return Flag(i, tab.box_id(i), tab.race_id(i), TIERS[min(rank, 2)], tuple(sig), int(round(float(self.effect[i]))))


_RULE_TEXT = {
    "E1": "a count is negative",
    "E2": "listed voters who voted (1) exceed registered voters (K)",
    "E3": "total voters (3) differ from (1) + (2)",
    "E5": "valid votes (9) differ from unchallenged (7) + challenged (8)",
    "E6": "the candidates' votes do not add up to the valid votes (9)",
    "E7": "ballots used differ from valid + invalid",
    "E8": "ballots used > total voters (3), or (3) > registered + voters by law",
}


def _turnout(tab: SheetTable) -> np.ndarray:
    K = tab.col("registered").astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(K > 0, tab.col("total_voters") / np.maximum(K, 1), np.nan)


def _winner_share(tab: SheetTable) -> np.ndarray:
    v = tab.col("valid").astype(float)
    w = tab.votes.max(axis=1) if tab.votes.shape[1] else np.zeros(len(tab))
    return np.where(v > 0, w / np.maximum(v, 1), np.nan)


def arithmetic(tab: SheetTable) -> dict[str, np.ndarray]:
    """The hard rules E1-E8 of core/validation.py, column-wise (E4 needs the optional envelope fields, absent here)."""
    K, l1, l2, l3 = (tab.col(c) for c in ("registered", "voted_listed", "voted_by_law", "total_voters"))
    used, v7, v8, v9, inv = (tab.col(c) for c in ("ballots_used", "valid_unchallenged", "valid_challenged", "valid", "invalid"))
    neg = (tab.header < 0).any(axis=1) | (tab.votes < 0).any(axis=1)
    sums = tab.votes.sum(axis=1)
    return {
        "E1": neg,
        "E2": ~neg & (l1 > K),
        "E3": ~neg & (l3 != l1 + l2),
        "E5": ~neg & (v9 != v7 + v8),
        "E6": ~neg & (sums != v9),
        "E7": ~neg & (used != v9 + inv),
        "E8": ~neg & ~((used <= l3) & (l3 <= K + l2)),
    }


def run_checks(tab: SheetTable, thresholds: Thresholds | None = None) -> BoxChecks:
    """Run every per-box check over the table."""
    t = thresholds or Thresholds()
    n, C = tab.votes.shape
    votes = tab.votes.astype(np.float64)
    mask = tab.mask
    valid = tab.col("valid").astype(np.float64)
    # Share denominators: the valid votes as written, unless the candidates' votes disagree with them (E6).
    nv = np.where(votes.sum(axis=1) > 0, votes.sum(axis=1), valid)
    race = tab.race.astype(np.int64)
    n_races = len(tab.race_ids)

    # --- reference shares: siblings (same race, same area), else the rest of the race ---
    g, ng = dense(race, tab.area)
    gv = group_sum(g, votes, ng)
    gn = group_sum(g, nv, ng)
    gc = np.bincount(g, minlength=ng)
    sib_n = gn[g] - nv
    sib_v = gv[g] - votes
    rv = group_sum(race, votes, n_races)
    rn = group_sum(race, nv, n_races)
    race_n = rn[race] - nv
    race_v = rv[race] - votes
    has_sib = (gc[g] >= 2) & (sib_n >= t.min_sibling_valid)
    has_race = race_n >= t.min_sibling_valid
    ref_n = np.where(has_sib, sib_n, np.where(has_race, race_n, np.nan))
    with np.errstate(divide="ignore", invalid="ignore"):
        ref = np.where(has_sib[:, None], sib_v / sib_n[:, None], race_v / race_n[:, None])
        p = votes / nv[:, None]
    level = np.where(has_sib, 0, np.where(has_race, 1, -1))
    usable = (level >= 0) & (nv >= t.min_valid)
    ref = np.where(mask & usable[:, None], ref, np.nan)
    # A binomial variance floor of "two expected votes" keeps tiny shares from producing huge z.
    nn = nv[:, None]
    pq = np.maximum(ref * (1 - ref), 2.0 / np.maximum(nn, 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        var0 = pq * (1.0 / nn + 1.0 / ref_n[:, None])
        z0 = (p - ref) / np.sqrt(var0)
    expected = ref * nn
    tested = mask & usable[:, None] & (expected >= t.min_expected) & (ref * ref_n[:, None] >= t.min_expected)

    # --- overdispersion φ per (race, level), robust ---
    lvl_key = np.where(level >= 0, level, 0)
    rl, nrl = dense(race, lvl_key)
    rows_t, cols_t = np.nonzero(tested)
    z2 = z0[rows_t, cols_t] ** 2
    med, cnt = group_median(rl[rows_t], z2, nrl)
    phi_g = np.where(cnt >= 20, med / CHI1_MEDIAN, np.nan)
    # Thin groups borrow the median φ of their level over all races.
    for lv in (0, 1):
        sel = np.isin(np.arange(nrl), np.unique(rl[lvl_key == lv]))
        fill = np.nanmedian(phi_g[sel]) if np.isfinite(phi_g[sel]).any() else 1.0
        phi_g = np.where(sel & ~np.isfinite(phi_g), fill, phi_g)
    phi_g = np.maximum(np.nan_to_num(phi_g, nan=1.0), 1.0)
    # Per candidate column too: boxes differ far more in a major candidate's share (street-level
    # politics) than in a minor one's, and one φ for all would blunt the test on minor columns.
    # A column with >= 20 tested boxes in its (race, level) gets its own φ, else the group's.
    rlc = rl[rows_t] * C + cols_t
    med_c, cnt_c = group_median(rlc, z2, nrl * C)
    phi_c = np.where(cnt_c >= 20, med_c / CHI1_MEDIAN, np.nan).reshape(nrl, C)
    phi_c = np.where(np.isfinite(phi_c), phi_c, phi_g[:, None])
    phi_cell = np.maximum(phi_c[rl], 1.0)  # (n, C)
    sd = np.sqrt(var0 * phi_cell)
    z = z0 / np.sqrt(phi_cell)
    z = np.where(mask & usable[:, None], z, np.nan)

    # --- the race's leader and runner-up (columns), for effects and swaps ---
    rt = group_sum(race, votes, n_races)
    order = np.argsort(-rt, axis=1, kind="stable")
    leader_col = order[:, 0] if C else np.zeros(n_races, dtype=np.int64)
    runner_col = order[:, 1] if C > 1 else leader_col

    # --- zero_major ---
    zm = mask & usable[:, None] & (votes == 0) & (ref >= t.zero_major_share) & (expected >= t.zero_major_expected) & (np.nan_to_num(z) <= -t.zero_major_min_z)
    zero_major = np.where(zm.any(axis=1), zm.argmax(axis=1), -1)

    # --- swapped candidates among the race's top M ---
    def zval(pp: np.ndarray, j: np.ndarray) -> np.ndarray:
        rr = np.take_along_axis(ref, j[:, None], 1)[:, 0]
        ss = np.take_along_axis(sd, j[:, None], 1)[:, 0]
        return (pp - rr) / ss

    M = min(t.swap_top, C)
    tops = order[race, :M] if M else np.zeros((n, 0), dtype=np.int64)
    zt = np.nan_to_num(np.take_along_axis(z, tops, 1)) if M else np.zeros((n, 0))
    in_race = np.take_along_axis(mask, tops, 1) if M else np.zeros((n, 0), bool)
    zt = np.where(in_race, zt, 0.0)
    d_top = (zt**2).sum(axis=1)
    swap_pair = np.full((n, 2), -1, dtype=np.int64)
    swap_red = np.zeros(n)
    best = np.full(n, np.inf)
    best_pair = np.full((n, 2), -1, dtype=np.int64)
    for a in range(M):
        for b in range(a + 1, M):
            ca, cb = tops[:, a], tops[:, b]
            pa = np.take_along_axis(p, ca[:, None], 1)[:, 0]
            pb = np.take_along_axis(p, cb[:, None], 1)[:, 0]
            za2 = np.nan_to_num(zval(pb, ca)) ** 2
            zb2 = np.nan_to_num(zval(pa, cb)) ** 2
            d = d_top - zt[:, a] ** 2 - zt[:, b] ** 2 + za2 + zb2
            ok = in_race[:, a] & in_race[:, b] & (d < best)
            best = np.where(ok, d, best)
            best_pair[ok, 0] = ca[ok]
            best_pair[ok, 1] = cb[ok]
    with np.errstate(divide="ignore", invalid="ignore"):
        red = np.where(d_top > 0, 1 - best / d_top, 0.0)
    max_top = np.abs(zt).max(axis=1) if M else np.zeros(n)
    red = np.where(np.isfinite(red), red, 0.0)
    sw = usable & np.isfinite(best) & (red >= t.swap_reduction) & (max_top >= t.swap_min_z)
    swap_pair[sw] = best_pair[sw]
    swap_red = np.where(sw, red, 0.0)
    # Adjacent columns of the sheet (an entry slip swaps neighbours, often a major and a minor
    # candidate) are searched in the loop below, against the deviance over every column.
    any_z = np.where(mask & usable[:, None], np.abs(np.nan_to_num(z)), 0.0).max(axis=1) if C else np.zeros(n)

    # --- shifted columns: from column k on, every count moved one position (wrapping) ---
    zf = np.where(mask & usable[:, None], np.nan_to_num(z), 0.0)
    dev = (zf**2).sum(axis=1)
    shift_from = np.full(n, -1, dtype=np.int64)
    shift_dir = np.zeros(n, dtype=np.int8)
    shift_red = np.zeros(n)
    for m_c in np.unique(tab.n_cands):
        m_c = int(m_c)
        if m_c < 2:
            continue
        rows = np.flatnonzero((tab.n_cands == m_c) & usable)
        if not len(rows):
            continue
        P = p[rows, :m_c]
        R = ref[rows, :m_c]
        S = sd[rows, :m_c]
        Z2 = zf[rows, :m_c] ** 2
        pre = np.concatenate([np.zeros((len(rows), 1)), np.cumsum(Z2, axis=1)], axis=1)
        # direction +1 (counts moved right): column j's true count is written in column j+1, for j = k..m-2,
        # and column m-1's in column k (the wrap). Direction -1: column j's is in column j-1, for j = k+1..m-1,
        # and column k's in column m-1. Both sums over j are suffix sums that do not depend on k.
        with np.errstate(divide="ignore", invalid="ignore"):
            right = np.nan_to_num(((P[:, 1:] - R[:, :-1]) / S[:, :-1]) ** 2)  # j = 0..m-2
            left = np.nan_to_num(((P[:, :-1] - R[:, 1:]) / S[:, 1:]) ** 2)  # j = 1..m-1
            wrap_r = np.nan_to_num(((P - R[:, m_c - 1 : m_c]) / S[:, m_c - 1 : m_c]) ** 2)  # P[k] into column m-1
            wrap_l = np.nan_to_num(((P[:, m_c - 1 : m_c] - R) / S) ** 2)  # P[m-1] into column k
        suf_r = np.cumsum(right[:, ::-1], axis=1)[:, ::-1]  # suf_r[:, k] = sum_{j>=k} right[:, j]
        suf_l = np.cumsum(left[:, ::-1], axis=1)[:, ::-1]  # suf_l[:, k] = sum_{j>=k+1} left-term of column j
        ks = np.arange(m_c - 1)
        d_r = pre[:, ks] + suf_r[:, ks] + wrap_r[:, ks]
        d_l = pre[:, ks] + suf_l[:, ks] + wrap_l[:, ks]
        both = np.concatenate([d_r, d_l], axis=1)
        arg = both.argmin(axis=1)
        bestd = both[np.arange(len(rows)), arg]
        bk = np.where(arg < len(ks), arg, arg - len(ks))
        bdir = np.where(arg < len(ks), 1, -1).astype(np.int8)
        d0 = dev[rows]
        with np.errstate(divide="ignore", invalid="ignore"):
            r_ = np.where(d0 > 0, 1 - bestd / d0, 0.0)
        hit = (r_ >= t.shift_reduction) & (d0 >= t.shift_min_deviance) & (m_c >= 3)  # with two candidates a shift is a swap
        # adjacent swaps (j, j+1)
        d_adj = d0[:, None] - Z2[:, :-1] - Z2[:, 1:] + right + left
        ja = d_adj.argmin(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            r_adj = np.where(d0 > 0, 1 - d_adj[np.arange(len(rows)), ja] / d0, 0.0)
        adj = (r_adj >= t.swap_reduction) & (any_z[rows] >= t.swap_min_z) & (r_adj > swap_red[rows])
        ar = rows[adj]
        swap_pair[ar, 0] = ja[adj]
        swap_pair[ar, 1] = ja[adj] + 1
        swap_red[ar] = r_adj[adj]
        shift_red[rows] = r_
        shift_from[rows[hit]] = bk[hit]
        shift_dir[rows[hit]] = bdir[hit]

    sp = np.maximum(swap_pair, 0)
    swap_z = np.where(swap_pair[:, 0] >= 0, np.maximum(np.abs(zf[np.arange(n), sp[:, 0]]), np.abs(zf[np.arange(n), sp[:, 1]])), 0.0)

    # --- magnitude: a count ~10x or ~1/10 of the prediction ---
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(votes > 0, votes / expected, np.inf)
        ratio = np.maximum(ratio, 1 / ratio)
    mg = mask & usable[:, None] & (expected >= t.magnitude_min_expected) & (ratio >= t.magnitude_lo) & (ratio <= t.magnitude_hi) & (np.abs(np.nan_to_num(z)) >= t.magnitude_min_z)
    magnitude = np.where(mg.any(axis=1), mg.argmax(axis=1), -1)
    mag_ratio = np.where(magnitude >= 0, np.take_along_axis(ratio, np.maximum(magnitude, 0)[:, None], 1)[:, 0], np.nan)

    # --- extreme corner ---
    turnout = _turnout(tab)
    wshare = _winner_share(tab)
    extreme = (np.nan_to_num(turnout) >= t.extreme_turnout) & (np.nan_to_num(wshare) >= t.extreme_share) & (valid >= t.extreme_min_valid)

    # --- robust outliers within the race (district or belde) ---
    l3 = tab.col("total_voters").astype(float)
    used = tab.col("ballots_used").astype(float)
    K = tab.col("registered")
    inv_rate = np.where(used > 0, tab.col("invalid") / np.maximum(used, 1), np.nan)
    bylaw = np.where(l3 > 0, tab.col("voted_by_law") / np.maximum(l3, 1), np.nan)
    mad = {
        "turnout": double_mad_z(race, np.nan_to_num(turnout), n_races, (K > 0) & (l3 > 0), min_group=t.mad_min_group, mad_floor=0.01)[0],
        "invalid": double_mad_z(race, np.nan_to_num(inv_rate), n_races, used >= t.min_valid, min_group=t.mad_min_group, mad_floor=0.005)[0],
        "by_law": double_mad_z(race, np.nan_to_num(bylaw), n_races, l3 >= t.min_valid, min_group=t.mad_min_group, mad_floor=0.005)[0],
    }
    turn_med = double_mad_z(race, np.nan_to_num(turnout), n_races, (K > 0) & (l3 > 0), min_group=1)[1]

    # --- cross-race: the same box's sheets in other races ---
    bg, nbg = dense(tab.box)
    bmed, bcnt = group_median(bg, l3, nbg)
    bm = bmed[bg]
    gap = np.abs(l3 - bm)
    cross = (bcnt[bg] >= 2) & (gap > 0) & ((gap >= t.cross_race_abs) | (gap >= t.cross_race_rel * np.maximum(bm, 1)))

    # --- equal counts ---
    srt = np.sort(np.where(mask & (tab.votes >= t.equal_min), tab.votes, -np.arange(1, C + 1)[None, :]), axis=1)
    equal = (np.diff(srt, axis=1) == 0).any(axis=1) if C > 1 else np.zeros(n, bool)

    # --- stuffing pattern: turnout high for the race and the race leader above the siblings ---
    lead_z = np.nan_to_num(z[np.arange(n), leader_col[race]]) if C else np.zeros(n)
    stuffing = (np.nan_to_num(mad["turnout"]) >= t.stuffing_turnout_z) & (lead_z >= t.stuffing_leader_z)

    # --- effect on the margin ---
    lc = leader_col[race]
    rc = runner_col[race]
    idx = np.arange(n)
    margin_here = votes[idx, lc] - votes[idx, rc]
    ref_margin = np.nan_to_num(ref[idx, lc] - ref[idx, rc])
    n_hat = nv.copy()
    hi_turn = np.nan_to_num(mad["turnout"]) >= t.mad_z
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = nv * turn_med[race] / turnout
    n_hat = np.where(hi_turn & np.isfinite(scaled), np.minimum(scaled, nv), n_hat)
    effect = margin_here - n_hat * ref_margin
    effect = np.where(level >= 0, effect, 0.0)

    return BoxChecks(
        table=tab, thresholds=t, arithmetic=arithmetic(tab), ref=ref, level=level, phi=phi_cell, z=z, tested=tested,
        zero_major=zero_major, swap_pair=swap_pair, swap_reduction=swap_red, shift_from=shift_from, shift_dir=shift_dir,
        shift_reduction=shift_red, deviance=dev, swap_z=swap_z, magnitude=magnitude, magnitude_ratio=mag_ratio, extreme=extreme,
        cross_race=cross, cross_race_median=bm, mad=mad, equal_counts=equal, stuffing=stuffing, effect=effect,
        leader_col=leader_col, runner_col=runner_col,
    )  # fmt: skip


def race_summary(checks: BoxChecks, *, min_tier: str = "high") -> list[dict[str, Any]]:
    """Per race: flagged boxes at ``min_tier`` or above, their summed |effect| and whether it could exceed the lead."""
    tab = checks.table
    rank = checks.tier_rank()
    sel = rank <= TIER_RANK[min_tier]
    n_r = len(tab.race_ids)
    flagged = np.bincount(tab.race[sel], minlength=n_r)
    eff = np.bincount(tab.race[sel], weights=np.abs(checks.effect[sel]), minlength=n_r)
    rt = tab.race_totals
    out = []
    for r in np.flatnonzero(flagged):
        lead = int(rt[r, checks.leader_col[r]] - rt[r, checks.runner_col[r]])
        out.append({
            "race_id": tab.race_ids[r], "flagged_boxes": int(flagged[r]), "sum_abs_effect": int(round(eff[r])), "lead": lead,
            "could_change_winner": bool(eff[r] >= lead),
        })  # fmt: skip
    out.sort(key=lambda d: (not d["could_change_winner"], -d["sum_abs_effect"]))
    return out
