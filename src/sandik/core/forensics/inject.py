"""Known manipulations injected into copies of real sheets, to measure what the checks catch.

Every injection is seeded and returns the changed table and the rows it
changed. Kinds (methods.md §2, issue 5 "Evaluation"):

``stuffing``     the race leader gets extra ballots: x ~ U(50%, 100%) of the box's
                 headroom (registered - voters); voters, ballots used, valid and
                 unchallenged valid grow by x, so every tally rule still holds.
``swap``         the box's two largest counts trade places (rules still hold): the
                 deliberate swap, and the hardest to see when the two are close.
``swap_adjacent`` one of the box's two largest counts trades places with the count in
                 the next column of the sheet (left or right): the entry slip.
``shift``        from a column k at or before the box's largest count, every count
                 moves one column (left or right, the end wrapping round); rules hold.
``magnitude``    one of the box's two largest counts (>= 20) gains or loses a digit
                 (x10 or //10).
``digit``        one digit of one of the box's two largest counts (>= 20) is changed.

``magnitude`` and ``digit`` come in two modes: ``raw`` (only the candidate's cell
changes, as a typing slip would: the sum rule E6 then breaks) and
``balanced`` (valid, ballots used and voters change by the same amount, as a
deliberate edit would).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sandik.core.forensics.table import HEADER, SheetTable
from sandik.errors import SandikError

KINDS = ("stuffing", "swap", "swap_adjacent", "shift", "magnitude", "digit")
_H = {h: i for i, h in enumerate(HEADER)}


@dataclass(frozen=True)
class Injection:
    kind: str
    mode: str
    rows: np.ndarray  # changed rows
    delta_margin: np.ndarray  # per changed row: change of the box's (top1 - top2 of its race) contribution


def _add_voters(tab: SheetTable, rows: np.ndarray, d: np.ndarray) -> None:
    for f in ("voted_listed", "total_voters", "ballots_used", "valid_unchallenged", "valid"):
        tab.header[rows, _H[f]] += d
    # Voters beyond the list count as voters by law (the box-level convention of sandik.datasets.boxlevel).
    K = tab.header[rows, _H["registered"]]
    l1 = tab.header[rows, _H["voted_listed"]]
    over = np.maximum(l1 - K, 0)
    tab.header[rows, _H["voted_listed"]] -= over
    tab.header[rows, _H["voted_by_law"]] += over


def inject(tab: SheetTable, kind: str, rate: float, seed: int, *, mode: str = "raw", min_valid: int = 50) -> tuple[SheetTable, Injection]:
    """A copy of ``tab`` with ``rate`` of its eligible rows manipulated."""
    if kind not in KINDS:
        raise SandikError(f"unknown manipulation {kind!r}; known: {', '.join(KINDS)}")
    if mode not in ("raw", "balanced"):
        raise SandikError(f"unknown mode {mode!r}: raw or balanced")
    rng = np.random.default_rng(seed)
    out = tab.copy()
    n = len(tab)
    valid = tab.col("valid")
    v = tab.votes
    srt = np.sort(np.where(tab.mask, v, -1), axis=1)
    top2 = srt[:, -2] if v.shape[1] > 1 else np.zeros(n)
    eligible = (valid >= min_valid) & (tab.n_cands >= 2) & (top2 >= 0)
    if kind == "stuffing":
        head = tab.col("registered") - tab.col("total_voters")
        eligible &= head >= 10
    if kind in ("magnitude", "digit"):
        eligible &= top2 >= 20
    if kind == "shift":
        eligible &= tab.n_cands >= 3
    cand = np.flatnonzero(eligible)
    k = int(round(rate * n))
    if k > len(cand):
        raise SandikError(f"rate {rate} asks for {k} rows but only {len(cand)} are eligible for {kind}")
    rows = np.sort(rng.choice(cand, size=k, replace=False))
    before = out.votes[rows].copy()

    if kind == "stuffing":
        lead = np.argmax(out.race_totals, axis=1)[out.race[rows]]
        head = (out.col("registered") - out.col("total_voters"))[rows]
        x = np.maximum(1, np.round(rng.uniform(0.5, 1.0, size=k) * head)).astype(np.int64)
        out.votes[rows, lead] += x
        _add_voters(out, rows, x)
    elif kind == "swap":
        o = np.argsort(np.where(out.mask[rows], out.votes[rows], -1), axis=1)
        a, b = o[:, -1], o[:, -2]
        va = out.votes[rows, a].copy()
        out.votes[rows, a] = out.votes[rows, b]
        out.votes[rows, b] = va
    elif kind == "swap_adjacent":
        o = np.argsort(np.where(out.mask[rows], out.votes[rows], -1), axis=1)
        for i, r in enumerate(rows):
            m = int(out.n_cands[r])
            a = int(o[i, -1] if rng.random() < 0.5 else o[i, -2])
            b = a + (1 if rng.random() < 0.5 else -1)
            if b < 0 or b >= m:
                b = a - 1 if b >= m else a + 1
            out.votes[r, a], out.votes[r, b] = out.votes[r, b], out.votes[r, a]
    elif kind == "shift":
        for r in rows:
            m = int(out.n_cands[r])
            big = int(np.argmax(out.votes[r, :m]))
            k0 = int(rng.integers(0, min(big, m - 2) + 1))
            seg = out.votes[r, k0:m].copy()
            out.votes[r, k0:m] = np.roll(seg, 1 if rng.random() < 0.5 else -1)
    else:
        o = np.argsort(np.where(out.mask[rows], out.votes[rows], -1), axis=1)
        pick = np.where(rng.random(k) < 0.5, o[:, -1], o[:, -2])
        old = out.votes[rows, pick]
        if kind == "magnitude":
            up = rng.random(k) < 0.5
            new = np.where(up, old * 10, old // 10)
        else:
            new = np.array([_change_digit(int(x), rng) for x in old], dtype=np.int64)
        out.votes[rows, pick] = new
        if mode == "balanced":
            _add_voters(out, rows, new - old)
    out.__dict__.pop("race_totals", None)
    after = out.votes[rows]
    lead_c = np.argmax(tab.race_totals, axis=1)[tab.race[rows]]
    rt = tab.race_totals.copy()
    rt[np.arange(len(rt)), np.argmax(rt, axis=1)] = -1
    run_c = np.argmax(rt, axis=1)[tab.race[rows]]
    idx = np.arange(k)
    dm = (after[idx, lead_c] - after[idx, run_c]) - (before[idx, lead_c] - before[idx, run_c])
    return out, Injection(kind, mode if kind in ("magnitude", "digit") else "-", rows, dm)


def _change_digit(x: int, rng: np.random.Generator) -> int:
    s = list(str(x))
    pos = int(rng.integers(0, len(s)))
    choices = [d for d in "0123456789" if d != s[pos] and not (pos == 0 and d == "0" and len(s) > 1)]
    s[pos] = choices[int(rng.integers(0, len(choices)))]
    return int("".join(s))
