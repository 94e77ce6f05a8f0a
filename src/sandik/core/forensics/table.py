"""Column-wise sheets: the form every forensic check reads.

A national election has ~200,000 boxes and several races per box, so the
checks run on NumPy columns, one row per (box, race) sheet, never on sheet
objects. Candidates of different races do not line up, so the vote matrix is
padded: row i has ``n_cands[i]`` real columns in its race's candidate order
(the order printed on the sheet, which is what a column shift follows), then
zeros.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from sandik.core.model import Election
from sandik.core.sheet import TallySheet
from sandik.errors import ModelError, NotFound

HEADER = (
    "registered",
    "voted_listed",
    "voted_by_law",
    "total_voters",
    "ballots_used",
    "valid_unchallenged",
    "valid_challenged",
    "valid",
    "invalid",
)


@dataclass(eq=False)
class SheetTable:
    """One row per sheet (box x race) of one election."""

    election: Election
    race_ids: list[str]  # distinct races, indexed by ``race``
    race: np.ndarray  # int32 row -> index into race_ids
    box: np.ndarray  # int64 row -> global box index
    header: np.ndarray  # int64 (n, len(HEADER))
    votes: np.ndarray  # int64 (n, C), padded with zeros
    n_cands: np.ndarray  # int32 row -> number of real candidate columns
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.race)
        if not (len(self.box) == n == self.header.shape[0] == self.votes.shape[0] == len(self.n_cands)):
            raise ModelError("sheet table: columns of different lengths")

    def __len__(self) -> int:
        return len(self.race)

    def col(self, name: str) -> np.ndarray:
        return self.header[:, HEADER.index(name)]

    @cached_property
    def mask(self) -> np.ndarray:
        """(n, C) True where the column is a real candidate of the row's race."""
        return np.arange(self.votes.shape[1])[None, :] < self.n_cands[:, None]

    @cached_property
    def area(self) -> np.ndarray:
        """Row -> index of the box's own area (neighbourhood/village/school) in ``area_ids``."""
        return self._areas[0]

    @cached_property
    def area_ids(self) -> list[str]:
        return self._areas[1]

    @cached_property
    def _areas(self) -> tuple[np.ndarray, list[str]]:
        ids = self.election.box_area_ids
        uniq: dict[str, int] = {}
        per_box = np.fromiter((uniq.setdefault(a, len(uniq)) for a in ids), dtype=np.int64, count=len(ids))
        return per_box[self.box], list(uniq)

    def box_id(self, i: int) -> str:
        return self.election.box_ids[int(self.box[i])]

    def race_id(self, i: int) -> str:
        return self.race_ids[int(self.race[i])]

    def candidate_ids(self, i: int) -> tuple[str, ...]:
        return tuple(c.id for c in self.election.races[self.race_id(i)].candidates)

    def copy(self) -> SheetTable:
        return SheetTable(self.election, list(self.race_ids), self.race.copy(), self.box.copy(), self.header.copy(), self.votes.copy(), self.n_cands.copy())

    @cached_property
    def race_totals(self) -> np.ndarray:
        """(n_races, C) votes per candidate column summed over the table."""
        out = np.zeros((len(self.race_ids), self.votes.shape[1]), dtype=np.int64)
        np.add.at(out, self.race, self.votes)
        return out

    def row_of(self, box_id: str, race_id: str) -> int:
        b = self.election.box(box_id)
        r = self.race_ids.index(race_id) if race_id in self.race_ids else -1
        hit = np.flatnonzero((self.box == b) & (self.race == r))
        if not len(hit):
            raise NotFound("sheet", f"{box_id} / {race_id}", election_id=self.election.id)
        return int(hit[0])


def from_sheets(election: Election, sheets: Iterable[TallySheet]) -> SheetTable:
    """A table from sheet objects (the latest version per box and race is the caller's business)."""
    rows: list[tuple[int, str, tuple[int, ...], list[int]]] = []
    box_index = election.box_index
    for s in sheets:
        b = box_index.get(s.box_id)
        race = election.races.get(s.race_id)
        if b is None:
            raise NotFound("box", s.box_id, election_id=election.id)
        if race is None:
            raise NotFound("race", s.race_id, election_id=election.id)
        votes = s.votes
        try:
            v = [votes[c.id] for c in race.candidates]
        except KeyError as exc:
            raise ModelError(f"box {s.box_id}, race {s.race_id}: no count for candidate {exc.args[0]!r}") from None
        rows.append((b, s.race_id, tuple(getattr(s, f) for f in HEADER), v))
    return from_rows(election, rows)


def from_rows(election: Election, rows: Sequence[tuple[int, str, Sequence[int], Sequence[int]]]) -> SheetTable:
    """A table from (box index, race id, header counts in HEADER order, votes in candidate order)."""
    race_ids: list[str] = []
    r_of: dict[str, int] = {}
    n = len(rows)
    width = max((len(election.races[rid].candidates) for rid in {r[1] for r in rows}), default=0)
    race = np.empty(n, dtype=np.int32)
    box = np.empty(n, dtype=np.int64)
    header = np.empty((n, len(HEADER)), dtype=np.int64)
    votes = np.zeros((n, width), dtype=np.int64)
    n_c = np.empty(n, dtype=np.int32)
    for i, (b, rid, h, v) in enumerate(rows):
        k = r_of.get(rid)
        if k is None:
            k = r_of[rid] = len(race_ids)
            race_ids.append(rid)
        race[i] = k
        box[i] = b
        header[i] = h
        votes[i, : len(v)] = v
        n_c[i] = len(v)
    return SheetTable(election, race_ids, race, box, header, votes, n_c)
