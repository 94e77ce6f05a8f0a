"""The ingest path every sheet takes, whatever it came from (file, API, replay).

    parse -> dedupe (identical resubmission = no-op) -> validate -> store durably
          -> update the live tally -> acknowledge (the report)

A sheet that breaks a hard rule is written to the quarantine with its reasons
and not counted; a row that cannot even be parsed is quarantined as raw text.
Versions are per (box, race, source); the live tally always equals the latest
accepted official version of every box and race.
"""

from __future__ import annotations

import itertools
import json
import operator
import random
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sandik.core.model import Election
from sandik.core.sheet import OFFICIAL, TallySheet, clean_digest
from sandik.core.tally import NB, LiveTally
from sandik.core.validation import Issue, clean_votes_and_text, validate, w5_fires
from sandik.errors import FormatError, StoreError, VersionConflict
from sandik.gc_pause import paused_gc
from sandik.store import schema
from sandik.store.repository import QUARANTINE_COLUMNS, SHEET_COLUMNS, Store, now_iso
from sandik.store.sqlite_writer import SqliteWriter


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
    """A live tally rebuilt from the store (latest official version per box and race); returns it and the highest seq read."""
    tally = LiveTally(election)
    box_index = election.box_index
    last_seq = 0
    for rid, box_text, versions, *cols, votes, top in store.official_counts(election.id):
        race = election.races.get(rid)
        if race is None:
            raise StoreError(f"stored sheets name race {rid!r}, which election {election.id} does not define")
        try:
            boxes = np.array([box_index[b] for b in box_text.split("\x1f")], dtype=np.int64)
        except KeyError as exc:
            raise StoreError(f"race {rid}: stored sheets name box {exc.args[0]!r}, which election {election.id} does not define") from exc
        n, width = len(boxes), NB + len(race.candidates)
        vecs = np.empty((n, width), dtype=np.int64)
        vecs[:, 0] = 1
        vecs[:, 1] = election.box_registered[boxes]
        for k, text in enumerate(cols):  # total voters, ballots used, valid, invalid, by law (core.tally.BASE)
            vecs[:, 2 + k] = _ints(text, n, rid)
        vecs[:, NB:] = _ints(votes.replace("[", "").replace("]", ""), n * len(race.candidates), rid).reshape(n, len(race.candidates))
        version = _ints(versions, n, rid)
        if n and version.max() > 1:  # corrections: keep each box's highest version
            order = np.lexsort((version, boxes))
            last = np.r_[boxes[order][1:] != boxes[order][:-1], True]
            boxes, vecs = boxes[order[last]], vecs[order[last]]
        tally.load(rid, boxes, vecs)
        last_seq = max(last_seq, int(top))
    tally.rebuild()
    return tally, last_seq


def _ints(text: str, count: int, race_id: str) -> np.ndarray:
    # np.fromstring's text mode parses in C, ~6x faster than json here; the text comes from our own SQL.
    out = np.fromstring(text, dtype=np.int64, sep=",")
    if out.size != count:
        raise StoreError(f"race {race_id}: stored counts do not match its candidates ({out.size} numbers where {count} were expected)")
    return out


@dataclass
class _Prepared:
    """A batch checked and turned into rows, not yet stored."""

    report: IngestReport
    rows: list[tuple]
    qrows: list[tuple]
    pending: dict[tuple[str, str, str], tuple[int, str, int]]
    counted: dict[str, tuple[list[int], list[list[int]]]]  # race -> (box indices, counted vectors as lists)


class Ingestor:
    """Feeds sheets of one election into the store and a live tally. One writer per election per process.

    A batch is written in one transaction and counted and acknowledged only after
    it has committed. (Checking batch n+1 in this thread while a second thread
    wrote batch n was measured slower: the two contend for the GIL.)
    """

    def __init__(self, store: Store, election_id: str, tally: LiveTally | None = None) -> None:
        self.store = store
        self.election = store.election(election_id)
        self.heads = store.heads(election_id)
        if tally is None:
            tally, _ = build_tally(store, self.election)
        self.tally = tally
        self.version = store.max_seq(election_id)
        self.listeners: list = []  # callables(IngestReport) run after each acknowledged batch
        self._writer: SqliteWriter | None = None

    def submit(self, items: Iterable[Item], *, origin: str = "", submitted_by: str = "", batch_size: int = 5000, pipeline: bool | None = None) -> IngestReport:
        """Ingest ``items`` in batches of ``batch_size``; each batch is acknowledged (counted, reported) once durable.

        ``pipeline``: write each batch from a child process while the next one is
        checked (``store.sqlite_writer``). None chooses it for an SQLite file when
        there are at least two batches of ``PIPELINE_MIN_BATCH`` sheets or more.
        """
        with paused_gc():
            return self._submit(items, origin, submitted_by, batch_size, pipeline)

    def _submit(self, items: Iterable[Item], origin: str, submitted_by: str, batch_size: int, pipeline: bool | None) -> IngestReport:
        report = IngestReport()
        batches = _chunks(items, batch_size)
        first = next(batches, None)
        if first is None:
            return report
        second = next(batches, None)
        if second is None:
            return self._batch(first, origin, submitted_by, 0)
        if pipeline is None:
            pipeline = batch_size >= PIPELINE_MIN_BATCH
        pipeline = pipeline and self.store.sqlite_file is not None
        stream = itertools.chain([first, second], batches)
        if pipeline:
            return self._submit_pipelined(stream, origin, submitted_by)
        offset = 0
        for batch in stream:
            report.merge(self._batch(batch, origin, submitted_by, offset))
            offset += len(batch)
        return report

    def submit_group(self, jobs: list[tuple[list[Item], str, str]]) -> list[IngestReport]:
        """Several submissions (items, origin, submitted_by) stored in ONE durable transaction: a report each.

        Group commit: when requests queue up, one lock, one write and one commit
        serve them all. Each job is checked against the versions the jobs before it
        create, exactly as if they had been submitted one after the other; each
        job's sheets are counted and acknowledged (its listeners run) only after the
        whole group has committed. Every job must fit in one batch.
        """
        with paused_gc():
            return self._submit_group(jobs)

    def _submit_group(self, jobs: list[tuple[list[Item], str, str]], offset: int = 0) -> list[IngestReport]:
        """``submit_group``, retrying if another writer got there first (``offset``: of a lone job's batch in its stream).

        Each conflict means another writer stored something, so retries make progress;
        a short random pause keeps two writers on the same boxes from colliding in step.
        """
        for attempt in range(_RETRIES):
            preps: list[_Prepared] = []
            ahead: dict[tuple[str, str, str], tuple[int, str, int]] = {}
            for items, origin, submitted_by in jobs:
                prep = self._prepare(items, origin, submitted_by, offset, ahead=ahead)
                ahead = {**ahead, **prep.pending} if ahead else prep.pending
                preps.append(prep)
            group = preps[0] if len(preps) == 1 else _Prepared(IngestReport(), [r for p in preps for r in p.rows], [q for p in preps for q in p.qrows], ahead, {})
            try:
                self._write(group)
            except StoreError:
                self._resync()
                if attempt == _RETRIES - 1:
                    raise
                time.sleep(random.uniform(0, 0.01 * (attempt + 1)))
                continue
            for prep in preps:
                self._apply(prep)
            return [p.report for p in preps]
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Stop the writer process, if one was started."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _submit_pipelined(self, batches: Iterator[list[Item]], origin: str, submitted_by: str) -> IngestReport:
        """Batch n is written by the child while batch n+1 is checked here.

        Batch n+1 is checked against the versions batch n will create (its ``pending``),
        so a correction in n+1 of a sheet in n gets the next version number. Nothing
        is counted or acknowledged before its batch has committed. If batch n
        conflicts with another writer, n and n+1 are redone the ordinary way.
        """
        writer = self._child()
        report = IngestReport()
        offset = 0
        flight: tuple[_Prepared, list[Item], int] | None = None
        try:
            for batch in batches:
                prep = self._prepare(batch, origin, submitted_by, offset, ahead=flight[0].pending if flight else None)
                if flight is not None:
                    landed, flight = flight, None
                    if not self._land(landed, report, origin, submitted_by):
                        prep = self._prepare(batch, origin, submitted_by, offset)  # the heads were reloaded
                writer.send(prep.rows, prep.qrows)
                flight = (prep, batch, offset)
                offset += len(batch)
        except VersionConflict:
            raise
        except StoreError:
            if flight is None:
                self.close()  # the child failed or is gone: the next bulk submit starts a new one
            raise
        finally:
            # Whatever happened here, a batch the child holds may commit: count it if it does,
            # so that the tally never falls behind the store.
            if flight is not None:
                self._land(flight, report, origin, submitted_by)
        return report

    def _land(self, flight: tuple[_Prepared, list[Item], int], report: IngestReport, origin: str, submitted_by: str) -> bool:
        """Wait for the batch in flight; count it. False if it conflicted and was redone the ordinary way."""
        prep, batch, offset = flight
        try:
            self._writer.result()  # type: ignore[union-attr]
        except VersionConflict:
            self._resync()
            report.merge(self._batch(batch, origin, submitted_by, offset))
            return False
        self._apply(prep)
        report.merge(prep.report)
        return True

    def _write(self, prep: _Prepared) -> None:
        self.store.append_sheets(prep.rows)
        self.store.append_quarantine(prep.qrows)

    def _child(self) -> SqliteWriter:
        """The writer child process of this ingestor's SQLite file, started on first use."""
        if self._writer is None:
            self._writer = SqliteWriter(self.store.sqlite_file or "", SHEET_COLUMNS, QUARANTINE_COLUMNS)
        return self._writer

    def _write_through_child(self, prep: _Prepared) -> int | None:
        """One batch written by the child, synchronously: its highest seq once committed."""
        writer = self._child()
        try:
            writer.send(prep.rows, prep.qrows)
            return writer.result()
        except VersionConflict:
            raise
        except StoreError:
            self.close()  # a failed child: the next write starts a new one
            raise

    def _apply(self, prep: _Prepared) -> None:
        self.heads.update(prep.pending)
        for rid, (boxes, vecs) in prep.counted.items():
            self.tally.apply_many(rid, boxes, np.array(vecs, dtype=np.int64))
        self.version += len(prep.rows)
        for cb in self.listeners:
            cb(prep.report)

    def _resync(self) -> None:
        """Another writer stored sheets we have not seen: reload the heads and recount from the log, in place."""
        self.heads = self.store.heads(self.election.id)
        fresh, _ = build_tally(self.store, self.election)
        for rid, rt in fresh.races.items():
            mine = self.tally.races[rid]
            mine.box_vals[:] = rt.box_vals
            mine.agg[:] = rt.agg
            mine.version += 1
        self.version = self.store.max_seq(self.election.id)

    def _batch(self, items: list[Item], origin: str, submitted_by: str, offset: int = 0) -> IngestReport:
        """One batch, synchronously, retrying if another writer got there first."""
        return self._submit_group([(items, origin, submitted_by)], offset)[0]

    def _prepare(self, items: list[Item], origin: str, submitted_by: str, offset: int, ahead: dict[tuple[str, str, str], tuple[int, str, int]] | None = None) -> _Prepared:
        """Check a batch and build its rows. ``ahead``: versions a batch still in flight will create.

        The hot loop of bulk ingest: written for few bytecodes per sheet (local counters,
        the sheet's counts fetched in one ``attrgetter`` call), which is why it is long.
        """
        e = self.election
        eid = e.id
        rep = IngestReport(received=len(items))
        received_at = now_iso()
        qrows: list[tuple] = []
        races, box_index, race_box_set, reg, box_races = e.races, e.box_index, e.race_box_set, e.box_registered_list, e.box_races
        pending: dict[tuple[str, str, str], tuple[int, str, int]] = {}
        rows: list[tuple] = []
        counted: dict[str, tuple[list[int], list[list[int]]]] = {}
        pending_get, ahead_get, heads_get = pending.get, (ahead or {}).get, self.heads.get
        counts_of = _COUNTS
        accepted = corrections = duplicates = 0

        for n, s in enumerate(items):
            if isinstance(s, BadRow):
                self._quarantine_bad_row(s, rep, qrows, received_at, submitted_by, _where(origin, offset + n))
                continue
            box_id, race_id, source = s.box_id, s.race_id, s.source
            key = (box_id, race_id, source)
            head = pending_get(key) or ahead_get(key) or heads_get(key)
            race = races.get(race_id)
            b = box_index.get(box_id)
            clean = clean_votes_and_text(s, race, reg[b]) if race is not None and b is not None and b in race_box_set[race_id] else None
            if clean is not None:
                # the votes in the race's candidate order: what is stored, counted, and hashed
                vs, vtext = clean
                h = clean_digest(s, vtext)
            else:
                vs, vtext = None, ""
                h = s.content_hash(race.candidate_index if race is not None and s.votes.keys() == race.candidate_index.keys() else None)
            if head is not None and head[1] == h:
                duplicates += 1
                continue
            others: dict[str, int] = {}
            if b is not None and source == OFFICIAL:
                for rid in box_races[b]:
                    if rid != race_id:
                        okey = (box_id, rid, OFFICIAL)
                        oh = pending_get(okey) or ahead_get(okey) or heads_get(okey)
                        if oh is not None:
                            others[rid] = oh[2]
            warnings = "[]"
            if vs is None or (others and w5_fires(s.total_voters, others)):
                issues = validate(s, e, other_race_voters=others)
                errors = [i for i in issues if i.severity == "error"]
                if errors:
                    where = _where(origin, offset + n)
                    rep.quarantined += 1
                    qrows.append((eid, received_at, s.submitted_by or submitted_by, where, box_id, race_id, source, _raw(s), json.dumps([i.to_dict() for i in issues], ensure_ascii=False)))
                    rep.rejections.append(Rejection(where, box_id, race_id, [i.message for i in errors], [i.rule for i in errors]))
                    continue
                if issues:
                    rep.with_warnings += 1
                    rep.warnings.extend(issues)
                    warnings = json.dumps([i.rule for i in issues])
                race = races[race_id]  # a sheet that passed validate has a known race
                if vs is None:
                    vs = [s.votes[c] for c in race.candidate_ids]
                    vtext = ",".join(map(str, vs))
            if head is None:
                version = 1
            else:
                version = head[0] + 1
                corrections += 1
            counts = counts_of(s)  # COUNT_COLUMNS then OPTIONAL_COLUMNS, as in SHEET_COLUMNS
            at = s.submitted_at
            rows.append((eid, box_id, race_id, source, version, h, *counts, "[" + vtext + "]", warnings, s.submitted_by or submitted_by, at.isoformat() if at else None, received_at, s.reason, s.image_ref, s.image_sha256))
            pending[key] = (version, h, counts[3])
            accepted += 1
            if source == OFFICIAL:
                group = counted.get(race_id)
                if group is None:
                    group = counted[race_id] = ([], [])
                group[0].append(b)  # type: ignore[arg-type]
                # core.tally.BASE: opened, registered (box list), total voters, ballots used, valid, invalid, by law
                group[1].append([1, reg[b], counts[3], counts[4], counts[7], counts[8], counts[2], *vs])  # type: ignore[index]
        rep.accepted, rep.corrections, rep.duplicates = accepted, corrections, duplicates
        return _Prepared(rep, rows, qrows, pending, counted)

    def _quarantine_bad_row(self, it: BadRow, rep: IngestReport, qrows: list[tuple], received_at: str, submitted_by: str, where: str) -> None:
        rep.quarantined += 1
        err = {"rule": "E1" if it.error.field else "FORMAT", "severity": "error", "message": str(it.error), "field": it.error.field}
        qrows.append((self.election.id, received_at, submitted_by, it.origin or where, it.box_id, it.race_id, None, it.raw, json.dumps([err], ensure_ascii=False)))
        rep.rejections.append(Rejection(it.origin or where, it.box_id, it.race_id, [str(it.error)], [err["rule"]]))


_RETRIES = 10


_COUNTS = operator.attrgetter(*schema.COUNT_COLUMNS, *schema.OPTIONAL_COLUMNS)
PIPELINE_MIN_BATCH = 2000  # below this, starting a writer process costs more than it saves


def _where(origin: str, index: int) -> str:
    return f"{origin}#{index + 1}" if origin else f"#{index + 1}"


def _chunks(items: Iterable[Item], size: int) -> Iterator[list[Item]]:
    batch: list[Item] = []
    for it in items:
        batch.append(it)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _raw(s: TallySheet) -> str:
    d = {k: getattr(s, k) for k in s.__slots__ if k not in ("extra",)}  # type: ignore[attr-defined]
    d["submitted_at"] = s.submitted_at.isoformat() if s.submitted_at else None
    return json.dumps(d, ensure_ascii=False, default=str)
