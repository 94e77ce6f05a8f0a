"""kill -9 the server while clients write through the API, start it again: no acknowledged sheet is
lost, none is counted twice, and what the server shows equals a recount of the log. On SQLite
(one process) and on PostgreSQL (two workers; a worker or the whole group is killed)."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from dataclasses import replace


from sandik.auth.tokens import TokenStore
from sandik.store.repository import open_store
from tests.factories import make_election, make_sheet
from tests.scaleout_support import Server, expected_results, post_sheets, served_results, worker_pids


CYCLES = int(os.environ.get("SANDIK_CRASH_CYCLES", "5"))  # the 20: SANDIK_CRASH_CYCLES=20 (docs/benchmarks.md)


def _hash(e, s):
    return s.content_hash(list(e.races[s.race_id].candidate_index))


def test_kill9_server_during_writes(db_url):
    e = make_election(41, provinces=2, districts=3, boxes=40)
    st = open_store(db_url)
    st.save_election(e)
    _tok, secret = TokenStore(st).create(name="board", role="admin")
    pg = st.dialect == "postgresql"
    st.close()
    rng = random.Random(41)
    sheets = [make_sheet(e, rid, b, rng) for rid, bs in e.race_boxes.items() for b in bs.tolist()]
    rng.shuffle(sheets)
    sheets += [replace(make_sheet(e, s.race_id, e.box_index[s.box_id], rng), reason="recount") for s in rng.sample(sheets, 60)]
    size = max(2, min(15, len(sheets) // (6 * CYCLES)))  # enough batches for every cycle (up to 5 each)
    batches = [sheets[i : i + size] for i in range(0, len(sheets), size)]

    srv = Server(db_url, workers=2 if pg else 1).start()
    acked: list = []
    kills = 0
    i = 0
    try:
        for cycle in range(CYCLES):
            # Write a few batches, then kill while one more is in flight.
            for _ in range(rng.randint(1, 4)):
                status, out = post_sheets(srv, e.id, secret, batches[i])
                assert status == 200, out
                acked += batches[i]
                i += 1
            result: dict = {}

            def inflight(batch=batches[i]):
                try:
                    result["r"] = post_sheets(srv, e.id, secret, batch)
                except OSError as exc:  # the server died under it: not acknowledged
                    result["r"] = (None, str(exc))

            t = threading.Thread(target=inflight)
            t.start()
            time.sleep(rng.uniform(0, 0.03))
            if pg and cycle % 2 == 0:
                pids = worker_pids(srv, 2)
                for pid in pids:
                    os.kill(pid, signal.SIGKILL)  # both workers; the supervisor starts them again
            else:
                srv.kill9()
            kills += 1
            t.join(30)
            if result.get("r", (None,))[0] == 200:
                acked += batches[i]
            # The batch is sent again after the restart either way: an identical resubmission is a no-op.
            if srv.proc.poll() is not None:
                srv.start()
            else:
                worker_pids(srv, 2)
            # Every acknowledged sheet is stored.
            st = open_store(db_url)
            with st.engine.connect() as conn:
                stored = {h for (h,) in conn.exec_driver_sql("SELECT content_hash FROM sheets")}
            st.close()
            lost = [s for s in acked if _hash(e, s) not in stored]
            assert not lost, f"cycle {cycle}: {len(lost)} acknowledged sheets lost"
        for b in batches[i:]:
            status, out = post_sheets(srv, e.id, secret, b)
            assert status == 200, out
            final = out["version"]
        assert kills == CYCLES
        # Each distinct version stored once; what every process serves equals a recount.
        expected_rows = 0
        last: dict = {}
        for s in sheets:
            h = _hash(e, s)
            if last.get(s.key) != h:
                expected_rows += 1
                last[s.key] = h
        st = open_store(db_url)
        assert st.count_sheets(e.id) == expected_rows
        st.close()
        want = expected_results(db_url, e.id)
        for _ in range(4 if pg else 1):
            assert served_results(srv, e.id, sorted(e.races), final) == want
    finally:
        srv.stop()
