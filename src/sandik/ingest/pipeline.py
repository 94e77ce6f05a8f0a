"""The ingest path every sheet takes, whatever it came from (file, API, replay).

    parse -> dedupe (identical resubmission = no-op) -> validate -> store durably
          -> update the live tally -> acknowledge (the report)

A sheet that breaks a hard rule is written to the quarantine with its reasons
and not counted; a row that cannot even be parsed is quarantined as raw text.
Versions are per (box, race, source); the live tally always equals the latest
accepted official version of every box and race.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sandik.core.model import Election, Race
from sandik.core.sheet import OFFICIAL, TallySheet
from sandik.core.tally import NB, LiveTally
from sandik.core.validation import Issue, screen, validate, w5_fires
from sandik.errors import FormatError, StoreError
from sandik.store.repository import Store, now_iso


@dataclass(frozen=True)
class BadRow:
    """Input that could not be turned into a sheet at all."""

    origin: str
    raw: str
    error: FormatError
    box_id: str | None = None
    race_id: str | None = None


@dataclass(frozen=True)
class Rejection:
    origin: str
    box_id: str | None
    race_id: str | None
    messages: list[str]
    rules: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"origin": self.origin, "box_id": self.box_id, "race_id": self.race_id, "rules": self.rules, "messages": self.messages}


@dataclass
class IngestReport:
    received: int = 0
    accepted: int = 0
    corrections: int = 0  # accepted sheets that superseded an earlier version
    duplicates: int = 0  # identical to the latest version: nothing written
    with_warnings: int = 0
    quarantined: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)

    def merge(self, other: IngestReport) -> None:
        for f in ("received", "accepted", "corrections", "duplicates", "with_warnings", "quarantined"):
            setattr(self, f, getattr(self, f) + getattr(other, f))
        self.rejections.extend(other.rejections)
        self.warnings.extend(other.warnings)

    @property
    def ok(self) -> bool:
        return self.quarantined == 0

    def to_dict(self, limit: int = 100) -> dict[str, Any]:
        return {
            "received": self.received,
            "accepted": self.accepted,
            "corrections": self.corrections,
            "duplicates": self.duplicates,
            "with_warnings": self.with_warnings,
            "quarantined": self.quarantined,
            "rejections": [r.to_dict() for r in self.rejections[:limit]],
            "warnings": [w.to_dict() for w in self.warnings[:limit]],
        }


Item = TallySheet | BadRow


def build_tally(store: Store, election: Election) -> tuple[LiveTally, int]:
    """A live tally rebuilt from the stored log (latest official version per box and race); returns it and the last seq."""
    tally = LiveTally(election)
    latest: dict[tuple[str, str], tuple] = {}
    last_seq = 0
    for row in store.latest_official(election.id):
        latest[(row[1], row[2])] = row
        last_seq = row[0]
    by_race: dict[str, list[tuple]] = {}
    for (box, race), row in latest.items():
        by_race.setdefault(race, []).append(row)
    for rid, rows in by_race.items():
        race = election.races[rid]
        boxes = np.fromiter((election.box_index[r[1]] for r in rows), dtype=np.int64, count=len(rows))
        vecs = np.empty((len(rows), NB + len(race.candidates)), dtype=np.int64)
        vecs[:, 0] = 1
        vecs[:, 1] = election.box_registered[boxes]
        vecs[:, 2:NB] = np.array([r[3:8] for r in rows], dtype=np.int64)
        vecs[:, NB:] = np.array(json.loads("[" + ",".join(r[9] for r in rows) + "]"), dtype=np.int64).reshape(len(rows), -1)
        tally.load(rid, boxes, vecs)
    tally.rebuild()
    return tally, last_seq


class Ingestor:
    """Feeds sheets of one election into the store and a live tally. One writer per election per process."""

    def __init__(self, store: Store, election_id: str, tally: LiveTally | None = None) -> None:
        self.store = store
        self.election = store.election(election_id)
        self.heads = store.heads(election_id)
        if tally is None:
            tally, _ = build_tally(store, self.election)
        self.tally = tally
        self.version = store.max_seq(election_id)
        self.listeners: list = []  # callables(IngestReport) run after each acknowledged batch

    def submit(self, items: Iterable[Item], *, origin: str = "", submitted_by: str = "", batch_size: int = 5000) -> IngestReport:
        report = IngestReport()
        batch: list[Item] = []
        for it in items:
            batch.append(it)
            if len(batch) >= batch_size:
                report.merge(self._batch(batch, origin, submitted_by))
                batch = []
        if batch:
            report.merge(self._batch(batch, origin, submitted_by))
        return report

    def _batch(self, items: list[Item], origin: str, submitted_by: str) -> IngestReport:
        for attempt in range(3):
            try:
                return self._try_batch(items, origin, submitted_by)
            except StoreError:
                # Another writer added versions for some of these keys: re-read and redo.
                self.heads = self.store.heads(self.election.id)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _try_batch(self, items: list[Item], origin: str, submitted_by: str) -> IngestReport:
        e = self.election
        rep = IngestReport(received=len(items))
        received_at = now_iso()
        qrows: list[tuple] = []

        # Pass 1: structure. Sheets that fit the election go to the vectorised screen;
        # anything odd (unknown ids, other candidates, optional fields) straight to ``validate``.
        races, box_index, race_box_set, reg = e.races, e.box_index, e.race_box_set, e.box_registered
        fits: list[bool] = []
        sheets: list[TallySheet | None] = []
        for it in items:
            if isinstance(it, BadRow):
                sheets.append(None)
                fits.append(False)
                continue
            race = races.get(it.race_id)
            b = box_index.get(it.box_id)
            ok = (
                race is not None
                and b is not None
                and b in race_box_set[it.race_id]
                and it.votes.keys() == race.candidate_index.keys()
                and it.registered == reg[b]
                and it.envelopes_out is None
                and it.envelopes_destroyed is None
                and it.envelopes_received is None
                and it.envelopes_unused is None
                and it.ballots_received is None
                and it.ballots_unused is None
                and {type(it.registered), type(it.voted_listed), type(it.voted_by_law), type(it.total_voters), type(it.ballots_used),
                     type(it.valid_unchallenged), type(it.valid_challenged), type(it.valid), type(it.invalid)} == {int}
            )  # fmt: skip
            sheets.append(it)
            fits.append(ok)
        fit_idx = [i for i, f in enumerate(fits) if f]
        needs_review = np.ones(len(items), dtype=bool)
        if fit_idx:
            m = np.array(
                [
                    (s.registered, s.voted_listed, s.voted_by_law, s.total_voters, s.ballots_used, s.valid_unchallenged, s.valid_challenged, s.valid, s.invalid, sum(vs), min(vs))
                    for i in fit_idx
                    for s in (sheets[i],)
                    for vs in (s.votes.values(),)  # type: ignore[union-attr]
                ],
                dtype=np.int64,
            )
            needs_review[fit_idx] = screen(m)

        # Pass 2, in arrival order: dedupe, verdict, version.
        pending: dict[tuple[str, str, str], tuple[int, str, int]] = {}
        heads = self.heads
        box_races = e.box_races
        rows: list[tuple] = []
        counted: dict[str, list[tuple[int, TallySheet]]] = {}
        for n, it in enumerate(items):
            where = f"{origin}#{n + 1}" if origin else f"#{n + 1}"
            s = sheets[n]
            if s is None:
                bad = it  # a BadRow
                assert isinstance(bad, BadRow)
                rep.quarantined += 1
                err = {"rule": "E1" if bad.error.field else "FORMAT", "severity": "error", "message": str(bad.error), "field": bad.error.field}
                qrows.append((e.id, received_at, submitted_by, bad.origin or where, bad.box_id, bad.race_id, None, bad.raw, json.dumps([err], ensure_ascii=False)))
                rep.rejections.append(Rejection(bad.origin or where, bad.box_id, bad.race_id, [str(bad.error)], [err["rule"]]))
                continue
            key = (s.box_id, s.race_id, s.source)
            head = pending.get(key) or heads.get(key)
            h = s.content_hash()
            if head is not None and head[1] == h:
                rep.duplicates += 1
                continue
            b = box_index.get(s.box_id)
            others: dict[str, int] = {}
            if b is not None and s.source == OFFICIAL:
                for rid in box_races.get(b, ()):
                    if rid != s.race_id:
                        oh = pending.get((s.box_id, rid, OFFICIAL)) or heads.get((s.box_id, rid, OFFICIAL))
                        if oh is not None:
                            others[rid] = oh[2]
            issues: list[Issue] = []
            if needs_review[n] or (others and w5_fires(s.total_voters, others)):
                issues = validate(s, e, other_race_voters=others)
                errors = [i for i in issues if i.severity == "error"]
                if errors:
                    rep.quarantined += 1
                    qrows.append((e.id, received_at, s.submitted_by or submitted_by, where, s.box_id, s.race_id, s.source, _raw(s), json.dumps([i.to_dict() for i in issues], ensure_ascii=False)))
                    rep.rejections.append(Rejection(where, s.box_id, s.race_id, [i.message for i in errors], [i.rule for i in errors]))
                    continue
                rep.with_warnings += 1
                rep.warnings.extend(issues)
            race = races[s.race_id]
            version = head[0] + 1 if head else 1
            if head:
                rep.corrections += 1
            votes = [s.votes[c] for c in race.candidate_index]
            rows.append(
                (
                    e.id, s.box_id, s.race_id, s.source, version, h,
                    s.registered, s.voted_listed, s.voted_by_law, s.total_voters, s.ballots_used,
                    s.valid_unchallenged, s.valid_challenged, s.valid, s.invalid,
                    s.envelopes_out, s.envelopes_destroyed, s.envelopes_received, s.envelopes_unused, s.ballots_received, s.ballots_unused,
                    "[" + ",".join(map(str, votes)) + "]",
                    json.dumps([i.rule for i in issues]) if issues else "[]",
                    s.submitted_by or submitted_by,
                    s.submitted_at.isoformat() if s.submitted_at else None,
                    received_at, s.reason, s.image_ref, s.image_sha256,
                )
            )  # fmt: skip
            pending[key] = (version, h, s.total_voters)
            rep.accepted += 1
            if s.source == OFFICIAL:
                counted.setdefault(s.race_id, []).append((b, s))  # type: ignore[arg-type]

        # Durable first (one transaction for the sheets), then count, then acknowledge.
        self.store.append_sheets(rows)
        self.store.append_quarantine(qrows)
        heads.update(pending)
        for rid, group in counted.items():
            self.tally.apply_many(rid, [b for b, _ in group], _vectors(races[rid], group, reg))
        if rows:
            self.version += len(rows)
        for cb in self.listeners:
            cb(rep)
        return rep


def _vectors(race: Race, group: list[tuple[int, TallySheet]], registered: np.ndarray) -> np.ndarray:
    """The counted vectors (see core.tally.BASE) of a race's accepted official sheets."""
    v = np.empty((len(group), NB + len(race.candidates)), dtype=np.int64)
    v[:, :NB] = [(1, registered[b], s.total_voters, s.ballots_used, s.valid, s.invalid, s.voted_by_law) for b, s in group]
    cids = list(race.candidate_index)
    v[:, NB:] = [[s.votes[c] for c in cids] for _, s in group]
    return v


def _raw(s: TallySheet) -> str:
    d = {k: getattr(s, k) for k in s.__slots__ if k not in ("extra",)}  # type: ignore[attr-defined]
    d["submitted_at"] = s.submitted_at.isoformat() if s.submitted_at else None
    return json.dumps(d, ensure_ascii=False, default=str)
