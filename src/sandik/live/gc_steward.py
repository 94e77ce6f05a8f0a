"""Keeps Python's cyclic garbage collector from stalling a long-running server.

Why: a server holds a national election (areas, boxes, tallies, version heads,
projections) for the whole night. CPython's automatic full collection walks every
tracked object it has not been told to ignore, with the interpreter lock held: on
this data that is 50-100 ms during which no request is answered (measured: these
pauses were the whole p99 of reads while the projection worker ran; with
collection off, none over 10 ms).

What it does: every ``interval`` seconds it moves the objects that have survived so
far into the permanent generation (``gc.freeze``), so automatic collections only
ever walk what was allocated since, which is small and quick. Short-lived cycles
still die young (generation 0 and 1 collections run as usual). A cycle that becomes
garbage only after it was frozen (a disconnected client's task, say) waits for the
rare full clean-up every ``full_every`` seconds: one pause of that size, instead of
one every few seconds.
"""

from __future__ import annotations

import gc
import threading
import time

INTERVAL = 1.0  # seconds between freezes
FULL_EVERY = 900.0  # seconds between full clean-ups (unfreeze + collect)


class GcSteward:
    _started = False
    _lock = threading.Lock()

    @classmethod
    def start_once(cls, interval: float = INTERVAL, full_every: float = FULL_EVERY) -> None:
        """One steward per process (idempotent)."""
        with cls._lock:
            if cls._started:
                return
            cls._started = True
        gc.freeze()
        threading.Thread(target=cls._run, args=(interval, full_every), name="sandik-gc-steward", daemon=True).start()

    @staticmethod
    def _run(interval: float, full_every: float) -> None:
        last_full = time.monotonic()
        while True:
            time.sleep(interval)
            if time.monotonic() - last_full >= full_every:
                gc.unfreeze()
                gc.collect()
                last_full = time.monotonic()
            gc.freeze()
