"""Small elections and sheets for tests: built by code, checked by the same rules as real data."""

from __future__ import annotations

import random
from datetime import date

import numpy as np

from sandik.core.model import Area, Candidate, Election, ElectionInfo, Party, Race
from sandik.core.projection.frame import RaceFrame, max_voters, size_strata
from sandik.core.sheet import TallySheet

PARTIES = {
    "A": Party("A", "Party A", "A", "#cc0000"),
    "B": Party("B", "Party B", "B", "#0000cc"),
    "C": Party("C", "Party C", "C", "#00aa00"),
}


def make_election(seed: int = 0, *, provinces: int = 2, districts: int = 3, boxes: int = 4, eid: str = "test-2024") -> Election:
    """A two-level country: a 'metro' race per province over all its boxes, a mayor race per district."""
    rng = random.Random(seed)
    areas = {"x": Area("x", "country", "Xland", None)}
    box_ids: list[str] = []
    box_area: list[str] = []
    numbers: list[str] = []
    reg: list[int] = []
    races: dict[str, Race] = {}
    race_boxes: dict[str, list[int]] = {}
    for p in range(1, provinces + 1):
        pid = f"x.{p:02d}"
        areas[pid] = Area(pid, "province", f"Province {p}", "x")
        metro = f"{pid}:metro"
        races[metro] = Race(metro, "metro_mayor", pid, f"Province {p} mayor", (Candidate("A", "Ayşe", "A"), Candidate("B", "", "B"), Candidate("I", "Indy", None)))
        race_boxes[metro] = []
        for d in range(1, districts + 1):
            did = f"{pid}.d{d}"
            areas[did] = Area(did, "district", f"District {p}-{d}", pid)
            rid = f"{did}:mayor"
            cands = tuple(Candidate(c, "", c) for c in ("A", "B", "C")[: rng.randint(2, 3)])
            races[rid] = Race(rid, "district_mayor", did, f"District {p}-{d} mayor", cands)
            race_boxes[rid] = []
            for b in range(1, rng.randint(1, boxes) + 1):
                idx = len(box_ids)
                box_ids.append(f"{did}.{1000 + b}")
                box_area.append(did)
                numbers.append(str(1000 + b))
                reg.append(rng.randint(50, 350))
                race_boxes[rid].append(idx)
                race_boxes[metro].append(idx)
    return Election(
        info=ElectionInfo(eid, "Test election", date(2024, 3, 31), "XX", top_offices=("metro_mayor",), top_area_kind="province"),
        parties=dict(PARTIES),
        areas=areas,
        races=races,
        box_ids=box_ids,
        box_area_ids=box_area,
        box_numbers=numbers,
        box_registered=np.array(reg, dtype=np.int64),
        race_boxes={k: np.array(v, dtype=np.int32) for k, v in race_boxes.items()},
    )


def make_sheet(e: Election, race_id: str, box_index: int, rng: random.Random, *, source: str = "official") -> TallySheet:
    """A sheet that passes every hard rule."""
    race = e.races[race_id]
    K = int(e.box_registered[box_index])
    listed = rng.randint(0, K)
    by_law = rng.randint(0, 3)
    total = listed + by_law
    invalid = rng.randint(0, total // 10)
    valid = total - invalid
    votes = {}
    left = valid
    for c in race.candidates[:-1]:
        v = rng.randint(0, left)
        votes[c.id] = v
        left -= v
    votes[race.candidates[-1].id] = left
    challenged = rng.randint(0, min(2, valid))
    return TallySheet(
        box_id=e.box_ids[box_index], race_id=race_id, registered=K, voted_listed=listed, voted_by_law=by_law,
        total_voters=total, ballots_used=total, valid_unchallenged=valid - challenged, valid_challenged=challenged,
        valid=valid, invalid=invalid, votes=votes, source=source, submitted_by="test",
    )  # fmt: skip


def race_frame(
    registered: np.ndarray,
    base_share: np.ndarray,
    groups: np.ndarray,
    expected: np.ndarray,
    *,
    race_id: str = "r",
    candidate_ids: tuple[str, ...] | None = None,
    parties: tuple[str | None, ...] | None = None,
    has_base: np.ndarray | None = None,
) -> RaceFrame:
    """A projection frame from unit arrays (``groups``: any labels, numbered in sorted order); the
    rest (caps, strata, group ids) derived as ``core.projection.election`` derives it."""
    k = base_share.shape[1]
    gids = np.unique(groups)
    return RaceFrame(
        race_id=race_id,
        candidate_ids=candidate_ids or tuple(f"c{i}" for i in range(k)),
        candidate_parties=parties or tuple(f"P{i}" for i in range(k)),
        registered=registered,
        expected=expected,
        cap=max_voters(registered),
        base_share=base_share,
        has_base=np.ones(len(registered), dtype=bool) if has_base is None else has_base,
        group=np.searchsorted(gids, groups),
        group_ids=tuple(str(g) for g in gids),
        stratum=size_strata(registered),
    )
