"""Coverage of the PVT (sample check) intervals on real boxes.

For every race of the real Istanbul 2019 file (39 district-mayor races), draw stratified random
samples of boxes as if observers had confirmed their copies (the copies equal the official
sheets), form the ratio estimates with 99% intervals, and count how often each interval holds
the race's final official share of the top two candidates.

Run: .venv/bin/python scripts/evaluate_pvt.py [--draws 20] [--n 200]
"""

from __future__ import annotations

import argparse

import numpy as np

from sandik.core import pvt
from sandik.core.forensics.table import from_sheets
from sandik.datasets.istanbul2019 import load_istanbul_2019
from sandik.datasets.registry import shared_data_dir


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--draws", type=int, default=20)
    ap.add_argument("--n", type=int, default=200)
    args = ap.parse_args()
    e, sheets = load_istanbul_2019(shared_data_dir() / "istanbul-2019-ballot-boxes" / "istanbul_2019_belediye_baskanligi_sandik_wide.csv")
    tab = from_sheets(e, sheets)
    areas = np.array(e.box_area_ids)[tab.box]
    by_strata = {"neighbourhood": areas, "size tercile": None}
    for label, strata_all in by_strata.items():
        inside = total = 0
        widths = []
        sizes = []
        for r, rid in enumerate(tab.race_ids):
            rows = np.flatnonzero(tab.race == r)
            m = int(tab.n_cands[rows[0]])
            v = tab.votes[rows, :m]
            valid = tab.col("valid")[rows]
            truth = v.sum(axis=0) / valid.sum()
            top = np.argsort(-truth)[:2]
            if strata_all is None:
                k = tab.col("registered")[rows]
                q1, q2 = np.quantile(k, [1 / 3, 2 / 3])
                strata = np.where(k <= q1, "s", np.where(k <= q2, "m", "l"))
            else:
                strata = strata_all[rows]
            labels, counts = np.unique(strata, return_counts=True)
            pop = dict(zip(labels.tolist(), counts.tolist()))
            for d in range(args.draws):
                idx = pvt.draw_sample(strata, min(args.n, len(rows)), seed=1000 * r + d)
                sizes.append(len(idx))
                est = pvt.ratio_estimate([str(j) for j in range(m)], v[idx], valid[idx], strata[idx], pop)
                for j in top:
                    total += 1
                    inside += bool(est.lower[j] <= truth[j] <= est.upper[j])
                    widths.append(est.upper[j] - est.lower[j])
        print(f"strata = {label}: {inside} of {total} nominal-99% intervals ({100 * inside / total:.1f}%) hold the final share of a top-two candidate; "
              f"median width {100 * np.median(widths):.2f} points; {len(tab.race_ids)} races x {args.draws} samples asked for {args.n} boxes, "
              f"drawn {int(np.median(sizes))} (median; at least 2 per stratum)")


if __name__ == "__main__":
    main()
