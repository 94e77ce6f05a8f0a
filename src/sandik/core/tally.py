"""Live tallies: running totals per race and per area, updated one sheet at a time.

For each race we keep:
- ``box_vals``: the counted vector of each of its boxes (zeros until a sheet arrives);
- ``agg``: the sum of ``box_vals`` for every area from the race's own area down
  to the areas that hold its boxes.

A vector is ``BASE`` followed by the race's candidates' votes. Applying a
sheet adds (new - old) to the box's ancestor rows, so a correction replaces
the old figures exactly and a repeat changes nothing. ``rebuild`` recomputes
every aggregate from the box vectors (each area's boxes summed once), and ``recount`` is
the slow, obvious oracle that tests (and periodic self-checks) compare with.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sandik.core.model import Election, Race
from sandik.core.sheet import TallySheet
from sandik.errors import ModelError

BASE = ("boxes_opened", "registered", "total_voters", "ballots_used", "valid", "invalid", "voted_by_law")
NB = len(BASE)
I_OPENED, I_REGISTERED, I_TOTAL_VOTERS, I_BALLOTS_USED, I_VALID, I_INVALID, I_BY_LAW = range(NB)


def sheet_vector(sheet: TallySheet, race: Race, box_registered: int) -> np.ndarray:
    """The vector a (valid) sheet contributes. Registered comes from the box list, not the sheet."""
    v = np.empty(NB + len(race.candidates), dtype=np.int64)
    v[:NB] = (1, box_registered, sheet.total_voters, sheet.ballots_used, sheet.valid, sheet.invalid, sheet.voted_by_law)
    votes = sheet.votes
    v[NB:] = [votes[c.id] for c in race.candidates]
    return v


@dataclass(eq=False)
class RaceTally:
    race: Race
    box_global: np.ndarray  # int32 global box indices of this race
    local_of: dict[int, int]
    area_ids: list[str]  # one per aggregate row
    row_of: dict[str, int]
    box_rows: list[np.ndarray]  # per local box: rows of its area and every area above, up to the race's area
    box_vals: np.ndarray  # (n_boxes, NB + n_candidates)
    agg: np.ndarray  # (n_rows, NB + n_candidates)
    boxes_total: np.ndarray  # per row
    registered_total: np.ndarray  # per row

    # Boxes grouped by the area they sit in ("leaf"): ``order`` sorts boxes by leaf,
    # ``starts`` marks where each leaf's run begins, ``chains[i]`` are leaf i's rows.
    order: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    starts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    chains: list[np.ndarray] = field(default_factory=list)
    # +1 at every change of box_vals, so that a reader that keeps a copy of them (the projection
    # worker, live/projections.py) copies only the races that changed since.
    version: int = 0

    @property
    def width(self) -> int:
        return NB + len(self.race.candidates)

    def sum_up(self, vals: np.ndarray) -> np.ndarray:
        """Per-row sums of per-box values: each leaf area's boxes summed once, then added up its chain."""
        out = np.zeros((len(self.area_ids), *vals.shape[1:]), dtype=np.int64)
        if len(vals):
            leaf_sums = np.add.reduceat(vals[self.order], self.starts, axis=0)
            for chain, total in zip(self.chains, leaf_sums):
                out[chain] += total
        return out


class LiveTally:
    """Running totals of the counted (official, latest accepted) sheets of one election."""

    def __init__(self, election: Election) -> None:
        self.election = election
        self.races: dict[str, RaceTally] = {}
        self.sheets_applied = 0
        for race in election.races.values():
            self.races[race.id] = self._build(race)

    def _build(self, race: Race) -> RaceTally:
        e = self.election
        boxes = e.race_boxes[race.id]
        area_rows: dict[str, np.ndarray] = {}
        area_ids: list[str] = []
        row_of: dict[str, int] = {}

        def row(a: str) -> int:
            r = row_of.get(a)
            if r is None:
                r = row_of[a] = len(area_ids)
                area_ids.append(a)
            return r

        row(race.area_id)
        box_rows: list[np.ndarray] = []
        leaf_of: dict[str, int] = {}
        box_leaf: list[int] = []
        for b in boxes.tolist():
            a = e.box_area_ids[b]
            rows = area_rows.get(a)
            if rows is None:
                leaf_of[a] = len(leaf_of)
                chain = []
                cur: str | None = a
                while cur is not None and cur != race.area_id:
                    chain.append(cur)
                    cur = e.areas[cur].parent_id
                if cur is None:
                    raise ModelError(f"race {race.id}: box {e.box_ids[b]} lies outside the race's area {race.area_id}")
                chain.append(race.area_id)
                rows = area_rows[a] = np.array([row(x) for x in chain], dtype=np.int64)
            box_rows.append(rows)
            box_leaf.append(leaf_of[a])
        leaves = np.array(box_leaf, dtype=np.int64)
        order = np.argsort(leaves, kind="stable")
        sorted_leaves = leaves[order]
        starts = np.flatnonzero(np.r_[True, sorted_leaves[1:] != sorted_leaves[:-1]]) if len(leaves) else np.zeros(0, dtype=np.int64)
        by_leaf = {i: area_rows[a] for a, i in leaf_of.items()}
        width = NB + len(race.candidates)
        rt = RaceTally(
            race=race,
            box_global=boxes,
            local_of={b: i for i, b in enumerate(boxes.tolist())},
            area_ids=area_ids,
            row_of=row_of,
            box_rows=box_rows,
            box_vals=np.zeros((len(boxes), width), dtype=np.int64),
            agg=np.zeros((len(area_ids), width), dtype=np.int64),
            boxes_total=np.zeros(len(area_ids), dtype=np.int64),
            registered_total=np.zeros(len(area_ids), dtype=np.int64),
            order=order,
            starts=starts,
            chains=[by_leaf[int(leaf)] for leaf in sorted_leaves[starts]],
        )
        rt.boxes_total = rt.sum_up(np.ones(len(boxes), dtype=np.int64))
        rt.registered_total = rt.sum_up(e.box_registered[boxes])
        return rt

    # --- updates ------------------------------------------------------------------
    def apply(self, race_id: str, box_index: int, vec: np.ndarray) -> None:
        """Count ``vec`` as the current figures of this box in this race (replacing any earlier ones)."""
        rt = self.races[race_id]
        j = rt.local_of[box_index]
        delta = vec - rt.box_vals[j]
        rt.box_vals[j] = vec
        rt.agg[rt.box_rows[j]] += delta
        rt.version += 1
        self.sheets_applied += 1

    def apply_many(self, race_id: str, box_indices: list[int], vecs: np.ndarray) -> None:
        """``apply`` for many sheets of one race at once (in order: a later sheet for the same box wins)."""
        rt = self.races[race_id]
        local = [rt.local_of[b] for b in box_indices]
        if len(set(local)) != len(local):
            for b, v in zip(box_indices, vecs):
                self.apply(race_id, b, v)
            return
        delta = vecs - rt.box_vals[local]
        rt.box_vals[local] = vecs
        rt.version += 1
        lens = [len(rt.box_rows[j]) for j in local]
        rows = np.concatenate([rt.box_rows[j] for j in local])
        np.add.at(rt.agg, rows, np.repeat(delta, lens, axis=0))
        self.sheets_applied += len(local)

    def load(self, race_id: str, box_indices: np.ndarray, vecs: np.ndarray) -> None:
        """Set many boxes at once without updating aggregates (call ``rebuild`` after)."""
        rt = self.races[race_id]
        local = np.fromiter((rt.local_of[b] for b in box_indices.tolist()), dtype=np.int64, count=len(box_indices))
        rt.box_vals[local] = vecs
        rt.version += 1

    def rebuild(self) -> None:
        """Recompute every aggregate from the box vectors."""
        for rt in self.races.values():
            rt.agg = rt.sum_up(rt.box_vals)

    # --- reads --------------------------------------------------------------------
    def row(self, race_id: str, area_id: str) -> np.ndarray:
        rt = self.races[race_id]
        return rt.agg[rt.row_of[area_id]]

    def box_row(self, race_id: str, box_index: int) -> np.ndarray:
        rt = self.races[race_id]
        return rt.box_vals[rt.local_of[box_index]]


def recount(election: Election, counted: dict[tuple[int, str], np.ndarray]) -> dict[tuple[str, str], np.ndarray]:
    """Brute-force totals: (race id, area id) -> summed vector, from (box index, race id) -> vector.

    Deliberately simple (walk every box up the tree): the oracle for ``LiveTally``.
    """
    out: dict[tuple[str, str], np.ndarray] = {}
    for (b, rid), vec in counted.items():
        race = election.races[rid]
        cur: str | None = election.box_area_ids[b]
        while cur is not None:
            key = (rid, cur)
            out[key] = out.get(key, 0) + vec
            if cur == race.area_id:
                break
            cur = election.areas[cur].parent_id
    return out
