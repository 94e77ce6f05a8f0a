"""Per-box forensic checks (methods.md §2.1), vectorised over every sheet of an election.

Each check is a *signal*; a box with any signal gets a *flag* that lists the
signals, their values and thresholds, the method version, a tier and the
box's possible effect on the race margin. A flag is a reason to look at a
sheet again, never a finding of fraud.

Signals (tier in brackets; thresholds in :class:`Thresholds`; docs/forensics.md has the table):

* ``arithmetic:E1..E8`` [high] the tally rules of ``core/validation.py``, column-wise.
* ``zero_major`` [high] a candidate at 0 where the reference gives them >= 20%, the box
  would expect >= 10 votes and z <= -6 (the 2019 "CHP oyları sıfır" rows).
* ``swapped_candidates`` [high if the swap removes a deviance >= 100, else medium] swapping
  two of the race's top four candidates, or two adjacent columns of the sheet, removes >= 90%
  of the box's deviance from its reference, and some |z| >= 4. The deviance removed is the
  likelihood-ratio statistic of "these two columns are swapped" against "no swap" (z² summed,
  with the overdispersion φ).
* ``cross_race_swap`` [high if the pair's cross-race |z| >= 6, else medium] where the box has a
  sheet in another race (metropolitan and district mayor on one ballot), swapping two of the
  race's top four makes this sheet's party shares agree with that sheet again (>= 90% of the
  cross-race deviance removed, some |z| >= 4); of the two sheets, the one whose own
  neighbourhood the swap fits better is flagged.
* ``shifted_columns`` [high if the deviance >= 100, else medium (>= 25)] moving every count
  from some column on by one position (either way, the end wrapping round) removes >= 90%
  of the deviance.
* ``magnitude`` [high if |z| >= 8, else medium (>= 4.5)] a count is 6-16x or 1/16-1/6 of
  what the reference predicts (>= 20 expected votes).
* ``magnitude_balanced`` [high] a count divided by ten with voters, ballots and valid votes
  lowered to match: the count is 6-16x below what the box's *other* candidates predict, the
  candidate at least 2 below its siblings (z; 3 before method 1.5), the box's turnout low for its
  race (robust z <= -3), back within robust z 3 once the count and its voters are restored
  tenfold (2 before 1.5), and, so restored, one of the box's two largest counts (1.5).
* ``sibling_z`` [medium at |z| >= 4.5, low at >= 4] share of a candidate against the
  pooled share of the other boxes of the same neighbourhood (leave-one-out), z = (p - p̄) /
  sqrt(φ p̄(1-p̄)(1/n + 1/n_sib)). Boxes without siblings of >= 50 valid votes are compared
  with the rest of their race instead ("race" level). φ (overdispersion) is estimated per
  race, level and candidate column as median(z0²) / 0.4549 (the median of a χ²₁), floored
  at 1; only candidates expecting >= 5 votes are tested.
* ``extreme_corner`` [medium] turnout >= 98% and the box winner's share >= 90%.
* ``implausible_by_law`` [high] voters by law (2) >= 50 and >= half the registered voters: by
  law only the box's officials and the like vote off the list (at most 59 in any box of Istanbul
  2019, 87 in Turkey 2014); a count raised tenfold with the voters to match ends up here or in E2.
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

Everything that compares a sheet with other boxes runs twice (method 1.2, :func:`run_checks`):
the second pass leaves the first pass's high-tier sheets, and those with the shifted-column
signature at any tier (1.4), out of every reference, so that a wrong sheet does not make its
honest neighbours look wrong.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any

import numpy as np

from sandik.core.forensics.groups import dense, double_mad_z, group_median, group_sum
from sandik.core.forensics.table import HEADER, SheetTable

METHOD_VERSION = "sandik-forensics/1.6"  # 1.1: cross-race swap signature, implausible voters by law; 1.2: second pass without the high-tier rows in the references; 1.3: magnitude_balanced; 1.4: nor the rows that look shifted; 1.5: magnitude_balanced for leading counts from z -2; 1.6: shifts explaining >= 95% of the deviance at the high tier, swaps there from a deviance removed of 150
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
    # Deviance the swap removes; below it a swap signature is medium tier. 100 from 1.1 (chosen on
    # Istanbul 2019); 150 from 1.6, to make room in the top tier's 0.1% false-flag budget on Turkey
    # 2014 for the shifts below (docs/forensics.md, "1.6").
    swap_high_lr: float = 150.0
    cross_swap_high_z: float = 6.0  # the same against the box's other race (chosen on the simulated night, see docs/forensics.md)
    shift_reduction: float = 0.90
    shift_min_deviance: float = 25.0
    shift_high_deviance: float = 100.0
    # ... or a shift that explains at least this share of the box's deviance, whatever its size (1.6):
    # in a small box, or one judged against its whole race, a shift of a few dozen votes leaves a
    # deviance under 100 that shifting back explains almost wholly.
    shift_high_reduction: float = 0.95
    magnitude_lo: float = 6.0
    magnitude_hi: float = 16.0
    magnitude_min_z: float = 4.5
    magnitude_min_expected: float = 20.0
    magnitude_high_z: float = 8.0
    # magnitude_balanced: a count 1/16-1/6 of what the box's other candidates predict, the candidate
    # at least this far below its siblings (z), the box's turnout low for its race (robust z at most
    # minus this), and back within this robust z once the count and the voters are restored tenfold;
    # with balanced_top_two, the restored count one of the box's two largest (1.5: z 3 -> 2 with it,
    # and "ordinary once restored" as wide as "low now": 2 -> 3).
    balanced_min_z: float = 2.0
    balanced_turnout_z: float = 3.0
    balanced_restored_z: float = 3.0
    balanced_top_two: bool = True
    extreme_turnout: float = 0.98
    extreme_share: float = 0.90
    extreme_min_valid: int = 50
    mad_z: float = 3.5
    by_law_implausible_share: float = 0.5  # voters by law >= this share of registered voters ...
    by_law_implausible_min: int = 50  # ... and at least this many
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
    swap_lr: np.ndarray  # deviance removed by the swap reported in swap_pair; where none is, by the best swap searched (0 below the search floor)
    xr_pair: np.ndarray  # (n, 2) columns whose swap makes the sheet agree with the box's other race, or -1
    xr_reduction: np.ndarray
    xr_z: np.ndarray  # largest cross-race |z| over that pair
    xr_lr: np.ndarray  # cross-race deviance removed by the best swap, swap or not
    magnitude: np.ndarray  # column index or -1
    magnitude_ratio: np.ndarray
    magnitude_balanced: np.ndarray  # column index or -1: a count divided by ten with the totals changed to match
    balanced_ratio: np.ndarray  # what the box's other candidates predict for that column over its count
    balanced_turnout_z: np.ndarray  # (robust turnout z now, after restoring the count and voters tenfold)
    extreme: np.ndarray
    by_law_implausible: np.ndarray
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
        a = np.where(self.tested, np.abs(self.z), 0.0)  # tested cells have a finite z
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
        out["cross_race_swap"] = self.xr_pair[:, 0] >= 0
        out["shifted_columns"] = self.shift_from >= 0
        out["magnitude"] = self.magnitude >= 0
        out["magnitude_balanced"] = self.magnitude_balanced >= 0
        out["sibling_z"] = mz >= t.sibling_z_low
        out["extreme_corner"] = self.extreme
        out["implausible_by_law"] = self.by_law_implausible
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
        medium = medium | m["swapped_candidates"] | m["cross_race_swap"] | m["shifted_columns"] | m["magnitude"]
        high = m["zero_major"] | m["implausible_by_law"] | m["magnitude_balanced"] | strong["swapped_candidates"] | strong["cross_race_swap"] | strong["shifted_columns"] | strong["magnitude"]
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
            "swapped_candidates": m["swapped_candidates"] & (self.swap_lr >= t.swap_high_lr),
            "cross_race_swap": m["cross_race_swap"] & (self.xr_z >= t.cross_swap_high_z),
            "shifted_columns": m["shifted_columns"] & ((self.deviance >= t.shift_high_deviance) | (self.shift_reduction >= t.shift_high_reduction)),
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
            sig.append(Signal("swapped_candidates", "high" if self._strong["swapped_candidates"][i] else "medium", float(self.swap_reduction[i]), t.swap_reduction, f"swapping {cands[a]} ({tab.votes[i, a]}) and {cands[b]} ({tab.votes[i, b]}) removes {100 * self.swap_reduction[i]:.0f}% of the deviation from comparable boxes (deviance removed {self.swap_lr[i]:.0f}; high tier from {t.swap_high_lr:g})"))
        if self.xr_pair[i, 0] >= 0:
            a, b = (int(x) for x in self.xr_pair[i])
            sig.append(Signal("cross_race_swap", "high" if self._strong["cross_race_swap"][i] else "medium", float(self.xr_z[i]), t.cross_swap_high_z, f"swapping {cands[a]} ({tab.votes[i, a]}) and {cands[b]} ({tab.votes[i, b]}) removes {100 * self.xr_reduction[i]:.0f}% of the difference from the same box's sheet in another race (largest cross-race |z| {self.xr_z[i]:.1f})"))
        if self.shift_from[i] >= 0:
            k = int(self.shift_from[i])
            d = "right" if self.shift_dir[i] > 0 else "left"
            sig.append(Signal("shifted_columns", "high" if self._strong["shifted_columns"][i] else "medium", float(self.shift_reduction[i]), t.shift_reduction, f"the counts from {cands[k]} on look shifted one column to the {d} (removes {100 * self.shift_reduction[i]:.0f}% of the deviation, deviance {self.deviance[i]:.0f}; high tier from a deviance of {t.shift_high_deviance:g} or {100 * t.shift_high_reduction:g}% removed)"))
        if self.magnitude[i] >= 0:
            j = int(self.magnitude[i])
            sig.append(Signal("magnitude", "high" if self._strong["magnitude"][i] else "medium", float(self.magnitude_ratio[i]), t.magnitude_lo, f"{cands[j]}: {tab.votes[i, j]} votes, {self.magnitude_ratio[i]:.1f}x (or 1/x) what comparable boxes predict"))
        if self.magnitude_balanced[i] >= 0:
            j = int(self.magnitude_balanced[i])
            tz_now, tz_back = self.balanced_turnout_z[i]
            sig.append(Signal("magnitude_balanced", "high", float(self.balanced_ratio[i]), t.magnitude_lo, f"{cands[j]}: {tab.votes[i, j]} votes, about 1/{self.balanced_ratio[i]:.0f} of what the box's other candidates predict, and turnout low for the race (robust z {tz_now:.1f}); with ten times the votes and the voters to match, turnout would be ordinary (z {tz_back:.1f}): the mark of a count divided by ten with the totals changed to match"))
        mz = self.max_abs_z[i]
        if mz >= t.sibling_z_low:
            zi = np.where(self.tested[i], np.abs(self.z[i]), 0.0)
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
        if self.by_law_implausible[i]:
            bl, K = int(tab.col("voted_by_law")[i]), int(tab.col("registered")[i])
            sig.append(Signal("implausible_by_law", "high", bl, max(t.by_law_implausible_min, t.by_law_implausible_share * K), f"{bl} voters by law (2) against {K} registered voters: by law only the box's officials and the like vote off the list"))
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


def _partner_rows(box: np.ndarray) -> np.ndarray:
    """Per row, another row of the same box (the next one, cyclically, among the box's rows), or -1."""
    n = len(box)
    if not n:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(box, kind="stable")
    b = box[order]
    start = np.r_[True, b[1:] != b[:-1]]
    gid = np.cumsum(start) - 1
    starts = np.flatnonzero(start)
    cnt = np.diff(np.r_[starts, n])
    pos = np.arange(n) - starts[gid]
    nxt = starts[gid] + (pos + 1) % cnt[gid]
    partner = np.full(n, -1, dtype=np.int64)
    partner[order] = np.where(cnt[gid] >= 2, order[nxt], -1)
    return partner


def _party_column_maps(tab: SheetTable, rows: np.ndarray, partner: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(pair index per row, (pairs, C) map: column of the row's race -> column of the same party in the partner's race, or -1)."""
    C = tab.votes.shape[1]
    g, ng = dense(tab.race[rows], tab.race[partner[rows]])
    rep = np.zeros(ng, dtype=np.int64)
    rep[g] = rows
    cmap = np.full((ng, C), -1, dtype=np.int64)
    races = tab.election.races
    for k in range(ng):
        i = int(rep[k])
        other = {c.party: j for j, c in enumerate(races[tab.race_id(int(partner[i]))].candidates) if c.party is not None}
        for j, c in enumerate(races[tab.race_id(i)].candidates):
            if c.party is not None and c.party in other:
                cmap[k, j] = other[c.party]
    return g, cmap


def _cross_race_swap(tab: SheetTable, t: Thresholds, p: np.ndarray, ref: np.ndarray, pq: np.ndarray, nv: np.ndarray, tops: np.ndarray, own_ok: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Swap signature against the same box's sheet in another race (same parties).

    A box's voters are the same people in every race on its ballot, so a party's share in one race
    follows its share in the other far more closely than boxes follow each other. The gap between
    the two shares is compared with its usual value where the box votes (the median gap of the
    box's neighbourhood, >= 3 boxes, else of its race: medians, so that a few wrong neighbours do
    not move it): zc = (gap - median gap) / sqrt(var + var'), scaled by a robust φ per (race, rank
    of the candidate among the race's top M). Parties are matched by party code: allied parties
    that split the races between them (one runs here, the other there) are not compared.

    The signature: swapping two of the top M counts of this sheet removes >= ``swap_reduction`` of
    the cross-race deviance, and some |zc| of the pair is at least ``swap_min_z``. Swapping back in
    the clean partner would close the same gap, so of the two sheets the one whose own
    neighbourhood the swap fits better carries the flag.
    Returns (pair (n, 2) or -1, reduction, largest |zc| of the pair, cross-race deviance removed).
    """
    n = len(tab)
    M = tops.shape[1]
    pair = np.full((n, 2), -1, dtype=np.int64)
    red_out = np.zeros(n)
    zmax = np.zeros(n)
    lr_out = np.zeros(n)
    partner = _partner_rows(tab.box)
    rows = np.flatnonzero((partner >= 0) & own_ok)
    rows = rows[own_ok[partner[rows]]]
    if M < 2 or not len(rows):
        return pair, red_out, zmax, lr_out
    g, cmap = _party_column_maps(tab, rows, partner)
    q = partner[rows]
    tp = tops[rows]  # (m, M) columns of this race
    qc = np.take_along_axis(cmap[g], tp, 1)  # partner columns, -1 = party absent there
    mapped = qc >= 0
    qc0 = np.maximum(qc, 0)

    def at(x: np.ndarray, r: np.ndarray, c: np.ndarray) -> np.ndarray:
        return x[r[:, None], c]  # only the cells needed, never whole rows of the wide matrices

    p_own, ref_own = at(p, rows, tp), at(ref, rows, tp)
    p_oth, ref_oth = at(p, q, qc0), at(ref, q, qc0)
    v = at(pq, rows, tp) / nv[rows][:, None] + at(pq, q, qc0) / nv[q][:, None]
    ok = mapped & np.isfinite(ref_own) & np.isfinite(ref_oth) & (v > 0)
    gap = np.where(ok, p_own - p_oth, 0.0)
    ri, ci = np.nonzero(ok)
    hood, nh = dense(tab.race[rows], tab.race[q], tab.area[rows])
    kh = hood[ri] * M + ci
    # Gaps shifted into [0, 2] take group_median's fast path (a float sort instead of a lexsort).
    g1 = gap[ri, ci] + 1.0
    med_h, cnt_h = group_median(kh, g1, nh * M)
    kr = tab.race[rows][ri].astype(np.int64) * M + ci
    med_r, cnt_r = group_median(kr, g1, len(tab.race_ids) * M)
    med_h -= 1.0
    med_r -= 1.0
    off = np.zeros_like(gap)
    off[ri, ci] = np.where(cnt_h[kh] >= 3, med_h[kh], np.where(cnt_r[kr] >= 3, med_r[kr], 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        sdv = np.sqrt(v)
        zc0 = np.where(ok, (gap - off) / sdv, 0.0)
    # Robust φ per (race, rank among the top M); thin groups take the median φ of all groups.
    key = tab.race[rows].astype(np.int64)[:, None] * M + np.arange(M)[None, :]
    med, cnt = group_median(key[ri, ci], zc0[ri, ci] ** 2, len(tab.race_ids) * M)
    phi = np.where(cnt >= 20, med / CHI1_MEDIAN, np.nan)
    fill = np.nanmedian(phi) if np.isfinite(phi).any() else 1.0
    phi = np.maximum(np.where(np.isfinite(phi), phi, fill), 1.0)
    s = sdv * np.sqrt(phi[key])
    zc = np.where(ok, zc0 / np.sqrt(phi[key]), 0.0)
    d0 = (zc**2).sum(axis=1)
    pq_own, pq_oth = at(pq, rows, tp), at(pq, q, qc0)
    n_own, n_oth = nv[rows], nv[q]

    def own_gain(pp: np.ndarray, rr: np.ndarray, vv: np.ndarray, nn: np.ndarray, a: int, b: int) -> np.ndarray:
        """Binomial deviance change when columns a and b of a sheet trade places (< 0: the swap fits its neighbourhood better)."""
        return nn * (((pp[:, b] - rr[:, a]) ** 2 - (pp[:, a] - rr[:, a]) ** 2) / vv[:, a] + ((pp[:, a] - rr[:, b]) ** 2 - (pp[:, b] - rr[:, b]) ** 2) / vv[:, b])

    best = np.full(len(rows), np.inf)
    best_pair = np.full((len(rows), 2), -1, dtype=np.int64)
    zsel = np.zeros(len(rows))
    with np.errstate(divide="ignore", invalid="ignore"):
        for a in range(M):
            for b in range(a + 1, M):
                za = (p_own[:, b] - p_oth[:, a] - off[:, a]) / s[:, a]
                zb = (p_own[:, a] - p_oth[:, b] - off[:, b]) / s[:, b]
                d = d0 - zc[:, a] ** 2 - zc[:, b] ** 2 + za**2 + zb**2
                # Swapping back in either sheet removes the same cross-race gap; the sheet whose own
                # neighbourhood the swap fits better is the one flagged.
                mine = own_gain(p_own, ref_own, pq_own, n_own, a, b) < own_gain(p_oth, ref_oth, pq_oth, n_oth, a, b)
                better = ok[:, a] & ok[:, b] & (d < best) & mine
                best = np.where(better, d, best)
                best_pair[better, 0] = tp[better, a]
                best_pair[better, 1] = tp[better, b]
                zsel = np.where(better, np.maximum(np.abs(zc[:, a]), np.abs(zc[:, b])), zsel)
        red = np.where(d0 > 0, 1 - best / d0, 0.0)
    red = np.where(np.isfinite(red), red, 0.0)
    hit = np.isfinite(best) & (red >= t.swap_reduction) & (zsel >= t.swap_min_z)
    pair[rows[hit]] = best_pair[hit]
    red_out[rows[hit]] = red[hit]
    zmax[rows[hit]] = zsel[hit]
    lr_out[rows] = np.where(np.isfinite(best), d0 - best, 0.0)
    return pair, red_out, zmax, lr_out


def run_checks(tab: SheetTable, thresholds: Thresholds | None = None, *, refine: bool = True) -> BoxChecks:
    """Run every per-box check over the table.

    Two passes (method 1.2): a sheet flagged at the high tier is likely wrong, and as long as it
    stays in its neighbours' reference it makes them look unusual too (in a neighbourhood of
    two boxes, a shifted sheet makes its honest sibling look shifted back). The second pass
    leaves the first pass's high-tier rows out of every reference. A row that thereby loses all
    its siblings falls back to the rest of its race; if it was high in the first pass and is
    still flagged (medium or higher) against the race, it keeps its first-pass flag, because the
    race is a weaker reference than the sibling that has not been shown wrong either.
    Method 1.4 also leaves out of the references the rows with the shifted-column signature at
    the medium tier: where several boxes of a neighbourhood are shifted, each one's shift is only
    partly explained against a reference the others still distort (their deviance falls short
    of the high tier, or shifting back removes < 90% of it), and a sheet whose columns line up
    better shifted is no safer a reference than a high-tier one. On the real files that
    signature is rare on untouched sheets (86 of Turkey 2014's 171,384, 9 of İstanbul's 31,186).
    ``refine=False``: the first pass alone (method 1.1)."""
    t = thresholds or Thresholds()
    free = _reference_free(tab, t)
    first = _check_pass(tab, t, free)
    if not refine:
        return first
    high = first.tier_rank() == 0
    suspect = high | (first.shift_from >= 0)
    if not suspect.any():
        return first
    # The cross-race signature's reference is the median gap of the neighbourhood (robust by
    # design: a few wrong sheets do not move it); the second pass keeps the first's.
    second = _check_pass(tab, t, free, exclude=suspect, cross_race_swap=(first.xr_pair, first.xr_reduction, first.xr_z, first.xr_lr))
    orphaned = (first.level == 0) & (second.level != 0)
    return _merge_rows(second, first, high & orphaned & (second.tier_rank() <= TIER_RANK["medium"]))


def _merge_rows(base: BoxChecks, other: BoxChecks, take: np.ndarray) -> BoxChecks:
    """``base`` with the rows where ``take`` is true replaced by ``other``'s."""
    if not take.any():
        return base
    n = len(take)
    fields = {}
    for f in dataclasses.fields(BoxChecks):
        a, b = getattr(base, f.name), getattr(other, f.name)
        if a is b:  # shared by both passes (the reference-free checks, the table, the thresholds)
            fields[f.name] = a
        elif isinstance(a, np.ndarray) and a.shape[:1] == (n,):
            fields[f.name] = np.where(take.reshape((n,) + (1,) * (a.ndim - 1)), b, a)
        elif isinstance(a, dict):
            fields[f.name] = {k: np.where(take, b[k], v) if isinstance(v, np.ndarray) and v.shape == (n,) else v for k, v in a.items()}
        else:
            fields[f.name] = a
    return BoxChecks(**fields)


def _reference_free(tab: SheetTable, t: Thresholds) -> dict[str, Any]:
    """The checks that do not compare a sheet with other boxes' shares (the same in both passes)."""
    n, C = tab.votes.shape
    race = tab.race.astype(np.int64)
    n_races = len(tab.race_ids)
    valid = tab.col("valid").astype(np.float64)
    mask = tab.mask

    # --- extreme corner ---
    turnout = _turnout(tab)
    wshare = _winner_share(tab)
    extreme = (np.nan_to_num(turnout) >= t.extreme_turnout) & (np.nan_to_num(wshare) >= t.extreme_share) & (valid >= t.extreme_min_valid)

    # --- voters by law: a handful per box; hundreds mean voters were added to balance a changed count ---
    bylaw_n = tab.col("voted_by_law")
    by_law_implausible = (bylaw_n >= t.by_law_implausible_min) & (bylaw_n >= t.by_law_implausible_share * tab.col("registered"))

    # --- robust outliers within the race (district or belde) ---
    l3 = tab.col("total_voters").astype(float)
    used = tab.col("ballots_used").astype(float)
    K = tab.col("registered")
    inv_rate = np.where(used > 0, tab.col("invalid") / np.maximum(used, 1), np.nan)
    bylaw = np.where(l3 > 0, tab.col("voted_by_law") / np.maximum(l3, 1), np.nan)
    # The race's median turnout (per row) comes with the turnout z: the median does not depend on min_group.
    turnout_z, turn_med = double_mad_z(race, np.nan_to_num(turnout), n_races, (K > 0) & (l3 > 0), min_group=t.mad_min_group, mad_floor=0.01)
    mad = {
        "turnout": turnout_z,
        "invalid": double_mad_z(race, np.nan_to_num(inv_rate), n_races, used >= t.min_valid, min_group=t.mad_min_group, mad_floor=0.005)[0],
        "by_law": double_mad_z(race, np.nan_to_num(bylaw), n_races, l3 >= t.min_valid, min_group=t.mad_min_group, mad_floor=0.005)[0],
    }

    # --- cross-race: the same box's sheets in other races ---
    bg, nbg = dense(tab.box)
    bmed, bcnt = group_median(bg, l3, nbg)
    bm = bmed[bg]
    gap = np.abs(l3 - bm)
    cross = (bcnt[bg] >= 2) & (gap > 0) & ((gap >= t.cross_race_abs) | (gap >= t.cross_race_rel * np.maximum(bm, 1)))

    # --- equal counts ---
    srt = np.sort(np.where(mask & (tab.votes >= t.equal_min), tab.votes, -np.arange(1, C + 1)[None, :]), axis=1)
    equal = (np.diff(srt, axis=1) == 0).any(axis=1) if C > 1 else np.zeros(n, bool)
    return {
        "arithmetic": arithmetic(tab), "turnout": turnout, "extreme": extreme, "by_law_implausible": by_law_implausible, "mad": mad,
        "turn_med": turn_med, "cross": cross, "bm": bm, "equal": equal,
    }  # fmt: skip


def _check_pass(tab: SheetTable, t: Thresholds, free: dict[str, Any], *, exclude: np.ndarray | None = None, cross_race_swap: tuple | None = None) -> BoxChecks:
    """One pass of the checks that compare sheets with other boxes. ``exclude``: rows left out of
    every other row's reference (their own sheets are still checked); ``cross_race_swap``: that
    signature's arrays, kept from an earlier pass instead of recomputed."""
    n, C = tab.votes.shape
    votes = tab.votes.astype(np.float64)
    mask = tab.mask
    valid = tab.col("valid").astype(np.float64)
    # Share denominators: the valid votes as written, unless the candidates' votes disagree with them (E6).
    nv = np.where(votes.sum(axis=1) > 0, votes.sum(axis=1), valid)
    race = tab.race.astype(np.int64)
    n_races = len(tab.race_ids)

    # --- reference shares: siblings (same race, same area), else the rest of the race ---
    # The (n, C) matrices are built in place where possible: on a national election each one is
    # tens of megabytes, and allocating fresh pages costs as much as the arithmetic.
    g, ng = dense(race, tab.area)
    if exclude is not None and exclude.any():
        keep = (~exclude).astype(np.float64)
        votes_in = votes * keep[:, None]
        nv_in = nv * keep
        others = np.bincount(g, weights=keep, minlength=ng)[g] - keep
    else:
        votes_in, nv_in = votes, nv
        others = np.bincount(g, minlength=ng)[g] - 1
    gv = group_sum(g, votes_in, ng)
    gn = group_sum(g, nv_in, ng)
    sib_n = gn[g] - nv_in
    rv = group_sum(race, votes_in, n_races)
    rn = group_sum(race, nv_in, n_races)
    race_n = rn[race] - nv_in
    has_sib = (others >= 1) & (sib_n >= t.min_sibling_valid)
    has_race = race_n >= t.min_sibling_valid
    ref_n = np.where(has_sib, sib_n, np.where(has_race, race_n, np.nan))
    level = np.where(has_sib, 0, np.where(has_race, 1, -1))
    usable = (level >= 0) & (nv >= t.min_valid)
    cell_ok = mask & usable[:, None]
    ref = gv[g]
    to_race = np.flatnonzero(~has_sib)
    ref[to_race] = rv[race[to_race]]
    ref -= votes_in
    with np.errstate(divide="ignore", invalid="ignore"):
        ref /= np.where(has_sib, sib_n, race_n)[:, None]
        p = votes / nv[:, None]
    ref[~cell_ok] = np.nan
    # A binomial variance floor of "two expected votes" keeps tiny shares from producing huge z.
    nn = nv[:, None]
    pq = 1 - ref
    pq *= ref
    np.maximum(pq, 2.0 / np.maximum(nn, 1), out=pq)
    with np.errstate(divide="ignore", invalid="ignore"):
        var0 = pq * (1.0 / nn + 1.0 / ref_n[:, None])
        z0 = p - ref
        z0 /= np.sqrt(var0)
    expected = ref * nn
    tested = cell_ok & (expected >= t.min_expected)
    tested &= ref * ref_n[:, None] >= t.min_expected

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
    phi_c = np.maximum(np.where(np.isfinite(phi_c), phi_c, phi_g[:, None]), 1.0)
    phi_cell = phi_c[rl]  # (n, C)
    sd = var0
    sd *= phi_cell
    np.sqrt(sd, out=sd)
    z = z0
    z /= np.sqrt(phi_cell)
    z[~cell_ok] = np.nan
    # z with 0 wherever it is not tested; computed once, since whole-matrix passes dominate the cost.
    zf = z.copy()
    zf[~np.isfinite(zf)] = 0.0
    dev = (zf**2).sum(axis=1)
    any_z = np.abs(zf).max(axis=1) if C else np.zeros(n)

    # --- the race's leader and runner-up (columns), for effects and swaps ---
    rt = group_sum(race, votes, n_races)
    order = np.argsort(-rt, axis=1, kind="stable")
    leader_col = order[:, 0] if C else np.zeros(n_races, dtype=np.int64)
    runner_col = order[:, 1] if C > 1 else leader_col

    # --- zero_major ---
    zm = cell_ok & (votes == 0) & (ref >= t.zero_major_share) & (expected >= t.zero_major_expected) & (zf <= -t.zero_major_min_z)
    zero_major = np.where(zm.any(axis=1), zm.argmax(axis=1), -1)

    # Swap and shift signatures need some |z| >= swap_min_z or a deviance >= shift_min_deviance, and a
    # rearrangement removes at most the whole deviance: only rows above the lower floor (a small
    # share of any election's rows) can fire, so only they are searched.
    sr = np.flatnonzero(usable & (dev >= min(t.swap_min_z**2, t.shift_min_deviance)))

    # --- swapped candidates among the race's top M ---
    M = min(t.swap_top, C)
    swap_pair = np.full((n, 2), -1, dtype=np.int64)
    swap_red = np.zeros(n)
    swap_lr = np.zeros(n)
    if M >= 2 and len(sr):
        tops = order[race[sr], :M]
        zt = np.take_along_axis(zf[sr], tops, 1)
        in_race = np.take_along_axis(mask[sr], tops, 1)
        d_top = (zt**2).sum(axis=1)
        ps, refs, sds = p[sr], ref[sr], sd[sr]

        def at(x: np.ndarray, j: np.ndarray) -> np.ndarray:
            return np.take_along_axis(x, j[:, None], 1)[:, 0]

        best = np.full(len(sr), np.inf)
        best_pair = np.full((len(sr), 2), -1, dtype=np.int64)
        with np.errstate(divide="ignore", invalid="ignore"):
            for a in range(M):
                for b in range(a + 1, M):
                    ca, cb = tops[:, a], tops[:, b]
                    za2 = np.nan_to_num((at(ps, cb) - at(refs, ca)) / at(sds, ca)) ** 2
                    zb2 = np.nan_to_num((at(ps, ca) - at(refs, cb)) / at(sds, cb)) ** 2
                    d = d_top - zt[:, a] ** 2 - zt[:, b] ** 2 + za2 + zb2
                    ok = in_race[:, a] & in_race[:, b] & (d < best)
                    best = np.where(ok, d, best)
                    best_pair[ok, 0] = ca[ok]
                    best_pair[ok, 1] = cb[ok]
            red = np.where(d_top > 0, 1 - best / d_top, 0.0)
        red = np.where(np.isfinite(red), red, 0.0)
        max_top = np.abs(zt).max(axis=1)
        swap_lr[sr] = np.where(np.isfinite(best), d_top - best, 0.0)
        sw = np.isfinite(best) & (red >= t.swap_reduction) & (max_top >= t.swap_min_z)
        swap_pair[sr[sw]] = best_pair[sw]
        swap_red[sr[sw]] = red[sw]
    # Adjacent columns of the sheet (an entry slip swaps neighbours, often a major and a minor
    # candidate) are searched in the loop below, against the deviance over every column.

    # --- swapped candidates against the same box's sheet in another race ---
    top_cols = order[race, :M] if M else np.zeros((n, 0), dtype=np.int64)
    if cross_race_swap is None:
        xr_pair, xr_red, xr_z, xr_lr = _cross_race_swap(tab, t, p, ref, pq, nv, top_cols, usable)
    else:
        xr_pair, xr_red, xr_z, xr_lr = cross_race_swap

    # --- shifted columns: from column k on, every count moved one position (wrapping) ---
    shift_from = np.full(n, -1, dtype=np.int64)
    shift_dir = np.zeros(n, dtype=np.int8)
    shift_red = np.zeros(n)
    for m_c in np.unique(tab.n_cands[sr]):
        m_c = int(m_c)
        if m_c < 2:
            continue
        rows = sr[tab.n_cands[sr] == m_c]
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
        lr_adj = d0 - d_adj[np.arange(len(rows)), ja]
        adj = (r_adj >= t.swap_reduction) & (any_z[rows] >= t.swap_min_z) & (r_adj > swap_red[rows])
        top_fired = swap_pair[rows, 0] >= 0
        swap_lr[rows] = np.where(adj, lr_adj, np.where(top_fired, swap_lr[rows], np.maximum(swap_lr[rows], lr_adj)))
        ar = rows[adj]
        swap_pair[ar, 0] = ja[adj]
        swap_pair[ar, 1] = ja[adj] + 1
        swap_red[ar] = r_adj[adj]
        shift_red[rows] = r_
        shift_from[rows[hit]] = bk[hit]
        shift_dir[rows[hit]] = bdir[hit]

    # --- magnitude: a count ~10x or ~1/10 of the prediction ---
    # Ratios only for the few cells that pass the cheap conditions; the first such column of a row counts.
    r_i, c_i = np.nonzero(cell_ok & (expected >= t.magnitude_min_expected) & (np.abs(zf) >= t.magnitude_min_z))
    vv = votes[r_i, c_i]
    with np.errstate(divide="ignore", invalid="ignore"):
        rat = np.where(vv > 0, vv / expected[r_i, c_i], np.inf)
        rat = np.maximum(rat, 1 / rat)
    keep = (rat >= t.magnitude_lo) & (rat <= t.magnitude_hi)
    r_i, c_i, rat = r_i[keep], c_i[keep], rat[keep]
    first = np.unique(r_i, return_index=True)[1]
    magnitude = np.full(n, -1, dtype=np.int64)
    mag_ratio = np.full(n, np.nan)
    magnitude[r_i[first]] = c_i[first]
    mag_ratio[r_i[first]] = rat[first]

    mad, turnout, turn_med = free["mad"], free["turnout"], free["turn_med"]

    # --- magnitude, balanced: a count divided by ten with voters, ballots and valid votes lowered
    # to match. Against the valid votes the count looks only 4-7x low (the total shrank too), but
    # against the box's *other* candidates it is 10x low, and the box's turnout is low by exactly
    # the voters removed: restoring both makes the sheet ordinary again. An honest box with a weak
    # candidate and a low turnout does not become ordinary when one column is multiplied by ten.
    mag_bal = np.full(n, -1, dtype=np.int64)
    bal_ratio = np.full(n, np.nan)
    bal_tz = np.full((n, 2), np.nan)
    tz = mad["turnout"]
    low_turnout = np.isfinite(tz) & (tz <= -t.balanced_turnout_z)
    r_i, c_i = np.nonzero(tested & low_turnout[:, None] & (zf <= -t.balanced_min_z) & (votes > 0))
    if len(r_i):
        rr = ref[r_i, c_i]
        vv = votes[r_i, c_i]
        pred = rr / np.maximum(1.0 - rr, 1e-9) * (nv[r_i] - vv)
        rat = pred / vv
        Kr = tab.col("registered")[r_i].astype(float)
        t_now = turnout[r_i]
        with np.errstate(divide="ignore", invalid="ignore"):
            per_z = (t_now - turn_med[r_i]) / tz[r_i]  # the low side's robust scale (turnout per unit of z)
            z_back = (t_now + 9.0 * vv / np.maximum(Kr, 1.0) - turn_med[r_i]) / per_z
        ok = (pred >= t.magnitude_min_expected) & (rat >= t.magnitude_lo) & (rat <= t.magnitude_hi) & np.isfinite(z_back) & (np.abs(z_back) <= t.balanced_restored_z)
        if t.balanced_top_two and C > 2:
            # restored tenfold, the count is one of the box's two largest: a leading count cut down
            # (with two columns or fewer it always is)
            others = votes[r_i].copy()
            others[np.arange(len(r_i)), c_i] = -1.0
            ok &= 10.0 * vv >= np.sort(others, axis=1)[:, -2]
        r_i, c_i, rat, z_back = r_i[ok], c_i[ok], rat[ok], z_back[ok]
        first = np.unique(r_i, return_index=True)[1]
        rows = r_i[first]
        mag_bal[rows] = c_i[first]
        bal_ratio[rows] = rat[first]
        bal_tz[rows, 0] = tz[rows]
        bal_tz[rows, 1] = z_back[first]

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
        scaled = nv * turn_med / turnout
    n_hat = np.where(hi_turn & np.isfinite(scaled), np.minimum(scaled, nv), n_hat)
    effect = margin_here - n_hat * ref_margin
    effect = np.where(level >= 0, effect, 0.0)

    return BoxChecks(
        table=tab, thresholds=t, arithmetic=free["arithmetic"], ref=ref, level=level, phi=phi_cell, z=z, tested=tested,
        zero_major=zero_major, swap_pair=swap_pair, swap_reduction=swap_red, shift_from=shift_from, shift_dir=shift_dir,
        shift_reduction=shift_red, deviance=dev, swap_lr=swap_lr, xr_pair=xr_pair, xr_reduction=xr_red, xr_z=xr_z, xr_lr=xr_lr, magnitude=magnitude, magnitude_ratio=mag_ratio,
        magnitude_balanced=mag_bal, balanced_ratio=bal_ratio, balanced_turnout_z=bal_tz, extreme=free["extreme"],
        by_law_implausible=free["by_law_implausible"], cross_race=free["cross"], cross_race_median=free["bm"], mad=mad, equal_counts=free["equal"], stuffing=stuffing, effect=effect,
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
