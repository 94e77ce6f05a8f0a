"""Forensics and PVT on what the store holds: thin shells around the pure cores.

Functions returning plain dicts (for the CLI's ``--json`` and the web pages):
:func:`forensics_report`, :func:`fingerprint_page`, :func:`pvt_report`.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from sqlalchemy import text

from sandik.core import pvt
from sandik.core.forensics import election as el
from sandik.core.forensics.boxchecks import METHOD_VERSION, NOT_AN_ACCUSATION, TIER_RANK, Thresholds, race_summary, run_checks
from sandik.core.forensics.table import HEADER, SheetTable, from_rows
from sandik.core.sheet import OFFICIAL
from sandik.errors import NotFound
from sandik.store.repository import Store


def official_table(store: Store, election_id: str, *, source: str = OFFICIAL) -> SheetTable:
    """The latest version of every sheet of one source, as a table (official by default)."""
    e = store.election(election_id)
    cols = ", ".join(HEADER)
    q = text(f"SELECT box_id, race_id, {cols}, votes FROM sheets WHERE election_id = :e AND source = :s ORDER BY seq")
    latest: dict[tuple[str, str], tuple] = {}
    with store.engine.connect() as c:
        for r in c.execute(q, {"e": election_id, "s": source}):
            latest[(r[0], r[1])] = r
    rows = [(e.box_index[r[0]], r[1], r[2 : 2 + len(HEADER)], json.loads(r[-1])) for r in latest.values()]
    return from_rows(e, rows)


def forensics_report(store: Store, election_id: str, *, min_tier: str = "low", thresholds: Thresholds | None = None, limit: int | None = None) -> dict[str, Any]:
    """Every flag (box id, race, signals, tier, effect on the margin), ranked by |effect|; per-race summary."""
    if min_tier not in TIER_RANK:
        raise NotFound("tier", min_tier)
    return report_for_table(official_table(store, election_id), min_tier=min_tier, thresholds=thresholds, limit=limit)


def report_for_table(tab: SheetTable, *, min_tier: str = "low", thresholds: Thresholds | None = None, limit: int | None = None) -> dict[str, Any]:
    """The forensics report of any sheet table (the store's counted sheets, or a file's sheets as received)."""
    if min_tier not in TIER_RANK:
        raise NotFound("tier", min_tier)
    election_id = tab.election.id
    if not len(tab):
        return {"election_id": election_id, "method_version": METHOD_VERSION, "sheets": 0, "flags": [], "races": [], "note": NOT_AN_ACCUSATION}
    ch = run_checks(tab, thresholds)
    flags = ch.flags(min_tier=min_tier)
    rank = ch.tier_rank()
    return {
        "election_id": election_id,
        "method_version": METHOD_VERSION,
        "thresholds": ch.thresholds.to_dict(),
        "sheets": len(tab),
        "flagged": {t: int((rank <= r).sum()) for t, r in TIER_RANK.items()},
        "flags": [f.to_dict() for f in (flags[:limit] if limit else flags)],
        "races": race_summary(ch, min_tier="high"),
        "note": NOT_AN_ACCUSATION,
    }


def fingerprint_page(store: Store, election_id: str, *, bins: int = 100, with_integer_test: bool = True, draws: int = 1000) -> dict[str, Any]:
    """Data for the fingerprint picture (and its SVG), the integer test and the last-digit test."""
    return fingerprint_for_table(official_table(store, election_id), bins=bins, with_integer_test=with_integer_test, draws=draws)


def fingerprint_for_table(tab: SheetTable, *, bins: int = 100, with_integer_test: bool = True, draws: int = 1000) -> dict[str, Any]:
    election_id = tab.election.id
    fp = el.fingerprint(tab, bins=bins)
    out = {"election_id": election_id, "fingerprint": fp, "svg": el.fingerprint_svg(fp, title=election_id), "last_digits": el.last_digit_test(tab)}
    if with_integer_test:
        out["integer_test"] = el.integer_test(tab, draws=draws)
    return out


def pvt_report(store: Store, election_id: str, race_id: str, org: str, *, n: int, seed: int, strata: str = "area") -> dict[str, Any]:
    """A stratified sample of the boxes ``org`` confirmed in ``race_id``; ratio estimates vs the official running shares.

    ``strata``: "area" (the box's own area: neighbourhood), "parent" (the area
    above it, e.g. the district), or "size" (terciles of registered voters).
    """
    e = store.election(election_id)
    race = e.race(race_id)
    obs = official_table(store, election_id, source=org)
    off = official_table(store, election_id)
    ri = obs.race_ids.index(race_id) if race_id in obs.race_ids else -1
    rows = np.flatnonzero(obs.race == ri)
    if not len(rows):
        raise NotFound("confirmed copy", f"race {race_id} from {org}", election_id=election_id)
    pop_boxes = e.race_boxes[race_id]
    if strata not in ("area", "parent", "size"):
        raise NotFound("strata", strata)
    q1, q2 = np.quantile(e.box_registered[pop_boxes], [1 / 3, 2 / 3]) if len(pop_boxes) else (0, 0)

    def stratum(b: int) -> str:
        a = e.box_area_ids[b]
        if strata == "area":
            return a
        if strata == "parent":
            return e.areas[a].parent_id or a
        reg = e.box_registered[b]
        return "small" if reg <= q1 else ("medium" if reg <= q2 else "large")

    pop_strata: dict[str, int] = {}
    for b in pop_boxes.tolist():
        h = stratum(b)
        pop_strata[h] = pop_strata.get(h, 0) + 1
    frame = [stratum(int(obs.box[i])) for i in rows]
    pick = rows[pvt.draw_sample(frame, n, seed)]
    m = len(race.candidates)
    est = pvt.ratio_estimate([c.id for c in race.candidates], obs.votes[pick, :m], obs.col("valid")[pick], [stratum(int(obs.box[i])) for i in pick], pop_strata)
    oi = off.race_ids.index(race_id) if race_id in off.race_ids else -1
    orows = off.race == oi
    tot = off.votes[orows, :m].sum(axis=0)
    valid = tot.sum()
    shares = {c.id: float(tot[j] / valid) for j, c in enumerate(race.candidates)} if valid else {}
    counted = float(e.box_registered[off.box[orows]].sum() / max(e.race_registered(race_id), 1))
    res = pvt.check(est, shares, counted_share=counted)
    res.update({"election_id": election_id, "race_id": race_id, "org": org, "seed": seed, "strata": strata, "frame": len(rows)})
    return res
