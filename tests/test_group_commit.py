"""Group commit in the live service: submissions that queue up behind a busy writer are stored
in one transaction, yet each gets the report it would have got alone, in queue order."""

from __future__ import annotations

import random
import threading
from concurrent.futures import Future
from dataclasses import replace

import numpy as np

from sandik.ingest.pipeline import Ingestor, build_tally
from sandik.live.service import LiveService
from tests.factories import make_election, make_sheet


def _block(svc: LiveService) -> threading.Event:
    """Occupy the writer thread until the returned event is set, so that jobs queue up."""
    release, started = threading.Event(), threading.Event()

    def hold() -> None:
        started.set()
        release.wait(30)

    svc._queue.put((hold, Future()))
    assert started.wait(30)
    return release


def test_queued_submissions_share_one_commit_and_keep_their_own_reports(store):
    e = make_election(5, provinces=2, districts=3, boxes=6)
    store.save_election(e)
    svc = LiveService(store, e.id)
    svc.start()
    try:
        rng = random.Random(5)
        pairs = [(rid, b) for rid, bs in e.race_boxes.items() for b in bs.tolist()]
        first = [make_sheet(e, rid, b, rng) for rid, b in pairs[:8]]
        again = list(first[:3])  # identical resubmissions: no-ops
        fixed = [replace(make_sheet(e, first[0].race_id, e.box_index[first[0].box_id], rng), reason="recount")]
        bad = [replace(make_sheet(e, *pairs[8], rng), valid=10**6)]  # E5/E6: quarantined
        rest = [make_sheet(e, rid, b, rng) for rid, b in pairs[9:20]]

        writes = []
        real_write = svc.ingestor._write

        def counting_write(prep):
            writes.append(len(prep.rows))
            return real_write(prep)

        svc.ingestor._write = counting_write  # type: ignore[method-assign]
        release = _block(svc)
        futures = [svc.submit(batch, origin=f"job{i}") for i, batch in enumerate([first, again, fixed, bad, rest])]
        release.set()
        reports = [f.result(timeout=60) for f in futures]

        assert writes == [8 + 1 + 11], writes  # one transaction for all five submissions
        assert [(r.accepted, r.duplicates, r.corrections, r.quarantined) for r in reports] == [(8, 0, 0, 0), (0, 3, 0, 0), (1, 0, 1, 0), (0, 0, 0, 1), (11, 0, 0, 0)]
        assert reports[3].rejections[0].origin == "job3#1"
        assert [h.version for h in store.history(e.id, first[0].box_id, first[0].race_id)] == [1, 2]
        fresh, _ = build_tally(store, e)
        for rid, rt in fresh.races.items():
            assert np.array_equal(svc.tally.races[rid].agg, rt.agg), rid
        assert svc.tally.box_row(first[0].race_id, e.box_index[first[0].box_id])[4] == fixed[0].valid
    finally:
        svc.stop()


def test_a_group_equals_the_same_submissions_one_by_one(store):
    """``Ingestor.submit_group`` against ``submit`` per job on a second election copy: same reports, rows and tally."""
    rng = random.Random(11)
    e = make_election(11, provinces=2, districts=2, boxes=5)
    e2 = make_election(11, provinces=2, districts=2, boxes=5, eid="test-2024-b")
    store.save_election(e)
    store.save_election(e2)
    pairs = [(rid, b) for rid, bs in e.race_boxes.items() for b in bs.tolist()]
    jobs = []
    for i in range(6):
        batch = [make_sheet(e, *rng.choice(pairs), rng) for _ in range(rng.randint(1, 8))]
        if i and rng.random() < 0.7:
            batch.append(rng.choice(jobs[-1][0]))  # a repeat of the previous job's sheet
        jobs.append((batch, f"job{i}", "t"))
    grouped = Ingestor(store, e.id).submit_group(jobs)
    single = Ingestor(store, e2.id)
    one_by_one = [single.submit([replace(s) for s in items], origin=o, submitted_by=by) for items, o, by in jobs]
    strip = lambda r: (r.received, r.accepted, r.duplicates, r.corrections, r.quarantined)  # noqa: E731
    assert [strip(r) for r in grouped] == [strip(r) for r in one_by_one]
    t1, _ = build_tally(store, e)
    t2, _ = build_tally(store, e2)
    for rid in e.races:
        assert np.array_equal(t1.races[rid].agg, t2.races[rid].agg), rid
