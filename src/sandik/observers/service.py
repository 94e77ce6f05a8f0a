"""Observers' copies in the store: entries, confirmation, discrepancies and their workflow.

The shell around :mod:`sandik.core.discrepancy`:

* :func:`add_entries` stores each volunteer's entry as typed, then, for every
  (box, race) touched, checks the k-of-n confirmation; a newly confirmed copy
  goes through the one ingest path as a sheet with ``source=<org>``, where the
  tally rules apply and from where it is never counted.
* :func:`sync_discrepancies` compares every official sheet with every
  organisation's confirmed copy and keeps one discrepancy per (box, race, org):
  opened when they differ, automatically resolved when a new version makes
  them agree, reopened when a settled one differs again. Every change of
  status is an event with who, when and why.
* :func:`transition` moves a discrepancy through
  open -> under_review -> resolved (reason, corrected version) / dismissed.

Functions returning plain dicts for the web pages: :func:`discrepancy_list`,
:func:`box_sheets`, :func:`race_impacts`.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, text

from sandik.core.discrepancy import Discrepancy, Entry, ObserverError, compare, confirm, race_impact
from sandik.core.model import Election
from sandik.core.sheet import COUNT_FIELDS, OFFICIAL, TallySheet
from sandik.errors import NotFound
from sandik.ingest.pipeline import Ingestor
from sandik.store import schema
from sandik.store.repository import Store, now_iso

STATUSES = ("open", "under_review", "resolved", "dismissed")
TRANSITIONS = {
    "open": ("under_review", "dismissed", "resolved"),
    "under_review": ("resolved", "dismissed", "open"),
    "resolved": ("open",),
    "dismissed": ("open",),
}


@dataclass
class EntryReport:
    stored: int = 0
    refused: list[dict[str, Any]] = field(default_factory=list)  # entries that cannot be used, with why
    confirmations: list[dict[str, Any]] = field(default_factory=list)
    ingested: int = 0  # confirmed copies stored as sheets of the organisation
    quarantined: list[dict[str, Any]] = field(default_factory=list)  # confirmed copies that break the tally rules

    def to_dict(self) -> dict[str, Any]:
        return {"stored": self.stored, "refused": self.refused, "confirmations": self.confirmations, "ingested": self.ingested, "quarantined": self.quarantined}


def _check_entry(e: Election, s: TallySheet, org: str) -> None:
    if not org or org == OFFICIAL:
        raise ObserverError(f"observer organisation id must be given and must not be {OFFICIAL!r}")
    if s.source not in (org, OFFICIAL):
        raise ObserverError(f"box {s.box_id}: entry says source {s.source!r} but is submitted for {org!r}")
    if s.box_id not in e.box_index:
        raise ObserverError(f"box {s.box_id!r} does not exist in election {e.id}", box_id=s.box_id)
    race = e.races.get(s.race_id)
    if race is None:
        raise ObserverError(f"race {s.race_id!r} does not exist in election {e.id}", race_id=s.race_id)
    if e.box_index[s.box_id] not in e.race_box_set[s.race_id]:
        raise ObserverError(f"box {s.box_id} does not vote in race {s.race_id}", box_id=s.box_id, race_id=s.race_id)
    ids = set(race.candidate_index)
    if set(s.votes) != ids:
        raise ObserverError(f"box {s.box_id}, race {s.race_id}: candidates {sorted(s.votes)} differ from the race's {sorted(ids)}")


def _sheet_json(s: TallySheet) -> str:
    d = {f: getattr(s, f) for f in COUNT_FIELDS}
    d.update(box_id=s.box_id, race_id=s.race_id, votes=s.votes, image_sha256=s.image_sha256, image_ref=s.image_ref)
    return json.dumps(d, ensure_ascii=False, sort_keys=True)


def _sheet_from_json(raw: str, org: str, entrant: str) -> TallySheet:
    d = json.loads(raw)
    return TallySheet(
        box_id=d["box_id"], race_id=d["race_id"], votes={k: int(v) for k, v in d["votes"].items()}, source=org,
        submitted_by=entrant, image_sha256=d.get("image_sha256", ""), image_ref=d.get("image_ref", ""),
        **{f: int(d[f]) for f in COUNT_FIELDS},
    )  # fmt: skip


def entries_of(store: Store, election_id: str, org: str, box_id: str, race_id: str) -> list[Entry]:
    t = schema.observer_entries
    q = select(t.c.entrant, t.c.sheet).where(t.c.election_id == election_id, t.c.org == org, t.c.box_id == box_id, t.c.race_id == race_id).order_by(t.c.id)
    with store.engine.connect() as c:
        return [Entry(who, _sheet_from_json(raw, org, who)) for who, raw in c.execute(q)]


def add_entries(store: Store, election_id: str, org: str, entrant: str, sheets: Iterable[TallySheet], *, k: int = 3, ingest: Callable[[list[TallySheet], str, str], Any] | None = None) -> EntryReport:
    """Store volunteers' entries and ingest every copy that ``k`` identical entries now confirm.

    ``ingest(sheets, origin, submitted_by) -> IngestReport`` stores the confirmed copies:
    a server passes its live writer (one writer per election and process, whose version
    heads then stay current); by default a new ``Ingestor`` on the store does it.
    """
    e = store.election(election_id)
    rep = EntryReport()
    rows = []
    touched: dict[tuple[str, str], None] = {}
    now = now_iso()
    for s in sheets:
        who = entrant or s.submitted_by
        if not who:
            rep.refused.append({"box_id": s.box_id, "race_id": s.race_id, "entrant": "", "error": "an entry must say which volunteer typed it (entrant or submitted_by)"})
            continue
        try:
            _check_entry(e, s, org)
        except ObserverError as exc:
            rep.refused.append({"box_id": s.box_id, "race_id": s.race_id, "entrant": who, "error": str(exc)})
            continue
        s2 = TallySheet(**{**{f: getattr(s, f) for f in s.__slots__}, "source": org, "submitted_by": who})  # type: ignore[attr-defined]
        rows.append({"election_id": election_id, "org": org, "box_id": s.box_id, "race_id": s.race_id, "entrant": who, "content_hash": s2.content_hash(), "sheet": _sheet_json(s2), "image_sha256": s.image_sha256, "received_at": now})
        touched[(s.box_id, s.race_id)] = None
    if rows:
        with store.engine.begin() as c:
            c.execute(schema.observer_entries.insert(), rows)
        rep.stored = len(rows)
    to_ingest = []
    for box_id, race_id in touched:
        conf = confirm(entries_of(store, election_id, org, box_id, race_id), k)
        rep.confirmations.append({"box_id": box_id, "race_id": race_id, **conf.to_dict()})
        if conf.status == "confirmed" and conf.sheet is not None:
            same = [x.entrant for x in entries_of(store, election_id, org, box_id, race_id) if all(getattr(x.sheet, f) == getattr(conf.sheet, f) for f in COUNT_FIELDS) and x.sheet.votes == conf.sheet.votes]
            who = ",".join(sorted(set(same)))
            to_ingest.append(TallySheet(**{**{f: getattr(conf.sheet, f) for f in conf.sheet.__slots__}, "submitted_by": f"{org}:k={k}:{who}", "reason": f"confirmed by {conf.agreeing} identical entries"}))  # type: ignore[attr-defined]
    if to_ingest:
        if ingest is None:
            r = Ingestor(store, election_id).submit(to_ingest, origin=f"observers:{org}", submitted_by=org)
        else:
            r = ingest(to_ingest, f"observers:{org}", org)
        rep.ingested = r.accepted
        rep.quarantined = [x.to_dict() for x in r.rejections]
    return rep


# --- reading sheets -------------------------------------------------------------------
def latest_sheets(store: Store, election_id: str) -> dict[tuple[str, str, str], tuple[int, TallySheet]]:
    """(box, race, source) -> (version, sheet) of the latest stored version, every source."""
    e = store.election(election_id)
    t = schema.sheets
    cols = [t.c.box_id, t.c.race_id, t.c.source, t.c.version, t.c.votes, t.c.submitted_by, *[t.c[f] for f in COUNT_FIELDS]]
    out: dict[tuple[str, str, str], tuple[int, TallySheet]] = {}
    with store.engine.connect() as c:
        for r in c.execute(select(*cols).where(t.c.election_id == election_id).order_by(t.c.seq)):
            race = e.races[r[1]]
            votes = dict(zip((x.id for x in race.candidates), json.loads(r[4])))
            s = TallySheet(box_id=r[0], race_id=r[1], source=r[2], votes=votes, submitted_by=r[5], **dict(zip(COUNT_FIELDS, (int(x) for x in r[6:]))))
            out[(r[0], r[1], r[2])] = (int(r[3]), s)
    return out


def _leaders(e: Election, official: dict[tuple[str, str], TallySheet]) -> tuple[dict[str, tuple[str | None, str | None]], dict[str, dict[str, int]]]:
    totals: dict[str, dict[str, int]] = {}
    for (_, rid), s in official.items():
        tt = totals.setdefault(rid, {c.id: 0 for c in e.races[rid].candidates})
        for c, v in s.votes.items():
            tt[c] += v
    lead: dict[str, tuple[str | None, str | None]] = {}
    for rid, tt in totals.items():
        r = sorted(tt, key=lambda c: -tt[c])
        lead[rid] = (r[0] if r else None, r[1] if len(r) > 1 else None)
    return lead, totals


# --- discrepancies --------------------------------------------------------------------
def sync_discrepancies(store: Store, election_id: str, *, by: str = "sandik") -> dict[str, int]:
    """Bring the discrepancy table up to date with the latest official and observer sheets."""
    e = store.election(election_id)
    latest = latest_sheets(store, election_id)
    official = {(b, r): s for (b, r, src), (_, s) in latest.items() if src == OFFICIAL}
    off_ver = {(b, r): v for (b, r, src), (v, _) in latest.items() if src == OFFICIAL}
    lead, _ = _leaders(e, official)
    found: dict[tuple[str, str, str], tuple[Discrepancy | None, int | None, int]] = {}
    for (b, r, src), (ver, s) in latest.items():
        if src == OFFICIAL:
            continue
        ld, ru = lead.get(r, (None, None))
        d = compare(official.get((b, r)), s, e.races[r], org=src, leader=ld, runner_up=ru)
        found[(b, r, src)] = (d, off_ver.get((b, r)), ver)
    t = schema.discrepancies
    counts = {"opened": 0, "updated": 0, "auto_resolved": 0, "reopened": 0, "unchanged": 0}
    now = now_iso()
    with store.engine.begin() as c:
        existing = {(row.box_id, row.race_id, row.org): row for row in c.execute(select(t).where(t.c.election_id == election_id))}
        for key, (d, ov, bv) in found.items():
            row = existing.get(key)
            snap = json.dumps(d.to_dict(), ensure_ascii=False) if d else json.dumps({"agree": True})
            if row is None:
                if d is None:
                    continue
                res = c.execute(t.insert().values(
                    election_id=election_id, box_id=key[0], race_id=key[1], org=key[2], status="open", kind=d.kind,
                    detail=snap, effect_on_margin=d.effect_on_margin, official_version=ov, observer_version=bv, opened_at=now, updated_at=now,
                ))  # fmt: skip
                _event(c, int(res.inserted_primary_key[0]), by, None, "open", "official sheet and confirmed copy differ", None, snap)
                counts["opened"] += 1
                continue
            if row.official_version == ov and row.observer_version == bv:
                counts["unchanged"] += 1
                continue
            if d is None:
                if row.status not in ("resolved", "dismissed"):
                    c.execute(t.update().where(t.c.id == row.id).values(status="resolved", official_version=ov, observer_version=bv, updated_at=now))
                    _event(c, row.id, by, row.status, "resolved", "the sheets now agree", ov, snap)
                    counts["auto_resolved"] += 1
                else:
                    c.execute(t.update().where(t.c.id == row.id).values(official_version=ov, observer_version=bv, updated_at=now))
                    counts["updated"] += 1
                continue
            new_status = row.status
            if row.status in ("resolved", "dismissed"):
                new_status = "open"
                counts["reopened"] += 1
            else:
                counts["updated"] += 1
            c.execute(t.update().where(t.c.id == row.id).values(status=new_status, kind=d.kind, detail=snap, effect_on_margin=d.effect_on_margin, official_version=ov, observer_version=bv, updated_at=now))
            _event(c, row.id, by, row.status, new_status, "a new version of a sheet changed the comparison", None, snap)
    return counts


def _event(c: Any, did: int, by: str, frm: str | None, to: str, reason: str, corrected: int | None, snap: str) -> None:
    c.execute(schema.discrepancy_events.insert().values(discrepancy_id=did, at=now_iso(), by=by, from_status=frm, to_status=to, reason=reason, corrected_version=corrected, snapshot=snap))


def transition(store: Store, discrepancy_id: int, to: str, *, by: str, reason: str = "", corrected_version: int | None = None) -> dict[str, Any]:
    """Move a discrepancy to a new status; resolving and dismissing need a reason."""
    if to not in STATUSES:
        raise ObserverError(f"unknown status {to!r}; one of {', '.join(STATUSES)}")
    if not by:
        raise ObserverError("who makes the change must be given")
    if to in ("resolved", "dismissed") and not reason.strip():
        raise ObserverError(f"moving to {to} needs a reason")
    t = schema.discrepancies
    with store.engine.begin() as c:
        row = c.execute(select(t).where(t.c.id == discrepancy_id)).first()
        if row is None:
            raise NotFound("discrepancy", str(discrepancy_id))
        if to not in TRANSITIONS[row.status]:
            raise ObserverError(f"discrepancy {discrepancy_id} is {row.status}; it can move to {', '.join(TRANSITIONS[row.status])}, not {to}")
        if corrected_version is not None:
            ok = c.execute(
                text("SELECT 1 FROM sheets WHERE election_id = :e AND box_id = :b AND race_id = :r AND source = 'official' AND version = :v"),
                {"e": row.election_id, "b": row.box_id, "r": row.race_id, "v": corrected_version},
            ).first()
            if ok is None:
                raise ObserverError(f"box {row.box_id}, race {row.race_id}: no official sheet version {corrected_version}")
        c.execute(t.update().where(t.c.id == discrepancy_id).values(status=to, updated_at=now_iso()))
        _event(c, discrepancy_id, by, row.status, to, reason, corrected_version, row.detail)
    return discrepancy(store, discrepancy_id)


def discrepancy(store: Store, discrepancy_id: int) -> dict[str, Any]:
    t, ev = schema.discrepancies, schema.discrepancy_events
    with store.engine.connect() as c:
        row = c.execute(select(t).where(t.c.id == discrepancy_id)).mappings().first()
        if row is None:
            raise NotFound("discrepancy", str(discrepancy_id))
        events = c.execute(select(ev).where(ev.c.discrepancy_id == discrepancy_id).order_by(ev.c.id)).mappings().all()
    d = _row(row)
    d["history"] = [{k: v for k, v in dict(x).items() if k != "snapshot"} for x in events]
    return d


def _row(row: Any) -> dict[str, Any]:
    d = dict(row)
    d["detail"] = json.loads(d["detail"])
    return d


def discrepancy_list(store: Store, election_id: str, *, status: str | None = None, org: str | None = None, race_id: str | None = None, kind: str | None = None, real_only: bool = True, limit: int | None = None) -> list[dict[str, Any]]:
    """Discrepancies ranked by |effect on the margin| (largest first). ``real_only`` drops dismissed ones and header-only ones."""
    t = schema.discrepancies
    q = select(t).where(t.c.election_id == election_id)
    if status:
        q = q.where(t.c.status == status)
    if org:
        q = q.where(t.c.org == org)
    if race_id:
        q = q.where(t.c.race_id == race_id)
    if kind:
        q = q.where(t.c.kind == kind)
    with store.engine.connect() as c:
        rows = [_row(r) for r in c.execute(q).mappings()]
    if real_only:
        rows = [r for r in rows if r["status"] != "dismissed" and r["kind"] != "header_only"]
    rows.sort(key=lambda r: (-abs(r["effect_on_margin"]), r["box_id"]))
    return rows[:limit] if limit else rows


CSV_COLUMNS = ("id", "box_id", "race_id", "org", "status", "kind", "effect_on_margin", "fields", "official_version", "observer_version", "opened_at", "updated_at")


def export_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for r in rows:
        fields = "; ".join(f"{d['field']}: {d['official']} vs {d['observer']}" for d in r["detail"].get("diffs", []))
        w.writerow([r["id"], r["box_id"], r["race_id"], r["org"], r["status"], r["kind"], r["effect_on_margin"], fields, r["official_version"], r["observer_version"], r["opened_at"], r["updated_at"]])
    return buf.getvalue()


def race_impacts(store: Store, election_id: str) -> list[dict[str, Any]]:
    """Per race with open or under-review discrepancies: could they change the winner? (largest effect first)."""
    e = store.election(election_id)
    latest = latest_sheets(store, election_id)
    official = {(b, r): s for (b, r, src), (_, s) in latest.items() if src == OFFICIAL}
    _, totals = _leaders(e, official)
    by_race: dict[str, list[Discrepancy]] = {}
    for r in discrepancy_list(store, election_id, real_only=True):
        if r["status"] not in ("open", "under_review"):
            continue
        det = r["detail"]
        by_race.setdefault(r["race_id"], []).append(Discrepancy(r["box_id"], r["race_id"], r["org"], r["kind"], (), dict(det.get("delta_votes", {})), int(r["effect_on_margin"])))
    out = []
    for rid, ds in by_race.items():
        if rid not in totals:
            continue  # no official sheet counted yet in this race: nothing to change
        out.append({"race_id": rid, "race_name": e.races[rid].name, **race_impact(totals[rid], ds)})
    out.sort(key=lambda d: (not d["could_change_winner"], -d["sum_abs_effect"]))
    return out


def box_sheets(store: Store, election_id: str, box_id: str) -> dict[str, Any]:
    """One box, every race: the official sheet and each organisation's copy side by side, with differences marked."""
    e = store.election(election_id)
    e.box(box_id)
    latest = latest_sheets(store, election_id)
    races: dict[str, dict[str, Any]] = {}
    for (b, r, src), (ver, s) in latest.items():
        if b != box_id:
            continue
        races.setdefault(r, {"race_id": r, "race_name": e.races[r].name, "candidates": [c.id for c in e.races[r].candidates], "copies": {}})
        races[r]["copies"][src] = {"version": ver, **{f: getattr(s, f) for f in COUNT_FIELDS}, "votes": s.votes, "submitted_by": s.submitted_by}
    for r, d in races.items():
        off = d["copies"].get(OFFICIAL)
        d["differs"] = {}
        for src, cp in d["copies"].items():
            if src == OFFICIAL or off is None:
                continue
            d["differs"][src] = [f for f in COUNT_FIELDS if cp[f] != off[f]] + [f"votes:{c}" for c in d["candidates"] if cp["votes"].get(c) != off["votes"].get(c)]
    t = schema.discrepancies
    with store.engine.connect() as c:
        disc = [_row(x) for x in c.execute(select(t).where(t.c.election_id == election_id, t.c.box_id == box_id)).mappings()]
    return {"election_id": election_id, "box_id": box_id, "races": list(races.values()), "discrepancies": disc}
