"""`sandik serve --workers 2` on one PostgreSQL: a sheet accepted through one process is counted by
the other; a client that sends the version it has seen never gets an older state; a worker killed
with SIGKILL is started again and catches up from the log. A few hundred sheets (the load is in bench/)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
from dataclasses import replace

import pytest

from sandik.auth.tokens import TokenStore
from sandik.store.repository import open_store
from tests import postgres
from tests.factories import make_election, make_sheet
from tests.scaleout_support import SANDIK, Server, expected_results, get, post_sheets, served_results, worker_pids


@pytest.fixture
def pg_db(pg_server):
    name = f"sandik_workers_{os.getpid()}"
    url = postgres.fresh_database(pg_server, name)
    yield url
    postgres.drop_database(pg_server, name)


def test_two_workers_on_postgresql(pg_db):
    e = make_election(31, provinces=2, districts=3, boxes=30)
    st = open_store(pg_db)
    st.save_election(e)
    _tok, secret = TokenStore(st).create(name="board", role="admin")
    st.close()
    rng = random.Random(31)
    sheets = [make_sheet(e, rid, b, rng) for rid, bs in e.race_boxes.items() for b in bs.tolist()]
    rng.shuffle(sheets)
    sheets += [replace(make_sheet(e, s.race_id, e.box_index[s.box_id], rng), reason="recount") for s in rng.sample(sheets, 40)]
    srv = Server(pg_db, workers=2).start()
    try:
        pids = worker_pids(srv, 2)
        assert len(pids) == 2, pids
        seen = 0
        killed = False
        for i in range(0, len(sheets), 20):
            status, out = post_sheets(srv, e.id, secret, sheets[i : i + 20])
            assert status == 200, out
            assert out["version"] >= seen  # versions this client sees never go backwards...
            seen = out["version"]
            for _ in range(3):  # ...whichever process its next requests land on
                s, h, body = get(srv, f"/api/elections/{e.id}/version", {"X-Sandik-Min-Version": str(seen)})
                assert s == 200 and body["version"] >= seen and int(h["x-sandik-version"] if "x-sandik-version" in h else body["version"]) >= seen
            if not killed and i >= len(sheets) // 2:
                os.kill(next(iter(pids)), signal.SIGKILL)  # the supervisor starts it again; it rebuilds from the log
                killed = True
        final = seen
        want = expected_results(pg_db, e.id)
        now = worker_pids(srv, 2)
        assert len(now) == 2 and set(now) != set(pids)  # the killed worker was replaced
        # Every process serves exactly the recount of the stored log.
        for _ in range(6):
            assert served_results(srv, e.id, sorted(e.races), final) == want
    finally:
        srv.stop()


def test_workers_refused_on_sqlite(tmp_path):
    r = subprocess.run([*SANDIK, "serve", "--workers", "2", "--db", str(tmp_path / "x.sqlite")], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "needs PostgreSQL" in r.stderr
