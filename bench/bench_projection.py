"""Benchmark: projecting every mayor race of the 2024 Turkish local elections after a batch of sheets.

    .venv/bin/python bench/bench_projection.py [--fraction 0.33] [--batch 2000] [--repeat 3]

Builds the projection frames (2019 baseline per box), replays the simulated
night into a live tally up to ``fraction`` of its sheets, then times:

* a full refresh: projection and call of all ~1,400 races (with the pooled prior);
* an incremental refresh after one more batch: only the races the batch touched,
  plus the races still in prior mode (their prior moves with every batch).

Each figure is printed beside its ratio to the 1 s goal of issue 4, with
wall and CPU time and the load average of the machine (other jobs share it).
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the sandik CLI (and so the server) sets it: see sandik/cli.py

import numpy as np  # noqa: E402

from sandik.backtest.data import ALLIANCES_TR
from sandik.core.projection.election import build_frames, project_election, race_state
from sandik.core.tally import LiveTally, sheet_vector
from sandik.datasets import registry

LIMIT_S = 1.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fraction", type=float, default=0.33)
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=2024)
    args = ap.parse_args()

    ds = registry.get("tr-2024")
    prev, e = ds.elections()
    t = time.perf_counter()
    frames = build_frames(e, prev, alliances=ALLIANCES_TR)
    t_frames = time.perf_counter() - t
    night = ds.night(e, args.seed)
    tally = LiveTally(e)
    cut = int(len(night) * args.fraction)

    def apply(items):
        for tm in items:
            s = tm.sheet
            b = e.box_index[s.box_id]
            tally.apply(s.race_id, b, sheet_vector(s, e.races[s.race_id], int(e.box_registered[b])))

    apply(night[:cut])
    full, full_cpu = [], []
    for _ in range(args.repeat):
        t, c = time.perf_counter(), time.process_time()
        out = project_election(e, tally, prev, frames=frames)
        full.append(time.perf_counter() - t)
        full_cpu.append(time.process_time() - c)
    batch = night[cut : cut + args.batch]
    apply(batch)
    touched = {tm.sheet.race_id for tm in batch}
    prior_mode = {rid for rid, oc in out.items() if oc.projection.mode in ("prior", "no_baseline")}
    todo = sorted(touched | prior_mode)
    inc, inc_cpu = [], []
    for _ in range(args.repeat):
        t, c = time.perf_counter(), time.process_time()
        project_election(e, tally, prev, frames=frames, races=todo)
        inc.append(time.perf_counter() - t)
        inc_cpu.append(time.process_time() - c)
    reported = sum(int(race_state(f, tally).reported.sum()) for f in frames.values())
    boxes = sum(f.n_units for f in frames.values())
    print(f"races projected: {len(frames):,} ({boxes:,} box-race units, {reported:,} counted = {100 * reported / boxes:.0f}%)")
    print(f"frames built once per night: {t_frames:.2f} s")
    best_full = min(full)
    print(f"full refresh, all races: best {best_full:.2f} s wall ({min(full_cpu):.2f} s CPU) of {args.repeat} (median {np.median(full):.2f} s); ratio to the {LIMIT_S:g} s goal: {best_full / LIMIT_S:.2f}")
    best_inc = min(inc)
    print(f"incremental refresh after a batch of {len(batch):,} sheets ({len(todo):,} races: {len(touched):,} touched + prior-mode): best {best_inc:.2f} s wall ({min(inc_cpu):.2f} s CPU); ratio to the {LIMIT_S:g} s goal: {best_inc / LIMIT_S:.2f}")
    print(f"per race: {1000 * best_full / len(frames):.2f} ms (full), {1000 * best_inc / max(len(todo), 1):.2f} ms (incremental)")
    print(f"load average (1, 5, 15 min) at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
