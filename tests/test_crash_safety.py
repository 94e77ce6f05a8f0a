"""kill -9 the ingest in the middle of a file, restart it: no acknowledged sheet is lost, none is
counted twice, and the rebuilt tallies equal a recount. On SQLite and on PostgreSQL."""

import os
import random
import signal
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from sandik.core.tally import recount, sheet_vector
from sandik.formats import election_file
from sandik.formats.sheet_files import write_ndjson
from sandik.ingest.pipeline import build_tally
from sandik.store.repository import open_store
from tests.factories import make_election, make_sheet

SANDIK = [sys.executable, "-m", "sandik.cli"]


def _stream(e, seed):
    rng = random.Random(seed)
    sheets = [make_sheet(e, rid, b, rng) for rid, bs in e.race_boxes.items() for b in bs.tolist()]
    rng.shuffle(sheets)
    corrections = [replace(make_sheet(e, s.race_id, e.box_index[s.box_id], rng), reason="recount") for s in rng.sample(sheets, 150)]
    return sheets + corrections


def _hash(e, s):
    return s.content_hash(list(e.races[s.race_id].candidate_index))


@pytest.mark.parametrize("batch", [150, 2000], ids=["small-batches", "writer-child"])
def test_kill_during_ingest_loses_nothing_counts_nothing_twice(db_url, tmp_path, batch):
    """With 2,000-sheet batches on SQLite the parent checks batch n+1 while a child process writes
    batch n (store/sqlite_writer.py): killed after its first acknowledgement, the parent dies with
    a batch in the child's hands, which may still commit; it was never acknowledged."""
    # Corrections come last in the stream: the kills must fall before them, or the restarted
    # ingest replays an original over its correction, a new version by design.
    e = make_election(21, provinces=3, districts=3, boxes=250) if batch < 1000 else make_election(21, provinces=4, districts=4, boxes=450)
    ef = tmp_path / "e.election.json.gz"
    election_file.write(e, ef)
    items = _stream(e, 21)
    data = tmp_path / "sheets.ndjson"
    with open(data, "w") as fh:
        write_ndjson(items, fh)
    env = {**os.environ, "SANDIK_DB": db_url}
    subprocess.run([*SANDIK, "load", str(ef)], check=True, env=env, capture_output=True)

    rng = random.Random(5)
    kills = 0
    for cycle in range(4):
        proc = subprocess.Popen([*SANDIK, "ingest", str(data), "--acks", "--batch-size", str(batch)], stdout=subprocess.PIPE, env=env, text=True)
        want = rng.randint(1, 6) if batch < 1000 else 1
        acked = 0
        for line in proc.stdout:  # type: ignore[union-attr]
            if line.startswith("ack "):
                acked = int(line.split()[1])
                want -= 1
                if want == 0:
                    break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += proc.returncode == -signal.SIGKILL
        # every sheet acknowledged so far is stored (as itself or as an identical earlier version)
        st = open_store(db_url)
        with st.engine.connect() as conn:
            stored = {h for (h,) in conn.exec_driver_sql("SELECT content_hash FROM sheets")}
        st.close()
        missing = [s for s in items[:acked] if _hash(e, s) not in stored]
        assert not missing, f"cycle {cycle}: {len(missing)} acknowledged sheets lost"
    assert kills >= 1

    done = subprocess.run([*SANDIK, "ingest", str(data), "--json"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr

    # the store holds each distinct version exactly once, and the tallies equal a recount
    st = open_store(db_url)
    expected_rows = 0
    last_hash: dict = {}
    latest: dict = {}
    for s in items:
        h = _hash(e, s)
        if last_hash.get(s.key) != h:
            expected_rows += 1
            last_hash[s.key] = h
            b = e.box_index[s.box_id]
            latest[(b, s.race_id)] = sheet_vector(s, e.races[s.race_id], int(e.box_registered[b]))
    assert st.count_sheets(e.id) == expected_rows
    tally, _ = build_tally(st, e)
    oracle = recount(e, latest)
    for rid, rt in tally.races.items():
        for area, row in rt.row_of.items():
            assert np.array_equal(rt.agg[row], oracle[(rid, area)]), (rid, area)
    st.close()
