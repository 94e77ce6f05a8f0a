"""Studies behind the choices of the per-box checks (docs/forensics.md, "Ideas measured and not kept").

On the real box-level files (Istanbul 2019 district mayors, Turkey 2014 municipal mayors):

1. previous election: does a box's deviation from its neighbourhood in 2019 follow the same box's
   (same neighbourhood, same box number) deviation in 2014? If it did, the 2014 box would sharpen
   the reference; the correlation says whether it does.
2. adjacent boxes: robust spread of a box's share around (a) its neighbourhood (leave-one-out, as
   the checks use), (b) the two boxes numbered next to it, (c) the average of both references.
3. magnitude against the other candidates: a count compared with what the box's other candidates'
   votes predict (ref / (1 - ref) x the rest), which a balanced tenfold edit cannot hide; its
   detection of balanced magnitude edits and its high-tier false flags on rule-abiding untouched boxes.
4. a bound on swap detection: how much of the injected swaps (1%, the evaluation's seed) *any*
   per-box test on one race could find at a given false-flag rate, if honest boxes scattered
   around their neighbourhood like a normal variable with the measured robust sd of the margin
   (leader share minus runner-up share, against the leave-one-out reference). For a box whose
   swap moves the difference of the swapped pair's shares by d, the most powerful one-sided test at
   false-flag rate a, knowing d and its direction, finds it with probability Phi(d / sd - z_a);
   the mean over the injected boxes bounds every real detector, which knows neither and faces
   heavier tails than the normal's.
5. shifts below the high tier: what raising every ``shifted_columns`` sheet whose shift explains
   >= x of its deviance to the high tier (whatever the deviance) would find of injected shifts, and
   what it would cost in high-tier false flags on rule-abiding untouched sheets.

Run: .venv/bin/python scripts/forensics_studies.py
"""

from __future__ import annotations

import numpy as np

from sandik.core.forensics.boxchecks import BoxChecks, run_checks
from sandik.core.forensics.evaluation import breaks_rule
from sandik.core.forensics.inject import inject
from sandik.core.forensics.table import SheetTable, from_sheets
from sandik.datasets.istanbul2019 import load_istanbul_2019
from sandik.datasets.registry import shared_data_dir
from sandik.datasets.turkey2014 import load_turkey_2014


def robust_sd(x: np.ndarray) -> float:
    return float(1.4826 * np.median(np.abs(x - np.median(x))))


def party_residuals(tab: SheetTable, ch: BoxChecks, party: str) -> dict[str, tuple[float, float]]:
    """box id -> (share, share - neighbourhood share) of ``party``'s candidate, boxes with siblings and >= 50 valid votes."""
    col = np.full(len(tab), -1)
    for r, rid in enumerate(tab.race_ids):
        parties = [c.party for c in tab.election.races[rid].candidates]
        if party in parties:
            col[tab.race == r] = parties.index(party)
    nv = np.maximum(tab.votes.sum(axis=1), 1)
    rows = np.flatnonzero((col >= 0) & (ch.level == 0) & (tab.col("valid") >= 50))
    p = tab.votes[rows, col[rows]] / nv[rows]
    e = p - ch.ref[rows, col[rows]]
    return {tab.box_id(int(i)): (float(a), float(b)) for i, a, b in zip(rows, p, e) if np.isfinite(b)}


def previous_election(ist: SheetTable, ist_ch: BoxChecks, tr: SheetTable, tr_ch: BoxChecks) -> None:
    section("1. Same box in the previous election (Istanbul 2019 vs the Istanbul boxes of Turkey 2014, matched by neighbourhood and box number)", ("party", "2019 boxes", "matched in 2014", "correlation of shares", "correlation of deviations from the neighbourhood", "robust sd of the 2019 deviation", "after regressing on 2014"))
    for party in ("CHP", "AKP"):
        a, b = party_residuals(ist, ist_ch, party), party_residuals(tr, tr_ch, party)
        common = [k for k in a if k in b]
        s19, e19 = np.array([a[k] for k in common]).T
        s14, e14 = np.array([b[k] for k in common]).T
        beta = np.polyfit(e14, e19, 1)
        print(f"| {party} | {len(a):,} | {len(common):,} | {np.corrcoef(s19, s14)[0, 1]:.3f} | {np.corrcoef(e19, e14)[0, 1]:.3f} | {robust_sd(e19):.4f} | {robust_sd(e19 - np.polyval(beta, e14)):.4f} |")


def adjacent_boxes(name: str, tab: SheetTable, ch: BoxChecks) -> None:
    num = np.array([int(x) if (x := tab.box_id(i).rsplit(".", 1)[1]).isdigit() else -1 for i in range(len(tab))])
    o = np.lexsort((num, tab.area, tab.race))
    area, race = tab.area[o], tab.race[o]
    V = tab.votes[o].astype(float)
    nv = np.maximum(V.sum(axis=1), 1)
    same = (area[1:] == area[:-1]) & (race[1:] == race[:-1])
    prev_ok, next_ok = np.r_[False, same], np.r_[same, False]
    zero = np.zeros((1, V.shape[1]))
    loc = np.vstack([zero, V[:-1]]) * prev_ok[:, None] + np.vstack([V[1:], zero]) * next_ok[:, None]
    locn = loc.sum(axis=1)
    use = prev_ok & next_ok & (ch.level[o] == 0) & (nv >= 50) & (locn >= 100)
    idx = np.arange(len(o))
    ref = ch.ref[o]
    for label, col in (("leader", ch.leader_col[race]), ("runner-up", ch.runner_col[race])):
        p = V[idx, col] / nv
        r_hood = ref[idx, col]
        r_adj = loc[idx, col] / np.maximum(locn, 1)
        print(f"| {name} | {label} | {int(use.sum()):,} | {robust_sd((p - r_hood)[use]):.4f} | {robust_sd((p - r_adj)[use]):.4f} | {robust_sd((p - (r_hood + r_adj) / 2)[use]):.4f} |")


def magnitude_vs_others(name: str, tab: SheetTable, seed: int = 1) -> None:
    clean = ~breaks_rule(run_checks(tab))
    bad, inj = inject(tab, "magnitude", 0.01, seed, mode="balanced")
    ch = run_checks(bad)
    untouched = np.ones(len(tab), bool)
    untouched[inj.rows] = False
    up = bad.votes[inj.rows].sum(axis=1) > tab.votes[inj.rows].sum(axis=1)
    high = ch.tier_rank() == 0
    v = bad.votes.astype(float)
    nv = np.maximum(v.sum(axis=1), 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        expect = ch.ref / (1 - ch.ref) * (nv[:, None] - v)
        ratio = np.where(v > 0, v / expect, np.inf)
        ratio = np.maximum(ratio, 1 / ratio)
    az = np.abs(np.nan_to_num(ch.z))
    print(f"| {name} | default high tier | {100 * high[inj.rows].mean():.1f}% | {100 * high[inj.rows][up].mean():.1f}% | {100 * high[inj.rows][~up].mean():.1f}% | {100 * high[untouched & clean].mean():.3f}% |")
    for lo, hi, zmin in ((6, 16, 4.5), (7, 14, 4.5), (8, 12.5, 4.5), (7, 14, 6.0)):
        sig = (np.isfinite(ch.ref) & (expect >= 20) & (ratio >= lo) & (ratio <= hi) & (az >= zmin)).any(axis=1)
        h = high | sig
        print(f"| {name} | + ratio to the others in [{lo:g}, {hi:g}], \\|z\\| >= {zmin:g} | {100 * h[inj.rows].mean():.1f}% | {100 * h[inj.rows][up].mean():.1f}% | {100 * h[inj.rows][~up].mean():.1f}% | {100 * h[untouched & clean].mean():.3f}% |")


def swap_bound(name: str, tab: SheetTable, ch: BoxChecks, seed: int = 1) -> None:
    from statistics import NormalDist

    nd = NormalDist()
    V = tab.votes.astype(float)
    nv = np.maximum(V.sum(axis=1), 1)
    idx = np.arange(len(tab))
    lc, rc = ch.leader_col[tab.race], ch.runner_col[tab.race]
    resid = (V[idx, lc] - V[idx, rc]) / nv - (ch.ref[idx, lc] - ch.ref[idx, rc])
    use = (ch.level == 0) & (nv >= 50) & np.isfinite(resid)
    sd = robust_sd(resid[use])
    bad, inj = inject(tab, "swap", 0.01, seed)
    # The swapped pair's shares each move by |a - b| / valid, their difference by twice that.
    d = np.abs(bad.votes[inj.rows] - tab.votes[inj.rows]).sum(axis=1) / nv[inj.rows]
    cells = []
    for a in (0.001, 0.01, 0.05):
        za = nd.inv_cdf(1 - a)
        cells.append(f"{100 * np.mean([nd.cdf(x / sd - za) for x in d]):.1f}%")
    print(f"| {name} | {int(use.sum()):,} | {sd:.4f} | {len(d):,} | " + " | ".join(cells) + " |")


def shift_promotion(name: str, tab: SheetTable, ch: BoxChecks, seed: int = 1) -> None:
    def high(c: BoxChecks, x: float) -> np.ndarray:
        return (c.tier_rank() == 0) | (c.signal_masks()["shifted_columns"] & (c.shift_reduction >= x))

    ok = ~breaks_rule(ch)
    runs = []  # per rate: the injected rows, the checks of the injected file, its untouched rule-abiding rows
    for rate in (0.001, 0.01, 0.05):
        bad, inj = inject(tab, "shift", rate, seed)
        c = run_checks(bad)
        untouched = np.ones(len(tab), dtype=bool)
        untouched[inj.rows] = False
        runs.append((inj.rows, c, untouched & ~breaks_rule(c)))
    for x in (None, 0.97, 0.98, 0.99):
        raised = int(((high(ch, x) & (ch.tier_rank() != 0)) & ok).sum()) if x is not None else 0
        cells = []
        for rows, c, clean in runs:
            h = c.tier_rank() == 0 if x is None else high(c, x)
            cells.append(f"{100 * h[rows].mean():.1f}% / {100 * h[clean].mean():.3f}%")
        rule = "the method as it is" if x is None else f"+ shifted_columns with >= {x:.0%} explained"
        print(f"| {name} | {rule} | {raised} | " + " | ".join(cells) + " |")


def section(title: str, columns: tuple[str, ...]) -> None:
    """A study's title and the head of its Markdown table."""
    print(f"\n{title}:\n")
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))


def main() -> None:
    data = shared_data_dir()
    e, s = load_istanbul_2019(data / "istanbul-2019-ballot-boxes" / "istanbul_2019_belediye_baskanligi_sandik_wide.csv")
    ist = from_sheets(e, s)
    e, s = load_turkey_2014(data / "tr-local-2014-ballot-boxes" / "yerel2014.csv.zip")
    tr = from_sheets(e, s)
    ist_ch, tr_ch = run_checks(ist), run_checks(tr)
    previous_election(ist, ist_ch, tr, tr_ch)
    section("2. Reference from the boxes numbered next to it (same neighbourhood and race), robust sd of share - reference", ("file", "candidate", "boxes", "neighbourhood (leave-one-out)", "two adjacent boxes", "average of both"))
    adjacent_boxes("Istanbul 2019", ist, ist_ch)
    adjacent_boxes("Turkey 2014", tr, tr_ch)
    section("3. Magnitude against the box's other candidates, balanced edits at 1% (high tier)", ("file", "rule", "detected", "up (x10)", "down (/10)", "false flags, rule-abiding untouched boxes"))
    magnitude_vs_others("Istanbul 2019", ist)
    magnitude_vs_others("Turkey 2014", tr)
    section("4. Upper bound on the detection of swaps (1% injected) by any per-box test on one race, normal scatter", ("file", "boxes measured", "robust sd of the margin around the reference", "swaps injected", "bound at 0.1% false flags", "at 1%", "at 5%"))
    swap_bound("Istanbul 2019", ist, ist_ch)
    swap_bound("Turkey 2014", tr, tr_ch)
    section("5. Shifts below the high tier raised to it, injected shifts at 0.1% / 1% / 5% (high tier: detected / false flags on rule-abiding untouched sheets)", ("file", "rule", "untouched rule-abiding sheets raised", "0.1%", "1%", "5%"))
    shift_promotion("Istanbul 2019", ist, ist_ch)
    shift_promotion("Turkey 2014", tr, tr_ch)


if __name__ == "__main__":
    main()
