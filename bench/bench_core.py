"""Core benchmark on the whole 2024 night (all mayor races, every simulated box).

Prints each figure beside its ratio to its limit; ratios <= 1.0 meet the goal.
    ingest:   sheets/s through the full ingest path (dedupe, validate, durable SQLite
              store, live tally) vs the goal of 50,000/s, and its time vs 3x a bare
              executemany of the same rows into the same table, measured in this run
    tally:    incremental update per sheet (goal < 20 us), with a bare numpy
              row-add of the same shape measured in this run for reference
    rebuild:  all tallies rebuilt from the store (goal < 2 s)
    memory:   RSS of a fresh process holding the election loaded and tallied (goal < 1.5 GB)

Run: .venv/bin/python bench/bench_core.py [--db-dir DIR]
"""

from __future__ import annotations

import argparse
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from sandik.core.tally import LiveTally, sheet_vector
from sandik.datasets import registry
from sandik.ingest.pipeline import Ingestor, build_tally
from sandik.store.repository import SHEET_COLUMNS, open_store


def line(name: str, value: float, unit: str, limit: float, *, higher_is_better: bool = False, note: str = "") -> None:
    ratio = (limit / value) if higher_is_better else (value / limit)
    verdict = "ok" if ratio <= 1.0 else "OVER"
    print(f"{name:<44} {value:>12,.2f} {unit:<10} limit {limit:>10,.2f} {unit:<10} ratio {ratio:5.2f} {verdict} {note}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db-dir", default=None)
    ap.add_argument("--batch", type=int, default=20000)
    args = ap.parse_args()
    tmp = Path(args.db_dir or tempfile.mkdtemp(prefix="sandik-bench-"))

    t0 = time.perf_counter()
    ds = registry.get("tr-2024")
    prev, e = ds.elections()
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    night = ds.night(e, 2024)
    t_sim = time.perf_counter() - t0
    sheets = [t.sheet for t in night]
    print(f"election {e.id}: {len(e.races):,} races, {len(e.box_ids):,} boxes, {len(sheets):,} sheets; load {t_load:.2f} s, simulate {t_sim:.2f} s")

    # 1. full ingest path into SQLite
    db = tmp / "ingest.sqlite"
    st = open_store(str(db))
    st.save_election(prev)
    st.save_election(e)
    ing = Ingestor(st, e.id)
    t0 = time.perf_counter()
    rep = ing.submit(sheets, batch_size=args.batch)  # on an SQLite file: written by the writer child while the next batch is checked
    t_ingest = time.perf_counter() - t0
    ing.close()
    assert rep.accepted == len(sheets), rep.to_dict(5)
    rate = len(sheets) / t_ingest

    # 2. bare executemany of the same rows, same table and pragmas, same batches (read from the
    # ingested file a batch at a time, outside the timing, so that they are not all held at once)
    bare_db = tmp / "bare.sqlite"
    st2 = open_store(str(bare_db))
    st2.close()
    raw = sqlite3.connect(bare_db)
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute("PRAGMA synchronous=FULL")
    raw.execute("PRAGMA cache_size=-65536")  # the store's own settings (store.repository)
    marks = ", ".join("?" * len(SHEET_COLUMNS))
    sql = f"INSERT INTO sheets ({', '.join(SHEET_COLUMNS)}) VALUES ({marks})"
    src = sqlite3.connect(db)
    cur = src.execute(f"SELECT {', '.join(SHEET_COLUMNS)} FROM sheets ORDER BY seq")
    t_bare = 0.0
    n_rows = 0
    while batch := cur.fetchmany(args.batch):
        t0 = time.perf_counter()
        with raw:
            raw.executemany(sql, batch)
        t_bare += time.perf_counter() - t0
        n_rows += len(batch)
    src.close()
    raw.close()

    # 3. incremental tally update per sheet
    items = []
    for s in sheets:
        b = e.box_index[s.box_id]
        items.append((s.race_id, b, sheet_vector(s, e.races[s.race_id], int(e.box_registered[b]))))
    fresh = LiveTally(e)
    t0 = time.perf_counter()
    for rid, b, vec in items:
        fresh.apply(rid, b, vec)
    t_apply = (time.perf_counter() - t0) / len(items) * 1e6
    refs = {w: np.zeros((4, w), dtype=np.int64) for w in {v.shape[0] for _, _, v in items}}
    rows_ref = np.array([0, 1, 2], dtype=np.int64)
    t0 = time.perf_counter()
    for _, _, vec in items:
        refs[vec.shape[0]][rows_ref] += vec
    t_ref = (time.perf_counter() - t0) / len(items) * 1e6

    # 4. rebuild from the store
    t0 = time.perf_counter()
    rebuilt, _ = build_tally(st, e)
    t_rebuild = time.perf_counter() - t0
    for rid in e.races:
        assert np.array_equal(rebuilt.races[rid].agg, ing.tally.races[rid].agg)
        assert np.array_equal(fresh.races[rid].agg, ing.tally.races[rid].agg)

    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
    # What a restarted server holds: the election, its tally rebuilt from the store, the heads.
    # VmHWM, not ru_maxrss: a child's ru_maxrss starts from its parent's size at fork.
    probe = (
        "import sys; from sandik.store.repository import open_store; from sandik.ingest.pipeline import Ingestor; "
        "st = open_store(sys.argv[1]); ing = Ingestor(st, sys.argv[2]); ing.election.box_races; ing.election.race_box_set; "
        "print(int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]) / 1024 / 1024)"
    )
    server_gb = float(subprocess.run([sys.executable, "-c", probe, str(db), e.id], check=True, capture_output=True, text=True).stdout)
    print()
    line("ingest (validate + durable SQLite + tally)", rate, "sheets/s", 50000, higher_is_better=True)
    line("ingest time vs 3x bare executemany", t_ingest, "s", 3 * t_bare, note=f"(bare executemany {t_bare:.2f} s = {n_rows / t_bare:,.0f} rows/s)")
    line("incremental tally update", t_apply, "us/sheet", 20.0, note=f"(bare numpy 3-row add {t_ref:.2f} us)")
    line("full rebuild of all tallies from the store", t_rebuild, "s", 2.0)
    line("RSS of a process holding the election tallied", server_gb, "GB", 1.5, note="(fresh process: election + tally rebuilt from the store + version heads)")
    line("peak RSS of this benchmark", rss_gb, "GB", 1.5, note="(also holds the 337k simulated input sheets)")


if __name__ == "__main__":
    main()
