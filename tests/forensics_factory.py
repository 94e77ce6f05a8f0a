"""A synthetic election with many sibling boxes per neighbourhood, for the forensic checks' tests."""

from __future__ import annotations

from datetime import date

import numpy as np

from sandik.core.model import Area, Candidate, Election, ElectionInfo, Race
from sandik.core.sheet import TallySheet
from tests.factories import PARTIES


def sibling_election(seed: int = 0, *, districts: int = 2, hoods: int = 20, boxes: int = 10, metro: bool = False, alike: float = 1.0) -> tuple[Election, list[TallySheet]]:
    """Districts with one mayor race each (candidates A, B, C, I); neighbourhoods of ``boxes`` boxes sharing one set of shares.

    ``metro``: every box also votes in a province race (candidates B, A, C in that order, no
    independent), and each box has its own shares around its neighbourhood's, which both its
    races follow: boxes of a neighbourhood then differ beyond the binomial, as real ones do, while
    a box's two sheets agree closely. ``alike``: how much the neighbourhoods' shares resemble
    each other (a multiplier of the Dirichlet concentration).
    """
    rng = np.random.default_rng(seed)
    areas = {"x": Area("x", "country", "Xland", None), "x.01": Area("x.01", "province", "P1", "x")}
    box_ids, box_area, numbers, reg = [], [], [], []
    races, race_boxes, sheets = {}, {}, []
    cands = (Candidate("A", "", "A"), Candidate("B", "", "B"), Candidate("C", "", "C"), Candidate("I", "Indy", None))
    metro_cands = (Candidate("mB", "", "B"), Candidate("mA", "", "A"), Candidate("mC", "", "C"))
    if metro:
        races["x.01:metro"] = Race("x.01:metro", "metro_mayor", "x.01", "P1 metro mayor", metro_cands)
        race_boxes["x.01:metro"] = []
    for d in range(districts):
        did = f"x.01.d{d}"
        areas[did] = Area(did, "district", f"D{d}", "x.01")
        rid = f"{did}:mayor"
        races[rid] = Race(rid, "mayor", did, f"D{d} mayor", cands)
        race_boxes[rid] = []
        for h in range(hoods):
            hid = f"{did}.n{h}"
            areas[hid] = Area(hid, "neighbourhood", f"N{h}", did)
            shares = rng.dirichlet(np.array([12, 8, 3, 1]) * alike)
            turnout = rng.uniform(0.75, 0.9)
            for b in range(boxes):
                K = int(rng.integers(250, 400))
                l3 = int(rng.binomial(K, turnout))
                inv = int(rng.binomial(l3, 0.03))
                valid = l3 - inv
                box_shares = rng.dirichlet(shares * 60) if metro else shares
                v = rng.multinomial(valid, box_shares)
                idx = len(box_ids)
                bid = f"{hid}.{1000 + b}"
                box_ids.append(bid)
                box_area.append(hid)
                numbers.append(str(1000 + b))
                reg.append(K)
                race_boxes[rid].append(idx)
                sheets.append(TallySheet(
                    box_id=bid, race_id=rid, registered=K, voted_listed=l3, voted_by_law=0, total_voters=l3, ballots_used=l3,
                    valid_unchallenged=valid, valid_challenged=0, valid=valid, invalid=inv, votes={c.id: int(x) for c, x in zip(cands, v)},
                ))  # fmt: skip
                if metro:
                    race_boxes["x.01:metro"].append(idx)
                    abc = box_shares[[1, 0, 2]] / box_shares[:3].sum()
                    sheets.append(TallySheet(
                        box_id=bid, race_id="x.01:metro", registered=K, voted_listed=l3, voted_by_law=0, total_voters=l3, ballots_used=l3,
                        valid_unchallenged=valid, valid_challenged=0, valid=valid, invalid=inv, votes={c.id: int(x) for c, x in zip(metro_cands, rng.multinomial(valid, abc))},
                    ))  # fmt: skip
    e = Election(
        info=ElectionInfo("sib-2024", "Sibling test", date(2024, 3, 31), "XX"),
        parties=dict(PARTIES), areas=areas, races=races, box_ids=box_ids, box_area_ids=box_area, box_numbers=numbers,
        box_registered=np.array(reg, dtype=np.int64), race_boxes={k: np.array(v, dtype=np.int32) for k, v in race_boxes.items()},
    )  # fmt: skip
    return e, sheets
