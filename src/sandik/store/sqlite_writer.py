"""A child process that appends batches of sheet rows to an SQLite file.

Why a process: checking a batch is Python work that holds the GIL, and so is
most of an SQLite ``executemany`` (binding each row's values). In one process
the two run one after the other; a writer thread only makes it worse, because
it gives the GIL up at every row's step and then waits for it to come back.
With the write in a child process, bulk ingest checks batch n+1 on one core
while batch n is written on the other (``ingest.pipeline.Ingestor.submit``).

The child is ``sqlite_writer_process.py``, started as a plain script (not
through ``multiprocessing``, which would re-import the parent's main module).
"""

from __future__ import annotations

import pickle
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from sandik.errors import StoreError, VersionConflict
from sandik.store import sqlite_writer_process as child

_SCRIPT = Path(child.__file__)


class SqliteWriter:
    """The parent's handle on a writer child. One batch in flight at a time."""

    def __init__(self, path: str, sheet_columns: Sequence[str], quarantine_columns: Sequence[str]) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-I", str(_SCRIPT), path, ",".join(sheet_columns), ",".join(quarantine_columns)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )  # fmt: skip
        self.in_flight = False

    def send(self, rows: list[tuple], qrows: list[tuple]) -> None:
        if self.in_flight:
            raise StoreError("sqlite writer: a batch is already in flight")
        try:
            child.write_message(self._proc.stdin, pickle.dumps((rows, qrows), protocol=pickle.HIGHEST_PROTOCOL))  # type: ignore[arg-type]
        except OSError as exc:
            raise StoreError(f"sqlite writer process is gone (exit code {self._proc.poll()})") from exc
        self.in_flight = True

    def result(self) -> int | None:
        """Wait for the batch in flight: its highest seq once committed (None if it had no sheet rows)."""
        self.in_flight = False
        msg = child.read_message(self._proc.stdout)  # type: ignore[arg-type]
        if msg is None:
            raise StoreError(f"sqlite writer process ended unexpectedly (exit code {self._proc.poll()})")
        kind, value = pickle.loads(msg)
        if kind == "ok":
            return value
        if kind == "conflict":
            raise VersionConflict(f"conflicting sheet version (another writer?): {value}")
        raise StoreError(f"sqlite writer: {value}")

    def close(self) -> None:
        if self._proc.poll() is None:
            try:
                child.write_message(self._proc.stdin, b"")  # type: ignore[arg-type]
                self._proc.stdin.close()  # type: ignore[union-attr]
            except OSError:
                pass
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        for f in (self._proc.stdin, self._proc.stdout):
            if f is not None and not f.closed:
                try:
                    f.close()
                except OSError:  # a dead child's pipe: nothing left to flush to
                    pass

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
