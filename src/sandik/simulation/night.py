"""A simulated election night: one official tally sheet per (box, race).

Given an election with boxes and official ``aggregate_results`` (the bundled
2024 Turkish local election), :func:`simulate_night` invents box-level results
that add up EXACTLY to every race's official totals (votes cast, valid,
invalid and every candidate's votes), and :func:`arrival_order` says when each
box's sheets come in on the night.

How the numbers are made (all seeded, deterministic):

* Boxes are grouped into runs of neighbouring boxes ("neighbourhoods": boxes
  are numbered street by street). Turnout, invalid-vote rates and candidate
  shares vary by neighbourhood and then by box, so neighbouring boxes look
  alike. Shares are hierarchical-Dirichlet around the race's official shares
  (overdispersed: a big party's box share varies by about ten points within a
  district, as in the 2019 Istanbul box data).
* Expected counts are raked (iterative proportional fitting) to the box totals
  and the official candidate totals, then rounded with a bounded
  largest-remainder rule, candidate by candidate from the smallest; the largest
  candidate takes what is left in each box. Every total is exact.
* A metropolitan race has no official district breakdown: its totals are first
  split over the province's districts (seeded by the same candidates' votes in
  each district race and by the district turnout), then over each district's
  boxes, seeded by the box's district-race result, so a box's two sheets agree
  with each other. Metropolitan races count slightly more voters than the sum
  of their district races (0.06-0.45 %); those extra voters are voters by law
  on the metropolitan sheet, at most a handful per box.

Sheet rules that hold for every sheet: ``voted_listed <= registered``;
``total_voters = voted_listed + voted_by_law``; ``valid = valid_unchallenged +
valid_challenged``; ``sum(votes) = valid``; ``ballots_used = valid + invalid``;
``ballots_used <= total_voters <= registered + voted_by_law``.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np

from sandik.core.model import Election, Race, RaceTotals
from sandik.core.sheet import TallySheet
from sandik.errors import ModelError
from sandik.gc_pause import paused_gc

__all__ = ["POLLS_CLOSE_HOUR", "simulate_night", "arrival_order", "night"]

POLLS_CLOSE_HOUR = 17  # local time; arrival minutes count from here
NIGHT_MINUTES = 390.0  # the last sheets arrive about six and a half hours after the polls close

# Variation (calibrated on the 31 March 2019 Istanbul box data: within a
# district a big party's box share has a standard deviation of about 0.11,
# neighbouring boxes correlate at about 0.8, box turnout varies by about 4
# points and the invalid rate by about half its mean).
_ALPHA_NEIGHBOURHOOD = 22.0  # Dirichlet concentration of neighbourhood shares around the race's
_ALPHA_BOX = 150.0  # ... and of box shares around their neighbourhood's
_TURNOUT_SD = (0.22, 0.20)  # logit-scale noise: neighbourhood, box
_INVALID_SD = (0.35, 0.35)  # log-scale noise of the invalid rate: neighbourhood, box
_MEAN_NEIGHBOURHOOD = 8.0  # boxes per neighbourhood, on average
_BY_LAW_MEAN = 0.7  # voters by law (box officials) per box: Poisson, at most 5
_BY_LAW_MAX = 5
_CHALLENGED_P = 0.015  # share of boxes with challenged valid votes
_EPS = 1e-9


def _rng(seed: int, key: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(key.encode("utf-8"))])


# --- exact integer allocation -------------------------------------------------------------


def _bounded_round(x: np.ndarray, total: int, hi: np.ndarray, lo: np.ndarray | int = 0) -> np.ndarray:
    """Integers near ``x`` with ``lo <= v <= hi`` and ``v.sum() == total`` (largest remainders first)."""
    hi = np.asarray(hi, dtype=np.int64)
    lo = np.broadcast_to(np.asarray(lo, dtype=np.int64), hi.shape)
    v = np.clip(np.floor(x), lo, hi).astype(np.int64)
    rem = int(total) - int(v.sum())
    while rem:
        if rem > 0:
            room = np.flatnonzero(v < hi)
            pri = (x[room] - v[room]) if len(room) else room
        else:
            room = np.flatnonzero(v > lo)
            pri = (v[room] - x[room]) if len(room) else room
        if not len(room):
            raise ModelError(f"cannot allocate {total} within bounds (sum lo={int(lo.sum())}, sum hi={int(hi.sum())})")
        k = min(abs(rem), len(room))
        if k < len(room):
            pick = room[np.argpartition(-pri, k - 1)[:k]]
        else:
            pick = room
        step = 1 if rem > 0 else -1
        v[pick] += step
        rem -= step * k
    return v


def _scaled(w: np.ndarray, total: float) -> np.ndarray:
    s = float(w.sum())
    if s <= 0:
        return np.full(len(w), total / max(len(w), 1))
    return w * (total / s)


def _rake(seed: np.ndarray, rows: np.ndarray, cols: np.ndarray, iters: int = 60) -> np.ndarray:
    """Iterative proportional fitting of a positive matrix to row and column totals."""
    w = np.maximum(seed, _EPS)
    w[rows <= 0, :] = 0.0
    rows_f = rows.astype(float)
    cols_f = cols.astype(float)
    for _ in range(iters):
        rs = w.sum(axis=1)
        np.divide(rows_f, rs, out=rs, where=rs > 0)
        w *= rs[:, None]
        cs = w.sum(axis=0)
        err = np.abs(cs - cols_f).max(initial=0.0)
        np.divide(cols_f, cs, out=cs, where=cs > 0)
        w *= cs[None, :]
        if err < 1e-6 * max(1.0, cols_f.max(initial=0.0)):
            break
    return w


def _integer_matrix(expected: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """An integer matrix with exactly these row and column totals, near ``expected``.

    Columns are filled from the smallest total up, each rounded within what its
    rows still hold; the largest column takes each row's remainder.
    """
    n, m = expected.shape
    out = np.zeros((n, m), dtype=np.int64)
    if m == 0:
        return out
    left = rows.astype(np.int64).copy()
    order = np.argsort(cols, kind="stable")
    for c in order[:-1]:
        v = _bounded_round(expected[:, c], int(cols[c]), hi=left)
        out[:, c] = v
        left -= v
    out[:, order[-1]] = left
    return out


# --- one race ----------------------------------------------------------------------------------


@dataclass
class _Filled:
    """Box-level results of one race, arrays aligned with ``boxes``."""

    race: Race
    boxes: np.ndarray  # box indices
    listed: np.ndarray
    by_law: np.ndarray
    invalid: np.ndarray
    valid: np.ndarray
    votes: np.ndarray  # boxes x candidates
    challenged: np.ndarray

    @property
    def cast(self) -> np.ndarray:
        return self.listed + self.by_law


def _neighbourhoods(n: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    starts = rng.random(n) < 1.0 / _MEAN_NEIGHBOURHOOD
    if n:
        starts[0] = True
    g = np.cumsum(starts) - 1
    return g, int(g[-1]) + 1 if n else 0


def _dirichlet_rows(alpha: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    g = rng.gamma(np.maximum(alpha, 1e-6))
    g = np.maximum(g, 1e-12)
    return g / g.sum(axis=1, keepdims=True)


def _logit(p: float) -> float:
    p = min(max(p, 1e-4), 1 - 1e-4)
    return math.log(p / (1 - p))


def _challenged(valid: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    hit = rng.random(len(valid)) < _CHALLENGED_P
    size = rng.geometric(0.45, len(valid))
    return np.where(hit, np.minimum(size, valid), 0).astype(np.int64)


def _fill_race(race: Race, t: RaceTotals, boxes: np.ndarray, registered: np.ndarray, rng: np.random.Generator) -> _Filled:
    n = len(boxes)
    group, ng = _neighbourhoods(n, rng)

    # Voters by law, then listed voters, summing to the official votes cast.
    by_law = np.minimum(rng.poisson(_BY_LAW_MEAN, n), _BY_LAW_MAX).astype(np.int64)
    if by_law.sum() > t.total_voters:
        by_law[:] = 0
    listed_total = t.total_voters - int(by_law.sum())
    if listed_total > t.registered:  # (not in the 2024 data) more voters than the list: more by law
        extra = _bounded_round(_scaled(np.ones(n), listed_total - t.registered), listed_total - t.registered, hi=np.full(n, 10**9))
        by_law += extra
        listed_total = t.registered
    base = _logit(listed_total / max(t.registered, 1))
    z = base + rng.normal(0, _TURNOUT_SD[0], ng)[group] + rng.normal(0, _TURNOUT_SD[1], n)
    turnout = 1 / (1 + np.exp(-z))
    listed = _bounded_round(_scaled(registered * turnout, listed_total), listed_total, hi=registered)
    cast = listed + by_law

    # Invalid votes.
    rate = np.exp(rng.normal(0, _INVALID_SD[0], ng)[group] + rng.normal(0, _INVALID_SD[1], n))
    invalid = _bounded_round(_scaled(cast * rate, t.invalid), t.invalid, hi=cast)
    valid = cast - invalid

    # Candidate votes.
    totals = np.asarray(t.votes, dtype=np.int64)
    shares = totals / max(int(totals.sum()), 1)
    g_shares = _dirichlet_rows(np.broadcast_to(_ALPHA_NEIGHBOURHOOD * shares, (ng, len(shares))), rng)
    b_shares = _dirichlet_rows(_ALPHA_BOX * g_shares[group], rng)
    expected = _rake(b_shares * valid[:, None], valid, totals)
    votes = _integer_matrix(expected, valid, totals)
    return _Filled(race, boxes, listed, by_law, invalid, valid, votes, _challenged(valid, rng))


def _fill_metro(race: Race, t: RaceTotals, districts: list[_Filled], totals_of: dict[str, RaceTotals], rng: np.random.Generator) -> _Filled:
    """Split a metropolitan race over its districts, then over each district's boxes."""
    cids = [c.id for c in race.candidates]
    m = len(cids)
    metro_votes = np.asarray(t.votes, dtype=np.int64)
    d_cast = np.array([totals_of[f.race.id].total_voters for f in districts], dtype=np.int64)
    d_invalid = np.array([totals_of[f.race.id].invalid for f in districts], dtype=np.int64)
    d_listed = np.array([int(f.listed.sum()) for f in districts], dtype=np.int64)

    # District level: extra (or fewer) voters, invalid votes, candidate votes.
    delta = t.total_voters - int(d_cast.sum())
    if delta >= 0:
        d_delta = _bounded_round(_scaled(d_cast.astype(float), delta), delta, hi=np.full(len(districts), 10**12))
    else:
        d_delta = -_bounded_round(_scaled(d_cast.astype(float), -delta), -delta, hi=d_listed)
    m_cast = d_cast + d_delta
    inv_rate = (d_invalid + 0.5) / (d_cast + 1.0)
    m_invalid = _bounded_round(_scaled(m_cast * inv_rate, t.invalid), t.invalid, hi=m_cast)
    m_valid = m_cast - m_invalid
    metro_share = metro_votes / max(int(metro_votes.sum()), 1)
    seed = np.zeros((len(districts), m))
    for i, f in enumerate(districts):
        dt = totals_of[f.race.id]
        idx = f.race.candidate_index
        local = np.array([dt.votes[idx[c]] / max(dt.valid, 1) if c in idx else 0.0 for c in cids])
        seed[i] = m_valid[i] * (0.6 * local + 0.4 * metro_share) * rng.gamma(50.0, 1 / 50.0, m)
    d_votes = _integer_matrix(_rake(seed, m_valid, metro_votes), m_valid, metro_votes)

    # Box level, district by district.
    parts = []
    for i, f in enumerate(districts):
        n = len(f.boxes)
        cast_b = f.cast
        if d_delta[i] >= 0:
            b_delta = _bounded_round(_scaled(cast_b.astype(float), int(d_delta[i])), int(d_delta[i]), hi=np.full(n, 10**9))
            by_law = f.by_law + b_delta
            listed = f.listed.copy()
        else:
            b_delta = _bounded_round(_scaled(f.listed.astype(float), -int(d_delta[i])), -int(d_delta[i]), hi=f.listed)
            by_law = f.by_law.copy()
            listed = f.listed - b_delta
        cast = listed + by_law
        rate = (f.invalid + 0.5) / (cast_b + 1.0) * np.exp(rng.normal(0, 0.2, n))
        invalid = _bounded_round(_scaled(cast * rate, int(m_invalid[i])), int(m_invalid[i]), hi=cast)
        valid = cast - invalid
        # Seeds: the box's own district-race result for the same candidate (party).
        dt = totals_of[f.race.id]
        idx = f.race.candidate_index
        ratio = np.empty((n, m))
        for j, c in enumerate(cids):
            if c in idx:
                k = idx[c]
                box_share = (f.votes[:, k] + 0.5) / (f.valid + 1.0)
                race_share = (dt.votes[k] + 0.5) / (dt.valid + 1.0)
                ratio[:, j] = (box_share / race_share) ** 0.8
            else:
                ratio[:, j] = 1.0
        noise = rng.gamma(_ALPHA_BOX, 1 / _ALPHA_BOX, (n, m))
        d_share = d_votes[i] / max(int(d_votes[i].sum()), 1)
        seed_b = valid[:, None] * d_share[None, :] * ratio * noise
        votes = _integer_matrix(_rake(seed_b, valid, d_votes[i]), valid, d_votes[i])
        parts.append((f.boxes, listed, by_law, invalid, valid, votes))

    cat = [np.concatenate([p[k] for p in parts]) for k in range(5)]
    votes = np.vstack([p[5] for p in parts]) if parts else np.zeros((0, m), dtype=np.int64)
    return _Filled(race, cat[0], cat[1], cat[2], cat[3], cat[4], votes, _challenged(cat[4], rng))


# --- the night ------------------------------------------------------------------------------


def _fill_all(election: Election, seed: int) -> list[_Filled]:
    res = election.aggregate_results
    filled: dict[str, _Filled] = {}
    metros: list[Race] = []
    for race in election.races.values():
        boxes = election.race_boxes[race.id]
        if not len(boxes):
            continue
        if race.id not in res:
            raise ModelError(f"race {race.id}: boxes but no official totals to reproduce")
        t = res[race.id]
        reg = election.box_registered[boxes]
        if int(reg.sum()) != t.registered:
            raise ModelError(f"race {race.id}: boxes hold {int(reg.sum())} registered voters, the official figure is {t.registered}")
        if race.office == "metropolitan_mayor":
            metros.append(race)
            continue
        filled[race.id] = _fill_race(race, t, boxes, reg, _rng(seed, race.id))

    # A metropolitan race's boxes are those of district races under it.
    by_box: dict[int, str] = {}
    for rid, f in filled.items():
        if filled[rid].race.office != "belde_mayor":
            for b in f.boxes.tolist():
                by_box[b] = rid
    for race in metros:
        boxes = election.race_boxes[race.id]
        members: list[str] = []
        seen = set()
        for b in boxes.tolist():
            rid = by_box.get(b)
            if rid is None:
                raise ModelError(f"race {race.id}: box {election.box_ids[b]} votes in no district race")
            if rid not in seen:
                seen.add(rid)
                members.append(rid)
        districts = [filled[rid] for rid in members]
        if sum(len(f.boxes) for f in districts) != len(boxes):
            raise ModelError(f"race {race.id}: its boxes are not exactly those of its district races")
        filled[race.id] = _fill_metro(race, res[race.id], districts, res, _rng(seed, race.id))
    return list(filled.values())


def _sheets(election: Election, f: _Filled) -> list[TallySheet]:
    cids = [c.id for c in f.race.candidates]
    reg = election.box_registered[f.boxes].tolist()
    ids = election.box_ids
    out = []
    rows = zip(
        f.boxes.tolist(), reg, f.listed.tolist(), f.by_law.tolist(), f.invalid.tolist(), f.valid.tolist(), f.challenged.tolist(), f.votes.tolist()
    )
    for b, r, listed, by_law, invalid, valid, ch, votes in rows:
        cast = listed + by_law
        out.append(
            TallySheet(
                box_id=ids[b],
                race_id=f.race.id,
                registered=r,
                voted_listed=listed,
                voted_by_law=by_law,
                total_voters=cast,
                ballots_used=valid + invalid,
                valid_unchallenged=valid - ch,
                valid_challenged=ch,
                valid=valid,
                invalid=invalid,
                votes=dict(zip(cids, votes)),
            )
        )
    return out


def simulate_night(election: Election, seed: int = 2024) -> list[TallySheet]:
    """One official sheet per (box, race) reproducing every race's ``aggregate_results`` exactly.

    Races without boxes are skipped. Sheets come in box order, a box's races in
    race order. Deterministic for a given election and seed.
    """
    filled = _fill_all(election, seed)
    out: list[TallySheet] = []
    with paused_gc():
        for f in filled:
            out.extend(_sheets(election, f))
        order = {rid: i for i, rid in enumerate(election.races)}
        idx = election.box_index
        out.sort(key=lambda s: (idx[s.box_id], order[s.race_id]))
    return out


def arrival_order(election: Election, sheets: list[TallySheet], seed: int = 2024) -> list[tuple[float, TallySheet]]:
    """When each sheet arrives: ``(minutes after the polls close, sheet)``, earliest first.

    A box's sheets arrive together. Small boxes and small (rural) districts come
    in first, the big city districts later: the time is counting (grows with
    the votes cast and the number of races on the box) plus getting the sheet to
    the district board and entered, which takes longer in bigger districts and
    varies by district board. About six hours from first to last sheet. The
    polls are taken to close at 17:00 everywhere (in 2024 they closed at 16:00
    in the east; not modelled).
    """
    rng = _rng(seed, "arrival:" + election.id)
    by_box: dict[int, list[TallySheet]] = {}
    idx = election.box_index
    for s in sheets:
        by_box.setdefault(idx[s.box_id], []).append(s)
    boxes = np.array(sorted(by_box), dtype=np.int64)
    if not len(boxes):
        return []
    # District of each box: the box's area, or the parent of a belde.
    areas = election.areas
    district_of = []
    for b in boxes.tolist():
        a = areas[election.box_area_ids[b]]
        district_of.append(a.parent_id if a.kind == "belde" and a.parent_id else a.id)
    keys, dist_idx = np.unique(np.array(district_of), return_inverse=True)
    d_reg = np.bincount(dist_idx, weights=election.box_registered[boxes].astype(float))
    # Province-wide registered voters, for the metropolitan-city effect.
    prov_of_key = np.array([k.split(".")[1] if k.count(".") >= 1 else k for k in keys])
    pkeys, prov_idx = np.unique(prov_of_key, return_inverse=True)
    p_reg = np.bincount(prov_idx, weights=d_reg)

    def unit(x: np.ndarray) -> np.ndarray:
        lx = np.log(np.maximum(x, 1.0))
        lo, hi = lx.min(), lx.max()
        return (lx - lo) / (hi - lo) if hi > lo else np.zeros_like(lx)

    size = 0.7 * unit(d_reg) + 0.3 * unit(p_reg)[prov_idx]  # 0 = small rural district, 1 = big city district
    board = rng.lognormal(0.0, 0.25, len(keys))  # some district boards are slower
    u = size[dist_idx]
    cast = np.array([max(s.total_voters for s in by_box[b]) for b in boxes.tolist()], dtype=float)
    n_races = np.array([len(by_box[b]) for b in boxes.tolist()], dtype=float)
    counting = 10.0 + 0.12 * cast * np.sqrt(n_races) * rng.lognormal(0.0, 0.2, len(boxes))
    transport = rng.lognormal(np.log(15.0 + 85.0 * u), 0.55) * board[dist_idx]
    minutes = counting + transport
    # Stragglers: the tail is squeezed smoothly so that the night ends after about six and a half hours.
    knee = NIGHT_MINUTES - 90.0
    late = minutes > knee
    minutes[late] = knee + 90.0 * np.tanh((minutes[late] - knee) / 90.0)
    minutes = np.round(minutes, 2)
    order = np.lexsort((boxes, minutes))
    out: list[tuple[float, TallySheet]] = []
    with paused_gc():
        for t, b in zip(minutes[order].tolist(), boxes[order].tolist()):
            for s in by_box[b]:
                out.append((t, s))
    return out


def night(election: Election, seed: int = 2024) -> list[tuple[float, TallySheet]]:
    """``arrival_order(election, simulate_night(election, seed), seed)``."""
    return arrival_order(election, simulate_night(election, seed), seed)
