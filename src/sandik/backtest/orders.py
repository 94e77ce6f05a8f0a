"""Arrival orders for replays: which reporting unit comes in when.

Every order is a permutation of a case's global units. Ties (e.g. all rural
units) are broken at random with the same seed, so an adversarial order is
adversarial in one respect only.

``arrival`` is a model of real arrival times (the quickcountmx approach,
methods.md §1.3): a log-logistic time per unit whose scale grows with unit size
and is longer for urban units and for some districts (a slow district
election board delays all of its boxes). No real per-box timestamps are in the
shared data, so its parameters are assumptions, not fitted values.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sandik.backtest.data import BacktestCase

Order = Callable[[BacktestCase, int], np.ndarray]


def _ranked(key: np.ndarray, seed: int) -> np.ndarray:
    tie = np.random.default_rng(seed).random(len(key))
    return np.lexsort((tie, key))


def random_order(case: BacktestCase, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).permutation(case.n_global)


def size_order(case: BacktestCase, seed: int) -> np.ndarray:
    """Smallest units first (small rural boxes are counted fastest)."""
    return _ranked(case.g_registered, seed)


def urban_first(case: BacktestCase, seed: int) -> np.ndarray:
    return _ranked(case.g_rural.astype(float), seed)


def rural_first(case: BacktestCase, seed: int) -> np.ndarray:
    return _ranked((~case.g_rural).astype(float), seed)


def by_party(party: str, ascending: bool) -> Order:
    def order(case: BacktestCase, seed: int) -> np.ndarray:
        share = case.g_party_share[party]
        return _ranked(share if ascending else -share, seed)

    order.__name__ = f"{party.lower()}_{'asc' if ascending else 'desc'}"
    return order


def arrival_model(case: BacktestCase, seed: int) -> np.ndarray:
    """Log-logistic arrival times: bigger and urban units later, plus a per-district delay."""
    rng = np.random.default_rng(seed)
    n = case.n_global
    reg = np.maximum(case.g_registered, 1.0)
    size = np.log(reg / np.median(reg))
    n_d = int(case.g_district.max()) + 1 if n else 0
    district_delay = rng.normal(0.0, 0.35, n_d)[case.g_district]
    log_scale = np.log(120.0) + 0.25 * size + 0.30 * (~case.g_rural) + district_delay
    shape = 4.0  # log-logistic shape: sd of log time about 0.45
    u = rng.random(n)
    t = np.exp(log_scale) * (u / (1 - u)) ** (1 / shape)
    return np.argsort(t, kind="stable")


ORDERS: dict[str, Order] = {
    "random": random_order,
    "size": size_order,
    "urban_first": urban_first,
    "rural_first": rural_first,
    "chp_asc": by_party("CHP", True),
    "chp_desc": by_party("CHP", False),
    "akp_asc": by_party("AKP", True),
    "akp_desc": by_party("AKP", False),
    "arrival": arrival_model,
}
