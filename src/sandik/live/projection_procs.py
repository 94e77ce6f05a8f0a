"""Projecting the races of a refresh in child processes, so that a refresh uses every core.

Projecting a race is ~1.5 ms of numpy calls on small arrays, under the GIL:
threads would not help, processes do. A ``ProcessProjector`` starts ``processes``
children (spawned, not forked: the server that owns it runs other threads) and
gives each a fixed share of the races, balanced on a cost estimate, with their
frames, once per night. A refresh then sends each child the counts of its races
that are asked for (``RaceState``, the count digest) and the pooled prior's
statistics, which the caller computes once from every race; each child runs
``pool.project_races``, the very step ``pool.project_many`` takes, so the
outcomes are the same, bit for bit, as in one process.

A race stays with its child for the night: the per-race caches (the last
outcome, kept while its inputs are equal) and the shared bootstrap draws live
in the child. An outcome the child returns unchanged is not sent back: the
parent hands back the object it already holds, as ``project_races`` does.

What crosses the pipes is kept small: on the 2024 night a refresh of every
race after a batch pickled 53 MB of counts out (0.2-0.3 s of its wall time,
with the children's digests of every count) and 28 MB of outcomes back. Now:

* a race's count goes whole the first time only; after that, only its units
  whose row changed since the count sent before (``CountDelta``), which the
  child applies to its copy, and whose digest it hashes onto the count's
  digest before (``CountDelta.key_after``);
* an outcome comes back without its bootstrap draws (200 x candidates floats),
  which only a seat projection needs: races named in ``keep_draws`` (councils)
  keep them.

And no one waits more than it must: once a child has sent the swings of the counts it
was given, it fits those counts (``model.fit_counts``: the part of a projection that
needs no prior) while the parent pools the swings, and the parent unpacks each child's
outcomes as they arrive. The races are shared out on what each adds to a refresh on
average (``refresh_cost``), not on what it costs when it is redone.
"""

from __future__ import annotations

import copy
import gc
import hashlib
import io
import math
import multiprocessing
import os
import pickle
import threading
import time
from dataclasses import dataclass
from multiprocessing import connection as mp_connection
from multiprocessing.reduction import ForkingPickler
from typing import Any

import numpy as np

from sandik.core.projection.calls import CallRule
from sandik.core.projection.frame import RaceFrame, RaceState
from sandik.core.projection.model import ModelParams, clear_draw_cache, fit_counts
from sandik.core.projection.election import race_state
from sandik.core.projection.pool import PoolStats, RaceOutcome, pool_stats, project_races, race_swings, state_key
from sandik.errors import SandikError
from sandik.gc_pause import paused_gc


class ProjectorError(SandikError):
    """A child process failed (``died``: it is gone, or its pipe is) while projecting."""

    def __init__(self, message: str, *, died: bool = False) -> None:
        super().__init__(message)
        self.died = died


def race_cost(frame: RaceFrame) -> float:
    """Rough cost of projecting a race: a fixed part plus its bootstrap arrays (groups x candidates).

    Only used to share races out evenly. On the 2024 night (33% counted) a race took
    0.95 ms + 0.019 ms x groups x candidates (least squares over the 1,393 races, one by one).
    """
    return 1.0 + frame.n_groups * frame.n_candidates / 50.0


SHEETS_PER_REFRESH = 2000  # a typical batch between two refreshes, for ``refresh_cost`` only


def refresh_cost(frame: RaceFrame, total_units: int, sheets: int = SHEETS_PER_REFRESH) -> float:
    """``race_cost`` times the chance that a batch of ``sheets`` sheets, spread over all
    ``total_units`` units of the night, reaches the race: what the race adds to a refresh, on
    average. A large race is redone after nearly every batch, a village race seldom; balancing
    on ``race_cost`` alone gave one child of two 0.09-0.20 s more CPU than the other at every
    refresh of the 2024 night (27 Nov 2026, 17:38-17:40 UTC)."""
    reach = 1.0 - math.exp(-sheets * frame.n_units / max(total_units, 1))
    return race_cost(frame) * reach


def split_races(frames: dict[str, RaceFrame], processes: int) -> list[list[str]]:
    """Races per process, balanced on ``refresh_cost``, deterministic (ties by race id).

    Races with the same candidates and groups tend to have the same shape at any time of the
    night, and a child stacks races of one shape (``core.projection.stacked``): such races are
    kept together, the largest sets first to the least loaded process, a set split only when
    it alone would be more than a process's share.
    """
    sets: dict[tuple[int, int], list[str]] = {}
    for rid in sorted(frames):
        fr = frames[rid]
        sets.setdefault((fr.n_candidates, fr.n_groups), []).append(rid)
    units = sum(fr.n_units for fr in frames.values())
    cost_of = {rid: refresh_cost(fr, units) for rid, fr in frames.items()}
    total = sum(cost_of.values())
    share = total / processes
    pieces: list[list[str]] = []
    for rids in sets.values():
        piece: list[str] = []
        cost = 0.0
        for rid in rids:
            piece.append(rid)
            cost += cost_of[rid]
            if cost >= share / 4:  # no piece larger than a quarter of a share: the greedy fill stays even
                pieces.append(piece)
                piece, cost = [], 0.0
        if piece:
            pieces.append(piece)
    loads = [0.0] * processes
    parts: list[list[str]] = [[] for _ in range(processes)]
    for piece in sorted(pieces, key=lambda p: (-sum(cost_of[r] for r in p), p[0])):
        i = min(range(processes), key=lambda j: (loads[j], j))
        parts[i].extend(piece)
        loads[i] += sum(cost_of[r] for r in piece)
    return parts


@dataclass
class CountDelta:
    """The units of a race whose count changed since the last one sent to its child (their new
    rows), and the flags under review (whole: one bool per unit)."""

    units: np.ndarray  # (m,) unit indices
    reported: np.ndarray  # (m,)
    votes: np.ndarray  # (m, K)
    valid: np.ndarray  # (m,)
    flagged: np.ndarray | None

    def key_after(self, key: bytes) -> bytes:
        """The digest of the count after this change, from the digest of the count before: the
        change hashed onto it, instead of every vote of the race again. Equal digests still mean
        equal counts (the same start and the same changes); an equal count reached another way
        gets another digest, which costs a recomputation, never a wrong reuse."""
        if not len(self.units):
            return key
        h = hashlib.blake2b(key, digest_size=16)
        h.update(f"delta{self.votes.dtype.str}{self.valid.dtype.str}{self.votes.shape}".encode())
        for a in (self.units, self.reported, self.votes, self.valid):
            h.update(np.ascontiguousarray(a).tobytes())
        return h.digest()

    def applied_to(self, st: RaceState) -> RaceState:
        """The count after this change: new arrays (the old ones may be held by kept results)."""
        if not len(self.units):
            return st if self.flagged is st.flagged else RaceState(st.reported, st.votes, st.valid, self.flagged)
        rep, votes, valid = st.reported.copy(), st.votes.copy(), st.valid.copy()
        rep[self.units], votes[self.units], valid[self.units] = self.reported, self.votes, self.valid
        return RaceState(rep, votes, valid, self.flagged)


def count_delta(old: RaceState, new: RaceState) -> CountDelta | None:
    """What changed from ``old`` to ``new`` (same race), or None if their shapes differ (send it whole)."""
    if old.votes.shape != new.votes.shape or old.reported.shape != new.reported.shape or old.valid.shape != new.valid.shape:
        return None
    # The changed cells' flat positions, then their rows: a batch changes few rows, and this is
    # a fifth of the time of ``.any(axis=1)`` over every row of a large race (30,000 x 12: 0.12
    # against 0.68 ms; the parent does it for every race a batch reached).
    parts = [np.flatnonzero(old.valid != new.valid), np.flatnonzero(old.reported != new.reported)]
    if new.votes.shape[1]:
        parts.append(np.flatnonzero(old.votes != new.votes) // new.votes.shape[1])
    units = np.unique(np.concatenate(parts))
    return CountDelta(units, new.reported[units], new.votes[units], new.valid[units], new.flagged)


def _copy_state(st: RaceState) -> RaceState:
    return RaceState(st.reported.copy(), st.votes.copy(), st.valid.copy(), st.flagged)


def _without_draws(oc: RaceOutcome) -> RaceOutcome:
    if oc.projection.draws is None:
        return oc
    p = copy.copy(oc.projection)
    p.draws = None
    o = copy.copy(oc)
    o.projection = p
    return o


def _bare(frame: RaceFrame) -> RaceFrame:
    """The frame without what a process derives from it (rebuilt on first use in the child)."""
    f = copy.copy(frame)
    f.forget_all()
    return f


class _Packer(pickle.Pickler):
    """Pickles the outcomes with their numpy arrays laid end to end in one array per dtype.

    An outcome holds some 40 small arrays; unpickling each one costs ~10 us, which
    for a full refresh (1,400 outcomes) was 0.6 s of the parent's time. Here each
    array is a slice of a few large ones, rebuilt as a view (``_view``).
    ``reducer_override`` is only consulted for objects that are not plain Python
    values or containers, so the floats and dicts of an outcome pickle at C speed.
    """

    def __init__(self, f: Any) -> None:
        super().__init__(f, protocol=pickle.HIGHEST_PROTOCOL)
        self.parts: dict[str, list[np.ndarray]] = {}
        self.used: dict[str, int] = {}

    def reducer_override(self, obj: Any) -> Any:
        if type(obj) is not np.ndarray or obj.dtype.kind not in "biuf":
            return NotImplemented
        key = obj.dtype.str
        off = self.used.get(key, 0)
        self.parts.setdefault(key, []).append(obj.ravel())
        self.used[key] = off + obj.size
        return (_view, (key, off, obj.shape))


def _pack(obj: Any) -> tuple[bytes, dict[str, np.ndarray]]:
    f = io.BytesIO()
    p = _Packer(f)
    p.dump(obj)
    return f.getvalue(), {k: np.concatenate(v) for k, v in p.parts.items()}


_unpacking = threading.local()  # the arrays of the reply being unpacked (one per thread)


def _view(key: str, off: int, shape: tuple[int, ...]) -> np.ndarray:
    n = 1
    for d in shape:
        n *= d
    return _unpacking.bufs[key][off : off + n].reshape(shape)


def _unpack(packed: tuple[bytes, dict[str, np.ndarray]]) -> Any:
    _unpacking.bufs = packed[1]
    try:
        with paused_gc():  # tens of thousands of small objects, no cycles: no collector passes over them
            return pickle.loads(packed[0])
    finally:
        _unpacking.bufs = None


def _child(conn: Any) -> None:
    """A child's loop: one request in, one reply out, until "stop" or the pipe closes."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    frames: dict[str, RaceFrame] = {}
    region_of: dict[str, str] = {}
    params, rule = ModelParams(), CallRule()
    states: dict[str, RaceState] = {}  # the latest count of each race sent here, and its digest
    keys: dict[str, bytes] = {}
    kept: dict[str, Any] = {}
    kept_states: tuple[dict[str, RaceState], dict[str, bytes]] = ({}, {})
    keep_draws: frozenset[str] | None = None  # None: every race's draws go back
    ahead_cpu = 0.0  # CPU of the count parts fitted after the last "counts" reply: the next projection's

    def fit_ahead(races: list[str]) -> None:
        # The parent pools every race's swing before it asks for projections; meanwhile this child
        # would wait. The part of each new count's projection that needs no prior is done now and
        # kept on the frame with the count's digest, where the projection finds it.
        nonlocal ahead_cpu
        c0 = time.process_time()
        try:
            with paused_gc():
                fit_counts([(frames[rid], states[rid], params, keys[rid]) for rid in races])
        except Exception:  # noqa: BLE001 - the projection of the race does it again and reports what fails
            pass
        ahead_cpu += time.process_time() - c0

    def project(stats: PoolStats, races: list[str]) -> tuple:
        nonlocal ahead_cpu
        c0 = time.process_time() - ahead_cpu
        ahead_cpu = 0.0
        out, reused = {}, []
        before = {rid: frames[rid]._outcome_cache[-1] if frames[rid]._outcome_cache is not None else None for rid in races}
        try:
            with paused_gc():  # the outcomes make no reference cycles: no collector passes over the child's objects
                got = project_races(frames, states, stats, region_of, params, rule, races, keys=keys)
        except Exception:
            # The parent gets none of this batch: forget what it would not know, so
            # that no race of it is answered "reused" later with an outcome never sent.
            for rid in races:
                if rid in frames:
                    frames[rid]._outcome_cache = None
            raise
        for rid, oc in got.items():
            if oc is before[rid]:
                reused.append(rid)
            else:
                out[rid] = oc if keep_draws is None or rid in keep_draws else _without_draws(oc)
        with paused_gc():
            packed = _pack(out)
        return packed, reused, time.process_time() - c0

    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        op = msg[0]
        try:
            reply: Any = None
            if op == "init":
                frames, region_of, params, rule, keep_draws = msg[1], msg[2], msg[3], msg[4], msg[5]
                gc.collect()
                gc.freeze()  # the frames stay for the night: later collections need not walk them
            elif op == "counts":  # this refresh's counts (whole, or what changed): kept, with their digests; the races' swings back
                c0 = time.process_time()
                for rid, st in msg[1]:
                    if isinstance(st, CountDelta):
                        keys[rid] = st.key_after(keys[rid])
                        states[rid] = st.applied_to(states[rid])
                    else:
                        st.check(frames[rid])
                        states[rid], keys[rid] = st, state_key(st)
                mine = {rid: frames[rid] for rid, _ in msg[1]}
                reply = (race_swings(mine, states, keys=keys), time.process_time() - c0)
            elif op == "project":  # counts and digests sent with the request
                for rid, st, key in msg[2]:
                    states[rid], keys[rid] = st, key
                reply = project(msg[1], [rid for rid, _, _ in msg[2]])
            elif op == "project_counted":  # the counts sent by the last "counts"
                reply = project(msg[1], msg[2])
            elif op == "forget":  # benchmarks: drop the kept outcomes, swings and count parts (and the draws: a cold start)
                for fr in frames.values():
                    fr.forget_counts()
                if msg[1]:
                    clear_draw_cache()
            elif op == "keep":  # benchmarks: remember the counts held, the kept outcomes, swings, count parts and odds ...
                kept = {rid: fr.kept_counts() for rid, fr in frames.items()}
                kept_states = (dict(states), dict(keys))  # a state's arrays are never changed in place here
            elif op == "restore":  # ... and put them back, so that every repeat starts alike
                for rid, fr in frames.items():
                    if rid in kept:
                        fr.restore_counts(kept[rid])
                    else:
                        fr.forget_counts()
                states, keys = dict(kept_states[0]), dict(kept_states[1])
            elif op == "stop":
                conn.send(("ok", None))
                return
            else:
                raise ProjectorError(f"unknown request {op!r}")
            conn.send(("ok", reply))
        except Exception as exc:  # reported to the parent, which raises it; the child goes on
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
            continue
        if op == "counts":
            fit_ahead([rid for rid, _ in msg[1]])


@dataclass
class RunInfo:
    """What the last ``project`` call cost: CPU seconds per child, races sent and reused per child."""

    child_cpu: list[float]
    sent: list[int]
    reused: list[int]


class ProcessProjector:
    def __init__(
        self,
        frames: dict[str, RaceFrame],
        region_of: dict[str, str],
        *,
        processes: int = 2,
        params: ModelParams | None = None,
        rule: CallRule | None = None,
        keep_draws: frozenset[str] | set[str] | None = None,
    ) -> None:
        """``keep_draws``: the races whose outcomes come back with their bootstrap draws (a seat
        projection needs them); None: every race's."""
        if processes < 1:
            raise ValueError("processes must be >= 1")
        ctx = multiprocessing.get_context("spawn")
        self.parts = split_races(frames, processes)
        self.owner = {rid: i for i, part in enumerate(self.parts) for rid in part}
        self._conns: list[Any] = []
        self._procs: list[Any] = []
        self.last: dict[str, RaceOutcome] = {}  # the latest outcome of each race (returned again when a child reuses it)
        self.info = RunInfo([], [], [])
        self.counts_cpu: list[float] = []  # CPU seconds per child of the last ``counts``
        self.phases: dict[str, float] = {}  # wall seconds of the last ``project_tally``, per phase
        self.region_of = dict(region_of)
        # The count each child holds of each race, as this process sent it (our own copies: the
        # caller's arrays may be views of a tally that moves on), so that only changes go next time.
        self._sent: dict[str, RaceState] = {}
        self._tally_seen: dict[str, tuple[Any, int]] = {}  # project_tally: each race's RaceTally and its version at the last call
        self._swings: dict[str, Any] = {}  # each race's swing as its child last computed it, None without votes in (for a count not sent again)
        self.counts_sent = (0, 0)  # races sent whole, and units sent as changes, by the last ``counts``
        self.counts_skipped = 0  # races the last ``counts`` did not send: their count had not changed
        self.counts_bytes = 0  # bytes of the last ``counts`` requests
        self.reply_bytes = 0  # bytes of the outcomes of the last projection (pickle and arrays)
        params, rule = params or ModelParams(), rule or CallRule()
        keep = None if keep_draws is None else frozenset(keep_draws)
        try:
            for part in self.parts:
                parent, child = ctx.Pipe()
                p = ctx.Process(target=_child, args=(child,), name="sandik-projector", daemon=True)
                p.start()
                child.close()
                self._conns.append(parent)
                self._procs.append(p)
            for conn, part in zip(self._conns, self.parts):
                conn.send(("init", {rid: _bare(frames[rid]) for rid in part}, {rid: region_of[rid] for rid in part if rid in region_of}, params, rule, keep))
            self._check(self._gather())
        except BaseException:
            self.close()
            raise

    def _gather(self, conns: list[Any] | None = None, on_reply: Any = None) -> list[tuple[str, Any]]:
        """One reply from each child: ("ok", reply) or ("error", why); every child is read, even after a failure.

        Replies are read as they come, and ``on_reply(j, reply)`` (j: the child's place in ``conns``)
        runs on each at once: the parent unpacks one child's outcomes while the other still works.
        What ``on_reply`` raises is raised once every child has been read."""
        conns = list(conns if conns is not None else self._conns)
        replies: list[Any] = [None] * len(conns)
        waiting = list(conns)
        failed: BaseException | None = None
        while waiting:
            for conn in mp_connection.wait(waiting):
                j = conns.index(conn)
                waiting.remove(conn)
                try:
                    replies[j] = conn.recv()
                except (EOFError, OSError) as exc:
                    replies[j] = ("died", f"child process ended ({type(exc).__name__})")
                if on_reply is not None and failed is None:
                    try:
                        on_reply(j, replies[j])
                    except Exception as exc:  # noqa: BLE001 - raised below, after the other children's replies
                        failed = exc
        if failed is not None:
            raise failed
        return replies

    @staticmethod
    def _check(replies: list[tuple[str, Any]]) -> None:
        for status, reply in replies:
            if status != "ok":
                raise ProjectorError(f"projection child failed: {reply}", died=status == "died")

    def _all(self, *msg: Any) -> None:
        for conn in self._conns:
            conn.send(msg)
        self._check(self._gather())

    def project(self, states: dict[str, RaceState], keys: dict[str, bytes], stats: PoolStats, races: list[str]) -> dict[str, RaceOutcome]:
        """``pool.project_races`` for ``races``, each race in its child, all children at once; outcomes in ``races`` order.

        The counts (and digests) of ``races`` go with the request; ``stats`` is the pooled prior's."""
        batches: list[list[Any]] = [[] for _ in self._conns]
        for rid in races:
            batches[self.owner[rid]].append((rid, states[rid], keys[rid]))
            self._sent.pop(rid, None)  # the child now holds the caller's arrays: the next ``counts`` sends it whole
        return self._project(batches, lambda b: ("project", stats, b), races)

    def counts(self, states: dict[str, RaceState], *, same: frozenset[str] | set[str] = frozenset()) -> dict[str, Any]:
        """Send every race's count to its child, which keeps it (with its digest) and returns the
        race's swing for the pooled prior (``pool.race_swings``): both computed in the children.

        A race whose count did not change since the one sent before is not sent at all: its child
        holds it already, and its swing is the one the child sent back then (a batch of 2,000
        sheets reaches about a third of the 2024 races). ``same``: races whose state (count and
        flags) the caller knows to be the one it passed to the last call (their tally's version
        did not move): not even compared with it."""
        self._tally_seen = {}  # project_tally's versions hold for its own calls only
        batches: list[list[Any]] = [[] for _ in self._conns]
        sent: dict[str, RaceState] = {}
        whole = units = skipped = 0
        for rid, st in states.items():
            old = self._sent.get(rid)
            if old is not None and rid in same and rid in self._swings:
                skipped += 1
                continue
            delta = count_delta(old, st) if old is not None else None
            if delta is not None and not len(delta.units) and delta.flagged is old.flagged and rid in self._swings:
                skipped += 1  # the same count (and the same flags, or none): nothing to send
                continue
            if delta is None:
                batches[self.owner[rid]].append((rid, st))
                sent[rid] = _copy_state(st)
                whole += 1
            else:
                batches[self.owner[rid]].append((rid, delta))
                # our own copy, held by nothing else: changed in place
                old.reported[delta.units], old.votes[delta.units], old.valid[delta.units] = delta.reported, delta.votes, delta.valid
                old.flagged = delta.flagged
                sent[rid] = old
                units += len(delta.units)
        self.counts_sent = (whole, units)
        self.counts_skipped = skipped
        self.counts_bytes = 0
        try:
            for conn, b in zip(self._conns, batches):
                buf = ForkingPickler.dumps(("counts", b))  # what ``send`` does, with the size kept
                self.counts_bytes += len(buf)
                conn.send_bytes(buf)
            replies = self._gather()
            self._check(replies)
        except BaseException:
            self._sent.clear()  # what each child holds is not known: everything goes whole next time
            self._swings.clear()
            raise
        self._sent.update(sent)
        self.counts_cpu = [c for _, (_, c) in replies]
        for rid in sent:  # None: no votes in, no swing (race_swings leaves such a race out)
            self._swings[rid] = None
        for _, (sw, _) in replies:
            self._swings.update(sw)
        return {rid: sw for rid in states if (sw := self._swings.get(rid)) is not None}

    def project_counted(self, stats: PoolStats, races: list[str]) -> dict[str, RaceOutcome]:
        """``project`` with the counts the last ``counts`` sent."""
        batches: list[list[Any]] = [[] for _ in self._conns]
        for rid in races:
            batches[self.owner[rid]].append(rid)
        return self._project(batches, lambda b: ("project_counted", stats, b), races)

    def _project(self, batches: list[list[Any]], request: Any, races: list[str]) -> dict[str, RaceOutcome]:
        busy = [i for i, b in enumerate(batches) if b]
        for i in busy:
            self._conns[i].send(request(batches[i]))
        cpu, sent, reused = [0.0] * len(self._conns), [len(b) for b in batches], [0] * len(self._conns)
        self.reply_bytes = 0

        # The outcomes of the children that succeeded are kept even if another failed: they
        # now hold them as their last ones, and may hand them back as reused next time.
        def take(j: int, rep: tuple[str, Any]) -> None:
            status, reply = rep
            if status != "ok":
                return
            i = busy[j]
            packed, reused_ids, c = reply
            self.reply_bytes += len(packed[0]) + sum(a.nbytes for a in packed[1].values())
            self.last.update(_unpack(packed))
            cpu[i], reused[i] = c, len(reused_ids)
            for rid in reused_ids:
                if rid not in self.last:
                    raise ProjectorError(f"race {rid}: the child reused an outcome this process never received")

        replies = self._gather([self._conns[i] for i in busy], take)
        self.info = RunInfo(cpu, sent, reused)
        self._check(replies)
        return {rid: self.last[rid] for rid in races}

    def project_tally(self, frames: dict[str, RaceFrame], tally: Any, *, races: list[str] | None = None) -> dict[str, RaceOutcome]:
        """``core.projection.election.project_election`` (single-seat races) with this projector: every
        race's count to its child (digests and swings computed there), the pooled prior from all
        swings here, then the races asked for projected in the children."""
        t0 = time.perf_counter()
        rts = {rid: tally.races[rid] for rid in frames}
        # a race whose tally is the same object at the same version as at the last call: the same count
        same = {rid for rid, rt in rts.items() if (seen := self._tally_seen.get(rid)) is not None and seen[0] is rt and seen[1] == rt.version}
        swings = self.counts({rid: race_state(fr, tally) for rid, fr in frames.items()}, same=same)
        self._tally_seen = {rid: (rt, rt.version) for rid, rt in rts.items()}
        t1 = time.perf_counter()
        stats = pool_stats({rid: swings[rid] for rid in frames if rid in swings}, self.region_of)
        todo = [r for r in races if r in frames] if races is not None else list(frames)
        t2 = time.perf_counter()
        out = self.project_counted(stats, todo)
        self.phases = {"counts": t1 - t0, "pool": t2 - t1, "project": time.perf_counter() - t2}
        return out

    def forget(self, *, draws: bool = False) -> None:
        """Drop every kept outcome and swing (and, with ``draws``, the shared draws) in every child: benchmarks of a cold pass."""
        self._all("forget", draws)
        self.last.clear()

    def keep(self) -> None:
        """Benchmarks: remember what the children and this process hold (counts, outcomes, caches) ..."""
        self._all("keep")
        self._kept_last = dict(self.last)
        self._kept_sent = {rid: _copy_state(st) for rid, st in self._sent.items()}
        self._kept_swings = dict(self._swings)
        self._kept_tally_seen = dict(self._tally_seen)

    def restore(self) -> None:
        """... and go back to it, so that every repeat of a refresh starts alike."""
        self._all("restore")
        self.last = dict(self._kept_last)
        self._sent = {rid: _copy_state(st) for rid, st in self._kept_sent.items()}
        self._swings = dict(self._kept_swings)
        self._tally_seen = dict(self._kept_tally_seen)

    def close(self) -> None:
        for conn in self._conns:
            try:
                conn.send(("stop",))
            except (OSError, ValueError):
                pass
        for p in self._procs:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()
                p.join(timeout=5)
        for conn in self._conns:
            conn.close()
        self._conns, self._procs = [], []

    def __enter__(self) -> ProcessProjector:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
