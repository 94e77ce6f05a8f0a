"""The child side of ``store.sqlite_writer``: run as a script, standard library only.

    python sqlite_writer_process.py <sqlite file> <sheet columns> <quarantine columns>

Reads length-prefixed pickled ``(sheet rows, quarantine rows)`` from stdin,
writes both in one transaction with the store's settings (WAL,
``synchronous=FULL``: on disk at commit), and answers on stdout, after the
commit, ``("ok", highest seq)``; ``("conflict", message)`` when a version
already exists (another writer got there first: nothing is written); or
``("error", message)``. An empty message or the end of stdin ends it.
It imports nothing of sandik, so that it starts in tens of milliseconds
whatever the parent's import path.
"""

from __future__ import annotations

import pickle
import sqlite3
import struct
import sys
from typing import Any, BinaryIO

HEADER = struct.Struct("<Q")


def read_message(stream: BinaryIO) -> bytes | None:
    head = stream.read(HEADER.size)
    if len(head) < HEADER.size:
        return None
    (n,) = HEADER.unpack(head)
    body = stream.read(n)
    if len(body) < n:
        return None
    return body


def write_message(stream: BinaryIO, body: bytes) -> None:
    stream.write(HEADER.pack(len(body)))
    stream.write(body)
    stream.flush()


def serve(path: str, sheet_columns: list[str], quarantine_columns: list[str], inp: BinaryIO, out: BinaryIO) -> None:
    db = sqlite3.connect(path, isolation_level=None, timeout=30)
    # The store's own settings (store.repository._sqlite_pragmas).
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA cache_size=-65536")
    sheets_sql = f"INSERT INTO sheets ({', '.join(sheet_columns)}) VALUES ({', '.join('?' * len(sheet_columns))})"
    quarantine_sql = f"INSERT INTO quarantine ({', '.join(quarantine_columns)}) VALUES ({', '.join('?' * len(quarantine_columns))})"
    while True:
        msg = read_message(inp)
        if not msg:
            break  # finished, or the parent is gone: nothing it could still acknowledge
        rows, qrows = pickle.loads(msg)
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                top = None
                if rows:
                    db.executemany(sheets_sql, rows)
                    top = db.execute("SELECT max(seq) FROM sheets").fetchone()[0]
                if qrows:
                    db.executemany(quarantine_sql, qrows)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            reply: tuple[str, Any] = ("ok", top)
        except sqlite3.IntegrityError as exc:
            reply = ("conflict", str(exc))
        except Exception as exc:  # the parent raises it as a StoreError
            reply = ("error", f"{type(exc).__name__}: {exc}")
        try:
            write_message(out, pickle.dumps(reply))
        except OSError:
            break
    db.close()


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2].split(","), sys.argv[3].split(","), sys.stdin.buffer, sys.stdout.buffer)
