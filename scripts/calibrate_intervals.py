"""Tune the calibration of the published projection intervals on one case, to report another held out.

    .venv/bin/python scripts/calibrate_intervals.py [--data turkey] [--step 0.05] [--seed 0]
    .venv/bin/python scripts/calibrate_intervals.py --data istanbul --step 0.025 --folds 2

Replays the case in every arrival order with the raw intervals (every
``interval_scale*`` at 1: the spread of the bootstrap draws as it is), keeps,
per race x checkpoint, the projected and final margin, the raw 90% margin
interval and the covariate imbalance z, then searches a grid of the constants
of ``ModelParams`` for the case's regime (``RaceFrame.units_are_boxes``):

* units are whole districts (Turkey): ``interval_scale_prior`` for races with
  fewer than ``min_units`` units of their own, ``interval_scale``,
  ``interval_scale_z``, ``interval_z_free`` for the others;
* units are ballot boxes (İstanbul): ``box_interval_scale``,
  ``box_interval_scale_z``, ``box_interval_z_free`` and
  ``box_interval_scale_early`` (the widening below 25% of the expected vote
  counted); the prior scale is shared by both regimes and stays as shipped (it
  was tuned on Turkey). Then, with those four fixed, ``box_interval_shrink_from``
  and ``box_interval_shrink`` (the narrowing where arrival is far from random,
  imbalance z above the first): the narrowest mean 90% interval under the orders
  by size and by a party's strength (``FAR_ORDERS``) such that each of those
  orders still covers at least 90% overall and every order but random at least
  85% per bucket, as before (random order is not touched below z 3).

Scaling the draws' spread around the point by s scales the interval's two sides
by s (up to the hard bounds), so each candidate is scored on the stored rows
without replaying again.

Criterion, in this order: (1) in every order but random, the 90% interval covers
at least 85% overall and in every bucket of expected vote counted with at least
40 race checkpoints; (2) random order covers 88-92% overall; (3) closest to 90%
in random order, overall and on the races with units of their own (the sum of
both distances); (4) narrowest mean interval on those races.

``--seeds 0,1,2,3,4``: every arrival order is replayed once per seed and the rows are
pooled (one permutation of the boxes is one draw: in İstanbul the 90% coverage of random
order moves by several points from one seed to the next, so constants tuned on one seed
fit that seed's luck). Orders that do not depend on the seed are replayed once.

``--folds N``: N-fold cross-validation over the case's races. Races sorted by id
go to fold i mod N (i: position in that order). For each fold, the constants are
tuned on the other folds' rows only, then the case is replayed for real with
them and coverage is reported on the held-out fold's races only. Last, the
constants are tuned on all races (what ``ModelParams`` ships; its figures on
this case are then in-sample, not held out).

The district defaults of ``ModelParams`` were set from this script's output on
the Turkey 2019 -> 2024 replays; the box defaults from its output on the
İstanbul 2014 -> 2019 replays with ``--folds 2`` (docs/backtests.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import pickle
import time
from pathlib import Path

import numpy as np

from sandik.backtest.data import istanbul_case, turkey_case
from sandik.backtest.orders import ORDERS
from sandik.backtest.runner import replay
from sandik.core.projection.model import BOX_EARLY_UNTIL, ModelParams

MIN_BUCKET = 40
GRID = {
    "interval_scale_prior": np.round(np.arange(0.80, 1.001, 0.02), 2),
    "interval_scale": np.round(np.arange(0.50, 1.301, 0.05), 2),
    "interval_scale_z": (0.0, 0.25, 0.5, 0.75, 1.0, 1.5),
    "interval_z_free": (0.5, 1.0, 1.5, 2.0),
}
EARLY_GRID = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)  # box_interval_scale_early (box regime only)
SHRINK_GRID = {"box_interval_shrink_from": (3.0, 4.0, 5.0, 6.0, 8.0), "box_interval_shrink": (0.0, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0)}
FAR_ORDERS = ("size", "chp_asc", "chp_desc", "akp_asc", "akp_desc")
RAW = ModelParams(
    interval_scale=1.0, interval_scale_z=0.0, interval_scale_prior=1.0, box_interval_scale=1.0, box_interval_scale_z=0.0, box_interval_scale_early=0.0, box_interval_shrink=0.0
)

Rows = dict[str, dict[str, np.ndarray]]


def replays(case, o: str, seeds: list[int], step: float, params: ModelParams) -> list[dict]:
    """The rows of ``o`` replayed once per seed; a seed whose arrival order is one an earlier seed
    already gave (orders that do not depend on the seed) reuses its rows instead of replaying."""
    done: list[tuple[np.ndarray, list[dict]]] = []
    out: list[dict] = []
    for sd in seeds:
        perm = ORDERS[o](case, sd)
        same = next((rs for p, rs in done if np.array_equal(p, perm)), None)
        rs = same if same is not None else replay(case, o, seed=sd, step=step, params=params, peers=()).rows
        done.append((perm, rs))
        out.extend(rs)
    return out


def collect(case, seeds: list[int], step: float) -> Rows:
    rows: Rows = {}
    for o in ORDERS:
        t, c = time.perf_counter(), time.process_time()
        rs = replays(case, o, seeds, step, RAW)
        rows[o] = {
            "race": np.array([r["race"] for r in rs]),
            "pt": np.array([r["margin_pt"] for r in rs]),
            "true": np.array([r["margin_true"] for r in rs]),
            "lo": np.array([r["iv0.9"][0] for r in rs]),
            "hi": np.array([r["iv0.9"][1] for r in rs]),
            "z": np.array([r["imbalance_z"] for r in rs]),
            "pct": np.array([r["pct"] for r in rs]),
            "prior": np.array([r["units_fitted"] < RAW.min_units for r in rs]),
            "bucket": np.array([r["bucket"] for r in rs]),
        }
        print(f"{case.name} {o}: {len(rs):,} race checkpoints, raw 90% coverage {np.mean([r['cov0.9'] for r in rs]):.4f} ({time.perf_counter() - t:.0f} s wall, {time.process_time() - c:.0f} s CPU)", flush=True)
    return rows


def restrict(rows: Rows, races: set[str]) -> Rows:
    out = {}
    for o, r in rows.items():
        m = np.isin(r["race"], list(races))
        out[o] = {k: v[m] for k, v in r.items()}
    return out


def score(r: dict[str, np.ndarray], sp: float, s0: float, s1: float, zf: float, se: float = 0.0, zd: float = 0.0, d: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    early = 1.0 + se * np.maximum(1.0 - r["pct"] / BOX_EARLY_UNTIL, 0.0)  # se = 0 in the district regime
    shrink = 1.0 + d * np.maximum(r["z"] - zd, 0.0)  # d = 0 in the district regime
    s = np.where(r["prior"], sp, s0 * early * (1.0 + s1 * np.maximum(r["z"] - zf, 0.0)) / shrink)
    lo = r["pt"] + s * (r["lo"] - r["pt"])
    hi = r["pt"] + s * (r["hi"] - r["pt"])
    return (lo - 1e-12 <= r["true"]) & (r["true"] <= hi + 1e-12), hi - lo


def worst_adversarial(rows: Rows, cov_of) -> tuple[float, str]:
    """Lowest 90% coverage over every order but random, overall and per bucket of >= MIN_BUCKET rows."""
    worst, where = 1.0, ""
    for o in rows:
        if o == "random":
            continue
        cov = cov_of(o)
        if len(cov) and cov.mean() < worst:
            worst, where = float(cov.mean()), f"{o} overall"
        for b in np.unique(rows[o]["bucket"]):
            m = rows[o]["bucket"] == b
            if m.sum() >= MIN_BUCKET and cov[m].mean() < worst:
                worst, where = float(cov[m].mean()), f"{o} {b} (n={int(m.sum())})"
    return worst, where


def search(rows: Rows, prior_grid, early_grid) -> tuple | None:
    best = None
    for sp, s0, s1, zf, se in itertools.product(prior_grid, *list(GRID.values())[1:], early_grid):
        worst, _ = worst_adversarial(rows, lambda o: score(rows[o], sp, s0, s1, zf, se)[0])
        cov, _ = score(rows["random"], sp, s0, s1, zf, se)
        own = ~rows["random"]["prior"]
        rand, rand_own = cov.mean(), cov[own].mean()
        if worst < 0.85 or not 0.88 <= rand <= 0.92:
            continue
        key = (round(abs(rand - 0.90) + abs(rand_own - 0.90), 4), float(np.mean([score(rows[o], sp, s0, s1, zf, se)[1][~rows[o]["prior"]].mean() for o in rows])))
        if best is None or key < best[0]:
            best = (key, (sp, s0, s1, zf, se), rand, rand_own, worst)
    return best


def by_order(rows: Rows, pick: tuple) -> str:
    """One line: each order's coverage and mean 90% width under the constants ``pick``."""
    cells = []
    for o, r in rows.items():
        covered, width = score(r, *pick)
        cells.append(f"{o} {covered.mean():.4f} {100 * width.mean():.1f} pts")
    return "  by order (coverage, mean width): " + ", ".join(cells)


def search_shrink(rows: Rows, pick: tuple) -> tuple | None:
    """(box_interval_shrink_from, box_interval_shrink) for the four box constants of ``pick``, by
    the criterion of the module docstring; None if no setting meets it (not even no narrowing)."""
    best = None
    far_orders = [o for o in FAR_ORDERS if o in rows]
    for zd, d in itertools.product(*SHRINK_GRID.values()):
        scored = {o: score(r, *pick, zd, d) for o, r in rows.items()}  # (covered, width) per order
        worst, _ = worst_adversarial(rows, lambda o: scored[o][0])
        far = min(scored[o][0].mean() for o in far_orders)
        if worst < 0.85 or far < 0.90:
            continue
        width = float(np.mean([scored[o][1][~rows[o]["prior"]].mean() for o in far_orders]))
        if best is None or width < best[0]:
            best = (width, (zd, d), far, worst)
    return best


def params_of(pick: tuple, boxes: bool) -> ModelParams:
    sp, s0, s1, zf, se, *shrink = pick
    if boxes:
        zd, d = shrink or (0.0, 0.0)
        return dataclasses.replace(
            ModelParams(), box_interval_scale=s0, box_interval_scale_z=s1, box_interval_z_free=zf, box_interval_scale_early=se, box_interval_shrink_from=zd, box_interval_shrink=d
        )
    return dataclasses.replace(ModelParams(), interval_scale_prior=sp, interval_scale=s0, interval_scale_z=s1, interval_z_free=zf)


def held_out(case, params: ModelParams, races: set[str], seeds: list[int], step: float) -> None:
    """Replay for real with ``params`` and print the 90% coverage on ``races`` only."""
    rows: Rows = {}
    for o in ORDERS:
        rs = [r for r in replays(case, o, seeds, step, params) if r["race"] in races]
        rows[o] = {"cov": np.array([r["cov0.9"] for r in rs]), "bucket": np.array([r["bucket"] for r in rs]), "width": np.array([100 * r["width90"] for r in rs])}
    r = rows["random"]
    worst, where = worst_adversarial(rows, lambda o: rows[o]["cov"])
    print(f"  held out ({len(races)} races, real replay): random 90% coverage {r['cov'].mean():.4f} (n={len(r['cov'])}, width {r['width'].mean():.2f} pts); worst adversarial order or bucket {worst:.4f} ({where})")
    print("  by order (mean 90% width, pts): " + ", ".join(f"{o} {rows[o]['width'].mean():.1f}" for o in rows))
    print(f"  by order (worst adversarial order overall {min(rows[o]['cov'].mean() for o in rows if o != 'random'):.4f}): " + ", ".join(f"{o} {rows[o]['cov'].mean():.4f}" for o in rows))
    for b in np.unique(r["bucket"]):
        m = r["bucket"] == b
        print(f"    random {b}: {r['cov'][m].mean():.4f} (n={int(m.sum())})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="turkey", choices=("turkey", "istanbul"))
    ap.add_argument("--step", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seeds", default="", help="comma-separated seeds of the arrival orders, all replayed and pooled (default: --seed alone)")
    ap.add_argument("--folds", type=int, default=0, help="cross-validate over the case's races in this many folds")
    ap.add_argument("--rows", default="", help="file of the raw rows: loaded if it exists (same case, seeds and step!), else written after the replays")
    ap.add_argument("--no-held-out-replay", action="store_true", help="score the held-out folds on the stored rows only (no real replay)")
    args = ap.parse_args()
    case = turkey_case() if args.data == "turkey" else istanbul_case()
    multi = [f for f in case.frames.values() if f.n_units >= RAW.min_units]
    boxes = all(f.units_are_boxes for f in multi)
    if not boxes and any(f.units_are_boxes for f in multi):
        raise SystemExit("the case mixes box-level and district-level races: tune one regime at a time")
    # Box regime: the prior scale is shared and stays as shipped; only the unit constants are tuned.
    prior_grid = (ModelParams().interval_scale_prior,) if boxes else GRID["interval_scale_prior"]
    early_grid = EARLY_GRID if boxes else (0.0,)
    names = ("box_interval_scale", "box_interval_scale_z", "box_interval_z_free") if boxes else ("interval_scale", "interval_scale_z", "interval_z_free")
    print(f"regime: {'ballot boxes' if boxes else 'whole districts'} ({len(multi)} of {len(case.frames)} races with >= {RAW.min_units} units)")
    seeds = [int(x) for x in args.seeds.split(",")] if args.seeds else [args.seed]
    print(f"seeds of the arrival orders: {seeds}")
    if args.rows and Path(args.rows).exists():
        with open(args.rows, "rb") as f:
            rows = pickle.load(f)  # the rows a run with the same case, seeds and step saved
        print(f"raw rows loaded from {args.rows}")
    else:
        rows = collect(case, seeds, args.step)
        if args.rows:
            with open(args.rows, "wb") as f:
                pickle.dump(rows, f)

    def with_shrink(tag: str, tuning: Rows, best) -> tuple:
        """The picked constants, with the box regime's narrowing chosen on the same rows."""
        if not boxes:
            return best[1]
        shr = search_shrink(tuning, best[1])
        if shr is None:
            print(f"{tag}: no narrowing meets the constraints")
            return (*best[1], 0.0, 0.0)
        width, (zd, d), far, worst = shr
        print(f"{tag}: box_interval_shrink_from={zd} box_interval_shrink={d}")
        print(f"  tuning rows: orders by size and a party's strength cover >= {far:.4f} (mean 90% width {100 * width:.2f} pts); worst adversarial order or bucket {worst:.4f}", flush=True)
        return (*best[1], zd, d)

    def report(tag: str, best) -> None:
        if best is None:
            print(f"{tag}: no setting on the grid meets the constraints")
            return
        (_, width), (sp, s0, s1, zf, se), rand, rand_own, worst = best
        prior = "" if boxes else f"interval_scale_prior={sp} "
        early = f" box_interval_scale_early={se}" if boxes else ""
        print(f"{tag}: {prior}{names[0]}={s0} {names[1]}={s1} {names[2]}={zf}{early}")
        print(f"  tuning rows: random order 90% coverage {rand:.4f} (races with units of their own {rand_own:.4f}); worst adversarial order or bucket {worst:.4f}; mean 90% width on races with units of their own {100 * width:.2f} pts", flush=True)

    if args.folds:
        ids = sorted(case.frames)
        folds = [{rid for i, rid in enumerate(ids) if i % args.folds == k} for k in range(args.folds)]
        for k, fold in enumerate(folds):
            train = set(ids) - fold
            best = search(restrict(rows, train), prior_grid, early_grid)
            report(f"fold {k} held out ({len(fold)} races: {', '.join(sorted(r.split(':')[0].split('.')[-1] for r in fold))}); tuned on the other {len(train)}", best)
            if best is not None:
                pick = with_shrink(f"fold {k}", restrict(rows, train), best)
                test = restrict(rows, fold)
                worst, where = worst_adversarial(test, lambda o: score(test[o], *pick)[0])
                print(f"  held out, scored on the stored raw rows: random 90% coverage {score(test['random'], *pick)[0].mean():.4f}; worst adversarial order or bucket {worst:.4f} ({where})")
                print(by_order(test, pick))
                if not args.no_held_out_replay:
                    held_out(case, params_of(pick, boxes), fold, seeds, args.step)
    best = search(rows, prior_grid, early_grid)
    report("chosen (tuned on all races: in-sample on this case)", best)
    if best is not None and boxes:
        pick = with_shrink("chosen narrowing", rows, best)
        print(by_order(rows, pick))


if __name__ == "__main__":
    main()
