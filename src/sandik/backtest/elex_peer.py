"""The Washington Post's elex-model (``pip install elex-model``) as a peer in the replays.

It is fed exactly what sandik's model sees at each checkpoint: the same units
(ballot boxes or districts), the same baseline (each unit's baseline votes of
the two candidates and its expected vote, as ``baseline_dem``/``baseline_gop``/
``baseline_turnout``), the same groups (as ``county_fips``) and the same
reporting state (a unit is in at 100% or out at 0%). elex-model is two-party
per estimand: the two candidates leading the count at the checkpoint are its
"dem" and "gop" estimands, and its margin interval is [lo_dem - hi_gop,
hi_dem - lo_gop] (their nonparametric aggregation is conservative in the same
way). Its intervals are on votes; they are scored against the final margin as
points of the race's final valid vote.

Runs entirely locally: the config and the preprocessed data are passed in
memory (``raw_config``, ``preprocessed_data``), no S3.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np

from sandik.backtest.data import BacktestCase
from sandik.backtest.runner import bucket_of
from sandik.errors import SandikError


class ElexUnavailable(SandikError):
    code = "elex_unavailable"


class ElexPeer:
    def __init__(self, pi_method: str = "gaussian", level: float = 0.9) -> None:
        os.environ.setdefault("APP_ENV", "local")
        try:
            import pandas as pd  # noqa: F401
            from elexmodel.client import ModelClient
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ElexUnavailable(f"elex-model is not installed ({exc}); pip install -e '.[peers]'") from exc
        logging.getLogger("elexmodel").setLevel(logging.WARNING)
        for name in list(logging.root.manager.loggerDict):
            if name.startswith("elexmodel"):
                logging.getLogger(name).setLevel(logging.WARNING)
        self.client_cls = ModelClient
        self.pi_method = pi_method
        self.level = level
        self.failures = 0
        self.calls = 0

    def run_race(self, case: BacktestCase, rid: str, reported: np.ndarray) -> dict[str, Any] | None:
        import pandas as pd

        fr = case.frames[rid]
        V = case.final_votes[rid]
        T = case.final_valid[rid]
        counted = (V * reported[:, None]).sum(axis=0)
        order = np.argsort(-(counted + 1e-6 * fr.baseline_mean), kind="stable")
        if len(order) < 2:
            return None
        L, R = int(order[0]), int(order[1])
        n = fr.n_units
        ids = [f"{i:07d}" for i in range(n)]
        pre = pd.DataFrame(
            {
                "postal_code": "XX",
                "geographic_unit_fips": ids,
                "county_fips": [f"{g:06d}" for g in fr.group],
                "county_classification": "all",
                "baseline_dem": fr.base_share[:, L] * fr.expected,
                "baseline_gop": fr.base_share[:, R] * fr.expected,
                "baseline_turnout": fr.expected,
                "baseline_weights": fr.expected,
            }
        )
        cur = pd.DataFrame(
            {
                "postal_code": "XX",
                "geographic_unit_fips": ids,
                "results_dem": np.where(reported, V[:, L], 0),
                "results_gop": np.where(reported, V[:, R], 0),
                "results_turnout": np.where(reported, T, 0),
                "percent_expected_vote": np.where(reported, 100, 0),
            }
        )
        cfg = {"SANDIK_G": [{"office": "G", "states": ["XX"], "geographic_unit_types": ["precinct"], "features": [], "aggregates": ["postal_code", "unit"], "fixed_effect": [], "baseline_pointer": {"dem": "dem", "gop": "gop", "turnout": "turnout"}}]}
        self.calls += 1
        try:
            res = self.client_cls().get_estimates(
                cur, "SANDIK_G", "G", ["dem", "gop"], prediction_intervals=[self.level], percent_reporting_threshold=100,
                geographic_unit_type="precinct", raw_config=cfg, preprocessed_data=pre, save_output=[], pi_method=self.pi_method,
                aggregates=["postal_code", "unit"],
            )  # fmt: skip
        except Exception as exc:  # elex-model raises plain exceptions (too few units, SVD, ...): count them
            self.failures += 1
            return {"error": type(exc).__name__ + ": " + str(exc)[:120]}
        sd = res["state_data"].iloc[0]
        lv = f"{self.level}"
        lo_d, hi_d = float(sd[f"lower_{lv}_dem"]), float(sd[f"upper_{lv}_dem"])
        lo_g, hi_g = float(sd[f"lower_{lv}_gop"]), float(sd[f"upper_{lv}_gop"])
        F = V.sum(axis=0)
        tot = float(F.sum())
        true_m = (F[L] - F[R]) / tot
        pred_m = (float(sd["pred_dem"]) - float(sd["pred_gop"])) / tot
        lo_m, hi_m = (lo_d - hi_g) / tot, (hi_d - lo_g) / tot
        return {
            "margin_err": abs(pred_m - true_m),
            "cov0.9": bool(lo_m <= true_m <= hi_m),
            "width90": hi_m - lo_m,
            "inverted": bool(lo_m > hi_m),
            "right_leader": bool((pred_m > 0) == (true_m > 0)),
        }

    def __call__(self, case: BacktestCase, states: dict, finals: dict, changed: list[str]) -> list[dict[str, Any]]:
        rows = []
        for rid in changed:
            st = states[rid]
            fr = case.frames[rid]
            E = fr.expected
            counted_valid = float(st.valid[st.reported].sum())
            pct = counted_valid / (counted_valid + float(E[~st.reported].sum())) if (~st.reported).any() else 1.0
            b = bucket_of(pct)
            if b is None or b == "0%":
                continue
            r = self.run_race(case, rid, st.reported)
            if r is None:
                continue
            if "error" in r:
                rows.append({"peer": "elex", "race": rid, "bucket": b, "error": r["error"]})
                continue
            rows.append({"peer": "elex", "race": rid, "bucket": b, **r})
        return rows
