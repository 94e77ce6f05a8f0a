"""Projections do not depend on Python's string hash seed.

A set of strings iterates in an order that follows ``PYTHONHASHSEED``; if such an
order reaches the projection (the order of candidates, races or groups), the
random draws land on other columns and the figures move. The same small Turkey-
like backtest (a metropolitan race summed from its districts, several small
parties tied in votes) is replayed in child processes with different hash seeds
and must give byte-identical rows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np

from sandik.core.model import Area, Candidate, Election, ElectionInfo, Party, Race, RaceTotals

ROOT = Path(__file__).resolve().parents[1]
# Six small parties with the same total over the districts, spread differently, so a
# different order of them changes which draws each one gets.
SMALL = ("SA", "SB", "SC", "SD", "SE", "SF")
BIG = ("AKP", "CHP", "MHP")


def _election(year: int) -> Election:
    areas = {"tr": Area("tr", "country", "Türkiye", None), "tr.99": Area("tr.99", "province", "P", "tr")}
    races: dict[str, Race] = {}
    totals: dict[str, RaceTotals] = {}
    metro_cands = tuple(Candidate(p, "", p) for p in BIG + SMALL)
    races["tr.99:metropolitan_mayor"] = Race("tr.99:metropolitan_mayor", "metropolitan_mayor", "tr.99", "P", metro_cands)
    for d in range(6):
        did = f"tr.99.d{d}"
        areas[did] = Area(did, "district", did, "tr.99")
        rid = f"{did}:district_mayor"
        races[rid] = Race(rid, "district_mayor", did, did, metro_cands)
        big = [3000 + 400 * d + 100 * year % 7, 2800 + 250 * ((d * 3) % 6), 600 + 50 * d]
        # small party i gets the d-th entry of a rotated vector: equal totals, different spread
        small = [(10, 20, 30, 40, 50, 60)[(d + i) % 6] for i in range(len(SMALL))]
        votes = tuple(big + small)
        valid = sum(votes)
        totals[rid] = RaceTotals(registered=int(valid * 1.3), total_voters=valid + 20, valid=valid, invalid=20, votes=votes)
    return Election(
        info=ElectionInfo(f"t-{year}", "t", date(year, 3, 31), "TR"),
        parties={p: Party(p, p, p, "#888888") for p in BIG + SMALL},
        areas=areas,
        races=races,
        box_ids=[],
        box_area_ids=[],
        box_numbers=[],
        box_registered=np.zeros(0, dtype=np.int64),
        race_boxes={rid: np.zeros(0, dtype=np.int32) for rid in races},
        aggregate_results=totals,
    )


def _main() -> None:
    """Run in the child: build the case, replay it, print everything the projection gave."""
    from sandik.backtest.data import _turkey_case
    from sandik.backtest.runner import replay

    case = _turkey_case(_election(2019), _election(2024))
    res = replay(case, "random", seed=0, step=0.2)
    out = {
        "candidates": {rid: list(fr.candidate_ids) for rid, fr in case.frames.items()},
        "rows": res.rows,
    }
    print(json.dumps(out, sort_keys=True, default=repr))


def _run(hash_seed: str) -> str:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    code = "from tests.test_projection_hashseed import _main; _main()"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout


def test_backtest_rows_do_not_depend_on_the_hash_seed():
    outs = [_run(s) for s in ("0", "1", "2")]
    data = json.loads(outs[0])
    assert data["rows"], "the replay scored no checkpoint"
    # the metropolitan race has all the parties as candidates, ties broken the same way every time
    assert sorted(data["candidates"]["tr.99:metropolitan_mayor"]) == sorted(BIG + SMALL)
    assert outs[1] == outs[0]
    assert outs[2] == outs[0]
