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
from sandik.gc_pause import paused_gc
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


STREAM_WINDOW, STREAM_CHANGES = 1.0, 8  # a stream of writes: 8 changes within a second (LiveService.writes_streaming)
GROUP_SHEETS = 5000  # at most this many sheets in one group commit; a bigger request is stored on its own, in batches


@dataclass
class _IngestJob:
    items: list[Item]
    origin: str
    submitted_by: str
    future: Future[IngestReport]


class _LogIngestor(Ingestor):
    """The service's ingestor: notes the seqs its writes got; after a conflict it brings
    its heads up from the log (cheap) instead of rebuilding everything (``Ingestor._resync``)."""

    def __init__(self, store: Store, election_id: str, on_conflict: Callable[[], None]) -> None:
        super().__init__(store, election_id)
        self.on_conflict = on_conflict
        self.written = 0  # sheet rows written since the last reset (by the service, per job)
        self.top = 0  # the highest seq they got

    def _write(self, prep: Any) -> None:
        if self.store.sqlite_file is not None:
            # On an SQLite file the rows are written by the writer child (store/sqlite_writer.py):
            # binding ~30 values per row is interpreter work that the HTTP server's event loop
            # would otherwise wait for. Same transaction, same conflict error.
            top = self._write_through_child(prep)
        else:
            top = self.store.append_sheets(prep.rows)
            self.store.append_quarantine(prep.qrows)
        if top is not None:
            self.top = max(self.top, top)
            self.written += len(prep.rows)

    def _resync(self) -> None:
        self.on_conflict()


class LiveService:
    def __init__(self, store: Store, election_id: str) -> None:
        self.store = store
        # The mark is read before the tally and heads: rows committed meanwhile are in
        # both and read again by the first catch-up, which is harmless (applying a
        # sheet version twice sets the same values).
        mark = store.max_seq(election_id)
        self.ingestor = _LogIngestor(store, election_id, self._heads_from_log)
        self.election = self.ingestor.election
        self.tally = self.ingestor.tally  # the one LiveTally; the ingestor's attribute is swapped while it works
        self.lock = threading.RLock()
        self.updated_at = self._last_received() or datetime.now(UTC).isoformat(timespec="seconds")
        self.accepted_at = time.time()
        self._cache: dict[str, Snapshot] = {}
        self._changes: deque[Change] = deque(maxlen=CHANGE_LOG)
        self._change_times: deque[float] = deque(maxlen=STREAM_CHANGES)  # monotonic times of the last changes
        self._previous: dict[str, RaceResult] | None = None
        self._previous_loaded = False
        self.listeners: list[Callable[[LiveService, Change], None]] = []  # run on the writer thread after each write
        self._queue: queue.Queue[tuple[Callable[[], Any], Future] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._follower: Any = None  # live.follow.LogFollower
        self._stopping = threading.Event()
        # The version is the highest seq of this election whose sheets (and every lower
        # one) this process has counted: comparable between processes on one database.
        self.version = mark
        self._seen_seq = mark
        self._catchup_pending = threading.Event()  # a catch-up job is queued: do not queue another
        self._catch_up_now()

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
            self._follower.stop()
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
            if isinstance(job, _IngestJob):
                group = [job]
                self._gather(group)
                group = [j for j in group if j.future.set_running_or_notify_cancel()]
                if group:
                    self._ingest_jobs(group)
                continue
            fn, fut = job
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn())
            except BaseException as exc:  # handed to the waiting request, not lost
                fut.set_exception(exc)

    def _gather(self, group: list[_IngestJob]) -> None:
        """Add the ingest jobs queued right behind the first (group commit), up to GROUP_SHEETS sheets.

        Stops at the first job of another kind (a catch-up), so that jobs still run in queue order.
        """
        n = len(group[0].items)
        while n < GROUP_SHEETS:
            try:
                nxt = self._queue.queue[0]  # peek: Queue has no public peek; we are its only consumer
            except IndexError:
                return
            if not isinstance(nxt, _IngestJob) or n + len(nxt.items) > GROUP_SHEETS:
                return
            group.append(self._queue.get_nowait())
            n += len(nxt.items)

    def _ingest_jobs(self, group: list[_IngestJob]) -> None:
        try:
            reports = self._ingest([(j.items, j.origin, j.submitted_by) for j in group])
        except BaseException as exc:  # handed to every waiting request, not lost
            for j in group:
                j.future.set_exception(exc)
            return
        for j, rep in zip(group, reports):
            j.future.set_result(rep)

    def submit(self, items: Iterable[Item], *, origin: str = "", submitted_by: str = "") -> Future[IngestReport]:
        """Queue sheets for the writer; the future resolves to the ingest report once they are durable and counted.

        Submissions that queue up while the writer is busy are stored together in one
        transaction (``Ingestor.submit_group``), each with its own report.
        """
        job = _IngestJob(list(items), origin, submitted_by, Future())
        if self._thread is None:
            self.start()
        self._queue.put(job)
        return job.future

    def submit_sync(self, items: Iterable[Item], *, origin: str = "", submitted_by: str = "") -> IngestReport:
        return self.submit(items, origin=origin, submitted_by=submitted_by).result()

    def _ingest(self, jobs: list[tuple[list[Item], str, str]]) -> list[IngestReport]:
        # Parse, validate and store without the readers' lock (that is most of the time);
        # the tally updates are recorded meanwhile and applied under the lock in one short
        # step, so a snapshot never sees half a batch and readers never wait for the disk.
        real = self.tally
        rec = _RecordingTally(real)
        ing = self.ingestor
        ing.written = ing.top = 0
        ing.tally = rec  # type: ignore[assignment]
        log: list[tuple] = []
        try:
            if len(jobs) == 1 and len(jobs[0][0]) > GROUP_SHEETS:
                items, origin, submitted_by = jobs[0]
                reports = [ing.submit(items, origin=origin, submitted_by=submitted_by, pipeline=False)]
            else:
                reports = ing.submit_group(jobs)
        finally:
            ing.tally = real
            # Our rows got seqs (top - written, top] unless another process wrote in
            # between: then the log from our mark to our top holds their sheets (and ours
            # again), applied after ours in log order so that the tally is the log's
            # state at ``top`` and the version may say so.
            if ing.top and ing.top - ing.written != self._seen_seq:
                log = self.store.log_since(self.election.id, self._seen_seq, ing.top)
            before = self.version
            with self.lock:
                rec.replay_into(real)
                lraces, lareas = self._apply_log(log)
                if ing.top:
                    self._seen_seq = max(self._seen_seq, ing.top)
                    self.version = max(self.version, ing.top)
                ing.version = self.version
                if self.version != before:
                    self.updated_at = datetime.now(UTC).isoformat(timespec="seconds")
                    self.accepted_at = time.time()
        if self.version == before:
            return reports
        change = self._change([it for j in jobs for it in j[0]], [r for rep in reports for r in rep.rejections], before, self.version)
        if lraces:
            change = Change(change.before, change.after, change.at, change.races | lraces, change.areas | lareas)
        self._changes.append(change)
        self._change_times.append(time.monotonic())
        for cb in self.listeners:
            cb(self, change)
        return reports

    def _change(self, items: list[Item], rejections: list[Any], before: int, after: int) -> Change:
        e = self.election
        refused = {(r.box_id, r.race_id) for r in rejections}
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

        A ``live.follow.LogFollower`` thread wakes on PostgreSQL's NOTIFY (and every
        ``interval`` seconds in any case) and queues a catch-up on the writer thread, which
        reads the log after the last seq this process counted and applies it in log order.
        """
        if self._follower is None:
            from sandik.live.follow import LogFollower

            self._follower = LogFollower(self, interval)
            self._follower.start()

    def request_catch_up(self) -> Future[int] | None:
        """Queue one catch-up on the writer thread (None if one is already queued)."""
        if self._catchup_pending.is_set():
            return None
        self._catchup_pending.set()
        fut: Future[int] = Future()
        if self._thread is None:
            self.start()

        def job() -> int:
            self._catchup_pending.clear()
            return self._catch_up_now()

        self._queue.put((job, fut))
        return fut

    def catch_up(self) -> int:
        """Apply sheets stored since the last look (on the writer thread); returns how many official rows were read."""
        if self._thread is None or threading.current_thread() is self._thread:
            return self._catch_up_now()
        fut: Future[int] = Future()
        self._queue.put((self._catch_up_now, fut))
        return fut.result()

    def _catch_up_now(self) -> int:
        with paused_gc():  # many small containers, no cycles (sandik/gc_pause.py)
            return self._catch_up_locked()

    def _catch_up_locked(self) -> int:
        e = self.election
        rows = self.store.log_since(e.id, self._seen_seq)
        if not rows:
            return 0
        top = int(rows[-1][0])
        before = self.version
        with self.lock:
            races, areas = self._apply_log(rows)
            self._seen_seq = max(self._seen_seq, top)
            self.version = max(self.version, top)
            self.ingestor.version = self.version
            if self.version != before:
                self.updated_at = datetime.now(UTC).isoformat(timespec="seconds")
                # Acceptance time of the new rows is the writer's (received_at, set before
                # its commit), not the moment we noticed them: SSE delays are measured from there.
                self.accepted_at = self._received_at(rows[0][0]) or time.time()
        if self.version != before:
            change = Change(before, self.version, self.accepted_at, frozenset(races), frozenset(areas))
            self._changes.append(change)
            self._change_times.append(time.monotonic())
            for cb in self.listeners:
                cb(self, change)
        return sum(1 for r in rows if r[3] == OFFICIAL)

    def _received_at(self, seq: int) -> float | None:
        from sqlalchemy import text

        with self.store.engine.connect() as conn:
            v = conn.execute(text("SELECT received_at FROM sheets WHERE seq = :s"), {"s": seq}).scalar()
        return datetime.fromisoformat(v).timestamp() if v else None

    def _heads_from_log(self) -> None:
        """After a conflicting write: bring the ingestor's heads up to the log (the tally follows after the write)."""
        for r in self.store.log_since(self.election.id, self._seen_seq):
            self.ingestor.heads[(r[1], r[2], r[3])] = (r[4], r[5], r[6])

    def _apply_log(self, rows: list[tuple]) -> tuple[frozenset[str], frozenset[str]]:
        """Apply log rows (``Store.log_since``) to the heads and the tally, in log order; call under ``self.lock``."""
        if not rows:
            return frozenset(), frozenset()
        e = self.election
        heads = self.ingestor.heads
        latest: dict[tuple[str, str], tuple] = {}
        for r in rows:
            heads[(r[1], r[2], r[3])] = (r[4], r[5], r[6])  # log order: a later version wins
            if r[3] == OFFICIAL and r[2] in e.races and r[1] in e.box_index:
                latest[(r[1], r[2])] = r
        by_race: dict[str, list[tuple]] = {}
        for r in latest.values():
            by_race.setdefault(r[2], []).append(r)
        leaves: set[str] = set()
        for rid, rs in by_race.items():
            boxes = [e.box_index[r[1]] for r in rs]
            width = NB + len(e.races[rid].candidates)
            vecs = np.empty((len(rs), width), dtype=np.int64)
            vecs[:, 0] = 1
            vecs[:, 1] = e.box_registered[boxes]
            # np.fromstring parses the comma-separated counts in C (our own SQL wrote them: Store.log_since)
            flat = np.fromstring(",".join([r[7] for r in rs]), dtype=np.int64, sep=",")
            if flat.size != len(rs) * (width - 2):
                raise SandikError(f"race {rid}: the log's counts do not match its {width - NB} candidates")
            vecs[:, 2:] = flat.reshape(len(rs), width - 2)
            self.tally.apply_many(rid, boxes, vecs)
            leaves.update(e.box_area_ids[b] for b in boxes)
        areas: set[str] = set()
        for leaf in leaves:
            areas.update(e.ancestors(leaf))
        return frozenset(by_race), frozenset(areas)

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

    def writes_streaming(self, window: float = STREAM_WINDOW) -> bool:
        """True while sheets keep arriving: the last STREAM_CHANGES changes within ``window`` seconds, the last one just now.

        Readers are then served the latest built snapshot while the next one is built
        (``api.hotpath``): any answer is one write behind a moment later anyway. After a
        few writes (a clerk's upload and corrections) the first read waits for the new
        snapshot instead: they read their writes.
        """
        t = self._change_times
        return len(t) == STREAM_CHANGES and t[-1] - t[0] < window and time.monotonic() - t[-1] < window

    def cached(self, key: str, build: Callable[[], Any]) -> Snapshot:
        """The serialised value of ``build()`` for the current version; built at most once per version and key."""
        snap = self._cache.get(key)
        if snap is not None and snap.version == self.version:
            return snap
        with self.lock:
            v = self.version
            snap = self._cache.get(key)
            if snap is not None and snap.version == v:
                return snap
            body = dumps(build())
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
                # cyclic GC's reach, or every full collection walks them (100+ ms stalls of every
                # request). A server process also freezes what the night adds (live/gc_steward.py).
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
