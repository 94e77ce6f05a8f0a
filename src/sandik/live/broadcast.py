"""Server-Sent Events: every client gets the latest state, never a queue of old ones.

The writer thread only sets a flag (``notify``). One asyncio task per election
wakes on it, builds one frame for the newest version (at most every
``min_interval`` seconds, 0.25 by default) and wakes the clients. Each client holds a single
"new frame" event, not a queue: a slow client that misses three frames just
sends the newest one when it is ready again, so no backlog can build up.

A frame:

    id: <version>
    event: state
    data: {"version": v, "since": u, "races": [...changed in (u, v]...],
           "updated_at": ..., "accepted_at": <earliest acceptance time in (u, v], epoch s>,
           "boxes_opened": n, "boxes_total": m}

A client whose last version is not ``since`` missed a frame and should refetch
what it shows (or ask ``/changes?since=``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from sandik.live.service import Change, LiveService

PING_SECONDS = 15.0
FRAME_RACES = 50


class Broadcaster:
    def __init__(self, service: LiveService, *, min_interval: float = 0.25, prewarm: Callable[[], None] | None = None) -> None:
        self.service = service
        self.prewarm = prewarm
        self.min_interval = min_interval
        self.frame: bytes = b""
        self.frame_version = -1
        self._clients: set[asyncio.Event] = set()
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None
        self.frames_built = 0
        # Side events (projections and calls, live/projections.py): the latest one of each name, sent once per new seq.
        self.side: dict[str, tuple[int, bytes]] = {}
        self._side_seq = 0

    @property
    def clients(self) -> int:
        return len(self._clients)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._wake = asyncio.Event()
        self.frame = self._build(self.service.version, self.service.version)
        self.frame_version = self.service.version
        self.service.listeners.append(self._on_change)
        self._task = loop.create_task(self._pump())

    async def stop(self) -> None:
        if self._on_change in self.service.listeners:
            self.service.listeners.remove(self._on_change)
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        for ev in list(self._clients):
            ev.set()

    def _on_change(self, _svc: LiveService, _change: Change) -> None:
        # Called on the writer thread: hand over to the loop, nothing else.
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            loop.call_soon_threadsafe(wake.set)

    def _build(self, since: int, version: int) -> bytes:
        races, first = self.service.changes_between(since, version)
        summary = self._summary()
        data: dict[str, Any] = {
            "version": version,
            "since": since,
            # Kept short: a frame goes to every client. A client that needs the full list asks /changes.
            "races": races[:FRAME_RACES],
            "races_truncated": len(races) > FRAME_RACES,
            "updated_at": self.service.updated_at,
            "accepted_at": first if first is not None else self.service.accepted_at,
            "sent_at": time.time(),
            **summary,
        }
        return f"id: {version}\nevent: state\ndata: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}\n\n".encode()

    def _summary(self) -> dict[str, int]:
        svc = self.service
        e = svc.election
        tally = svc.tally
        opened = total = 0
        # Opened boxes over the top races (they cover every voter once); cheap: one row per race.
        # Read without the writer's lock on purpose (the loop must never wait for a write): a
        # frame built during an update may be off by that batch, and the next frame corrects it.
        for race in e.races.values():
            if race.office in e.info.top_offices and len(e.race_boxes[race.id]):
                rt = tally.races[race.id]
                opened += int(rt.agg[rt.row_of[race.area_id]][0])
                total += int(rt.boxes_total[rt.row_of[race.area_id]])
        return {"boxes_opened": opened, "boxes_total": total}

    def publish(self, name: str, data: dict[str, Any]) -> None:
        """Send an ``event: <name>`` to every client (thread-safe); a slow client gets only the latest of each name."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        body = f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False, separators=(',', ':'), default=str)}\n\n".encode()

        def put() -> None:
            self._side_seq += 1
            self.side[name] = (self._side_seq, body)
            for ev in self._clients:
                ev.set()

        loop.call_soon_threadsafe(put)

    async def _pump(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            v = self.service.version
            if v == self.frame_version:
                continue
            since = self.frame_version
            if self.prewarm is not None:
                try:
                    await asyncio.to_thread(self.prewarm)
                except Exception:  # a failing view must not stop the stream; its route reports the error
                    pass
                v = self.service.version
            self.frame = self._build(since, v)
            self.frame_version = v
            self.frames_built += 1
            for ev in self._clients:
                ev.set()
            await asyncio.sleep(self.min_interval)

    async def stream(self, last_version: int | None = None) -> AsyncIterator[bytes]:
        """One client's stream: the current frame at once (unless it already has it), then each newer one."""
        ev = asyncio.Event()
        self._clients.add(ev)
        try:
            yield b"retry: 2000\n\n"
            sent = -1
            side_sent = {k: seq for k, (seq, _b) in self.side.items()}  # a new client asks the API for the current state
            if last_version is None or last_version != self.frame_version:
                sent = self.frame_version
                yield self.frame
            else:
                sent = last_version
            while True:
                try:
                    await asyncio.wait_for(ev.wait(), PING_SECONDS)
                except TimeoutError:
                    yield b": ping\n\n"
                    continue
                ev.clear()
                if self._task is None or self._task.done():
                    return
                if self.frame_version != sent:
                    sent = self.frame_version
                    yield self.frame
                for name, (seq, body) in list(self.side.items()):
                    if side_sent.get(name) != seq:
                        side_sent[name] = seq
                        yield body
        finally:
            self._clients.discard(ev)
