"""Pure discrepancy logic: k-of-n confirmation, classification of differences, impact on a race, PVT."""

import random
from dataclasses import replace

import numpy as np
import pytest

from sandik.core import pvt
from sandik.core.discrepancy import Entry, ObserverError, classify_value, compare, confirm, race_impact
from tests.factories import make_election, make_sheet


@pytest.mark.parametrize(
    "a,b,kind",
    [(131, 113, "transposed_digits"), (131, 137, "single_digit"), (131, 13, "order_of_magnitude"), (131, 1, "order_of_magnitude"),
     (131, 1310, "order_of_magnitude"), (131, 240, "other"), (5, 5, "same"), (1234, 1324, "transposed_digits"), (1234, 4231, "other")],
)  # fmt: skip
def test_classify_value(a, b, kind):
    assert classify_value(a, b) == kind


@pytest.fixture
def sheet_pair():
    e = make_election(1)
    rid = "x.01:metro"
    race = e.races[rid]
    b = int(e.race_boxes[rid][0])
    s = make_sheet(e, rid, b, random.Random(4))
    s = replace(s, votes={"A": 131, "B": 60, "I": 9}, valid=200, valid_unchallenged=200, valid_challenged=0, invalid=0, total_voters=200, ballots_used=200, voted_listed=200, voted_by_law=0)
    return e, race, s


def test_compare_kinds(sheet_pair):
    e, race, off = sheet_pair
    obs = replace(off, source="oyveotesi")
    assert compare(off, obs, race) is None
    d = compare(off, replace(obs, votes={"A": 113, "B": 60, "I": 9}), race)
    assert d.kind == "transposed_digits" and d.delta_votes == {"A": 18} and d.effect_on_margin == 18
    d = compare(off, replace(obs, votes={"A": 60, "B": 131, "I": 9}), race)
    assert d.kind == "candidates_swapped" and d.effect_on_margin == 142
    d = compare(off, replace(obs, votes={"A": 9, "B": 131, "I": 60}), race)
    assert d.kind == "column_shift"
    d = compare(off, replace(obs, votes={"A": 13, "B": 60, "I": 9}), race)
    assert d.kind == "order_of_magnitude"
    d = compare(off, replace(obs, invalid=3), race)
    assert d.kind == "header_only" and d.effect_on_margin == 0 and [x.field for x in d.diffs] == ["invalid"]
    assert compare(None, obs, race).kind == "missing_official"
    assert compare(off, None, race, org="oyveotesi").kind == "missing_observer"
    with pytest.raises(ObserverError):
        compare(off, off, race)  # an "observer" copy marked official


def test_confirm_k_of_n(sheet_pair):
    _, _, off = sheet_pair
    s = replace(off, source="t3")
    typo = replace(s, votes={**s.votes, "A": 113})
    assert confirm([Entry("v1", s), Entry("v2", s)], 3).status == "pending"
    c = confirm([Entry("v1", s), Entry("v2", s), Entry("v3", s)], 3)
    assert c.status == "confirmed" and c.sheet == s and c.agreeing == 3
    # the same volunteer twice counts once
    assert confirm([Entry("v1", s), Entry("v1", s), Entry("v2", s)], 3).status == "pending"
    d = confirm([Entry("v1", s), Entry("v2", typo), Entry("v3", s)], 3)
    assert d.status == "disputed" and d.disagreements == {"votes:A": {"131": 2, "113": 1}}
    c2 = confirm([Entry("v1", s), Entry("v2", typo), Entry("v3", s), Entry("v4", s)], 3)
    assert c2.status == "confirmed" and "votes:A" in c2.disagreements
    both = confirm([Entry(f"a{i}", s) for i in range(3)] + [Entry(f"b{i}", typo) for i in range(3)], 3)
    assert both.status == "conflict" and both.sheet is None
    with pytest.raises(ObserverError):
        confirm([Entry("v1", s), Entry("v2", replace(s, box_id="other"))], 2)


def test_race_impact_could_and_could_not(sheet_pair):
    _, race, off = sheet_pair
    obs = replace(off, source="t3", votes={"A": 60, "B": 131, "I": 9})
    d = compare(off, obs, race)
    small = race_impact({"A": 10_000, "B": 9_000, "I": 10}, [d])
    assert not small["could_change_winner"] and small["lead"] == 1000 and "could not" in small["wording"]
    close = race_impact({"A": 10_000, "B": 9_900, "I": 10}, [d])
    assert close["could_change_winner"] and close["leader_if_observers_right"] == "B"


def test_pvt_interval_covers_truth_and_alerts():
    rng = np.random.default_rng(0)
    N = 4000
    strata = np.array([f"s{i % 8}" for i in range(N)])
    base = np.array([0.45 + 0.03 * (i % 8) for i in range(N)])
    valid = rng.integers(150, 350, N)
    a = rng.binomial(valid, np.clip(base + rng.normal(0, 0.05, N), 0, 1))
    votes = np.stack([a, valid - a], axis=1)
    truth = votes.sum(axis=0) / valid.sum()
    pop = {f"s{h}": int((strata == f"s{h}").sum()) for h in range(8)}
    inside = 0
    for seed in range(200):
        idx = pvt.draw_sample(strata, 300, seed)
        est = pvt.ratio_estimate(["A", "B"], votes[idx], valid[idx], strata[idx], pop)
        inside += est.lower[0] <= truth[0] <= est.upper[0]
    assert inside >= 190  # nominal 99%: 198 of 200 expected
    res = pvt.check(est, {"A": float(truth[0]) + 0.05, "B": float(truth[1]) - 0.05}, counted_share=0.4)
    assert res["alert"] and "ALERT" in res["wording"]
    assert not pvt.check(est, {"A": float(truth[0]), "B": float(truth[1])})["alert"]
    with pytest.raises(pvt.PVTError):
        pvt.ratio_estimate(["A", "B"], votes[idx], valid[idx], strata[idx], {"s0": 10})


def test_confirmation_compares_figures_not_photos(sheet_pair):
    _, _, off = sheet_pair
    s = replace(off, source="t3")
    c = confirm([Entry("v1", replace(s, image_sha256="a" * 64)), Entry("v2", replace(s, image_sha256="b" * 64))], 2)
    assert c.status == "confirmed" and not c.disagreements
