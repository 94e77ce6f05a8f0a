"""A cache of the slow read-only views of a live election (forensics, fingerprint, discrepancies, news facts).

These read the store, not the tally, so they must not be built under the writer's
lock the way ``LiveService.cached`` builds its views. Each entry remembers the
stamp it was built for (the service version, plus a generation that writes of
observers bump); a request with a newer stamp rebuilds it, unless the entry is
younger than ``max_age`` seconds: the integer test of the fingerprint takes
seconds, and on election night the version changes many times a second, so it is
rebuilt at most once a minute and says which version it describes.
"""

from __future__ import annotations

import hashlib
import threading
import time
import weakref
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from sandik.live.service import LiveService, dumps


@dataclass(frozen=True)
class Entry:
    stamp: Hashable
    built: float  # time.monotonic()
    value: Any  # the built object (for Python callers)
    body: bytes  # its JSON, or the raw bytes for non-JSON values
    etag: str


class AnalyticsCache:
    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self.generation = 0  # bumped by writes that change these views without changing the tally
        self.builds = 0

    def bump(self) -> None:
        with self._guard:
            self.generation += 1

    def get(self, key: str, stamp: Hashable, build: Callable[[], Any], *, max_age: float = 0.0, raw: bool = False) -> Entry:
        """The entry for ``key``: rebuilt if its stamp is not ``stamp`` and it is older than ``max_age``; one build at a time per key."""
        ent = self._entries.get(key)
        if ent is not None and (ent.stamp == stamp or time.monotonic() - ent.built < max_age):
            return ent
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            ent = self._entries.get(key)
            if ent is not None and (ent.stamp == stamp or time.monotonic() - ent.built < max_age):
                return ent  # another request built it while this one waited
            value = build()
            # raw: a Python object kept as is (no bytes to serve), or bytes served as they are.
            body = (value if isinstance(value, bytes) else repr(stamp).encode()) if raw else dumps(value)
            ent = Entry(stamp, time.monotonic(), value, body, '"a' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"')
            self._entries[key] = ent
            self.builds += 1
            return ent


_CACHES: weakref.WeakKeyDictionary[LiveService, AnalyticsCache] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def cache_for(svc: LiveService) -> AnalyticsCache:
    c = _CACHES.get(svc)
    if c is None:
        with _LOCK:
            c = _CACHES.get(svc)
            if c is None:
                c = _CACHES[svc] = AnalyticsCache()
    return c
