"""Races projected in child processes (``live.projection_procs``) against ``project_many`` in this one.

The children run the same per-race step on frames sent to them once, with the
counts and the pooled prior of each refresh sent per call, and send the
outcomes back packed (their arrays laid end to end): every outcome must equal
the one-process outcome bit for bit, refresh after refresh, with the races
whose inputs did not change handed back as the very objects returned before.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandik.core.projection import CallRule, RaceState, project_many
from sandik.core.projection.pool import pool_stats, race_swings, state_key
from sandik.live.projection_procs import CountDelta, ProcessProjector, ProjectorError, _pack, _unpack, count_delta, race_cost, refresh_cost, split_races
from tests.test_projection_fastpath import PARAMS, _assert_same_outcome, _fresh, _race, _state


def _election(seed: int, n_races: int = 9):
    rng = np.random.default_rng(seed)
    parties = ["A", "B", "C", "D"]
    frames, finals = {}, {}
    for r in range(n_races):
        n = int(rng.integers(3, 60))
        k = int(rng.choice([2, 3, 4]))
        fr = _race(rng, f"r{r}", n, k, int(rng.integers(1, 9)), parties)
        valid = np.minimum(rng.binomial(fr.registered, 0.8), fr.cap)
        votes = np.array([rng.multinomial(v, rng.dirichlet(np.ones(k) * 3)) for v in valid]).reshape(n, k)
        frames[fr.race_id] = fr
        finals[fr.race_id] = (votes, valid, rng.permutation(n))
    region_of = {rid: ("north" if i % 3 else "south") for i, rid in enumerate(frames)}
    return frames, finals, region_of, rng


@pytest.mark.parametrize("seed", [1, 2])
def test_outcomes_from_child_processes_equal_one_process(seed):
    frames, finals, region_of, rng = _election(seed)
    rule = CallRule()
    ref_frames = {rid: _fresh(fr) for rid, fr in frames.items()}
    with ProcessProjector(frames, region_of, processes=2, params=PARAMS, rule=rule) as pp:
        assert sorted(r for part in pp.parts for r in part) == sorted(frames)
        prev: dict = {}
        for step, frac in enumerate((0.0, 0.1, 0.4, 0.4, 0.8, 1.0)):
            states: dict[str, RaceState] = {}
            for rid, fin in finals.items():
                n = len(fin[1])
                flagged = (rng.random(n) < 0.1) if rng.random() < 0.2 else None
                states[rid] = _state(fin, int(round(frac * n)), flagged)
            keys = {rid: state_key(st) for rid, st in states.items()}
            swings = race_swings(ref_frames, states, keys=keys)
            stats = pool_stats(swings, region_of)
            races = sorted(frames) if step % 2 == 0 else sorted(frames)[::2]
            if step % 3 == 1:  # counts and digests with the request
                got = pp.project(states, keys, stats, races)
            else:  # counts first (digests and swings computed in the children), then the projections
                assert pp.counts(states) == swings
                got = pp.project_counted(stats, races)
            ref = project_many(ref_frames, states, params=PARAMS, rule=rule, region_of=region_of, races=races)
            assert list(got) == races
            for rid in races:
                _assert_same_outcome(got[rid], ref[rid])
                # a race whose inputs (count, flags, prior) are those of its last refresh comes back as the same object
                if rid in prev and ref[rid] is prev[rid][1]:
                    assert got[rid] is prev[rid][0]
                prev[rid] = (got[rid], ref[rid])
            assert sum(pp.info.sent) == len(races)


def test_a_failing_race_raises_in_the_parent_and_the_children_go_on():
    frames, finals, region_of, _ = _election(5, n_races=4)
    with ProcessProjector(frames, region_of, processes=2, params=PARAMS) as pp:
        states = {rid: _state(fin, len(fin[1]) // 2) for rid, fin in finals.items()}
        keys = {rid: state_key(st) for rid, st in states.items()}
        stats = pool_stats(race_swings(frames, states, keys=keys), region_of)
        bad = dict(states)
        rid0 = sorted(frames)[0]
        st0 = states[rid0]
        bad[rid0] = RaceState(st0.reported[:-1], st0.votes[:-1], st0.valid[:-1])  # one unit short: the frame refuses it
        with pytest.raises(ProjectorError, match="ModelError"):
            pp.project(bad, keys, stats, sorted(frames))
        out = pp.project(states, keys, stats, sorted(frames))
        ref = project_many({rid: _fresh(fr) for rid, fr in frames.items()}, states, params=PARAMS, region_of=region_of)
        for rid in frames:  # none of them an outcome of the failed call, nor one the parent never got
            _assert_same_outcome(out[rid], ref[rid])


def test_races_are_shared_out_by_cost_and_every_race_once():
    frames, _, _, _ = _election(7, n_races=12)
    parts = split_races(frames, 3)
    assert sorted(r for p in parts for r in p) == sorted(frames)
    assert split_races(frames, 3) == parts  # the same share every time: a race's caches stay in its child
    # balanced on what each race adds to a refresh: no share further from another than a
    # piece (at most a quarter of a share, plus the race that crossed it)
    units = sum(fr.n_units for fr in frames.values())
    cost = {rid: refresh_cost(fr, units) for rid, fr in frames.items()}
    loads = [sum(cost[r] for r in p) for p in parts]
    assert max(loads) - min(loads) <= sum(cost.values()) / 3 / 4 + max(cost.values())


def test_the_refresh_cost_grows_with_the_race_and_the_batch():
    frames, _, _, _ = _election(3, n_races=6)
    units = sum(fr.n_units for fr in frames.values())
    for fr in frames.values():
        small, big = refresh_cost(fr, units, 10), refresh_cost(fr, units, 100_000)
        assert 0 < small < big <= race_cost(fr)
        assert big == pytest.approx(race_cost(fr))  # a batch far larger than the night reaches every race
    by_size = sorted(frames.values(), key=lambda fr: fr.n_units)
    reach = [refresh_cost(fr, units, 10) / race_cost(fr) for fr in by_size]
    assert reach == sorted(reach)  # more units, more likely reached


def test_packed_arrays_come_back_equal_and_writable():
    rng = np.random.default_rng(0)
    obj = {"a": rng.normal(size=(3, 4)), "b": [np.arange(5), (rng.normal(size=2)[::-1], 1.5)], "c": np.array([True, False]), "s": "x"}
    back = _unpack(_pack(obj))
    np.testing.assert_array_equal(back["a"], obj["a"])
    np.testing.assert_array_equal(back["b"][0], obj["b"][0])
    np.testing.assert_array_equal(back["b"][1][0], obj["b"][1][0])
    assert back["b"][0].dtype == obj["b"][0].dtype and back["c"].dtype == bool
    assert back["b"][1][1] == 1.5 and back["s"] == "x"
    back["a"][0, 0] = 7.0


def test_a_dead_child_is_reported_as_died():
    frames, finals, region_of, _ = _election(9, n_races=4)
    with ProcessProjector(frames, region_of, processes=2, params=PARAMS) as pp:
        states = {rid: _state(fin, len(fin[1]) // 2) for rid, fin in finals.items()}
        pp._procs[1].kill()
        pp._procs[1].join(timeout=10)
        with pytest.raises((ProjectorError, OSError)) as err:
            pp.counts(states)
        assert not isinstance(err.value, ProjectorError) or err.value.died


def test_replies_are_taken_as_they_come_and_every_child_is_read_when_one_fails():
    """The parent unpacks each child's outcomes as they arrive; if taking one reply fails, the
    other children's replies are still read, so that the pipes stay in step for the next call."""
    frames, finals, region_of, _ = _election(4, n_races=6)
    states = {rid: _state(fin, len(fin[1]) // 2) for rid, fin in finals.items()}
    with ProcessProjector(frames, region_of, processes=2, params=PARAMS) as pp:
        seen = []

        def take(j, reply):
            seen.append(j)
            if len(seen) == 1:
                raise ValueError("first reply refused")

        for conn in pp._conns:
            conn.send(("forget", False))
        with pytest.raises(ValueError, match="first reply refused"):
            pp._gather(on_reply=take)
        assert len(seen) == 1  # after a failure the other replies are read, not taken
        assert all(not conn.poll(0.2) for conn in pp._conns)  # nothing left unread in any pipe
        got = pp.project(states, {rid: state_key(st) for rid, st in states.items()}, pool_stats(race_swings(frames, states), region_of), list(frames))
    ref = project_many({rid: _fresh(fr) for rid, fr in frames.items()}, states, params=PARAMS, region_of=region_of)
    for rid in frames:
        _assert_same_outcome(got[rid], ref[rid])


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 30), st.integers(1, 4), st.integers(0, 2**31 - 1), st.floats(0.0, 1.0))
def test_a_count_delta_applied_to_the_old_count_gives_the_new_one(n, k, seed, share_changed):
    """``count_delta`` keeps exactly the units whose row changed; applying it to the old count
    rebuilds the new one, and leaves the old arrays as they were (kept results may hold them)."""
    rng = np.random.default_rng(seed)
    old = RaceState(rng.random(n) < 0.5, rng.integers(0, 50, (n, k)), rng.integers(0, 200, n))
    new = RaceState(old.reported.copy(), old.votes.copy(), old.valid.copy(), (rng.random(n) < 0.3) if rng.random() < 0.5 else None)
    moved = rng.random(n) < share_changed
    new.reported[moved] = True
    new.votes[moved] += rng.integers(0, 3, (int(moved.sum()), k))
    new.valid[moved] += rng.integers(0, 3, int(moved.sum()))
    snapshot = (old.reported.copy(), old.votes.copy(), old.valid.copy())
    d = count_delta(old, new)
    really = (old.votes != new.votes).any(axis=1) | (old.valid != new.valid) | (old.reported != new.reported)
    assert d.units.tolist() == np.flatnonzero(really).tolist()
    got = d.applied_to(old)
    for a, b in ((got.reported, new.reported), (got.votes, new.votes), (got.valid, new.valid)):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
    assert got.flagged is new.flagged
    assert state_key(got) == state_key(new)
    # the digest after the change: the old one where nothing changed, a new one (and another for
    # any other change) where something did
    k0 = state_key(old)
    assert (d.key_after(k0) == k0) == (not len(d.units))
    if len(d.units):
        other = CountDelta(d.units, d.reported, d.votes + 1, d.valid, d.flagged)
        assert other.key_after(k0) != d.key_after(k0) and d.key_after(k0) == count_delta(old, new).key_after(k0)
    for a, b in zip((old.reported, old.votes, old.valid), snapshot):
        np.testing.assert_array_equal(a, b)
    # a count of another shape cannot be sent as a change
    assert count_delta(old, RaceState(new.reported[:-1], new.votes[:-1], new.valid[:-1])) is None


def test_after_the_first_refresh_only_changed_units_are_sent_and_draws_come_back_only_where_kept():
    frames, finals, region_of, _ = _election(3, n_races=6)
    rule = CallRule()
    councils = frozenset(sorted(frames)[:2])
    ref_frames = {rid: _fresh(fr) for rid, fr in frames.items()}
    with ProcessProjector(frames, region_of, processes=2, params=PARAMS, rule=rule, keep_draws=councils) as pp:
        fracs = (0.2, 0.2, 0.5, 0.9)
        for step, frac in enumerate(fracs):
            states = {rid: _state(fin, int(round(frac * len(fin[1])))) for rid, fin in finals.items()}
            swings = pp.counts(states)
            whole, units = pp.counts_sent
            if step == 0:
                assert whole == len(frames) and units == 0 and pp.counts_skipped == 0
            else:  # the units counted since the refresh before (each comes in with its votes)
                assert whole == 0
                before = {rid: int(round(fracs[step - 1] * len(fin[1]))) for rid, fin in finals.items()}
                assert units == sum(int(round(frac * len(fin[1]))) - before[rid] for rid, fin in finals.items())
                # a race whose count did not change is not sent at all; its swing is the one its child sent before
                same = sum(1 for rid, fin in finals.items() if int(round(frac * len(fin[1]))) == before[rid])
                assert pp.counts_skipped == same and (step != 1 or same == len(frames))
            keys = {rid: state_key(s) for rid, s in states.items()}
            assert swings == race_swings(ref_frames, states, keys=keys)
            stats = pool_stats({rid: swings[rid] for rid in frames if rid in swings}, region_of)  # in the frames' order, as project_many sums them
            got = pp.project_counted(stats, sorted(frames))
            ref = project_many(ref_frames, states, params=PARAMS, rule=rule, region_of=region_of)
            for rid in frames:
                a, b = got[rid], ref[rid]
                if rid in councils or b.projection.draws is None:
                    _assert_same_outcome(a, b)
                else:  # everything but the draws, which stay in the child
                    assert a.projection.draws is None
                    _assert_same_outcome(a, dataclasses.replace(b, projection=dataclasses.replace(b.projection, draws=None)))


def test_a_count_that_stays_is_not_sent_again_unless_its_flags_change():
    frames, finals, region_of, _ = _election(5, n_races=4)
    ref_frames = {rid: _fresh(fr) for rid, fr in frames.items()}
    with ProcessProjector(frames, region_of, processes=2, params=PARAMS) as pp:
        states = {rid: _state(fin, len(fin[1]) // 2) for rid, fin in finals.items()}
        first = pp.counts(states)
        assert pp.counts(states) == first and pp.counts_skipped == len(frames)
        rid0 = sorted(frames)[0]
        fin = finals[rid0]
        flagged = dict(states)
        flagged[rid0] = _state(fin, len(fin[1]) // 2, np.ones(len(fin[1]), dtype=bool))  # units put under review
        more = dict(flagged)
        rid1 = sorted(frames)[1]
        more[rid1] = _state(finals[rid1], len(finals[rid1][1]))  # and one race counted to the end
        swings = pp.counts(more)
        assert pp.counts_skipped == len(frames) - 2
        keys = {rid: state_key(s) for rid, s in more.items()}
        assert swings == race_swings(ref_frames, more, keys=keys)
        stats = pool_stats({rid: swings[rid] for rid in frames if rid in swings}, region_of)
        got = pp.project_counted(stats, sorted(frames))
        ref = project_many(ref_frames, more, params=PARAMS, region_of=region_of)
        for rid in frames:  # the children projected the counts and flags of this call, the ones not sent included
            _assert_same_outcome(got[rid], ref[rid])


def test_a_failed_counts_request_sends_every_count_whole_next_time():
    frames, finals, region_of, _ = _election(4, n_races=4)
    with ProcessProjector(frames, region_of, processes=2, params=PARAMS) as pp:
        states = {rid: _state(fin, len(fin[1]) // 2) for rid, fin in finals.items()}
        pp.counts(states)
        rid0 = sorted(frames)[0]
        st0 = states[rid0]
        bad = dict(states)
        bad[rid0] = RaceState(st0.reported[:-1], st0.votes[:-1], st0.valid[:-1])  # one unit short: the child refuses it
        with pytest.raises(ProjectorError, match="ModelError"):
            pp.counts(bad)
        later = {rid: _state(fin, len(fin[1])) for rid, fin in finals.items()}
        pp.counts(later)
        assert pp.counts_sent == (len(frames), 0)
        keys = {rid: state_key(s) for rid, s in later.items()}
        stats = pool_stats(race_swings({rid: _fresh(fr) for rid, fr in frames.items()}, later, keys=keys), region_of)
        got = pp.project_counted(stats, sorted(frames))
        # the counts the child kept are the later ones, not a mix with the refused request
        ref = project_many({rid: _fresh(fr) for rid, fr in frames.items()}, later, params=PARAMS, region_of=region_of)
        for rid in frames:
            _assert_same_outcome(got[rid], ref[rid])


def test_project_tally_skips_the_races_whose_tally_did_not_move_and_equals_one_process():
    """``project_tally`` (the bench's refresh) tells ``counts`` which races' tallies kept their
    version since its last call; those are not even compared, and the outcomes stay those of one
    process. A direct ``counts`` call in between makes the next ``project_tally`` compare again."""
    from sandik.core.projection.election import build_frames, project_election, race_state
    from sandik.core.tally import LiveTally, sheet_vector
    from tests.web_support import elections, sheet

    prev, cur = elections(4, provinces=1, districts=3, boxes=6)
    frames = build_frames(cur, prev)
    tally = LiveTally(cur)
    region_of = {rid: ".".join(cur.races[rid].area_id.split(".")[:2]) for rid in frames}
    rids = sorted(rid for rid in frames if len(cur.race_boxes[rid]) >= 4)

    def count(rid: str, boxes: list[int], seed: int) -> None:
        for i, b in enumerate(boxes):
            s = sheet(cur, rid, b, seed=seed + i)
            tally.apply(rid, b, sheet_vector(s, cur.races[rid], int(cur.box_registered[b])))

    def check(got) -> None:
        ref = project_election(cur, tally, prev, frames={rid: _fresh(fr) for rid, fr in frames.items()})
        for rid in frames:
            _assert_same_outcome(got[rid], ref[rid])

    with ProcessProjector(frames, region_of, processes=2) as pp:
        for rid in rids:
            count(rid, cur.race_boxes[rid].tolist()[:2], 0)
        check(pp.project_tally(frames, tally))
        assert pp.counts_skipped == 0
        moved = rids[0]
        count(moved, cur.race_boxes[moved].tolist()[2:3], 10)
        check(pp.project_tally(frames, tally))
        assert pp.counts_skipped == len(frames) - 1  # every race but the one whose tally moved
        # The skipped races are not compared at all: a change that bypassed the tally's methods
        # (and so its version) would go unseen. That is what RaceTally.version is for.
        rt = tally.races[rids[1]]
        saved = rt.box_vals.copy()
        rt.box_vals[3] = rt.box_vals[0]
        pp.project_tally(frames, tally)
        assert pp.counts_skipped == len(frames)
        rt.box_vals[:] = saved
        rt.version += 1
        check(pp.project_tally(frames, tally))
        # A direct call with other counts (here: nothing counted in one race) ...
        other = {rid: race_state(fr, tally) for rid, fr in frames.items()}
        st0 = other[moved]
        other[moved] = RaceState(np.zeros_like(st0.reported), np.zeros_like(st0.votes), np.zeros_like(st0.valid))
        pp.counts(other)
        # ... and the next refresh, on a tally that did not move, compares every count again and
        # sends that race's real one: the same outcomes as one process
        check(pp.project_tally(frames, tally))
        assert pp.counts_skipped == len(frames) - 1
