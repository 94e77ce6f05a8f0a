"""How early an oracle could call the races decided by more than 10 points, in each arrival order.

    .venv/bin/python scripts/call_bound.py [--data istanbul] [--orders size,chp_asc,...] [--step 0.025] [--seed 0] [--json]

Replays the case in each order (the backtest's own replay), then, for the model's point
estimate and for uniform swing's, runs the oracle rule of ``sandik.backtest.call_bound``:
told the actual margin errors of that very replay, it calls a race at its first checkpoint
whose projected margin exceeds the q quantile of those errors in its band of expected vote
counted. Printed per order and estimator: the median share of the expected vote at which the
races decided by more than 10 points are first called, how many of them are called by 20%,
and the wrong calls, for q = 0.999 (the call rule's level), 0.99 and 0.95; beside it the
model's own calls in the same replay. See docs/backtests.md ("Early calls where arrival is
far from random: a bound").
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from sandik.backtest.call_bound import OracleRow, oracle_calls  # noqa: E402
from sandik.backtest.runner import replay, summarize  # noqa: E402

QS = (0.999, 0.99, 0.95)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="istanbul", choices=["istanbul"])
    ap.add_argument("--orders", default="random,size,chp_asc,chp_desc,akp_asc,akp_desc")
    ap.add_argument("--step", type=float, default=0.025)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--band", type=float, default=0.025, help="width of the bands of expected vote counted")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    from sandik.backtest.data import istanbul_case

    case = istanbul_case()
    report = []
    for order in args.orders.split(","):
        res = replay(case, order, seed=args.seed, step=args.step)
        s = summarize(res, case)
        finals = {rid: tr.final_margin_points for rid, tr in res.tracks.items()}
        model_rows = [OracleRow(r["race"], r["cp"], r["pct"], r["margin_pt"], r["margin_true"], r["right_leader"]) for r in res.rows]
        us_rows = [OracleRow(p["race"], p["cp"], p["pct"], p["margin_pt"], p["margin_true"], p["right_leader"]) for p in res.peer_rows if p["peer"] == "uniform"]
        entry = {
            "order": order,
            "seed": args.seed,
            "model_calls": {"median_call_big": s["median_call_pct_expected_margin_gt10"], "wrong_calls": s["wrong_calls"]},
            "oracle": {name: [oracle_calls(rows, finals, q=q, width=args.band) for q in QS] for name, rows in (("model", model_rows), ("uniform_swing", us_rows))},
        }
        report.append(entry)
        if not args.json:
            print(f"{order} (seed {args.seed}): the model's own calls: median {entry['model_calls']['median_call_big']}, wrong {s['wrong_calls']}")
            for name, outs in entry["oracle"].items():
                for o in outs:
                    print(f"  oracle on {name:13s} q={o['q']:<5} median call (margin > 10 pts, {o['races_big']} races) {100 * o['median_call_big']:5.1f}%, called by 20%: {o['called_big_by_20pct']:2d}, wrong calls {o['wrong_calls']}")
                    if o["q"] == QS[0]:
                        print(f"    thresholds (points) by band: {o['threshold_points']}")
    if args.json:
        print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
