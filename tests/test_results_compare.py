"""Comparison with the previous election on the real 2019 and 2024 totals."""

from sandik.core.results import compare, final_results, flips_summary, scoreboards
from sandik.datasets import registry


def _elections():
    prev, now = registry.get("tr-2024").elections()
    return prev, now


def test_flips_and_strongholds_2019_to_2024():
    prev, now = _elections()
    results = final_results(now, None)
    comps = {c.race_id: c for c in compare(results, final_results(prev, None))}
    ist = comps["tr.34:metropolitan_mayor"]
    assert (ist.winner_then, ist.leader_now, ist.flipped) == ("CHP", "CHP", False)
    bursa = comps["tr.16:metropolitan_mayor"]
    assert (bursa.winner_then, bursa.leader_now, bursa.flipped) == ("AKP", "CHP", True)
    # swing is the change of each party's share in points: CHP gained in Bursa
    assert bursa.swing_points["CHP"] > 0 > bursa.swing_points["AKP"]
    summary = flips_summary(list(comps.values()))
    assert summary["flips"]["AKP->CHP"] >= 10
    # a stronghold is a previous win by >= 20 points; each is either held or lost
    strong = [c for c in comps.values() if c.stronghold_of]
    # ... unless the race is tied now: Çıldır 2024 ended 452 to 452 between AKP and CHP
    assert strong and all(c.stronghold_held is not None or results[c.race_id].tied for c in strong)
    assert results["tr.75.cildir:district_mayor"].tied and results["tr.75.cildir:district_mayor"].leader is None
    decided = [c for c in strong if c.stronghold_held is not None]
    assert sum(summary["strongholds_held"].values()) + sum(summary["strongholds_lost"].values()) == len(decided) == len(strong) - 1


def test_province_scoreboard_2019_and_2024():
    prev, now = _elections()
    for e, want in ((now, {"CHP": 35, "AKP": 24, "DEM": 10, "MHP": 8, "YRP": 2, "IYI": 1, "BBP": 1}),):
        top = next(b for b in scoreboards(e, final_results(e, None)) if b.group == "top:province")
        assert {line.party: line.won for line in top.lines} == want
    top19 = next(b for b in scoreboards(prev, final_results(prev, None)) if b.group == "top:province")
    assert top19.races == 81 and sum(line.won for line in top19.lines) == 81
