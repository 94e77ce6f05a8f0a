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

from sandik.core.model import Election
from sandik.core.sheet import OFFICIAL, TallySheet
from sandik.core.tally import NB, LiveTally, sheet_vector
from sandik.core.validation import Issue, validate
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
        pending: dict[tuple[str, str, str], tuple[int, str, int]] = {}
        rows: list[tuple] = []
        qrows: list[tuple] = []
        updates: list[tuple[str, int, np.ndarray]] = []
        for n, it in enumerate(items):
            where = f"{origin}#{n + 1}" if origin else f"#{n + 1}"
            if isinstance(it, BadRow):
                rep.quarantined += 1
                err = {"rule": "E1" if it.error.field else "FORMAT", "severity": "error", "message": str(it.error), "field": it.error.field}
                qrows.append((e.id, received_at, submitted_by, it.origin or where, it.box_id, it.race_id, None, it.raw, json.dumps([err], ensure_ascii=False)))
                rep.rejections.append(Rejection(it.origin or where, it.box_id, it.race_id, [str(it.error)], [err["rule"]]))
                continue
            s = it
            key = s.key
            head = pending.get(key) or self.heads.get(key)
            h = s.content_hash()
            if head is not None and head[1] == h:
                rep.duplicates += 1
                continue
            b = e.box_index.get(s.box_id)
            others = None
            if b is not None and s.source == OFFICIAL:
                others = {}
                for rid in e.box_races.get(b, ()):
                    if rid != s.race_id:
                        oh = pending.get((s.box_id, rid, OFFICIAL)) or self.heads.get((s.box_id, rid, OFFICIAL))
                        if oh is not None:
                            others[rid] = oh[2]
            issues = validate(s, e, other_race_voters=others)
            errors = [i for i in issues if i.severity == "error"]
            if errors:
                rep.quarantined += 1
                qrows.append((e.id, received_at, s.submitted_by or submitted_by, where, s.box_id, s.race_id, s.source, _raw(s), json.dumps([i.to_dict() for i in issues], ensure_ascii=False)))
                rep.rejections.append(Rejection(where, s.box_id, s.race_id, [i.message for i in errors], [i.rule for i in errors]))
                continue
            race = e.races[s.race_id]
            version = head[0] + 1 if head else 1
            if head:
                rep.corrections += 1
            if issues:
                rep.with_warnings += 1
                rep.warnings.extend(issues)
            rows.append(
                (
                    e.id, s.box_id, s.race_id, s.source, version, h,
                    s.registered, s.voted_listed, s.voted_by_law, s.total_voters, s.ballots_used,
                    s.valid_unchallenged, s.valid_challenged, s.valid, s.invalid,
                    s.envelopes_out, s.envelopes_destroyed, s.envelopes_received, s.envelopes_unused, s.ballots_received, s.ballots_unused,
                    json.dumps([s.votes[c.id] for c in race.candidates]),
                    json.dumps([i.rule for i in issues]),
                    s.submitted_by or submitted_by,
                    s.submitted_at.isoformat() if s.submitted_at else None,
                    received_at, s.reason, s.image_ref, s.image_sha256,
                )
            )  # fmt: skip
            pending[key] = (version, h, s.total_voters)
            rep.accepted += 1
            if s.source == OFFICIAL:
                updates.append((s.race_id, b, sheet_vector(s, race, int(e.box_registered[b]))))  # type: ignore[arg-type]
        # Durable first (one transaction for sheets; quarantine after), then count, then acknowledge.
        self.store.append_sheets(rows)
        self.store.append_quarantine(qrows)
        self.heads.update(pending)
        for rid, b, vec in updates:
            self.tally.apply(rid, b, vec)
        if rows:
            self.version += len(rows)
        for cb in self.listeners:
            cb(rep)
        return rep


def _raw(s: TallySheet) -> str:
    d = {k: getattr(s, k) for k in s.__slots__ if k not in ("extra",)}  # type: ignore[attr-defined]
    d["submitted_at"] = s.submitted_at.isoformat() if s.submitted_at else None
    return json.dumps(d, ensure_ascii=False, default=str)
