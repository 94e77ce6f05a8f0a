"""Projections, forensics and news in a live server process, on the 2024 election.

    .venv/bin/python bench/bench_live_extras.py [--fraction 0.2] [--batch 500] [--seed 2024]

One run, one machine: the 2024 election (and 2019, the baseline) in a fresh SQLite
file, a real ``LiveService`` (single writer), ``fraction`` of the simulated night
submitted through it. Then:

* the projection worker's first pass (every race with boxes, in chunks, resting as long
  as each chunk took) and, after one more batch, the incremental pass (only the races the
  batch touched), printed with its ratio to the first pass measured here;
* from the batch's acknowledgement to its projections being served (the worker's timer
  is part of it), with its ratio to the 1 s goal of issue 4;
* the fingerprint page (histogram, SVG, integer test) built once, then served from the
  cache, and the ratio between them;
* the news facts and checker built once per version, and one article checked.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from sandik.datasets import registry
from sandik.live.analytics import AnalyticsCache
from sandik.live.projections import ProjectionWorker
from sandik.live.service import LiveService
from sandik.observers.forensics_store import fingerprint_page
from sandik.store.repository import open_store

GOAL_S = 1.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fraction", type=float, default=0.2)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--seed", type=int, default=2024)
    args = ap.parse_args()

    ds = registry.get("tr-2024")
    prev, e = ds.elections()
    with tempfile.TemporaryDirectory() as d:
        st = open_store(str(Path(d) / "bench.sqlite"))
        st.save_election(prev)
        st.save_election(e)
        night = ds.night(e, args.seed)
        cut = int(len(night) * args.fraction)
        svc = LiveService(st, e.id)
        svc.start()
        t = time.perf_counter()
        for i in range(0, cut, 5000):
            svc.submit_sync([tm.sheet for tm in night[i : min(cut, i + 5000)]])
        print(f"{cut:,} sheets ({100 * args.fraction:.0f}% of the night) through the live service: {time.perf_counter() - t:.1f} s")

        w = ProjectionWorker(svc, interval=0.05)
        t = time.perf_counter()
        w.frames()
        t_frames = time.perf_counter() - t
        t = time.perf_counter()
        first = w.refresh()
        t_first = time.perf_counter() - t
        print(f"frames (baseline per box), once per server: {t_frames:.2f} s")
        print(f"first pass: {len(first):,} races in {t_first:.1f} s wall (half of it resting between chunks), {1000 * t_first / max(1, len(first)):.1f} ms per race")

        w.start()
        batch = [tm.sheet for tm in night[cut : cut + args.batch]]
        touched = {s.race_id for s in batch}
        passes = w.passes
        t = time.perf_counter()
        svc.submit_sync(batch)
        acked = time.perf_counter()
        ok = w.wait_for(svc.version, timeout=120)
        served = time.perf_counter()
        assert ok and w.passes > passes
        inc = w.last_pass_seconds or 0.0
        print(f"batch of {len(batch):,} sheets touching {len(touched):,} races: acknowledged in {acked - t:.2f} s")
        print(f"incremental pass: {inc:.2f} s (last chunk); ratio to the first pass: {inc / t_first:.3f}")
        print(f"acknowledged -> projections served: {served - acked:.2f} s; ratio to the {GOAL_S:g} s goal: {(served - acked) / GOAL_S:.2f}")
        w.stop()

        cache = AnalyticsCache()
        t = time.perf_counter()
        cache.get("fingerprint", (svc.version, 0), lambda: fingerprint_page(st, e.id))
        t_fp = time.perf_counter() - t
        t = time.perf_counter()
        for _ in range(1000):
            cache.get("fingerprint", (svc.version, 0), lambda: fingerprint_page(st, e.id))
        t_hit = (time.perf_counter() - t) / 1000
        print(f"fingerprint page with the integer test, built: {t_fp:.2f} s; served from the cache: {1e6 * t_hit:.1f} µs; ratio cached/built: {t_hit / t_fp:.2e}")

        from sandik.api.routes.news import _build_checker

        t = time.perf_counter()
        facts, checker = _build_checker(svc)
        t_facts = time.perf_counter() - t
        text = "CHP won Istanbul with 51.1% of the vote, and turnout in Ankara was 78%."
        t = time.perf_counter()
        res = checker.check(text)
        t_check = time.perf_counter() - t
        print(f"news facts + checker built (once per version, at most every 5 s): {t_facts:.2f} s; one article checked: {1000 * t_check:.1f} ms ({len(res.claims)} claims); ratio check/build: {t_check / t_facts:.3f}")
        svc.stop()
        st.close()


if __name__ == "__main__":
    main()
