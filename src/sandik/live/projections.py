"""Projections and race calls of a live election, computed on a timer, never per request.

One ``ProjectionWorker`` per ``LiveService``. It listens to the service's
changes (on the writer thread it only marks races dirty) and, every
``interval`` seconds on its own thread, projects the races whose tally changed
since its last pass (about 2-3 ms per race, bench/bench_projection.py), from a copy of their box vectors
taken under the writer's lock (so the writer never waits for the model). The
first pass projects every race with boxes; every ``PRIOR_EVERY`` seconds a pass also sweeps the
races no sheet reached, whose pooled prior moves as others report (those whose prior drifted past
``ModelParams.prior_reuse_sd`` are redone). Results are kept serialised per race,
with a projection version that only grows; routes serve those bytes.

A new automatic call (lock or statistical) is recorded in the call log
(``store/race_calls.py``) with the model state that made it, unless the race's
latest row was made by hand: an admin's call or withdrawal stands until an
admin changes it. Each pass with news is published to listeners (the SSE
broadcaster) as ``{"projection_version", "races", "calls"}``.

With ``processes`` > 1 (``SANDIK_PROJECTION_PROCESSES``; default 1: in this
thread) the races of each chunk are projected in that many child processes
(``live.projection_procs``: the same outcomes, bit for bit), so that a pass uses
every core and the model no longer holds this process's GIL. A failing child
pool is closed and the worker goes on in its own thread.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from sandik.core.projection.calls import CallRule
from sandik.core.projection.election import build_frames, race_state
from sandik.core.projection.model import ModelParams
from sandik.core.projection.pool import RaceOutcome, pool_stats, project_races, race_swings, state_key
from sandik.core.projection.seats import seat_intervals
from sandik.core.tally import I_OPENED
from sandik.errors import NotFound
from sandik.live.projection_procs import ProcessProjector, ProjectorError
from sandik.live.service import Change, LiveService, dumps
from sandik.store import race_calls, schema
from sandik.store.repository import now_iso

INTERVAL = 1.0  # seconds between passes; a pass only runs when some race changed
MODEL_ACTOR = "sandik-model"
CHUNK = 50  # races between rests (~0.2 s of model work); between chunks the worker rests (REST x the chunk's time)
REST = 1.0
# While sheets stream in (LiveService.writes_streaming) the worker rests longer: readers keep four
# fifths of the interpreter (read p99 at a full-speed replay with the worker on: 24 ms at 1.0,
# 19 ms at 4.0, docs/benchmarks.md), and a projection is outdated by the next batch anyway.
REST_STREAMING = 4.0
# Seconds between sweeps over the races no sheet reached: their pooled prior moves as others report.
# A sweep redoes only those whose prior drifted past ModelParams.prior_reuse_sd from the one their
# outcome was made with (the others come back as they were, and are not published again).
PRIOR_EVERY = 30.0


def processes_default() -> int:
    """Child processes that project (``SANDIK_PROJECTION_PROCESSES``; 1, the default: none, in the worker's thread).

    Not on by default: two children per server take both cores of a two-core machine
    while they run, and a deployment with two server processes would run four.
    """
    raw = os.environ.get("SANDIK_PROJECTION_PROCESSES", "1")
    try:
        return max(1, int(raw))
    except ValueError:
        return 1


def alliances_of(country: str) -> tuple[tuple[str, ...], ...]:
    # Alliances are facts of a country's previous election: Turkey's come with its datasets.
    if country == "TR":
        from sandik.backtest.data import ALLIANCES_TR

        return ALLIANCES_TR
    return ()


@dataclass(frozen=True)
class Cached:
    version: int  # projection version when built
    body: bytes
    etag: str


def _cached(version: int, obj: Any) -> Cached:
    body = dumps(obj)
    return Cached(version, body, '"p' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"')


class _RaceVals:
    """A race's box vectors as the worker copied them (read-only), the ``RaceTally`` and its
    version they were copied at, and the count's digest (``pool.state_key``) once a pass needs it."""

    __slots__ = ("box_vals", "tally", "version", "key")

    def __init__(self, box_vals: np.ndarray, tally: Any = None, version: int = -1) -> None:
        self.box_vals = box_vals
        self.tally = tally
        self.version = version
        self.key: bytes | None = None


class _TallyCopy:
    """What ``project_election`` reads of a tally (each race's box vectors), copied at one instant."""

    def __init__(self, races: dict[str, _RaceVals]) -> None:
        self.races = races


class ProjectionWorker:
    def __init__(self, svc: LiveService, *, interval: float = INTERVAL, record_calls: bool = True, processes: int | None = None) -> None:
        self.svc = svc
        self.processes = processes_default() if processes is None else max(1, processes)
        self._projector: ProcessProjector | None = None
        self.interval = interval
        self.record_calls = record_calls
        self.version = 0  # projection version: +1 per pass that changed something
        self.tally_version = -1  # the service version the latest pass saw
        self.swept_version = -1  # ... and the latest sweep over the races it did not change (PRIOR_EVERY)
        self.outcomes: dict[str, dict[str, Any]] = {}  # race id -> RaceOutcome.to_dict() + "tally_version"
        self.errors: dict[str, str] = {}  # race id -> why it could not be projected
        self.listeners: list[Callable[[dict[str, Any]], None]] = []
        self._dirty: set[str] | None = None  # None: everything (the first pass)
        self._frames: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._done = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._bytes: dict[str, Cached] = {}
        self.passes = 0
        self.last_pass_seconds: float | None = None
        self.frames_note: str | None = None
        self._prior_at = time.monotonic()
        self._last_oc: dict[str, RaceOutcome] = {}  # race id -> the outcome behind self.outcomes[race id]
        self._copies: dict[str, _RaceVals] = {}  # race id -> the latest copy of its box vectors
        self._copied: set[str] = set()  # the races this pass copied anew (the others: the copy, so the count, of the pass before)
        self._latest_calls: dict[str, race_calls.CallRecord] = {}
        self._calls_seen = 0  # the highest race_calls id read into _latest_calls

    # --- lifecycle ----------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self.svc.listeners.append(self._on_change)
            self._thread = threading.Thread(target=self._run, name=f"sandik-projections-{self.svc.election.id}", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._on_change in self.svc.listeners:
            self.svc.listeners.remove(self._on_change)
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        if self._projector is not None:
            self._projector.close()
            self._projector = None

    def _on_change(self, _svc: LiveService, change: Change) -> None:
        # On the writer thread: remember what changed, nothing else.
        with self._lock:
            if self._dirty is not None:
                self._dirty |= change.races
        self._wake.set()

    def _run(self) -> None:
        try:
            while not self._stop.is_set() and not self.svc._stopping.is_set():
                try:
                    self.refresh()
                except Exception as exc:  # a failing pass must not end the worker; it is reported on /projections
                    self.errors["*"] = f"{type(exc).__name__}: {exc}"
                self._wake.wait(self.interval)
                self._wake.clear()
        finally:
            # The service stops without calling stop(): the child processes end with this thread.
            if self._projector is not None:
                self._projector.close()
                self._projector = None

    # --- one pass -----------------------------------------------------------------
    def frames(self) -> dict[str, Any]:
        if self._frames is None:
            e = self.svc.election
            prev = None
            if e.info.previous_id:
                try:
                    prev = self.svc.store.election(e.info.previous_id)
                except NotFound:
                    self.frames_note = f"previous election {e.info.previous_id} is not in the store: projections have no baseline"
            self._prev = prev
            self._frames = build_frames(e, prev, alliances=alliances_of(e.info.country))
        return self._frames

    def refresh(self) -> list[str]:
        """Project the races changed since the last pass (then, now and then, the others whose pooled prior drifted); returns their ids."""
        frames = self.frames()
        svc = self.svc
        with self._lock:
            dirty = set(frames) if self._dirty is None else {r for r in self._dirty if r in frames}
            self._dirty = set()
        if not dirty:
            with self._done:  # nothing to redo: the projections are those of this version too
                self.tally_version = max(self.tally_version, svc.version)
                self._done.notify_all()
            return []
        self._copied = set()
        with svc.lock:  # a consistent copy: never half a batch
            tv = svc.version
            copy = _TallyCopy({rid: self._copy_of(svc.tally.races[rid]) for rid in frames})
        # Races with counted boxes first (the first pass of a big election takes a while), then by id.
        order = sorted(dirty, key=lambda r: (not bool(copy.races[r].box_vals[:, I_OPENED].any()), r))
        # The pooled prior of the pass, from every race's state: computed once, not once per chunk.
        e = svc.election
        states = {rid: race_state(fr, copy) for rid, fr in frames.items()}  # type: ignore[arg-type]
        region_of = {rid: ".".join(e.races[rid].area_id.split(".")[:2]) for rid in frames}
        swings = self._counts(frames, states, region_of)
        keys = None
        if swings is None:
            keys = self._state_keys(states)
            swings = race_swings(frames, states, keys=keys)
        self._pool = (states, keys, region_of, pool_stats(swings, region_of))
        changed = self._chunks(frames, copy, tv, order, marks_version=True)
        if changed is None:
            return []
        if time.monotonic() - self._prior_at > PRIOR_EVERY:
            # Races with little counted lean on a swing pooled from other races' results: the races no
            # sheet reached are swept after the changed races, not at every pass, and of those only
            # the ones whose prior drifted past the tolerance are redone (a complete count takes none).
            self._prior_at = time.monotonic()
            sweep = sorted(rid for rid, d in self.outcomes.items() if d["mode"] != "complete" and rid not in dirty)
            swept = self._chunks(frames, copy, tv, sweep, marks_version=False)
            if swept is not None:
                changed += swept
                with self._done:
                    self.swept_version = tv
                    self._done.notify_all()
        return changed

    def _chunks(self, frames: dict[str, Any], copy: _TallyCopy, tv: int, order: list[str], *, marks_version: bool) -> list[str] | None:
        """Project ``order`` in chunks, publishing each; None if the worker was stopped meanwhile."""
        changed: list[str] = []
        for i in range(0, len(order), CHUNK):
            part = order[i : i + CHUNK]
            last = i + CHUNK >= len(order)
            t0 = time.perf_counter()
            try:
                out = self._project(frames, part)
            except Exception:
                if marks_version:
                    with self._lock:  # try these races again at the next pass
                        self._dirty = (self._dirty or set()) | set(order[i:])
                raise
            if not marks_version:
                # a sweep: an outcome that came back as it was (its prior within tolerance) is not news
                out = {rid: oc for rid, oc in out.items() if oc is not self._last_oc.get(rid)}
            self._last_oc.update(out)
            if not out:
                continue
            calls = self._record(out) if self.record_calls else []
            spent = time.perf_counter() - t0
            with self._done:
                self.version += 1
                for rid, oc in out.items():
                    d = oc.to_dict()
                    d["tally_version"] = tv
                    self.outcomes[rid] = d
                    self._bytes.pop(rid, None)
                self._bytes.pop("*", None)
                if last and marks_version:
                    self.tally_version = tv
                    self.passes += 1
                self.last_pass_seconds = spent
                self._done.notify_all()
            changed += sorted(out)
            event = {"projection_version": self.version, "tally_version": tv, "races": sorted(out)[:50], "races_truncated": len(out) > 50, "calls": calls}
            for cb in list(self.listeners):
                try:
                    cb(event)
                except Exception:  # a closed loop must not stop the projections
                    pass
            # The model shares the server's CPU (and GIL): rest as long as the chunk took (four times as
            # long while sheets stream in), so readers keep at least half of it during a long pass.
            rest = REST_STREAMING if self.svc.writes_streaming() else REST
            if not last and (self._stop.wait(spent * rest) or self.svc._stopping.is_set()):
                if marks_version:
                    with self._lock:
                        self._dirty = (self._dirty or set()) | set(order[i + CHUNK :])
                return None
        return changed

    def _copy_of(self, rt: Any) -> _RaceVals:
        """A read-only copy of a race's box vectors (call under the service's lock), made anew only
        when the race changed since the last one (``RaceTally.version``): copying all of them took
        10-50 ms of the writer's lock at every pass on the 2024 night (68 MB)."""
        kept = self._copies.get(rt.race.id)
        if kept is None or kept.tally is not rt or kept.version != rt.version:
            vals = rt.box_vals.copy()
            vals.setflags(write=False)
            kept = self._copies[rt.race.id] = _RaceVals(vals, rt, rt.version)
            self._copied.add(rt.race.id)
        return kept

    def _state_keys(self, states: dict[str, Any]) -> dict[str, bytes]:
        """``pool.state_key`` of this pass's states (made from this pass's copies): a race whose copy
        is the one of the pass before keeps its digest instead of hashing every vote again
        (hashing all of them took 0.078-0.083 s of every pass on the 2024 night)."""
        keys = {}
        for rid, st in states.items():
            c = self._copies[rid]
            if c.key is None:
                c.key = state_key(st)
            keys[rid] = c.key
        return keys

    def _counts(self, frames: dict[str, Any], states: dict[str, Any], region_of: dict[str, str]) -> dict[str, Any] | None:
        """With child processes: this pass's counts sent to them, and every race's swing (in the
        frames' order, as ``race_swings`` gives them) for the pooled prior; None without."""
        if self.processes <= 1:
            return None
        try:
            if self._projector is None:
                races = self.svc.election.races
                councils = frozenset(rid for rid in frames if races[rid].seats > 1)  # their seat projections need the draws
                self._projector = ProcessProjector(frames, region_of, processes=self.processes, params=ModelParams(), rule=CallRule(), keep_draws=councils)
            # a race whose copy is the one of the pass before has the count the children got then
            swings = self._projector.counts(states, same=set(frames) - self._copied)
        except (ProjectorError, OSError) as exc:
            if isinstance(exc, ProjectorError) and not exc.died:
                raise  # a count the model refuses: the pass fails as it would in this thread
            self._give_up(exc)
            return None
        return {rid: swings[rid] for rid in frames if rid in swings}

    def _give_up(self, exc: BaseException) -> None:
        # A child is gone: go on in this thread for the rest of the night (its frames know
        # nothing of the children's kept outcomes: it recomputes the races it is asked for).
        self.errors["processes"] = f"child processes given up, projecting in the worker's thread: {type(exc).__name__}: {exc}"
        self.processes = 1
        if self._projector is not None:
            self._projector.close()
            self._projector = None

    def _project(self, frames: dict[str, Any], races: list[str]) -> dict[str, RaceOutcome]:
        """``project_election`` for some races, with this pass's states and pooled prior (same steps as core.projection.pool.project_many)."""
        states, keys, region_of, stats = self._pool
        params, rule = ModelParams(), CallRule()
        out: dict[str, RaceOutcome] = {}
        pooled = None
        if self._projector is not None and keys is None:  # the children hold this pass's counts
            try:
                pooled = self._projector.project_counted(stats, races)
            except (ProjectorError, OSError) as exc:
                if isinstance(exc, ProjectorError) and not exc.died:
                    raise  # a race the model refuses: the pass fails as it would in this thread
                self._give_up(exc)
        if pooled is None:
            if keys is None:
                keys = self._state_keys(states)
                self._pool = (states, keys, region_of, stats)
            # A race whose count and prior did not change since its last pass gets its last outcome back.
            pooled = project_races(frames, states, stats, region_of, params, rule, races, keys=keys)
        for rid in races:
            oc = out[rid] = pooled[rid]
            seats = self.svc.election.races[rid].seats
            if seats > 1 and oc.projection.draws is not None and oc.seats is None:
                oc.seats = seat_intervals(oc.projection.draws, seats, None)
        return out

    def _record(self, out: dict[str, Any]) -> list[dict[str, Any]]:
        """Log new automatic calls; an admin's latest word on a race is never overridden by the model."""
        e = self.svc.election
        # Each race's latest call, kept between passes: only rows added since (by this worker, an
        # admin, another process) are read, not the whole history once per chunk of races.
        latest = self._latest_calls
        for rec in race_calls.history(self.svc.store, e.id, after_id=self._calls_seen):
            latest[rec.race_id] = rec
            self._calls_seen = rec.id
        new: list[dict[str, Any]] = []
        rows: list[dict[str, Any]] = []
        for rid, oc in out.items():
            c = oc.call
            if not c.called or e.races[rid].seats > 1:
                continue
            last = latest.get(rid)
            if last is not None and (last.kind == "manual" or (last.action == "call" and last.candidate == c.candidate)):
                continue
            rows.append(
                {
                    "election_id": e.id, "race_id": rid, "action": "call", "candidate": c.candidate, "kind": c.kind or "statistical",
                    "reason": "; ".join(c.reasons) or (c.kind or "model"), "actor": MODEL_ACTOR, "at": now_iso(),
                    "pct_expected_counted": c.pct_expected_counted, "model": json.dumps(c.to_dict()["model"], ensure_ascii=False, default=str),
                }
            )  # fmt: skip
        if rows:
            # One transaction for the pass's calls (race_calls.record commits one row at a time: a first pass
            # can make hundreds of calls). The rows are those record() writes; history() reads them back.
            with self.svc.store.engine.begin() as conn:
                conn.execute(schema.race_calls.insert(), rows)
            ids = {r["race_id"] for r in rows}
            added = race_calls.history(self.svc.store, e.id, after_id=self._calls_seen)
            for rec in added:
                latest[rec.race_id] = rec
                self._calls_seen = rec.id
            new = [r.to_dict() for r in added if r.race_id in ids and r.actor == MODEL_ACTOR][-len(rows) :]
        return new

    def wait_for(self, tally_version: int, timeout: float = 30.0) -> bool:
        """Block until a pass has seen ``tally_version`` (tests, the CLI); False on timeout."""
        self._wake.set()
        end = time.monotonic() + timeout
        with self._done:
            while self.tally_version < tally_version or self.passes == 0:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._done.wait(min(left, 0.2))
                self._wake.set()
        return True

    def wait_for_sweep(self, tally_version: int, timeout: float = 30.0) -> bool:
        """Block until a sweep over the races no sheet reached has run at ``tally_version`` or later (tests); False on timeout."""
        with self._done:
            return self._done.wait_for(lambda: self.swept_version >= tally_version, timeout)

    # --- serialised views -----------------------------------------------------------
    def race_bytes(self, race_id: str) -> Cached:
        snap = self._bytes.get(race_id)
        if snap is None:
            d = self.outcomes.get(race_id)
            if d is None:
                raise NotFound("projection", race_id, election_id=self.svc.election.id)
            snap = self._bytes[race_id] = _cached(self.version, {"election_id": self.svc.election.id, "projection_version": self.version, "projection": d})
        return snap

    def all_bytes(self) -> Cached:
        snap = self._bytes.get("*")
        if snap is None:
            rows = []
            for rid, d in self.outcomes.items():
                lead = d["candidates"][0] if d["candidates"] else None
                rows.append(
                    {
                        "race_id": rid,
                        "mode": d["mode"],
                        "pct_expected_vote_counted": d["pct_expected_vote_counted"],
                        "leader": d["leader"],
                        "leader_share": lead["share"] if lead else None,
                        "leader_share_interval_90": lead["share_interval"]["90"] if lead else None,
                        "leader_p_win": lead["p_win"] if lead else None,
                        "margin_points": d["margin_points"],
                        "margin_points_interval_90": d["margin_points_interval"]["90"],
                        "call": {k: d["call"][k] for k in ("called", "candidate", "kind")},
                        "tally_version": d["tally_version"],
                    }
                )
            rows.sort(key=lambda r: r["race_id"])
            snap = self._bytes["*"] = _cached(self.version, {"election_id": self.svc.election.id, "projection_version": self.version, "tally_version": self.tally_version, "first_pass_done": self.passes > 0, "kind": "projection", "races": rows, "errors": self.errors, "note": self.frames_note})
        return snap


_WORKERS: weakref.WeakKeyDictionary[LiveService, ProjectionWorker] = weakref.WeakKeyDictionary()
_WLOCK = threading.Lock()


def worker_for(svc: LiveService, *, interval: float = INTERVAL) -> ProjectionWorker:
    """The service's worker, started on first use."""
    w = _WORKERS.get(svc)
    if w is None:
        with _WLOCK:
            w = _WORKERS.get(svc)
            if w is None:
                w = _WORKERS[svc] = ProjectionWorker(svc, interval=interval)
                w.start()
    return w


def json_line(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=str)
