"""The simulated 2024 election night: exact official totals, valid sheets, determinism, arrival order."""

from __future__ import annotations

import collections
import time

import numpy as np
import pytest

from sandik.core.model import Election
from sandik.datasets import turkey_local
from sandik.formats import election_file
from sandik.simulation.night import arrival_order, simulate_night

SEED = 2024


@pytest.fixture(scope="module")
def election():
    return election_file.read(turkey_local.data_file("tr-2024-local"))


@pytest.fixture(scope="module")
def run(election):
    t0 = time.perf_counter()
    sheets = simulate_night(election, seed=SEED)
    return sheets, time.perf_counter() - t0


@pytest.fixture(scope="module")
def sheets(run):
    return run[0]


def province(e: Election, plate: str) -> Election:
    """The part of an election in one province (same ids, boxes re-indexed)."""
    pid = f"tr.{plate}"
    inside = lambda aid: aid == pid or aid.startswith(pid + ".")  # noqa: E731
    keep = [i for i, a in enumerate(e.box_area_ids) if inside(a)]
    new_index = {old: new for new, old in enumerate(keep)}
    races = {rid: r for rid, r in e.races.items() if inside(r.area_id)}
    return Election(
        info=e.info,
        parties=e.parties,
        areas={aid: a for aid, a in e.areas.items() if aid == "tr" or inside(aid)},
        races=races,
        box_ids=[e.box_ids[i] for i in keep],
        box_area_ids=[e.box_area_ids[i] for i in keep],
        box_numbers=[e.box_numbers[i] for i in keep],
        box_registered=e.box_registered[keep],
        race_boxes={rid: np.array([new_index[b] for b in e.race_boxes[rid].tolist()], dtype=np.int32) for rid in races},
        aggregate_results={rid: e.aggregate_results[rid] for rid in races},
    )


def totals_by_race(sheets):
    out: dict[str, list] = {}
    for s in sheets:
        t = out.setdefault(s.race_id, [0, 0, 0, 0, collections.Counter()])
        t[0] += s.registered
        t[1] += s.total_voters
        t[2] += s.valid
        t[3] += s.invalid
        t[4].update(s.votes)
    return out


def test_fast_enough(run):
    assert run[1] < 30


def test_one_official_sheet_per_box_and_race(election, sheets):
    keys = [(s.box_id, s.race_id) for s in sheets]
    assert len(set(keys)) == len(keys)
    expected = sum(len(election.race_boxes[r]) for r in election.races)
    assert len(sheets) == expected
    for s in sheets[:: max(1, len(sheets) // 5000)]:
        b = election.box_index[s.box_id]
        assert b in election.race_box_set[s.race_id]
        assert s.registered == int(election.box_registered[b])
        assert s.source == "official"
        assert set(s.votes) == {c.id for c in election.races[s.race_id].candidates}


def test_every_race_reproduces_official_totals_exactly(election, sheets):
    got = totals_by_race(sheets)
    assert set(got) == set(election.races)
    for rid, race in election.races.items():
        t = election.aggregate_results[rid]
        reg, voters, valid, invalid, votes = got[rid]
        assert (reg, voters, valid, invalid) == (t.registered, t.total_voters, t.valid, t.invalid), rid
        assert [votes[c.id] for c in race.candidates] == list(t.votes), rid


def test_every_sheet_obeys_the_rules(sheets):
    for s in sheets:
        assert min(s.registered, s.voted_listed, s.voted_by_law, s.total_voters, s.ballots_used) >= 0, s
        assert min(s.valid_unchallenged, s.valid_challenged, s.valid, s.invalid) >= 0, s
        assert all(v >= 0 for v in s.votes.values()), s
        assert s.voted_listed <= s.registered, s
        assert s.total_voters == s.voted_listed + s.voted_by_law, s
        assert s.valid == s.valid_unchallenged + s.valid_challenged, s
        assert sum(s.votes.values()) == s.valid, s
        assert s.ballots_used == s.valid + s.invalid, s
        assert s.ballots_used <= s.total_voters <= s.registered + s.voted_by_law, s


def test_istanbul_after_the_night(election, sheets):
    rid = "tr.34:metropolitan_mayor"
    votes = collections.Counter()
    boxes = 0
    for s in sheets:
        if s.race_id == rid:
            votes.update(s.votes)
            boxes += 1
    assert boxes == 33_273
    assert votes["CHP"] == 4_438_727
    assert votes["AKP"] == 3_431_871
    assert [votes[c.id] for c in election.races[rid].candidates] == list(election.aggregate_results[rid].votes)


def test_a_box_has_the_same_voters_in_its_races(election, sheets):
    by_box: dict[str, list] = collections.defaultdict(list)
    for s in sheets:
        by_box[s.box_id].append(s)
    two = 0
    for box, ss in by_box.items():
        assert len({s.registered for s in ss}) == 1
        if len(ss) == 2:
            two += 1
            a, b = ss
            diff = abs(a.total_voters - b.total_voters)
            assert diff <= max(15, 0.02 * a.total_voters), (box, diff)
            assert abs(a.voted_listed - b.voted_listed) <= diff
    assert two == sum(len(election.race_boxes[r.id]) for r in election.races.values() if r.office == "metropolitan_mayor")


def test_realistic_variation(election, sheets):
    kadikoy = [s for s in sheets if s.race_id == "tr.34.kadikoy:district_mayor"]
    share = np.array([s.votes["CHP"] / s.valid for s in kadikoy if s.valid >= 50])
    turnout = np.array([s.voted_listed / s.registered for s in kadikoy if s.registered >= 50])
    assert 0.05 < share.std() < 0.2  # boxes differ ...
    assert np.corrcoef(share[:-1], share[1:])[0, 1] > 0.3  # ... neighbouring boxes alike
    assert 0.02 < turnout.std() < 0.1
    by_law = np.array([s.voted_by_law for s in sheets])
    assert by_law.max() <= 10 and 0.2 < by_law.mean() < 1.5
    challenged = np.array([s.valid_challenged > 0 for s in sheets])
    assert 0.001 < challenged.mean() < 0.05


def test_deterministic(election, sheets):
    again = simulate_night(election, seed=SEED)
    assert again == sheets  # field by field, votes included


def test_other_seed_other_night_same_totals(election):
    part = province(election, "59")  # Tekirdağ: metropolitan, 11 districts
    a = simulate_night(part, seed=1)
    b = simulate_night(part, seed=2)
    assert [s.content_hash() for s in a] != [s.content_hash() for s in b]
    ta, tb = totals_by_race(a), totals_by_race(b)
    assert ta == tb
    for rid, race in part.races.items():
        assert [ta[rid][4][c.id] for c in race.candidates] == list(part.aggregate_results[rid].votes)


def test_arrival_order(election, sheets):
    arrivals = arrival_order(election, sheets, seed=SEED)
    assert len(arrivals) == len(sheets)
    assert {id(s) for _, s in arrivals} == {id(s) for s in sheets}
    times = np.array([t for t, _ in arrivals])
    assert (np.diff(times) >= 0).all()
    assert times.min() > 0 and times.max() <= 6.5 * 60
    assert 4.5 * 60 <= times.max()  # the night lasts some six hours
    # A box's sheets arrive together, one after the other.
    seen: dict[str, float] = {}
    last = None
    for t, s in arrivals:
        if s.box_id != last:
            assert s.box_id not in seen
            seen[s.box_id] = t
            last = s.box_id
        assert seen[s.box_id] == t
    # Rural boxes first, big cities later.
    istanbul = np.median([t for t, s in arrivals if s.box_id.startswith("tr.34.")])
    beldes = np.median([t for t, s in arrivals if election.areas[election.box_area_ids[election.box_index[s.box_id]]].kind == "belde"])
    assert beldes < istanbul
    assert arrival_order(election, sheets, seed=SEED)[:1000] == arrivals[:1000]
