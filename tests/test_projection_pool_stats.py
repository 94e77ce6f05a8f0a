"""``pool.pool_stats`` (grouped sums over race-party rows) against a race-by-race oracle.

The oracle is the definition written out with exact sums (``math.fsum``) per scope and party:
the weighted mean swing and share, the weighted line's slope (ridge ``SLOPE_RIDGE``), the
residual variance scaled by n / (n - 2), and per scope the turnout ratio's weighted mean and sd.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sandik.core.projection.pool import MIN_POOL_RACES, SLOPE_RIDGE, pool_stats


def _oracle(swings, region_of):
    scopes: dict[str, list[str]] = {}
    for rid in swings:
        scopes.setdefault("*", []).append(rid)
        if rid in region_of:
            scopes.setdefault(region_of[rid], []).append(rid)
    parties, turnout = {}, {}
    for scope, rids in scopes.items():
        rows: dict[str, list[tuple[float, float, float]]] = {}
        for r in rids:
            for key, (v, qb) in swings[r][0].items():
                rows.setdefault(key, []).append((v, qb, swings[r][1]))
        ps = {}
        for key, rs in rows.items():
            if len(rs) < MIN_POOL_RACES:
                continue
            tw = math.fsum(w for _, _, w in rs)
            wn = [w / tw for _, _, w in rs]
            xm = math.fsum(a * x for a, (_, x, _) in zip(wn, rs))
            ym = math.fsum(a * y for a, (y, _, _) in zip(wn, rs))
            vx = math.fsum(a * (x - xm) ** 2 for a, (_, x, _) in zip(wn, rs))
            b = math.fsum(a * (x - xm) * (y - ym) for a, (y, x, _) in zip(wn, rs)) / (vx + SLOPE_RIDGE)
            rv = math.fsum(a * (y - ym - b * (x - xm)) ** 2 for a, (y, x, _) in zip(wn, rs)) * len(rs) / max(len(rs) - 2, 1)
            ps[key] = (ym, b, xm, vx, rv, len(rs))
        parties[scope] = ps
        tw = math.fsum(swings[r][1] for r in rids)
        lt = math.fsum(swings[r][1] / tw * swings[r][2] for r in rids)
        sd = math.sqrt(math.fsum(swings[r][1] / tw * (swings[r][2] - lt) ** 2 for r in rids)) + 0.02
        turnout[scope] = (lt, sd)
    return parties, turnout, {k: len(v) for k, v in scopes.items()}


@st.composite
def _swings(draw):
    n = draw(st.integers(0, 14))
    parties = ["A", "B", "C", "D", "E"]
    swings, region_of = {}, {}
    for r in range(n):
        rid = f"r{r}"
        keys = draw(st.lists(st.sampled_from(parties), min_size=1, max_size=4, unique=True))
        by_party = {k: (draw(st.floats(-0.5, 0.5)), draw(st.floats(0.0, 1.0))) for k in keys}
        swings[rid] = (by_party, draw(st.floats(1.0, 1e6)), draw(st.floats(-1.0, 0.5)))
        region = draw(st.sampled_from(["north", "south", "east", None]))
        if region is not None:
            region_of[rid] = region
    return swings, region_of


@settings(max_examples=300, deadline=None)
@given(_swings())
def test_pool_stats_matches_the_race_by_race_definition(case):
    swings, region_of = case
    got = pool_stats(swings, region_of)
    parties, turnout, races = _oracle(swings, region_of)
    assert got.races == races
    assert set(got.parties) == set(parties)
    for scope, ps in parties.items():
        assert set(got.parties[scope]) == set(ps), scope  # the same parties reach MIN_POOL_RACES
        for key, want in ps.items():
            have = got.parties[scope][key]
            assert have[5] == want[5]
            np.testing.assert_allclose(have[:5], want[:5], rtol=1e-9, atol=1e-12, err_msg=f"{scope} {key}")
    assert set(got.turnout) == set(turnout)
    for scope, want in turnout.items():
        np.testing.assert_allclose(got.turnout[scope], want, rtol=1e-9, atol=1e-12)


def test_a_party_in_fewer_races_than_the_minimum_is_left_out_of_its_scope():
    swings = {
        "r0": ({"A": (0.1, 0.4), "B": (-0.1, 0.5)}, 100.0, 0.0),
        "r1": ({"A": (0.2, 0.3)}, 300.0, -0.1),
        "r2": ({"A": (0.0, 0.6)}, 100.0, 0.1),
    }
    got = pool_stats(swings, {"r0": "x", "r1": "x", "r2": "y"})
    assert set(got.parties["*"]) == {"A"}
    assert got.parties["x"] == {} and got.parties["y"] == {}
    assert got.races == {"*": 3, "x": 2, "y": 1}
    ym, b, xm, vx, rv, n = got.parties["*"]["A"]
    assert n == 3 and math.isclose(xm, (0.4 * 100 + 0.3 * 300 + 0.6 * 100) / 500) and math.isclose(ym, (0.1 * 100 + 0.2 * 300) / 500)
    assert pool_stats({}, {}).parties == {}
