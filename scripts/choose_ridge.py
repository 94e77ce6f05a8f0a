"""Choose the ridge of the swing slopes (``ModelParams.ridge``) by 2-fold cross-validation over İstanbul's races.

    .venv/bin/python scripts/choose_ridge.py [--ridges 0.004,0.01,0.02,0.05,0.1,0.3] [--step 0.025]

The ridge is what the projection's point depends on most when arrival is biased:
the swing slopes on the baseline share are learnt from the units counted so far,
and when those cover a narrow range of baselines (boxes arriving by a party's
strength, or by size) a slope is an extrapolation. Every ridge on the grid is
replayed in all nine arrival orders; races are split into two folds as in
``calibrate_intervals.py --folds 2`` (sorted ids, alternately). The criterion is
the mean absolute error of the projected margin (points), averaged over the nine
orders with equal weight, on race checkpoints with something counted. Each fold's
choice is the ridge that does best on the *other* fold; the table shows both
folds, so the held-out error of each choice can be read off.

Prints one line per ridge and order (error fold 0 / fold 1, 90% coverage fold
0 / fold 1, wrong calls) and the choices.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from sandik.backtest.data import istanbul_case
from sandik.backtest.orders import ORDERS
from sandik.backtest.runner import replay
from sandik.core.projection.model import ModelParams


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ridges", default="0.004,0.01,0.02,0.05,0.1,0.3")
    ap.add_argument("--step", type=float, default=0.025)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    case = istanbul_case()
    ids = sorted(case.frames)
    fold = {rid: i % 2 for i, rid in enumerate(ids)}
    orders = list(ORDERS)
    mean_err: dict[float, tuple[float, float]] = {}
    print("| ridge | order | margin error fold 0 / 1 (pts) | 90% coverage fold 0 / 1 | wrong calls |")
    print("|---|---|---|---|---|")
    for lam in (float(x) for x in args.ridges.split(",")):
        t0 = time.perf_counter()
        per_order = []
        for o in orders:
            res = replay(case, o, seed=args.seed, step=args.step, params=ModelParams(ridge=lam), peers=())
            err = [float(np.mean([100 * r["margin_err"] for r in res.rows if fold[r["race"]] == f and r["bucket"] != "0%"])) for f in (0, 1)]
            cov = [float(np.mean([r["cov0.9"] for r in res.rows if fold[r["race"]] == f])) for f in (0, 1)]
            wrong = sum(1 for tr in res.tracks.values() if any(c[1] != tr.winner for c in tr.calls))
            per_order.append(err)
            print(f"| {lam:g} | {o} | {err[0]:.3f} / {err[1]:.3f} | {100 * cov[0]:.1f}% / {100 * cov[1]:.1f}% | {wrong} |", flush=True)
        m = np.mean(per_order, axis=0)
        mean_err[lam] = (float(m[0]), float(m[1]))
        print(f"| {lam:g} | **mean over orders** | **{m[0]:.3f} / {m[1]:.3f}** | | | ({time.perf_counter() - t0:.0f} s)", flush=True)
    for held in (0, 1):
        train = 1 - held
        pick = min(mean_err, key=lambda lam: mean_err[lam][train])
        base = min(mean_err)
        print(f"fold {held} held out: tuned on fold {train} -> ridge {pick:g}; held-out mean error {mean_err[pick][held]:.3f} pts (smallest ridge on the grid, {base:g}: {mean_err[base][held]:.3f})")
    both = min(mean_err, key=lambda lam: sum(mean_err[lam]))
    print(f"on all races: ridge {both:g}")


if __name__ == "__main__":
    main()
