"""What the projection of one race knows before and during the count.

A ``RaceFrame`` is fixed before the night: the race's units (ballot boxes, or
districts when only district results exist), their registered voters, the
expected valid vote of each unit, the hard cap on voters, each candidate's
baseline share in the unit (the previous election at the same place, mapped
to this race's candidates), and the unit's group (the area just below the
race: a neighbourhood, or a district of a metropolitan race) and stratum (a
size class). A ``RaceState`` is the count so far: which units have reported
and what they counted.

Both are plain numpy arrays so that ~1,400 races can be projected in well
under a second; building them from an ``Election`` and a ``LiveTally`` is in
:mod:`sandik.core.projection.election`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sandik.errors import ModelError

# A unit may count more voters than it has registered: box officials, police and
# others vote where they serve ("kanun gereği"). The hard bound allows this many.
BY_LAW_FRACTION = 0.05
BY_LAW_MIN = 5
# A ballot box holds a few hundred registered voters (İstanbul 2019: at most 355); a
# district or a belde holds thousands (the smallest district of a 2024 metropolitan race:
# 1,616). A race whose typical unit is below this is projected from ballot boxes.
BOX_MAX_REGISTERED = 1000


def max_voters(registered: np.ndarray) -> np.ndarray:
    """Upper bound on the votes a unit can still cast: registered plus a generous by-law allowance."""
    reg = np.asarray(registered, dtype=np.int64)
    return reg + np.ceil(reg * BY_LAW_FRACTION).astype(np.int64) + BY_LAW_MIN


@dataclass(eq=False)
class RaceFrame:
    race_id: str
    candidate_ids: tuple[str, ...]
    candidate_parties: tuple[str | None, ...]
    registered: np.ndarray  # (n,) int64
    expected: np.ndarray  # (n,) float: expected valid votes
    cap: np.ndarray  # (n,) int64: most voters the unit can have
    base_share: np.ndarray  # (n, K) float: baseline share of valid votes, mapped to candidates
    has_base: np.ndarray  # (n,) bool: the unit has a real baseline (else race or election means)
    group: np.ndarray  # (n,) int: index into group_ids
    group_ids: tuple[str, ...]
    stratum: np.ndarray  # (n,) int: size class, 0..S-1
    unit_ids: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # why the projection is weaker than usual (no baseline, new candidate, ...)
    on_ballot: np.ndarray | None = None  # (n, K) bool: candidate k stands in unit j (None: everyone everywhere)
    # Everything the model derives from the frame alone (design matrix, feature
    # centres, group totals), built on first use and reused by every refresh:
    # a frame is fixed for the night, so this is computed once per race, not per batch.
    _pre: Any = field(default=None, repr=False)
    _guard_totals: Any = field(default=None, repr=False)
    _swing_cache: Any = field(default=None, repr=False)  # (digest of the count, the race's swing) for the pooled prior
    _qbar: np.ndarray | None = field(default=None, repr=False)
    _outcome_cache: Any = field(default=None, repr=False)  # (inputs, the prior it was made with, the race's last outcome): see pool.project_races
    _conformal: Any = field(default=None, repr=False)  # the conformal check's per-frame features (conformal.py)
    _odds_cache: Any = field(default=None, repr=False)  # (leader, runner-up) -> (units in, the conformal check's covariate-shift odds)
    _count_cache: Any = field(default=None, repr=False)  # (digest of the count, params, what the model derives from them alone): see model._project_steps
    _boxes: bool | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        n = len(self.registered)
        k = len(self.candidate_ids)
        if self.base_share.shape != (n, k):
            raise ModelError(f"race {self.race_id}: baseline shares have shape {self.base_share.shape}, expected {(n, k)}")
        for name in ("expected", "cap", "has_base", "group", "stratum"):
            if len(getattr(self, name)) != n:
                raise ModelError(f"race {self.race_id}: {name} has {len(getattr(self, name))} entries for {n} units")
        if self.on_ballot is not None and self.on_ballot.shape != (n, k):
            raise ModelError(f"race {self.race_id}: on_ballot has shape {self.on_ballot.shape}, expected {(n, k)}")
        if n and (self.group.min() < 0 or self.group.max() >= len(self.group_ids)):
            raise ModelError(f"race {self.race_id}: group index out of range")
        if (self.expected < 0).any() or not np.isfinite(self.expected).all():
            raise ModelError(f"race {self.race_id}: expected vote must be finite and non-negative")

    # What the refreshes keep between counts (forgotten for a cold start) ...
    COUNT_CACHES = ("_outcome_cache", "_swing_cache", "_count_cache", "_odds_cache")
    # ... and what depends on the frame alone (rebuilt on first use, e.g. in another process).
    FRAME_CACHES = ("_pre", "_guard_totals", "_qbar", "_conformal", "_boxes")

    def forget_counts(self) -> None:
        """Drop everything kept from earlier counts: the next refresh starts cold."""
        for name in self.COUNT_CACHES:
            setattr(self, name, None)

    def forget_all(self) -> None:
        """Drop every derived value too (a frame about to be sent to another process)."""
        self.forget_counts()
        for name in self.FRAME_CACHES:
            setattr(self, name, None)

    def kept_counts(self) -> tuple:
        """A snapshot of what the refreshes keep, for ``restore_counts`` (benchmarks repeat a refresh from one state)."""
        return tuple(dict(v) if isinstance(v, dict) else v for v in (getattr(self, n) for n in self.COUNT_CACHES))

    def restore_counts(self, kept: tuple) -> None:
        for name, v in zip(self.COUNT_CACHES, kept):
            setattr(self, name, dict(v) if isinstance(v, dict) else v)

    @property
    def n_units(self) -> int:
        return len(self.registered)

    @property
    def n_candidates(self) -> int:
        return len(self.candidate_ids)

    @property
    def n_groups(self) -> int:
        return len(self.group_ids)

    @property
    def units_are_boxes(self) -> bool:
        """The race's units are ballot boxes (median registered voters per unit at most
        ``BOX_MAX_REGISTERED``), not whole districts. The published intervals are calibrated
        per regime (``ModelParams.box_interval_*``): with thousands of boxes, random arrival
        leaves counted and outstanding units alike; with a handful of districts it does not."""
        if self._boxes is None:
            self._boxes = bool(self.n_units) and float(np.median(self.registered)) <= BOX_MAX_REGISTERED
        return self._boxes

    @property
    def baseline_mean(self) -> np.ndarray:
        """Expected-vote-weighted mean baseline share per candidate."""
        if self._qbar is None:
            w = self.expected
            tot = w.sum()
            self._qbar = np.zeros(self.n_candidates) if tot <= 0 else (w[:, None] * self.base_share).sum(axis=0) / tot
            self._qbar.setflags(write=False)
        return self._qbar


@dataclass(eq=False)
class RaceState:
    """The count so far: a unit is either reported (fully counted) or not."""

    reported: np.ndarray  # (n,) bool
    votes: np.ndarray  # (n, K) int64, zero where not reported
    valid: np.ndarray  # (n,) int64
    flagged: np.ndarray | None = None  # (n,) bool: reported units under review (forensics), optional

    @classmethod
    def empty(cls, frame: RaceFrame) -> RaceState:
        n, k = frame.n_units, frame.n_candidates
        return cls(np.zeros(n, dtype=bool), np.zeros((n, k), dtype=np.int64), np.zeros(n, dtype=np.int64))

    def check(self, frame: RaceFrame) -> None:
        n, k = frame.n_units, frame.n_candidates
        if self.reported.shape != (n,) or self.votes.shape != (n, k) or self.valid.shape != (n,):
            raise ModelError(f"race {frame.race_id}: state arrays do not match the frame ({n} units, {k} candidates)")


def size_strata(registered: np.ndarray, n_strata: int = 3) -> np.ndarray:
    """Size terciles (0 = smallest) of units by registered voters, within one race."""
    n = len(registered)
    if n < n_strata * 2:
        return np.zeros(n, dtype=np.int64)
    ranks = np.argsort(np.argsort(registered, kind="stable"), kind="stable")
    return (ranks * n_strata // n).astype(np.int64)
