"""The election model: what is being voted on, where, by whom.

Nothing here is specific to Turkey. An election is an area tree (any depth:
country -> province -> district -> neighbourhood -> ...), ballot boxes hanging
off leaves of that tree with their registered voters, races (an office, the
area it reports under, candidates, seats, and the boxes that vote in it) and
parties. Area ids are hierarchical and dotted ("tr.34.kadikoy"), so the
descendants of an area are the ids that start with its id and a dot.

A box votes in several races (a Turkish box in a metropolitan province votes
for the metropolitan and the district mayor), and which boxes vote in a race
is explicit: belde voters vote for their belde mayor, not the district mayor,
even though their boxes sit inside the district.

An election known only in aggregate (the previous election, where only
district totals exist) carries ``aggregate_results`` per race instead of boxes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from sandik.errors import ModelError, NotFound

INDEPENDENT = None  # a candidate whose party is None stands as an independent


@dataclass(frozen=True, slots=True)
class Party:
    code: str
    name: str
    short_name: str
    colour: str  # "#rrggbb"


@dataclass(frozen=True, slots=True)
class Candidate:
    id: str  # unique within its race
    name: str  # may be "" when the source lists only the party
    party: str | None  # party code, or None for an independent

    def label(self, parties: dict[str, Party]) -> str:
        if self.name:
            return self.name
        if self.party is None:
            return "Independent"
        p = parties.get(self.party)
        return p.short_name if p else self.party


@dataclass(frozen=True, slots=True)
class Area:
    id: str
    kind: str  # "country", "province", "district", "belde", "neighbourhood", ...
    name: str
    parent_id: str | None


@dataclass(frozen=True)
class Race:
    id: str
    office: str  # "metropolitan_mayor", "district_mayor", "council", ...
    area_id: str
    name: str
    candidates: tuple[Candidate, ...]
    seats: int = 1

    @cached_property
    def candidate_index(self) -> dict[str, int]:
        return {c.id: i for i, c in enumerate(self.candidates)}

    @cached_property
    def candidate_ids(self) -> list[str]:
        return [c.id for c in self.candidates]


@dataclass(frozen=True, slots=True)
class RaceTotals:
    """Final figures of a race known only in aggregate (no boxes)."""

    registered: int
    total_voters: int
    valid: int
    invalid: int
    votes: tuple[int, ...]  # in the race's candidate order


@dataclass(frozen=True, slots=True)
class ElectionInfo:
    id: str
    name: str
    date: date
    country: str
    previous_id: str | None = None
    # Offices whose races count one per top-level area in the "areas won"
    # scoreboard (Turkey: metropolitan and provincial mayors -> "35 of 81 provinces").
    top_offices: tuple[str, ...] = ()
    top_area_kind: str = ""
    notes: str = ""


@dataclass(eq=False)
class Election:
    """A whole election, indexed for fast lookups.

    Boxes are stored column-wise (ids, area ids, numbers, registered voters)
    because a national election has hundreds of thousands of them.
    """

    info: ElectionInfo
    parties: dict[str, Party]
    areas: dict[str, Area]
    races: dict[str, Race]
    box_ids: list[str]
    box_area_ids: list[str]
    box_numbers: list[str]
    box_registered: np.ndarray  # int64, one per box
    race_boxes: dict[str, np.ndarray]  # race id -> int32 box indices
    aggregate_results: dict[str, RaceTotals] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.box_index: dict[str, int] = {b: i for i, b in enumerate(self.box_ids)}
        if len(self.box_index) != len(self.box_ids):
            raise ModelError(f"election {self.info.id}: duplicate box ids")
        self.box_registered = np.asarray(self.box_registered, dtype=np.int64)
        self.check()

    @property
    def id(self) -> str:
        return self.info.id

    # --- lookups that fail loudly -------------------------------------------------
    def race(self, race_id: str) -> Race:
        try:
            return self.races[race_id]
        except KeyError:
            raise NotFound("race", race_id, election_id=self.id) from None

    def area(self, area_id: str) -> Area:
        try:
            return self.areas[area_id]
        except KeyError:
            raise NotFound("area", area_id, election_id=self.id) from None

    def box(self, box_id: str) -> int:
        try:
            return self.box_index[box_id]
        except KeyError:
            raise NotFound("box", box_id, election_id=self.id) from None

    # --- the tree -----------------------------------------------------------------
    def ancestors(self, area_id: str) -> list[str]:
        """The area and every area above it, nearest first."""
        out = []
        cur: str | None = area_id
        while cur is not None:
            out.append(cur)
            cur = self.area(cur).parent_id
        return out

    @cached_property
    def children(self) -> dict[str, list[str]]:
        kids: dict[str, list[str]] = {a: [] for a in self.areas}
        for a in self.areas.values():
            if a.parent_id is not None:
                kids[a.parent_id].append(a.id)
        for v in kids.values():
            v.sort(key=lambda i: self.areas[i].name)
        return kids

    @cached_property
    def root_id(self) -> str:
        roots = [a.id for a in self.areas.values() if a.parent_id is None]
        return roots[0]

    @cached_property
    def box_races(self) -> list[list[str]]:
        """Box index -> ids of the races it votes in."""
        out: list[list[str]] = [[] for _ in range(len(self.box_ids))]
        for rid, idx in self.race_boxes.items():
            for b in idx.tolist():
                out[b].append(rid)
        return out

    @cached_property
    def box_registered_list(self) -> list[int]:
        """Registered voters per box as Python ints (numpy scalars are slow in per-sheet loops)."""
        return self.box_registered.tolist()

    @cached_property
    def race_box_set(self) -> dict[str, frozenset[int]]:
        return {rid: frozenset(idx.tolist()) for rid, idx in self.race_boxes.items()}

    def races_in(self, area_id: str) -> list[Race]:
        """Races whose area is this area or lies under it."""
        prefix = area_id + "."
        return [r for r in self.races.values() if r.area_id == area_id or r.area_id.startswith(prefix)]

    def races_on_ballot(self, area_id: str) -> list[Race]:
        """Races that voters somewhere in this area vote in (its own, those below, those above)."""
        above = set(self.ancestors(area_id))
        return [r for r in self.races.values() if r.area_id in above] + [
            r for r in self.races_in(area_id) if r.area_id != area_id
        ]

    # --- integrity ----------------------------------------------------------------
    def check(self) -> None:
        """Raise ModelError on the first inconsistency: broken tree, bad references."""
        roots = [a.id for a in self.areas.values() if a.parent_id is None]
        if len(roots) != 1:
            raise ModelError(f"election {self.id}: expected one root area, found {len(roots)}")
        for a in self.areas.values():
            if a.parent_id is not None:
                if a.parent_id not in self.areas:
                    raise ModelError(f"area {a.id}: parent {a.parent_id!r} does not exist")
                if not a.id.startswith(a.parent_id + "."):
                    raise ModelError(f"area {a.id}: id must extend its parent's id {a.parent_id!r}")
        for b, aid in zip(self.box_ids, self.box_area_ids):
            if aid not in self.areas:
                raise ModelError(f"box {b}: area {aid!r} does not exist")
        if (self.box_registered < 0).any():
            raise ModelError(f"election {self.id}: negative registered voters")
        n = len(self.box_ids)
        for r in self.races.values():
            if r.area_id not in self.areas:
                raise ModelError(f"race {r.id}: area {r.area_id!r} does not exist")
            if len(r.candidate_index) != len(r.candidates):
                raise ModelError(f"race {r.id}: duplicate candidate ids")
            for c in r.candidates:
                if c.party is not None and c.party not in self.parties:
                    raise ModelError(f"race {r.id}, candidate {c.id}: unknown party {c.party!r}")
            if r.seats < 1:
                raise ModelError(f"race {r.id}: seats must be at least 1")
            idx = self.race_boxes.get(r.id)
            if idx is None:
                raise ModelError(f"race {r.id}: no box list (use an empty list for aggregate-only races)")
            if len(idx) and (idx.min() < 0 or idx.max() >= n):
                raise ModelError(f"race {r.id}: box index out of range")
            if len(np.unique(idx)) != len(idx):
                raise ModelError(f"race {r.id}: a box is listed twice")
        for rid, t in self.aggregate_results.items():
            r = self.race(rid)
            if len(t.votes) != len(r.candidates):
                raise ModelError(f"race {rid}: aggregate result has {len(t.votes)} vote counts for {len(r.candidates)} candidates")
        if self.info.previous_id == self.id:
            raise ModelError(f"election {self.id}: cannot be its own previous election")

    @cached_property
    def total_registered(self) -> int:
        return int(self.box_registered.sum())

    def race_registered(self, race_id: str) -> int:
        if race_id in self.aggregate_results and not len(self.race_boxes[race_id]):
            return self.aggregate_results[race_id].registered
        return int(self.box_registered[self.race_boxes[race_id]].sum())
