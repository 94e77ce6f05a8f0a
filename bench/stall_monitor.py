"""Runs a sandik command with a thread that records every time it could not run for a while.

    python bench/stall_monitor.py serve --db x.sqlite --port 18080 --replay tr-2024 --speed max --quiet
    (then load it, e.g. wrk; stop it with SIGTERM: the stalls are written to stall_monitor.out)

The thread sleeps 0.5 ms at a time; a wake-up later than --min-ms (15 ms) means it waited that long
for the interpreter lock (or the CPU). Each such stall is kept with the time and the stack of
every other thread at that moment, which shows who held the lock: used to find the cyclic GC's
full walks behind the server's read p99 (docs/benchmarks.md, API section).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

MIN_S = float(os.environ.get("STALL_MIN_MS", "15")) / 1000
OUT = os.environ.get("STALL_OUT", "stall_monitor.out")
stalls: list[tuple[float, float, list[str]]] = []


def thread_stacks(skip: int, depth: int = 7) -> list[str]:
    """The innermost ``depth`` frames of every thread but ``skip``, with the thread's name (also used by loop_watchdog.py)."""
    names = {t.ident: t.name for t in threading.enumerate()}
    stacks = []
    for tid, f in sys._current_frames().items():
        if tid == skip:
            continue
        where = []
        while f is not None and len(where) < depth:
            where.append(f"{f.f_code.co_filename.split('/')[-1]}:{f.f_lineno}:{f.f_code.co_name}")
            f = f.f_back
        stacks.append(f"[{names.get(tid, tid)}] " + " < ".join(where))
    return stacks


def monitor() -> None:
    me = threading.get_ident()
    while True:
        t = time.perf_counter()
        time.sleep(0.0005)
        waited = time.perf_counter() - t
        if waited > MIN_S:
            stalls.append((waited, time.time(), thread_stacks(me)))


def dump(*_: object) -> None:
    with open(OUT, "w") as fh:
        fh.write(f"{len(stalls)} stalls > {MIN_S * 1000:.0f} ms\n")
        for waited, at, stacks in sorted(stalls, key=lambda x: -x[0])[:50]:
            fh.write(f"{waited * 1000:7.1f} ms at {at:.1f}\n")
            for s in stacks:
                fh.write("      " + s + "\n")
    sys.exit(0)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, dump)
    threading.Thread(target=monitor, daemon=True).start()
    from sandik.cli import main

    main(sys.argv[1:])
