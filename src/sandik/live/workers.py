"""``sandik serve --workers N``: N server processes on one PostgreSQL, behind one listening socket.

The parent binds the address once and hands the socket to N child processes
(``sandik serve --fd N --follow``); the kernel spreads incoming connections over
them. Each child is a full server: it writes through its own single writer thread
and follows the log for what the others write (``live/follow.py``). The parent
only supervises: a child that dies (a crash, kill -9) is started again, and it
rebuilds its tally from the log, so nothing acknowledged is lost.

SQLite is refused for N > 1: SQLite has no NOTIFY, and its one write lock makes
several writer processes slower than one, not faster; run one process there.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

from sandik.errors import SandikError

RESTART_WAIT = 0.5  # seconds before a dead worker is started again


def check_workers(n: int, dialect: str) -> None:
    if n < 1:
        raise SandikError(f"--workers must be at least 1 (got {n})")
    if n > 1 and dialect != "postgresql":
        raise SandikError(
            f"--workers {n} needs PostgreSQL: several processes on one SQLite file would contend for its single write lock "
            "and SQLite cannot wake them up (no LISTEN/NOTIFY). Use --db postgresql://... or run one process.",
            workers=n,
            backend=dialect,
        )


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def supervise(n: int, host: str, port: int, db: str, election_id: str | None, echo=print) -> int:  # type: ignore[no-untyped-def]
    """Run N workers until SIGINT/SIGTERM; restart any that dies. Returns how many restarts happened."""
    sock = bind(host, port)
    fd = sock.fileno()
    # The database URL (with its password, if any) goes by the environment, not the command line that `ps` shows.
    base = [sys.executable, "-m", "sandik.cli", "serve", "--fd", str(fd), "--follow"]
    env = {**os.environ, "SANDIK_DB": db}
    if election_id:
        base += ["--election", election_id]
    procs: dict[int, subprocess.Popen] = {}
    stopping = False
    restarts = 0

    def start(i: int) -> None:
        procs[i] = subprocess.Popen([*base, "--worker-id", str(i)], pass_fds=(fd,), env=env)

    def stop(_sig: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for i in range(n):
        start(i)
    echo(f"sandik: {n} workers (pids {', '.join(str(p.pid) for p in procs.values())}) at http://{host}:{port}/")
    try:
        while not stopping:
            time.sleep(0.2)
            for i, p in list(procs.items()):
                if p.poll() is not None and not stopping:
                    echo(f"sandik: worker {i} (pid {p.pid}) exited with {p.returncode}; starting it again")
                    time.sleep(RESTART_WAIT)
                    start(i)
                    restarts += 1
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for p in procs.values():
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
        sock.close()
    return restarts
