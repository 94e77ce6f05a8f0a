"""Projecting many races at once, with a prior pooled across races.

A race that has counted little (or nothing: a district reporting as one unit)
borrows its expected swing from the races that have counted: per party, the
vote-weighted mean swing of the other races in the same region (when enough
have reported) or everywhere, with their spread between races as the prior's
covariance. ``project_many`` is what both the live path and the backtests call;
its step, ``project_races``, returns a race's last outcome again while its count
and prior have not changed and projects the others together
(``model.project_stacked``).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from sandik.core.projection.calls import CallDecision, CallRule, decide
from sandik.core.projection.frame import RaceFrame, RaceState
from sandik.core.projection.model import ModelParams, RaceProjection, SwingPrior, multinomial_cov, project_stacked

MIN_POOL_RACES = 3


@dataclass
class RaceOutcome:
    projection: RaceProjection
    call: CallDecision
    seats: dict | None = None  # multi-seat races (councils): D'Hondt over the projection draws

    def to_dict(self) -> dict:
        d = self.projection.to_dict()
        d["call"] = self.call.to_dict()
        if self.seats is not None:
            cid = self.projection.candidate_ids
            d["seats"] = {
                "median": dict(zip(cid, (int(x) for x in self.seats["median"]))),
                "intervals": {lv: {c: [int(lo[k]), int(hi[k])] for k, c in enumerate(cid)} for lv, (lo, hi) in ((k, v) for k, v in self.seats.items() if k not in ("median", "p_majority"))},
                "p_majority": dict(zip(cid, (float(x) for x in self.seats["p_majority"]))),
            }
        return d


def _party_key(frame: RaceFrame, k: int) -> str:
    return frame.candidate_parties[k] or f"~{frame.candidate_ids[k]}"


def state_key(st: RaceState) -> bytes:
    """A digest of a race's count (which units are in, and every vote): equal digests, equal swings."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{st.votes.dtype.str}{st.valid.dtype.str}{st.votes.shape}".encode())
    h.update(np.packbits(st.reported).tobytes())
    h.update(np.ascontiguousarray(st.votes).tobytes())
    h.update(np.ascontiguousarray(st.valid).tobytes())
    return h.digest()


def race_swings(frames: dict[str, RaceFrame], states: dict[str, RaceState], *, keys: dict[str, bytes] | None = None) -> dict[str, tuple[dict[str, tuple[float, float]], float, float]]:
    """Per race with votes in: (party -> (mean swing of share, race baseline share), weight = valid votes counted, mean log turnout ratio).

    A race's swing is kept on its frame with a digest of the count it came from,
    so a refresh after a batch recomputes only the races whose count changed.
    """
    out = {}
    for rid, fr in frames.items():
        st = states[rid]
        key = keys[rid] if keys is not None and rid in keys else state_key(st)
        hit = fr._swing_cache
        if hit is not None and hit[0] == key:
            if hit[1] is not None:
                out[rid] = hit[1]
            continue
        m = st.reported & (st.valid > 0) & (fr.expected > 0) & fr.has_base
        val = None
        if m.any():
            T = st.valid[m].astype(float)
            E = fr.expected[m]
            p = st.votes[m] / T[:, None]
            sw = ((p - fr.base_share[m]) * E[:, None]).sum(axis=0) / E.sum()
            lt = float(np.log(T.sum() / E.sum()))
            qb = fr.baseline_mean
            val = ({_party_key(fr, k): (float(sw[k]), float(qb[k])) for k in range(fr.n_candidates)}, float(T.sum()), lt)
            out[rid] = val
        fr._swing_cache = (key, val)
    return out


@dataclass
class PoolStats:
    """Per scope (a region, or "*" for everywhere), per party: a weighted line of race swing on the
    party's baseline share in the race (mean swing, slope, mean share, share spread, residual
    variance, races); and the turnout ratio (mean, sd)."""

    parties: dict[str, dict[str, tuple[float, float, float, float, float, int]]]
    turnout: dict[str, tuple[float, float]]
    races: dict[str, int]


SLOPE_RIDGE = 0.003  # shrinks the swing-on-share slope towards zero when shares barely vary


def pool_stats(swings: dict[str, tuple[dict[str, tuple[float, float]], float, float]], region_of: dict[str, str]) -> PoolStats:
    """Per scope ("*" and each race's region) and party: the weighted line of the races' swings on
    the party's baseline share, and the turnout ratio's weighted mean and spread.

    Every (scope, party) pair is one group of rows, summed with ``np.bincount`` in the order of
    ``swings`` (one pass over the ~16,000 race-party rows of the 2024 night instead of some 800
    small arrays: this runs in the parent between two phases of the children's work)."""
    if not swings:
        return PoolStats({}, {}, {})
    scope_code: dict[str, int] = {"*": 0}
    party_code: dict[str, int] = {}
    race_scope = []  # per race: the code of its region, -1 for none
    r_of, p_of, vals = [], [], []  # per race-party row: race, party, (swing, baseline share)
    for r, (rid, (by_party, _, _)) in enumerate(swings.items()):
        reg = region_of.get(rid)
        race_scope.append(-1 if reg is None else scope_code.setdefault(reg, len(scope_code)))
        for key, v in by_party.items():
            r_of.append(r)
            p_of.append(party_code.setdefault(key, len(party_code)))
            vals.append(v)
    names = list(scope_code)
    S, P = len(names), max(len(party_code), 1)
    rw = np.array([sw[1] for sw in swings.values()], dtype=float)  # valid votes counted per race
    rlt = np.array([sw[2] for sw in swings.values()], dtype=float)
    rs = np.array(race_scope, dtype=np.int64)
    ri = np.array(r_of, dtype=np.int64)
    pi = np.array(p_of, dtype=np.int64)
    yx = np.array(vals, dtype=float).reshape(-1, 2)
    rows, scope_of_row = _in_scopes(ri, rs)
    g = scope_of_row * P + pi[rows]
    y, x, w = yx[rows, 0], yx[rows, 1], rw[ri[rows]]
    n_groups = S * P
    n = np.bincount(g, minlength=n_groups)
    wn = w / np.bincount(g, weights=w, minlength=n_groups)[g]
    xm = np.bincount(g, weights=wn * x, minlength=n_groups)
    ym = np.bincount(g, weights=wn * y, minlength=n_groups)
    dx, dy = x - xm[g], y - ym[g]
    vx = np.bincount(g, weights=wn * dx**2, minlength=n_groups)
    b = np.bincount(g, weights=wn * dx * dy, minlength=n_groups) / (vx + SLOPE_RIDGE)
    res = dy - b[g] * dx
    # spread between races, not the error of the mean: this race is one more draw
    rv = np.bincount(g, weights=wn * res**2, minlength=n_groups) * n / np.maximum(n - 2, 1)
    keys = list(party_code)
    cols = [a.tolist() for a in (ym, b, xm, vx, rv, n)]
    parties: dict[str, dict[str, tuple[float, float, float, float, float, int]]] = {}
    for si, scope in enumerate(names):
        parties[scope] = {keys[k]: tuple(c[si * P + k] for c in cols) for k in range(len(keys)) if n[si * P + k] >= MIN_POOL_RACES}  # type: ignore[misc]
    # turnout: per race, not per party
    rr, sc = _in_scopes(np.arange(len(rs)), rs)
    lw = rw[rr] / np.bincount(sc, weights=rw[rr], minlength=S)[sc]
    lt = np.bincount(sc, weights=lw * rlt[rr], minlength=S)
    lsd = np.sqrt(np.bincount(sc, weights=lw * (rlt[rr] - lt[sc]) ** 2, minlength=S)) + 0.02
    races = np.bincount(sc, minlength=S)
    turnout = {scope: (float(lt[si]), float(lsd[si])) for si, scope in enumerate(names)}
    return PoolStats(parties, turnout, {scope: int(races[si]) for si, scope in enumerate(names)})


def _in_scopes(race_of_row: np.ndarray, race_scope: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every row once in "*" (scope 0) and once more in its race's region, if it has one: the rows'
    indices and their scopes, "*" first, each scope's rows in their order."""
    region = race_scope[race_of_row]
    again = np.flatnonzero(region >= 0)
    return np.concatenate([np.arange(len(race_of_row)), again]), np.concatenate([np.zeros(len(race_of_row), dtype=np.int64), region[again]])


def pooled_prior(frame: RaceFrame, stats: PoolStats, region_of: dict[str, str], params: ModelParams) -> SwingPrior | None:
    """The prior for ``frame``: other races' swings, from its region if enough have counted, else everywhere.

    The swing is read off the line of race swing on the party's baseline share,
    at this race's share, and its variance grows with the distance from the
    shares the counted races had (prediction variance of a line): when the
    races in are a party's strongholds, a race where it is weak is an
    extrapolation, and says so. (The race's own swing is in the pool when it has
    counted a little; it is one race among many, and the prior only matters
    while it has counted little.)
    """
    region = region_of.get(frame.race_id)
    scope = region if region is not None and stats.races.get(region, 0) >= MIN_POOL_RACES else "*"
    if stats.races.get(scope, 0) < MIN_POOL_RACES:
        return None
    K = frame.n_candidates
    qb = frame.baseline_mean
    mean = np.zeros(K)
    var = np.full(K, params.prior_group_sd**2)
    for k in range(K):
        key = _party_key(frame, k)
        hit = stats.parties[scope].get(key) or stats.parties["*"].get(key)
        if hit is not None:
            ym, b, xm, vx, rv, nr = hit
            mean[k] = ym + b * (qb[k] - xm)
            var[k] = rv * (1.0 + 1.0 / nr + (qb[k] - xm) ** 2 / (vx + SLOPE_RIDGE))
    lt, lt_sd = stats.turnout[scope]
    # Shape the covariance so that swings sum to zero over candidates (one's gain is
    # another's loss), with the total variance the races show.
    shape_s = np.maximum(qb + mean, 0.5 / K)
    shape = multinomial_cov(shape_s, 1.0)
    scale2 = float(var.sum() / max(np.trace(shape), 1e-9))
    # Inflated: a race that has not reported is further from the pool than the pool's
    # members are from each other, and race swings are heavy-tailed (2019 -> 2024
    # replays: the plain between-race spread covered 79-81% at a nominal 90%).
    cov = shape * scale2 * 2.0 + np.diag(var) * 0.3
    return SwingPrior(mean, cov, lt, lt_sd, f"pooled over {stats.races[scope]} races" + ("" if scope == "*" else f" in {scope}"), scope)


def project_many(
    frames: dict[str, RaceFrame],
    states: dict[str, RaceState],
    *,
    params: ModelParams | None = None,
    rule: CallRule | None = None,
    region_of: dict[str, str] | None = None,
    races: list[str] | None = None,
) -> dict[str, RaceOutcome]:
    """Project and call every race (or ``races``), each with a prior pooled from the others."""
    params = params or ModelParams()
    rule = rule or CallRule()
    region_of = region_of or {}
    keys = {rid: state_key(st) for rid, st in states.items()}
    stats = pool_stats(race_swings(frames, states, keys=keys), region_of)
    return project_races(frames, states, stats, region_of, params, rule, races if races is not None else list(frames), keys=keys)


def prior_close(kept: SwingPrior | None, new: SwingPrior | None, tol: float) -> bool:
    """Whether an outcome made with the prior ``kept`` stands for ``new``: both none, or from the
    same scope with every mean swing, covariance entry and the turnout within ``tol`` of the new
    prior's own sds (``ModelParams.prior_reuse_sd``; 0: identical only).

    The comparison is with the prior the kept outcome was made with, not the one of the refresh
    before, so small moves cannot add up: the outcome is redone once the prior has drifted
    ``tol`` from it in all."""
    if kept is None or new is None:
        return kept is new
    if kept.scope != new.scope or kept.mean.shape != new.mean.shape:
        return False
    if tol <= 0:
        return (
            kept.mean.tobytes() == new.mean.tobytes()
            and kept.cov.tobytes() == new.cov.tobytes()
            and (kept.turnout, kept.turnout_sd, kept.source) == (new.turnout, new.turnout_sd, new.source)
        )
    sd = np.sqrt(np.maximum(np.diag(new.cov), 0.0))
    return bool(
        (np.abs(kept.mean - new.mean) <= tol * sd).all()
        and (np.abs(kept.cov - new.cov) <= tol * np.outer(sd, sd)).all()
        and abs(kept.turnout - new.turnout) <= tol * new.turnout_sd
        and abs(kept.turnout_sd - new.turnout_sd) <= tol * new.turnout_sd
    )


def _inputs(frame: RaceFrame, state: RaceState, stats: PoolStats, region_of: dict[str, str], params: ModelParams, rule: CallRule, key: bytes | None) -> tuple[SwingPrior | None, tuple]:
    """A race's pooled prior (only while it has counted little, and some units are still out: a
    complete count needs none) and everything else its outcome is a function of."""
    prior = None
    if int((state.reported & (state.valid > 0)).sum()) < 30 * params.min_units and not state.reported.all():
        prior = pooled_prior(frame, stats, region_of, params)
    flagged = None if state.flagged is None else np.packbits(state.flagged).tobytes()
    return prior, (key if key is not None else state_key(state), flagged, params, rule)


def project_races(
    frames: dict[str, RaceFrame],
    states: dict[str, RaceState],
    stats: PoolStats,
    region_of: dict[str, str],
    params: ModelParams,
    rule: CallRule,
    races: list[str],
    *,
    keys: dict[str, bytes] | None = None,
) -> dict[str, RaceOutcome]:
    """Projection and call of each of ``races`` (in that order), each with its pooled prior.

    A refresh after a batch asks again for races whose count did not change: the outcome is a
    function of the count, the flags under review, the prior (which moves only when other races'
    swings move it), the parameters and the rule, so the last outcome is kept on the frame with
    those inputs and returned as is (the same object) while they are equal, the prior within
    ``params.prior_reuse_sd`` of its sds (``prior_close``). The projections to
    redo run together (``model.project_stacked``: the per-draw steps once per race shape), with
    the same outcomes as one by one. ``keys``: ``state_key`` of each race's count, when the
    caller has them."""
    out: dict[str, RaceOutcome] = {}
    todo: list[tuple[str, tuple, SwingPrior | None]] = []
    for rid in races:
        frame = frames[rid]
        prior, ck = _inputs(frame, states[rid], stats, region_of, params, rule, keys.get(rid) if keys is not None else None)
        hit = frame._outcome_cache
        if hit is not None and hit[0] == ck and prior_close(hit[1], prior, params.prior_reuse_sd):
            out[rid] = hit[2]
        else:
            todo.append((rid, ck, prior))
    projs = project_stacked([(frames[rid], states[rid], params, prior, ck[0]) for rid, ck, prior in todo])
    for (rid, ck, prior), proj in zip(todo, projs):
        oc = RaceOutcome(proj, decide(frames[rid], states[rid], proj, rule))
        frames[rid]._outcome_cache = (ck, prior, oc)
        out[rid] = oc
    return {rid: out[rid] for rid in races}


def group_by_region(race_ids: list[str], area_of: dict[str, str], depth: int = 2) -> dict[str, str]:
    """Region of each race: its area id cut to ``depth`` dotted parts ("tr.34.kadikoy" -> "tr.34")."""
    out = defaultdict(str)
    for rid in race_ids:
        out[rid] = ".".join(area_of[rid].split(".")[:depth])
    return dict(out)
