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
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from sandik.backtest.call_bound import OracleRow, oracle_calls  # noqa: E402
from sandik.backtest.runner import race_tracks, replay, summarize  # noqa: E402

QS = (0.999, 0.99, 0.95)
# The call rule with its checks taken off one by one (min_group_share above 1: no group is that
# large; min_stratum_counted 0: every stratum has that much in).
VARIANTS = {
    "no coverage guards": {"min_group_share": 2.0, "min_stratum_counted": 0.0},
    "no coverage guards, no conformal": {"min_group_share": 2.0, "min_stratum_counted": 0.0, "use_conformal": False},
    "no coverage guards, no conformal, published spread": {"min_group_share": 2.0, "min_stratum_counted": 0.0, "use_conformal": False, "spread": "published"},
}
CONFORMAL_LEVELS = (0.90, 0.995)  # the level the call rule uses, and the one methods.md §1.2 names


class ConformalCount:
    """``replay``'s ``on_checkpoint``: for the races decided by more than 10 points, which have a
    weighted-conformal margin interval that excludes zero (for the final winner) at some checkpoint
    with at most ``until`` of their expected vote counted, at each of CONFORMAL_LEVELS. That check
    is part of the call rule (methods.md §1.2); where the counted boxes are unlike the rest, the
    covariate-shift weight of the boxes still out makes its quantile infinite."""

    def __init__(self, case, winners: dict[str, str], until: float = 0.20) -> None:
        self.case, self.winners, self.until = case, winners, until
        self.ok: dict[float, set[str]] = {lv: set() for lv in CONFORMAL_LEVELS}
        self.infinite = self.finite = 0

    def __call__(self, states: dict[str, Any], outcomes: dict[str, Any]) -> None:
        import math

        from sandik.core.projection.conformal import conformal_margin

        for rid, winner in self.winners.items():
            oc = outcomes.get(rid)
            if oc is None:
                continue
            pr = oc.projection
            if pr.mode != "model" or not 0 < pr.pct_expected_counted <= self.until:
                continue
            for lv in CONFORMAL_LEVELS:
                cf = conformal_margin(self.case.frames[rid], states[rid], pr, level=lv)
                if lv == CONFORMAL_LEVELS[0]:
                    self.infinite += not math.isfinite(cf["lower"])
                    self.finite += math.isfinite(cf["lower"])
                if cf["lower"] > 0 and pr.candidate_ids[pr.leader] == winner:
                    self.ok[lv].add(rid)

    def summary(self) -> dict[str, Any]:
        return {
            "races_big": len(self.winners),
            "until": self.until,
            "excludes_zero_by": {f"{lv:g}": len(self.ok[lv]) for lv in CONFORMAL_LEVELS},
            "checkpoints_infinite_at_90": self.infinite,
            "checkpoints_finite_at_90": self.finite,
        }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="istanbul", choices=["istanbul"])
    ap.add_argument("--orders", default="random,size,chp_asc,chp_desc,akp_asc,akp_desc")
    ap.add_argument("--step", type=float, default=0.025)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--band", type=float, default=0.025, help="width of the bands of expected vote counted")
    ap.add_argument("--conformal", action="store_true", help="also count the races whose weighted-conformal interval excludes zero by 20%% counted")
    ap.add_argument("--variants", action="store_true", help="also replay with the call rule's checks taken off (VARIANTS)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    from sandik.backtest.data import istanbul_case

    case = istanbul_case()
    # the races decided by more than 10 points and their winners, as the replay scores them
    winners = {rid: t.winner for rid, t in race_tracks(case).items() if t.final_margin_points > 0.10}
    report = []
    for order in args.orders.split(","):
        conformal = ConformalCount(case, winners) if args.conformal else None
        res = replay(case, order, seed=args.seed, step=args.step, on_checkpoint=conformal)
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
        if args.variants:
            from sandik.core.projection.calls import CallRule

            entry["variants"] = {}
            for name, kw in VARIANTS.items():
                v = summarize(replay(case, order, seed=args.seed, step=args.step, rule=CallRule(**kw), peers=()), case)
                entry["variants"][name] = {"median_call_big": v["median_call_pct_expected_margin_gt10"], "median_call": v["median_call_pct_expected"], "wrong_calls": v["wrong_calls"], "wrong": v["wrong_call_list"]}
        if conformal is not None:
            entry["conformal"] = conformal.summary()
        report.append(entry)
        if not args.json:
            print(f"{order} (seed {args.seed}): the model's own calls: median {entry['model_calls']['median_call_big']}, wrong {s['wrong_calls']}")
            for name, outs in entry["oracle"].items():
                for o in outs:
                    print(f"  oracle on {name:13s} q={o['q']:<5} median call (margin > 10 pts, {o['races_big']} races) {100 * o['median_call_big']:5.1f}%, called by 20%: {o['called_big_by_20pct']:2d}, wrong calls {o['wrong_calls']}")
                    if o["q"] == QS[0]:
                        print(f"    thresholds (points) by band: {o['threshold_points']}")
            for name, v in entry.get("variants", {}).items():
                print(f"  rule with {name}: median call (margin > 10 pts) {v['median_call_big']}, all races {v['median_call']}, wrong calls {v['wrong_calls']}")
            if args.conformal:
                c = entry["conformal"]
                print(f"  weighted conformal, by 20% counted: excludes zero for {c['excludes_zero_by']} of {c['races_big']} races (by level); infinite at 90% in {c['checkpoints_infinite_at_90']} of {c['checkpoints_infinite_at_90'] + c['checkpoints_finite_at_90']} race checkpoints")
    if args.json:
        print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
