"""The live views against core.results: the fast scoreboard lines must equal the full results' (oracle)."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from sandik.core.results import scoreboards
from sandik.core.tally import LiveTally, sheet_vector
from sandik.live import views
from sandik.live.search import repair_mojibake, search_areas, tr_sort_key
from tests.factories import make_election, make_sheet
from tests.web_support import elections


@pytest.mark.parametrize("seed", range(12))
def test_leader_lines_match_full_results(seed):
    e = make_election(seed, provinces=3, districts=3, boxes=4)
    tally = LiveTally(e)
    rng = random.Random(seed)
    for rid, race in e.races.items():
        boxes = e.race_boxes[rid].tolist()
        for b in rng.sample(boxes, rng.randint(0, len(boxes))):
            s = make_sheet(e, rid, b, rng)
            if rng.random() < 0.3 and len(race.candidates) >= 2:
                # A tie for first between the first two candidates (no leader then).
                v = s.valid // 2
                votes = {c.id: 0 for c in race.candidates}
                votes[race.candidates[0].id] = v
                votes[race.candidates[1].id] = v
                votes[race.candidates[-1].id] += s.valid - 2 * v
                s = replace(s, votes=votes)
            tally.apply(rid, b, sheet_vector(s, race, int(e.box_registered[b])))
    full = [b.to_dict() for b in scoreboards(e, views.results_at(e, tally))]
    lite = [b.to_dict() for b in scoreboards(e, views.leader_lines(e, tally))]  # type: ignore[arg-type]
    assert lite == full
    res = views.results_at(e, tally)
    for rid, line in views.leader_lines(e, tally).items():
        assert (line.leader_party, line.status) == (res[rid].leader_party, res[rid].status)


def test_mojibake_repair_and_turkish_order():
    assert repair_mojibake("Ä°stanbul") == "İstanbul"
    assert repair_mojibake("KadÄ±kÃ¶y") == "Kadıköy"
    assert repair_mojibake("Kadıköy") == "Kadıköy"  # real Turkish text is left alone
    assert repair_mojibake("Ankara") == "Ankara"
    names = ["Kırıkkale", "İstanbul", "Çorum", "Ağrı", "Iğdır", "Zonguldak", "Cide", "Şile", "Sinop"]
    assert sorted(names, key=tr_sort_key) == ["Ağrı", "Cide", "Çorum", "Iğdır", "İstanbul", "Kırıkkale", "Sinop", "Şile", "Zonguldak"]


def test_search_ranks_exact_then_prefix_then_close_spellings():
    _prev, cur = elections()
    assert [h.area_id for h in search_areas(cur, "KADIKÖY")] == ["x.01.d1"]
    assert [h.area_id for h in search_areas(cur, "kadi")] == ["x.01.d1"]  # prefix
    assert [h.area_id for h in search_areas(cur, "Kadıkoyy")] == ["x.01.d1"]  # a typo, fuzzy
    assert search_areas(cur, "   ") == []
    assert [h.area_id for h in search_areas(cur, "istanbul", kind="district")] == []
