"""Pausing Python's cyclic garbage collector around bulk work that makes no reference cycles.

Why: each of the collector's passes walks objects built so far; building hundreds of
thousands of small containers (an import, the simulated night, an ingest batch) sets
it off again and again. Refcounting still frees everything here, since nothing built
forms a cycle. Measured: about half of the 2014 import, and about a third of the
per-sheet check of a national bulk ingest (17.9 -> 11.3 us per sheet,
`bench/bench_ingest_phases.py`).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic collection inside the block; the collector is left as it was found."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()
