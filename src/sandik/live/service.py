"""The live side of one election in a server process.

``LiveService`` owns the election's ``Ingestor`` (and so its ``LiveTally``).
Every write goes through one writer thread fed by a queue (the single-writer
pattern datasette uses for SQLite): sheets are stored, counted and acknowledged
in order, and readers never see a half-applied batch because snapshots are built
under the same lock the writer holds while it applies one.

The version is the number of sheet versions stored for the election (the
ingestor's count): it only grows. Read endpoints serve bytes cached per version
(``cached``), so a hot endpoint costs one dict lookup until the next write.
``changes(since)`` says which races and areas changed after a version, for
clients that poll.
"""

from __future__ import annotations

import gc
import hashlib
import json
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from sandik.core.results import RaceResult, final_results
from sandik.core.sheet import OFFICIAL, TallySheet
from sandik.core.tally import NB
from sandik.errors import NotFound, SandikError
from sandik.ingest.pipeline import IngestReport, Ingestor, Item
from sandik.store.repository import Store

CHANGE_LOG = 20_000  # versions of change history kept for "what changed since v"


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=str).encode()


@dataclass(frozen=True)
class Snapshot:
    version: int
    body: bytes
    etag: str


@dataclass(frozen=True)
class Change:
    before: int  # version before the batch
    after: int  # version after it
    at: float  # time.time() when the batch was acknowledged
    races: frozenset[str]
    areas: frozenset[str]


class _RecordingTally:
    """Stands in for the LiveTally while the ingestor works: records ``apply`` calls, reads pass through."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.updates: list[tuple[str, str, Any, Any]] = []  # (method, race id, box index(es), vector(s)), in order

    def apply(self, race_id: str, box_index: int, vec: Any) -> None:
        self.updates.append(("apply", race_id, box_index, vec))

    def apply_many(self, race_id: str, box_indices: list[int], vecs: Any) -> None:
        self.updates.append(("apply_many", race_id, box_indices, vecs))

    def replay_into(self, real: Any) -> None:
        for method, rid, b, v in self.updates:
            getattr(real, method)(rid, b, v)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


class LiveService:
    def __init__(self, store: Store, election_id: str) -> None:
        self.store = store
        self.ingestor = Ingestor(store, election_id)
        self.election = self.ingestor.election
        self.tally = self.ingestor.tally  # the one LiveTally; the ingestor's attribute is swapped while it works
        self.lock = threading.RLock()
        self.version = self.ingestor.version
        self.updated_at = self._last_received() or datetime.now(UTC).isoformat(timespec="seconds")
        self.accepted_at = time.time()
        self._cache: dict[str, Snapshot] = {}
        self._building: set[str] = set()  # keys being rebuilt for a new version: their old bytes may be served meanwhile
        self._changes: deque[Change] = deque(maxlen=CHANGE_LOG)
        self._previous: dict[str, RaceResult] | None = None
        self._previous_loaded = False
        self.listeners: list[Callable[[LiveService, Change], None]] = []  # run on the writer thread after each write
        self._queue: queue.Queue[tuple[Callable[[], Any], Future] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._follower: threading.Thread | None = None
        self._stopping = threading.Event()
        self._seen_seq = 0

    def _last_received(self) -> str | None:
        """When the newest stored sheet arrived ("last updated" after a restart)."""
        from sqlalchemy import text

        with self.store.engine.connect() as conn:
            v = conn.execute(text("SELECT max(received_at) FROM sheets WHERE election_id = :e"), {"e": self.election.id}).scalar()
        return datetime.fromisoformat(v).isoformat(timespec="seconds") if v else None

    # --- the writer ---------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"sandik-writer-{self.election.id}", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._follower is not None:
            self._follower.join(timeout=10)
            self._follower = None
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=30)
            self._thread = None
        close = getattr(self.ingestor, "close", None)
        if close is not None:
            close()

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            fn, fut = job
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn())
            except BaseException as exc:  # handed to the waiting request, not lost
                fut.set_exception(exc)

    def submit(self, items: Iterable[Item], *, origin: str = "", submitted_by: str = "") -> Future[IngestReport]:
        """Queue sheets for the writer; the future resolves to the ingest report once they are durable and counted."""
        batch = list(items)
        fut: Future[IngestReport] = Future()
        if self._thread is None:
            self.start()
        self._queue.put((lambda: self._ingest(batch, origin, submitted_by), fut))
        return fut

    def submit_sync(self, items: Iterable[Item], *, origin: str = "", submitted_by: str = "") -> IngestReport:
        return self.submit(items, origin=origin, submitted_by=submitted_by).result()

    def _ingest(self, items: list[Item], origin: str, submitted_by: str) -> IngestReport:
        # Parse, validate and store without the readers' lock (that is most of the time);
        # the tally updates are recorded meanwhile and applied under the lock in one short
        # step, so a snapshot never sees half a batch and readers never wait for the disk.
        real = self.tally
        rec = _RecordingTally(real)
        before = self.ingestor.version
        self.ingestor.tally = rec  # type: ignore[assignment]
        try:
            report = self.ingestor.submit(items, origin=origin, submitted_by=submitted_by)
        finally:
            self.ingestor.tally = real
            with self.lock:
                rec.replay_into(real)
                after = self.ingestor.version
                if after != before:
                    # max(): a follower may already have seen later sheets of other writers.
                    self.version = max(self.version, after)
                    self.updated_at = datetime.now(UTC).isoformat(timespec="seconds")
                    self.accepted_at = time.time()
        if after == before:
            return report
        change = self._change(items, report, before, self.version)
        self._changes.append(change)
        for cb in self.listeners:
            cb(self, change)
        return report

    def _change(self, items: list[Item], report: IngestReport, before: int, after: int) -> Change:
        e = self.election
        refused = {(r.box_id, r.race_id) for r in report.rejections}
        races: set[str] = set()
        areas: set[str] = set()
        for it in items:
            if isinstance(it, TallySheet) and it.source == OFFICIAL and (it.box_id, it.race_id) not in refused and it.race_id in e.races:
                races.add(it.race_id)
                b = e.box_index.get(it.box_id)
                if b is not None:
                    areas.update(e.ancestors(e.box_area_ids[b]))
        return Change(before, after, self.accepted_at, frozenset(races), frozenset(areas))

    # --- following other writers ---------------------------------------------------
    def follow(self, interval: float = 0.1) -> None:
        """Also count sheets that other processes store (``sandik ingest``, ``sandik replay``, another server).

        A thread reads the log after the last sequence number seen, every ``interval``
        seconds, and applies the latest official version of each (box, race) it finds,
        in log order. Re-applying a version this process wrote itself changes nothing.
        """
        if self._follower is None:
            self._seen_seq = self.store.max_seq(self.election.id)
            self._follower = threading.Thread(target=self._follow_loop, args=(interval,), name=f"sandik-follow-{self.election.id}", daemon=True)
            self._follower.start()

    def _follow_loop(self, interval: float) -> None:
        while not self._stopping.wait(interval):
            try:
                self.catch_up()
            except Exception:  # a busy or briefly locked database: try again at the next tick
                continue

    def catch_up(self) -> int:
        """Apply sheets stored since the last look; returns how many official rows were read."""
        from sqlalchemy import text

        e = self.election
        with self.store.engine.connect() as conn:
            top, first_at = conn.execute(
                text("SELECT max(seq), min(received_at) FROM sheets WHERE seq > :s AND election_id = :e"), {"s": self._seen_seq, "e": e.id}
            ).one()
        if not top:
            return 0
        # Acceptance time of the new rows is the writer's (received_at, set before its commit),
        # not the moment we noticed them: SSE delays are measured from there.
        accepted = datetime.fromisoformat(first_at).timestamp() if first_at else time.time()
        latest: dict[tuple[str, str], tuple] = {}
        n = 0
        for chunk in self.store.official_log(e.id, after_seq=self._seen_seq):
            for row in chunk:
                if row[0] <= top:
                    latest[(row[1], row[2])] = row  # log order: a later version wins
                    n += 1
        by_race: dict[str, list[tuple]] = {}
        for row in latest.values():
            if row[2] in e.races and row[1] in e.box_index:
                by_race.setdefault(row[2], []).append(row)
        updates = []
        for rid, rows in by_race.items():
            boxes = [e.box_index[r[1]] for r in rows]
            vecs = np.empty((len(rows), NB + len(e.races[rid].candidates)), dtype=np.int64)
            vecs[:, 0] = 1
            vecs[:, 1] = e.box_registered[boxes]
            vecs[:, 2:] = np.array(json.loads("[" + ",".join(r[3] for r in rows) + "]"), dtype=np.int64).reshape(len(rows), -1)
            updates.append((rid, boxes, vecs))
        with self.lock:
            for rid, boxes, vecs in updates:
                self.tally.apply_many(rid, boxes, vecs)
            before = self.version
            self.version = max(self.version, int(top))
            self._seen_seq = int(top)
            if self.version != before:
                self.updated_at = datetime.now(UTC).isoformat(timespec="seconds")
                self.accepted_at = accepted
        if self.version != before:
            areas: set[str] = set()
            for rows in by_race.values():
                for r in rows:
                    areas.update(e.ancestors(e.box_area_ids[e.box_index[r[1]]]))
            change = Change(before, self.version, self.accepted_at, frozenset(by_race), frozenset(areas))
            self._changes.append(change)
            for cb in self.listeners:
                cb(self, change)
        return n

    # --- reads --------------------------------------------------------------------
    def previous(self) -> dict[str, RaceResult] | None:
        """Final results of the previous election (aggregate-only), or None if there is none in the store."""
        if not self._previous_loaded:
            pid = self.election.info.previous_id
            if pid:
                try:
                    prev = self.store.election(pid)
                    self._previous = final_results(prev, None)
                except NotFound:
                    self._previous = None
            self._previous_loaded = True
        return self._previous

    def cached(self, key: str, build: Callable[[], Any]) -> Snapshot:
        """The serialised value of ``build()`` for the current version; built at most once per version and key."""
        snap = self._cache.get(key)
        if snap is not None and snap.version == self.version:
            return snap
        self._building.add(key)
        try:
            with self.lock:
                v = self.version
                snap = self._cache.get(key)
                if snap is not None and snap.version == v:
                    return snap
                body = dumps(build())
        finally:
            self._building.discard(key)
        etag = '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
        snap = Snapshot(v, body, etag)
        self._cache[key] = snap
        return snap

    def prewarm(self, entries: list[tuple[str, Callable[[], Any]]]) -> int:
        """Rebuild these snapshots for the current version now (before telling clients about it)."""
        n = 0
        for key, build in entries:
            snap = self._cache.get(key)
            if snap is None or snap.version != self.version:
                self.cached(key, build)
                n += 1
        return n

    def changes(self, since: int) -> dict[str, Any]:
        """Races and areas changed after version ``since``; ``reset`` if that is older than the history kept."""
        if since > self.version:
            raise SandikError(f"version {since} is in the future (current {self.version})", since=since, current=self.version)
        log = list(self._changes)
        if since == self.version:
            return {"since": since, "version": self.version, "reset": False, "races": [], "areas": []}
        if not log or log[0].before > since:
            return {"since": since, "version": self.version, "reset": True, "races": [], "areas": []}
        races: set[str] = set()
        areas: set[str] = set()
        for c in log:
            if c.after > since:
                races |= c.races
                areas |= c.areas
        return {"since": since, "version": self.version, "reset": False, "races": sorted(races), "areas": sorted(areas)}

    def changes_between(self, since: int, until: int) -> tuple[list[str], float | None]:
        """Races changed in (since, until] and the earliest acceptance time among them (for the SSE frames)."""
        races: set[str] = set()
        first: float | None = None
        for c in list(self._changes):
            if since < c.after <= until:
                races |= c.races
                first = c.at if first is None else min(first, c.at)
        return sorted(races), first


class ServiceRegistry:
    """One LiveService per election in the store, created on first use (following other writers if ``follow``)."""

    def __init__(self, store: Store, *, follow: bool = False) -> None:
        self.store = store
        self.follow = follow
        self._services: dict[str, LiveService] = {}
        self._lock = threading.Lock()

    def get(self, election_id: str) -> LiveService:
        svc = self._services.get(election_id)
        if svc is not None:
            return svc
        with self._lock:
            svc = self._services.get(election_id)
            if svc is None:
                svc = LiveService(self.store, election_id)  # NotFound for an unknown election
                # The election and its tally live as long as the server: take them out of the
                # cyclic GC's reach, or every full collection walks them (100+ ms stalls of every request).
                gc.freeze()
                svc.start()
                if self.follow:
                    svc.follow()
                self._services[election_id] = svc
        return svc

    def loaded(self) -> list[LiveService]:
        return list(self._services.values())

    def stop(self) -> None:
        for svc in self.loaded():
            svc.stop()
