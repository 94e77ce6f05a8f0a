"""Runs a sandik command with a watchdog on the HTTP server's event loop.

    python bench/loop_watchdog.py serve --db x.sqlite --port 18080 --follow
    (load it, e.g. wrk while `sandik replay ... --speed max` writes the same file; then
    `kill -USR1 <pid>` writes the stalls to loop_watchdog.out)

A task on the loop beats every millisecond; a watchdog thread looks every 2 ms and, when the
last beat is older than --min-ms (15 ms), keeps the time, the age and the stack of every other
thread, the loop's own included: what the loop was doing (or waiting for) while it did not
answer. Unlike bench/stall_monitor.py, which sees only waits for the interpreter lock, this
sees the loop itself blocked: it found the loop starting worker threads for snapshot rebuilds
and running SQL for every fall-through read (docs/benchmarks.md, API section).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time

from stall_monitor import thread_stacks  # bench/ is on sys.path when this file is run

MIN_S = float(os.environ.get("WATCHDOG_MIN_MS", "15")) / 1000
OUT = os.environ.get("WATCHDOG_OUT", "loop_watchdog.out")
beat = [time.perf_counter()]
stalls: list[tuple[float, float, list[str]]] = []


async def heartbeat() -> None:
    while True:
        beat[0] = time.perf_counter()
        await asyncio.sleep(0.001)


def watchdog() -> None:
    me = threading.get_ident()
    last = 0.0
    while True:
        time.sleep(0.002)
        now = time.perf_counter()
        age = now - beat[0]
        if age > MIN_S and now - last > 0.01:
            last = now
            stalls.append((time.time(), age, thread_stacks(me)))


def write(*_a: object) -> None:
    with open(OUT, "w") as f:
        for t, age, stacks in stalls:
            f.write(f"{t:.3f} loop silent for {age * 1000:.1f} ms\n" + "".join(f"  {s}\n" for s in stacks))


def main() -> None:
    import uvicorn

    started = uvicorn.Server.startup

    async def startup(self, sockets=None):  # type: ignore[no-untyped-def]
        await started(self, sockets)
        asyncio.get_running_loop().create_task(heartbeat())
        threading.Thread(target=watchdog, name="loop-watchdog", daemon=True).start()

    uvicorn.Server.startup = startup  # type: ignore[method-assign]
    signal.signal(signal.SIGUSR1, write)
    from sandik.cli import main as sandik

    sys.argv = ["sandik", *sys.argv[1:]]
    try:
        sandik()
    finally:
        write()


if __name__ == "__main__":
    main()
