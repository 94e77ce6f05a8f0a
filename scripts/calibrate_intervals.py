"""Tune the calibration of the published projection intervals on one case, to report another held out.

    .venv/bin/python scripts/calibrate_intervals.py [--data turkey] [--step 0.05] [--seed 0]

Replays the case in every arrival order with the raw intervals (every
``interval_scale*`` at 1: the spread of the bootstrap draws as it is), keeps,
per race x checkpoint, the projected and final margin, the raw 90% margin
interval and the covariate imbalance z, then searches a grid of the four
constants of ``ModelParams`` (``interval_scale_prior`` for races with fewer
than ``min_units`` units of their own, ``interval_scale``, ``interval_scale_z``,
``interval_z_free`` for the others). Scaling the draws' spread around the point
by s scales the interval's two sides by s (up to the hard bounds), so each
candidate is scored on the stored rows without replaying again.

Criterion, in this order: (1) in every order but random, the 90% interval covers
at least 85% overall and in every bucket of expected vote counted with at least
40 race checkpoints; (2) random order covers 88-92% overall; (3) closest to 90%
in random order, overall and on the races with units of their own (the sum of
both distances); (4) narrowest mean interval on those races.

The defaults of ``ModelParams`` were set from this script's output on the Turkey
2019 -> 2024 replays; the İstanbul 2014 -> 2019 replays were not looked at.
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np

from sandik.backtest.data import istanbul_case, turkey_case
from sandik.backtest.orders import ORDERS
from sandik.backtest.runner import replay
from sandik.core.projection.model import ModelParams

MIN_BUCKET = 40
GRID = {
    "interval_scale_prior": np.round(np.arange(0.80, 1.001, 0.02), 2),
    "interval_scale": np.round(np.arange(0.50, 1.301, 0.05), 2),
    "interval_scale_z": (0.0, 0.25, 0.5, 0.75, 1.0, 1.5),
    "interval_z_free": (0.5, 1.0, 1.5, 2.0),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="turkey", choices=("turkey", "istanbul"))
    ap.add_argument("--step", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    case = turkey_case() if args.data == "turkey" else istanbul_case()
    raw = ModelParams(interval_scale=1.0, interval_scale_z=0.0, interval_scale_prior=1.0)
    rows: dict[str, dict[str, np.ndarray]] = {}
    for o in ORDERS:
        t, c = time.perf_counter(), time.process_time()
        rs = replay(case, o, seed=args.seed, step=args.step, params=raw, peers=()).rows
        rows[o] = {
            "pt": np.array([r["margin_pt"] for r in rs]),
            "true": np.array([r["margin_true"] for r in rs]),
            "lo": np.array([r["iv0.9"][0] for r in rs]),
            "hi": np.array([r["iv0.9"][1] for r in rs]),
            "z": np.array([r["imbalance_z"] for r in rs]),
            "prior": np.array([r["units_fitted"] < raw.min_units for r in rs]),
            "bucket": np.array([r["bucket"] for r in rs]),
        }
        print(f"{args.data} {o}: {len(rs):,} race checkpoints, raw 90% coverage {np.mean([r['cov0.9'] for r in rs]):.4f} ({time.perf_counter() - t:.0f} s wall, {time.process_time() - c:.0f} s CPU)", flush=True)

    def score(o: str, sp: float, s0: float, s1: float, zf: float) -> tuple[np.ndarray, np.ndarray]:
        r = rows[o]
        s = np.where(r["prior"], sp, s0 * (1.0 + s1 * np.maximum(r["z"] - zf, 0.0)))
        lo = r["pt"] + s * (r["lo"] - r["pt"])
        hi = r["pt"] + s * (r["hi"] - r["pt"])
        return (lo - 1e-12 <= r["true"]) & (r["true"] <= hi + 1e-12), hi - lo

    best = None
    for sp, s0, s1, zf in itertools.product(*GRID.values()):
        worst = 1.0
        for o in rows:
            if o == "random":
                continue
            cov, _ = score(o, sp, s0, s1, zf)
            worst = min(worst, cov.mean())
            for b in np.unique(rows[o]["bucket"]):
                m = rows[o]["bucket"] == b
                if m.sum() >= MIN_BUCKET:
                    worst = min(worst, cov[m].mean())
        cov, width = score("random", sp, s0, s1, zf)
        own = ~rows["random"]["prior"]
        rand, rand_own = cov.mean(), cov[own].mean()
        if worst < 0.85 or not 0.88 <= rand <= 0.92:
            continue
        key = (round(abs(rand - 0.90) + abs(rand_own - 0.90), 4), float(np.mean([score(o, sp, s0, s1, zf)[1][~rows[o]["prior"]].mean() for o in rows])))
        if best is None or key < best[0]:
            best = (key, (sp, s0, s1, zf), rand, rand_own, worst)
    if best is None:
        print("no setting on the grid meets the constraints")
        return
    (_, width), (sp, s0, s1, zf), rand, rand_own, worst = best
    print(f"chosen: interval_scale_prior={sp} interval_scale={s0} interval_scale_z={s1} interval_z_free={zf}")
    print(f"  random order 90% coverage {rand:.4f} (races with units of their own {rand_own:.4f}); worst adversarial order or bucket {worst:.4f}; mean 90% width on races with units of their own {100 * width:.2f} pts")


if __name__ == "__main__":
    main()
