"""Oracle tests: the incremental tally equals a brute-force recount, whatever the order,
corrections, duplicates, observer copies and bad sheets."""

import random
from dataclasses import replace

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sandik.core.sheet import OFFICIAL
from sandik.core.tally import LiveTally, recount, sheet_vector
from sandik.core.validation import has_errors, validate
from sandik.ingest.pipeline import Ingestor, build_tally
from sandik.store.repository import open_store
from tests.factories import make_election, make_sheet


def _stream(e, rng):
    """Sheets in random order with corrections, exact duplicates, observers and broken sheets."""
    items = []
    for rid, boxes in e.race_boxes.items():
        for b in boxes.tolist():
            if rng.random() < 0.8:
                items.append(make_sheet(e, rid, b, rng))
            if rng.random() < 0.3:
                items.append(make_sheet(e, rid, b, rng))  # a correction (new version)
            if rng.random() < 0.2:
                items.append(make_sheet(e, rid, b, rng, source="observers"))
            if rng.random() < 0.1:
                s = make_sheet(e, rid, b, rng)
                items.append(replace(s, valid=s.valid + 1))  # breaks E5/E6/E7: quarantined
    rng.shuffle(items)
    dup = [items[i] for i in range(0, len(items), 5)]
    items += dup  # resubmitting identical sheets changes nothing
    rng.shuffle(items)
    return items


def _expected(e, items):
    """What should be counted: the last accepted official sheet per box and race, by hand."""
    last = {}
    seen_hash = {}
    for s in items:
        if has_errors(validate(s, e)):
            continue
        if seen_hash.get(s.key) == s.content_hash():
            continue
        seen_hash[s.key] = s.content_hash()
        if s.source == OFFICIAL:
            b = e.box_index[s.box_id]
            last[(b, s.race_id)] = sheet_vector(s, e.races[s.race_id], int(e.box_registered[b]))
    return recount(e, last)


def _assert_equal(e, tally, oracle):
    for rid, rt in tally.races.items():
        for area, row in rt.row_of.items():
            want = oracle.get((rid, area))
            got = rt.agg[row]
            if want is None:
                assert not got.any(), (rid, area)
            else:
                assert np.array_equal(got, want), (rid, area, got, want)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), provinces=st.integers(1, 3), districts=st.integers(1, 3))
def test_incremental_equals_recount_in_memory(seed, provinces, districts):
    e = make_election(seed, provinces=provinces, districts=districts)
    rng = random.Random(seed)
    items = _stream(e, rng)
    tally = LiveTally(e)
    seen_hash = {}
    for s in items:
        if has_errors(validate(s, e)) or seen_hash.get(s.key) == s.content_hash():
            continue
        seen_hash[s.key] = s.content_hash()
        if s.source == OFFICIAL:
            b = e.box_index[s.box_id]
            tally.apply(s.race_id, b, sheet_vector(s, e.races[s.race_id], int(e.box_registered[b])))
    _assert_equal(e, tally, _expected(e, items))
    before = {rid: rt.agg.copy() for rid, rt in tally.races.items()}
    tally.rebuild()
    for rid, rt in tally.races.items():
        assert np.array_equal(rt.agg, before[rid])


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), batch=st.integers(1, 40), pipeline=st.booleans())
def test_ingest_through_the_store_equals_recount(tmp_path_factory, seed, batch, pipeline):
    """Also with the writer child process (``pipeline``), where batch n+1 is checked while n is written."""
    e = make_election(seed, provinces=2, districts=2)
    rng = random.Random(seed)
    items = _stream(e, rng)
    st_ = open_store(str(tmp_path_factory.mktemp("p") / "t.sqlite"))
    st_.save_election(e)
    ing = Ingestor(st_, e.id)
    rep = ing.submit(items, batch_size=batch, pipeline=pipeline)
    ing.close()
    oracle = _expected(e, items)
    _assert_equal(e, ing.tally, oracle)
    # a fresh process rebuilding from the store sees exactly the same
    rebuilt, _ = build_tally(st_, e)
    _assert_equal(e, rebuilt, oracle)
    # nothing accepted was lost or double counted: one stored row per accepted version
    assert st_.count_sheets(e.id) == rep.accepted
    assert st_.count_quarantined(e.id) == rep.quarantined
    assert rep.received == len(items) == rep.accepted + rep.duplicates + rep.quarantined
    st_.close()


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), ops=st.lists(st.sampled_from(["apply", "many", "many_dup", "load"]), min_size=1, max_size=25))
def test_a_race_whose_box_vectors_change_gets_a_new_version(seed, ops):
    """``RaceTally.version`` moves at every change of the box vectors, whichever way they change:
    the projection worker copies a race's vectors again only when it moved."""
    e = make_election(seed, provinces=1, districts=2)
    rng = random.Random(seed)
    tally = LiveTally(e)
    rids = [rid for rid, boxes in e.race_boxes.items() if len(boxes)]
    for op in ops:
        rid = rng.choice(rids)
        boxes = e.race_boxes[rid].tolist()
        before = {r: (rt.version, rt.box_vals.copy()) for r, rt in tally.races.items()}
        picks = rng.sample(boxes, min(len(boxes), rng.randint(1, 3)))
        if op == "many_dup":
            picks = picks + picks[:1]  # the same box twice: one sheet at a time, the later wins
        vecs = np.array([sheet_vector(make_sheet(e, rid, b, rng), e.races[rid], int(e.box_registered[b])) for b in picks])
        if op == "apply":
            tally.apply(rid, picks[0], vecs[0])
        elif op in ("many", "many_dup"):
            tally.apply_many(rid, picks, vecs)
        else:
            tally.load(rid, np.array(picks), vecs)
        for r, rt in tally.races.items():
            version, vals = before[r]
            if not np.array_equal(vals, rt.box_vals):
                assert rt.version != version, (op, r)
            elif r != rid:
                assert rt.version == version  # nothing else moves


def test_a_recount_from_the_log_moves_the_versions_of_the_races_it_changes(tmp_path):
    """``Ingestor._resync`` writes the recounted vectors in place: their races get new versions."""
    e = make_election(5, provinces=1, districts=2)
    rng = random.Random(5)
    st_ = open_store(str(tmp_path / "t.sqlite"))
    st_.save_election(e)
    mine = Ingestor(st_, e.id)
    other = Ingestor(st_, e.id)
    rid = next(r for r, boxes in e.race_boxes.items() if len(boxes))
    other.submit([make_sheet(e, rid, int(b), rng) for b in e.race_boxes[rid].tolist()])
    other.close()
    before = {r: (rt.version, rt.box_vals.copy()) for r, rt in mine.tally.races.items()}
    mine._resync()
    assert not np.array_equal(before[rid][1], mine.tally.races[rid].box_vals)
    for r, rt in mine.tally.races.items():
        if not np.array_equal(before[r][1], rt.box_vals):
            assert rt.version != before[r][0], r
    mine.close()
    st_.close()
