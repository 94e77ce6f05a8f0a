"""Integration tests on real SQLite and real PostgreSQL: history, corrections, quarantine, rebuild."""

import random
from dataclasses import replace

import numpy as np
import pytest

from sandik.errors import NotFound, StoreError
from sandik.ingest.pipeline import Ingestor, build_tally
from sandik.store.migrations import LATEST
from tests.factories import make_election, make_sheet


@pytest.fixture
def loaded(store):
    e = make_election(7)
    store.save_election(e)
    return store, e


def test_migrations_are_idempotent(store):
    assert store.migrate() == []
    from sandik.store.migrations import current_version

    with store.engine.connect() as c:
        assert current_version(c) == LATEST


def test_election_round_trip(loaded):
    store, e = loaded
    store._elections.clear()
    e2 = store.election(e.id)
    assert e2.box_ids == e.box_ids and list(e2.races) == list(e.races)
    assert np.array_equal(e2.box_registered, e.box_registered)
    with pytest.raises(NotFound):
        store.election("missing")


def test_corrections_keep_every_version(loaded):
    store, e = loaded
    ing = Ingestor(store, e.id)
    rid = "x.01:metro"
    b = int(e.race_boxes[rid][0])
    rng = random.Random(2)
    v1 = replace(make_sheet(e, rid, b, rng), submitted_by="clerk-1")
    v2 = replace(make_sheet(e, rid, b, rng), submitted_by="clerk-2", reason="digits transposed in CHP row")
    r1 = ing.submit([v1])
    r2 = ing.submit([v2])
    r3 = ing.submit([v2])  # identical resubmission
    assert (r1.accepted, r2.accepted, r2.corrections, r3.accepted, r3.duplicates) == (1, 1, 1, 0, 1)
    hist = store.history(e.id, v1.box_id, rid)
    assert [h.version for h in hist] == [1, 2]
    assert hist[0].submitted_by == "clerk-1" and hist[1].reason == "digits transposed in CHP row"
    assert hist[0].votes == [v1.votes[c.id] for c in e.races[rid].candidates]
    # the tally counts only the latest version
    box_vec = ing.tally.box_row(rid, b)
    assert box_vec[4] == v2.valid
    rebuilt, _ = build_tally(store, e)
    assert np.array_equal(rebuilt.races[rid].agg, ing.tally.races[rid].agg)


def test_bad_correction_keeps_previous_counted(loaded):
    store, e = loaded
    ing = Ingestor(store, e.id)
    rid = "x.01:metro"
    b = int(e.race_boxes[rid][0])
    good = make_sheet(e, rid, b, random.Random(3))
    ing.submit([good])
    bad = replace(good, valid=good.valid + 3, reason="typo")
    rep = ing.submit([bad])
    assert rep.quarantined == 1 and rep.rejections[0].rules
    assert ing.tally.box_row(rid, b)[4] == good.valid
    q = store.quarantined(e.id)
    assert len(q) == 1 and q[0]["box_id"] == good.box_id and any(err["rule"] == "E5" for err in q[0]["errors"])


def test_conflicting_writer_is_detected(loaded):
    store, e = loaded
    rid = "x.01:metro"
    b = int(e.race_boxes[rid][0])
    rng = random.Random(4)
    a = Ingestor(store, e.id)
    other = Ingestor(store, e.id)  # a second writer with its own (now stale) heads
    a.submit([make_sheet(e, rid, b, rng)])
    rep = other.submit([make_sheet(e, rid, b, rng)])  # retried after re-reading heads: becomes version 2
    assert rep.accepted == 1
    assert [h.version for h in store.history(e.id, e.box_ids[b], rid)] == [1, 2]
    from sandik.store.repository import now_iso

    row = ("x", "b", "r", "official", 1, "h", *([0] * 9), *([None] * 6), "[]", "[]", "", None, now_iso(), "", "", "")
    store.append_sheets([row])
    with pytest.raises(StoreError):
        store.append_sheets([row])


@pytest.mark.parametrize("pipeline", [False, True], ids=["in-process", "writer-child"])
def test_stale_writer_over_several_pipelined_batches(loaded, pipeline):
    """A second writer whose first batch conflicts redoes it and the batches prepared on top of it.

    With the writer child (SQLite files only), batch n+1 was checked against batch n's
    versions while n was in flight: both are redone."""
    store, e = loaded
    rng = random.Random(9)
    pairs = [(rid, b) for rid, bs in e.race_boxes.items() for b in bs.tolist()]
    a = Ingestor(store, e.id)
    stale = Ingestor(store, e.id)
    first = [make_sheet(e, rid, b, rng) for rid, b in pairs[:4]]
    only_a = make_sheet(e, *pairs[-1], rng)  # a box the stale writer never sends
    a.submit([*first, only_a])
    later = [make_sheet(e, rid, b, rng) for rid, b in pairs[:10]]
    rep = stale.submit(later, batch_size=3, pipeline=pipeline)
    stale.close()
    assert rep.accepted == 10 and rep.corrections == 4
    for rid, b in pairs[:4]:
        assert [h.version for h in store.history(e.id, e.box_ids[b], rid)] == [1, 2]
    rebuilt, _ = build_tally(store, e)
    for rid in e.races:
        assert np.array_equal(rebuilt.races[rid].agg, stale.tally.races[rid].agg)
    assert stale.tally.box_row(only_a.race_id, e.box_index[only_a.box_id])[4] == only_a.valid


def test_a_dead_writer_child_is_an_error_and_the_next_submit_starts_a_new_one(tmp_path):
    """kill -9 of the writer child: the batch in flight is not acknowledged (a StoreError), and
    the next bulk submission starts a fresh child and stores everything exactly once."""
    import os
    import signal

    from sandik.store.repository import open_store

    store = open_store(str(tmp_path / "w.sqlite"))
    e = make_election(12, provinces=2, districts=3, boxes=40)
    store.save_election(e)
    rng = random.Random(12)
    sheets = [make_sheet(e, rid, b, rng) for rid, bs in e.race_boxes.items() for b in bs.tolist()]
    ing = Ingestor(store, e.id)
    ing.submit(sheets[:4], batch_size=2, pipeline=True)  # starts the child
    os.kill(ing._writer._proc.pid, signal.SIGKILL)
    ing._writer._proc.wait()
    with pytest.raises(StoreError):
        ing.submit(sheets[4:10], batch_size=2, pipeline=True)
    assert ing._writer is None
    rep = ing.submit(sheets, batch_size=3, pipeline=True)
    ing.close()
    assert rep.accepted + rep.duplicates == len(sheets)
    assert store.count_sheets(e.id) == len(sheets)
    rebuilt, _ = build_tally(store, e)
    for rid in e.races:
        assert np.array_equal(rebuilt.races[rid].agg, ing.tally.races[rid].agg)
