"""Two live services on one database (as two processes would be): each counts what the other
writes, concurrent writers never leave a follower behind for good, and seq order is commit order."""

from __future__ import annotations

import os
import random
import threading
import time
from dataclasses import replace

import numpy as np
import pytest

from sandik.ingest.pipeline import build_tally
from sandik.live.service import LiveService
from sandik.store.repository import LOG_LOCK, open_store
from tests import postgres
from tests.factories import make_election, make_sheet


@pytest.fixture
def pg_store(pg_server):
    name = f"sandik_follow_{os.getpid()}"
    st = open_store(postgres.fresh_database(pg_server, name))
    yield st
    st.close()
    postgres.drop_database(pg_server, name)


def _second(st):
    """Another connection pool on the same database: what another process would have."""
    return open_store(st.engine.url.render_as_string(hide_password=False))


def _same_as_recount(st, svc):
    fresh, _ = build_tally(st, svc.election)
    for rid, rt in fresh.races.items():
        assert np.array_equal(svc.tally.races[rid].agg, rt.agg), rid


def _until(cond, timeout=60.0):
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            return False
        time.sleep(0.01)
    return True


def test_two_services_write_concurrently_and_agree(store):
    e = make_election(3, provinces=2, districts=3, boxes=40)
    store.save_election(e)
    other = _second(store)
    a, b = LiveService(store, e.id), LiveService(other, e.id)
    a.start(), b.start()
    a.follow(0.05), b.follow(0.05)
    try:
        rng = random.Random(3)
        sheets = [make_sheet(e, rid, bx, rng) for rid, bs in e.race_boxes.items() for bx in bs.tolist()]
        rng.shuffle(sheets)
        # Corrections of the same boxes sent to both services: their writes conflict on versions.
        fixes = [replace(make_sheet(e, s.race_id, e.box_index[s.box_id], rng), reason="recount") for s in rng.sample(sheets, 60)]
        half = len(sheets) // 2

        def feed(svc, items):
            for i in range(0, len(items), 25):
                svc.submit_sync(items[i : i + 25])

        ts = [threading.Thread(target=feed, args=(a, sheets[:half] + fixes[:30])), threading.Thread(target=feed, args=(b, sheets[half:] + fixes[30:]))]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        top = store.max_seq(e.id)
        # Both reach the log's head by themselves (NOTIFY or poll), and count the same thing.
        assert _until(lambda: a.version == top and b.version == top), (a.version, b.version, top)
        assert store.count_sheets(e.id) == len(sheets) + len(fixes)
        _same_as_recount(store, a)
        _same_as_recount(store, b)
        # Heads followed too: a correction through either one gets the next version at once.
        s = fixes[0]
        again = replace(make_sheet(e, s.race_id, e.box_index[s.box_id], random.Random(99)), reason="second recount")
        rep = b.submit_sync([again])
        assert rep.accepted == 1 and rep.corrections == 1
        assert [h.version for h in store.history(e.id, s.box_id, s.race_id)][-1] == 3
    finally:
        a.stop(), b.stop()
        other.close()


def test_versions_mean_the_same_state_in_every_process(store):
    """A service's version is a log position: at version v its tally is the log's state at v, whoever wrote it."""
    e = make_election(4, provinces=1, districts=2, boxes=30)
    store.save_election(e)
    other = _second(store)
    a, b = LiveService(store, e.id), LiveService(other, e.id)
    a.start(), b.start()
    try:
        rng = random.Random(4)
        sheets = [make_sheet(e, rid, bx, rng) for rid, bs in e.race_boxes.items() for bx in bs.tolist()]
        a.submit_sync(sheets[:20])
        # b has not followed: its own write lands after a's rows, so it must count them too
        # before it may say "version = its top".
        b.submit_sync(sheets[20:30])
        assert b.version == store.max_seq(e.id)
        _same_as_recount(store, b)
        a.catch_up()
        assert a.version == b.version
        assert all(np.array_equal(a.tally.races[r].agg, b.tally.races[r].agg) for r in e.races)
    finally:
        a.stop(), b.stop()
        other.close()


def test_pg_seq_order_is_commit_order(pg_store):
    """A writer that holds the log lock makes every other writer wait: seqs are taken in commit order.
    (PostgreSQL only: SQLite serialises writers by its own write lock.)"""
    store = pg_store
    e = make_election(5, provinces=1, districts=1, boxes=10)
    store.save_election(e)
    other = _second(store)
    a, b = LiveService(store, e.id), LiveService(other, e.id)
    rng = random.Random(5)
    sheets = [make_sheet(e, rid, bx, rng) for rid, bs in e.race_boxes.items() for bx in bs.tolist()]
    try:
        done = threading.Event()
        with store.engine.begin() as conn:
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({LOG_LOCK})")
            t = threading.Thread(target=lambda: (b.submit_sync(sheets[:3]), done.set()))
            t.start()
            # The other writer cannot insert (nor take a seq) while this transaction holds the lock.
            assert not done.wait(0.5)
            assert store.max_seq(e.id) == 0
        t.join(10)
        assert done.is_set() and store.max_seq(e.id) > 0
        a.catch_up()
        assert a.version == b.version
    finally:
        a.stop(), b.stop()
        other.close()


def test_pg_notify_wakes_the_follower(pg_store):
    """PostgreSQL only: SQLite has no NOTIFY (its follower polls)."""
    store = pg_store
    e = make_election(6, provinces=1, districts=1, boxes=10)
    store.save_election(e)
    other = _second(store)
    a, b = LiveService(store, e.id), LiveService(other, e.id)
    a.start()
    # A long poll interval: only the NOTIFY can bring b up to date within the wait below.
    b.follow(interval=30)
    try:
        rng = random.Random(6)
        sheets = [make_sheet(e, rid, bx, rng) for rid, bs in e.race_boxes.items() for bx in bs.tolist()]
        assert _until(lambda: b._follower._conn is not None, 10)
        a.submit_sync(sheets[:5])
        assert _until(lambda: b.version == a.version, 10)
        assert b._follower.notifications >= 1
    finally:
        a.stop(), b.stop()
        other.close()
