"""Evaluate the per-box forensic checks on the real box-level files, untouched and with injected manipulations.

Prints Markdown tables (pasted into docs/forensics.md) and writes the fingerprint
pictures of the untouched elections as SVG.

Run: .venv/bin/python scripts/evaluate_forensics.py [--svg-dir docs/img] [--rates 0.001,0.01,0.05] [--seed 1]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from sandik.core.forensics.boxchecks import Thresholds, run_checks
from sandik.core.forensics.election import fingerprint, fingerprint_svg, integer_test, last_digit_test
from sandik.core.forensics.evaluation import evaluate
from sandik.core.forensics.inject import inject
from sandik.core.forensics.table import from_sheets
from sandik.datasets.istanbul2019 import load_istanbul_2019
from sandik.datasets.registry import shared_data_dir
from sandik.datasets.turkey2014 import load_turkey_2014

SIGNALS = ("arithmetic:E6", "zero_major", "swapped_candidates", "shifted_columns", "magnitude", "sibling_z", "extreme_corner", "turnout_and_leader", "robust_turnout", "robust_invalid", "robust_by_law", "equal_counts")


def pct(x: float, nd: int = 1) -> str:
    return "n/a" if x != x else f"{100 * x:.{nd}f}%"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--svg-dir", default=None)
    ap.add_argument("--rates", default="0.001,0.01,0.05")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rates = tuple(float(r) for r in args.rates.split(","))
    data = shared_data_dir()
    sets = [
        ("Istanbul 2019 (district mayors)", "istanbul-2019", lambda: load_istanbul_2019(data / "istanbul-2019-ballot-boxes" / "istanbul_2019_belediye_baskanligi_sandik_wide.csv")),
        ("Turkey 2014 (municipal mayors)", "turkey-2014", lambda: load_turkey_2014(data / "tr-local-2014-ballot-boxes" / "yerel2014.csv.zip")),
    ]
    for title, slug, load in sets:
        e, sheets = load()
        tab = from_sheets(e, sheets)
        print(f"\n### {title}: {len(tab):,} boxes, {len(tab.race_ids):,} races\n")
        t0 = time.perf_counter()
        res = evaluate(tab, rates=rates, seed=args.seed)
        b = res["baseline"]
        print(f"Untouched file: flagged at high tier {b['per_tier']['high']['flagged']:,} ({pct(b['per_tier']['high']['rate'], 2)}), of which {b['arithmetic_errors']:,} break a tally rule in the file itself; "
              f"high tier without those: {b['high_tier_without_arithmetic']['flagged']:,} ({pct(b['high_tier_without_arithmetic']['rate'], 2)}); "
              f"medium or higher {b['per_tier']['medium']['flagged']:,} ({pct(b['per_tier']['medium']['rate'], 2)}); any tier {b['per_tier']['low']['flagged']:,} ({pct(b['per_tier']['low']['rate'], 2)}).\n")
        print("| signal | untouched boxes flagged |")
        print("|---|---|")
        for s in SIGNALS:
            x = b["per_signal"].get(s)
            if x:
                print(f"| {s} | {x['flagged']:,} ({pct(x['rate'], 2)}) |")
        print("\nDetection (share of injected boxes flagged) and false flags (share of untouched boxes flagged in the same run), by tier:\n")
        print("| manipulation | mode | rate | injected | material | high tier: detected | material detected | false flags | any tier: detected | false flags |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for r in res["runs"]:
            h, lo = r["per_tier"]["high"], r["per_tier"]["low"]
            print(f"| {r['kind']} | {r['mode']} | {pct(r['rate'])} | {r['injected']:,} | {r['material']:,} | {pct(h['detected'])} | {pct(h['detected_material'])} | {pct(h['false_flag'], 3)} | {pct(lo['detected'])} | {pct(lo['false_flag'], 2)} |")
        mid = [r for r in res["runs"] if r["rate"] == sorted(rates)[len(rates) // 2]]
        print(f"\nPer signal at rate {pct(mid[0]['rate'])}: detected / false flags among untouched boxes:\n")
        print("| manipulation | " + " | ".join(SIGNALS) + " |")
        print("|---|" + "---|" * len(SIGNALS))
        for r in mid:
            cells = []
            for s in SIGNALS:
                x = r["per_signal"].get(s, {"detected": 0.0, "false_flag": 0.0})
                cells.append(f"{pct(x['detected'], 0)} / {pct(x['false_flag'], 2)}")
            print(f"| {r['kind']} {r['mode']} | " + " | ".join(cells) + " |")
        # Swap detection by size, and the high-tier trade-off of the swap signature.
        bad, inj = inject(tab, "swap", 0.01, args.seed)
        valid = np.maximum(tab.col("valid")[inj.rows], 1)
        size = np.abs(inj.delta_margin) / valid
        print("\nSwaps by size (|change of the box's margin| / its valid votes), 1% of boxes swapped:\n")
        print("| swap size | boxes | " + " | ".join(f"high tier, swap_high_z={z:g}" for z in (4.5, 6.0, 8.0, 10.0)) + " | any tier |")
        print("|---|---|---|---|---|---|---|")
        runs = {z: run_checks(bad, Thresholds(swap_high_z=z)) for z in (4.5, 6.0, 8.0, 10.0)}
        touched = np.zeros(len(tab), bool)
        touched[inj.rows] = True
        for lo_, hi_ in ((0, 0.1), (0.1, 0.3), (0.3, 0.5), (0.5, 0.7), (0.7, 2.0)):
            sel = (size >= lo_) & (size < hi_)
            cells = [pct((runs[z].tier_rank()[inj.rows][sel] == 0).mean()) if sel.any() else "n/a" for z in (4.5, 6.0, 8.0, 10.0)]
            anyt = pct((runs[8.0].tier_rank()[inj.rows][sel] <= 2).mean()) if sel.any() else "n/a"
            print(f"| {lo_:.0%}-{hi_:.0%} | {int(sel.sum()):,} | " + " | ".join(cells) + f" | {anyt} |")
        fps = " | ".join(pct((runs[z].tier_rank()[~touched] == 0).mean(), 3) for z in (4.5, 6.0, 8.0, 10.0))
        print(f"| high-tier false flags (untouched) | | {fps} | |")
        # Per-election tests.
        fp = fingerprint(tab)
        it = integer_test(tab)
        ld = last_digit_test(tab)
        ld100 = last_digit_test(tab, min_count=100)
        print(f"\nFingerprint: {fp['boxes']:,} boxes, {fp['corner_boxes']:,} ({pct(fp['corner_share'], 2)}) with turnout and winner share both >= 95%, turnout-share correlation {fp['turnout_share_correlation']:.3f}.")
        for name, x in it["tests"].items():
            print(f"Integer test ({name}): {x['observed']:,} of {x['boxes']:,} boxes within ±0.05 pp of a whole percentage; null mean {x['null_mean']:,.1f}, 99.9th percentile {x['null_q999']:,.1f}, p = {x['p_value']:.3f}: {'significant' if x['significant'] else 'not significant'}.")
        print(f"Last digits (counts >= 10): national χ² = {ld['national']['chi2']:,.0f} (p = {ld['national']['p_value']:.2g}); {len(ld['areas_significant'])} of {len(ld['areas'])} provinces significant after Bonferroni. "
              f"Counts >= 100: χ² = {ld100['national']['chi2']:,.1f} (p = {ld100['national']['p_value']:.2g}); {len(ld100['areas_significant'])} provinces.")
        print(f"\n(evaluation of {title} took {time.perf_counter() - t0:.0f} s)")
        if args.svg_dir:
            Path(args.svg_dir).mkdir(parents=True, exist_ok=True)
            p = Path(args.svg_dir) / f"fingerprint-{slug}.svg"
            p.write_text(fingerprint_svg(fp, title=f"{title}: turnout x winner share"), encoding="utf-8")
            print(f"wrote {p}")


if __name__ == "__main__":
    main()
