"""The store: elections, the append-only sheet log, and the quarantine.

``open_store("path/to/file.sqlite")`` or ``open_store("postgresql://...")``.
SQLite runs in WAL mode with ``synchronous=FULL``: a batch is on disk when
``append`` returns, which is when the ingest acknowledges it.
Bulk writes go through the driver's ``executemany`` with plain tuples (the
fastest path SQLAlchemy Core reaches), one transaction per batch.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, delete, event, select, text
from sqlalchemy.exc import IntegrityError

from sandik.core.model import Election
from sandik.errors import NotFound, StoreError, VersionConflict
from sandik.formats import election_file
from sandik.store import schema
from sandik.store.migrations import migrate

DEFAULT_DB = "sandik.sqlite"
LOG_LOCK = 0x5A4D1C  # pg_advisory_xact_lock key: one writer at a time appends to the sheet log (see append_sheets)
NOTIFY_CHANNEL = "sandik_sheets"  # NOTIFY payload "<election id>:<highest seq committed>"
ENV_DB = "SANDIK_DB"
DEFAULT_ID_TTL = 1.0  # seconds a store keeps its answer to default_election_id

SHEET_COLUMNS = (
    "election_id",
    "box_id",
    "race_id",
    "source",
    "version",
    "content_hash",
    *schema.COUNT_COLUMNS,
    *schema.OPTIONAL_COLUMNS,
    "votes",
    "warnings",
    "submitted_by",
    "submitted_at",
    "received_at",
    "reason",
    "image_ref",
    "image_sha256",
)
QUARANTINE_COLUMNS = ("election_id", "received_at", "submitted_by", "origin", "box_id", "race_id", "source", "raw", "errors")


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def resolve_url(db: str | None) -> str:
    """A PostgreSQL URL, an SQLAlchemy URL, or a path to an SQLite file."""
    db = db or os.environ.get(ENV_DB) or DEFAULT_DB
    if db.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + db.split("://", 1)[1]
    if "://" in db:
        return db
    return f"sqlite:///{Path(db).expanduser().resolve()}"


@dataclass(frozen=True)
class StoredSheet:
    """One stored version of a sheet, as read back."""

    seq: int
    election_id: str
    box_id: str
    race_id: str
    source: str
    version: int
    content_hash: str
    counts: dict[str, int | None]
    votes: list[int]
    warnings: list[str]
    submitted_by: str
    submitted_at: str | None
    received_at: str
    reason: str
    image_ref: str
    image_sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "box_id": self.box_id,
            "race_id": self.race_id,
            "source": self.source,
            "version": self.version,
            **self.counts,
            "votes": self.votes,
            "warnings": self.warnings,
            "submitted_by": self.submitted_by,
            "submitted_at": self.submitted_at,
            "received_at": self.received_at,
            "reason": self.reason,
            "image_ref": self.image_ref,
            "image_sha256": self.image_sha256,
        }


class Store:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._elections: dict[str, Election] = {}
        self._default_id: tuple[str, float] | None = None  # (id, when read): default_election_id

    @property
    def sqlite_file(self) -> str | None:
        """The path of an SQLite file store (None for PostgreSQL or an in-memory database)."""
        db = self.engine.url.database
        return db if self.dialect == "sqlite" and db and db != ":memory:" else None

    # --- schema -------------------------------------------------------------------
    def migrate(self) -> list[int]:
        return migrate(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    # --- elections ----------------------------------------------------------------
    def save_election(self, election: Election, *, replace: bool = False) -> None:
        blob = election_file.dumps(election)
        row = {
            "id": election.id,
            "name": election.info.name,
            "date": election.info.date.isoformat(),
            "previous_id": election.info.previous_id,
            "definition": blob,
            "loaded_at": now_iso(),
        }
        with self.engine.begin() as conn:
            exists = conn.execute(select(schema.elections.c.id).where(schema.elections.c.id == election.id)).first()
            if exists and not replace:
                return
            if exists:
                has_sheets = conn.execute(select(schema.sheets.c.seq).where(schema.sheets.c.election_id == election.id).limit(1)).first()
                if has_sheets:
                    raise StoreError(f"election {election.id} already has sheets; its definition cannot be replaced")
                conn.execute(delete(schema.elections).where(schema.elections.c.id == election.id))
            conn.execute(schema.elections.insert().values(**row))
        self._elections[election.id] = election
        self._default_id = None

    def election(self, election_id: str) -> Election:
        e = self._elections.get(election_id)
        if e is not None:
            return e
        with self.engine.connect() as conn:
            blob = conn.execute(select(schema.elections.c.definition).where(schema.elections.c.id == election_id)).scalar()
        if blob is None:
            raise NotFound("election", election_id)
        e = self._elections[election_id] = election_file.loads(bytes(blob), source=f"store:{election_id}")
        return e

    def election_ids(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.execute(select(schema.elections.c.id).order_by(schema.elections.c.date, schema.elections.c.id)).scalars())

    def default_election_id(self) -> str:
        """The most recent election in the store.

        Every request for ``/api/elections/current/...`` asks this, on the server's event
        loop: it is kept for DEFAULT_ID_TTL seconds (another process may load a newer
        election meanwhile) and forgotten when this store saves an election.
        """
        now = time.monotonic()
        if self._default_id is not None and now - self._default_id[1] < DEFAULT_ID_TTL:
            return self._default_id[0]
        ids = self.election_ids()
        if not ids:
            raise NotFound("election", "(any)")
        self._default_id = (ids[-1], now)
        return ids[-1]

    # --- sheets -------------------------------------------------------------------
    def append_sheets(self, rows: Sequence[tuple[Any, ...]]) -> int | None:
        """Insert sheet versions (tuples in SHEET_COLUMNS order) in one durable transaction.

        Returns the highest ``seq`` the batch received (None for an empty batch).
        Raises StoreError if a (box, race, source, version) already exists: another
        writer got there first, and the caller must reload heads and retry.

        On PostgreSQL the transaction first takes an advisory lock (``LOG_LOCK``) held
        until it commits. Why: ``seq`` comes from a sequence, and without the lock two
        writers can take seq 10 and 11 and commit 11 first; a follower that has just read
        "everything after 9" would see 11, move its mark to 11 and never read 10. With
        the lock, seqs are handed out in commit order, so whenever a follower sees a seq
        every lower seq is already visible: "everything after my mark" never misses a row.
        (SQLite needs no lock: a write transaction holds the database's one write lock
        from its first INSERT to its commit.) The NOTIFY goes out in the same transaction,
        so PostgreSQL delivers it only once the rows are committed (``live/follow.py``).
        """
        if not rows:
            return None
        cols = ", ".join(SHEET_COLUMNS)
        try:
            with self.engine.begin() as conn:
                if self.dialect == "sqlite":
                    marks = ", ".join("?" * len(SHEET_COLUMNS))
                    conn.exec_driver_sql(f"INSERT INTO sheets ({cols}) VALUES ({marks})", list(rows))
                    top = conn.exec_driver_sql("SELECT max(seq) FROM sheets").scalar()
                else:
                    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({LOG_LOCK})")
                    with conn.connection.driver_connection.cursor() as cur:  # type: ignore[union-attr]
                        with cur.copy(f"COPY sheets ({cols}) FROM STDIN") as cp:
                            for r in rows:
                                cp.write_row(r)
                    # Under the lock the newest row of the table is this batch's last one.
                    top = conn.exec_driver_sql("SELECT max(seq) FROM sheets").scalar()
                    conn.exec_driver_sql("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, f"{rows[0][0]}:{top}"))
        except IntegrityError as exc:
            raise VersionConflict(f"conflicting sheet version (another writer?): {exc.orig}") from exc
        except Exception as exc:  # psycopg raises its own UniqueViolation through COPY
            if type(exc).__name__ == "UniqueViolation":
                raise VersionConflict(f"conflicting sheet version (another writer?): {exc}") from exc
            raise
        return int(top)

    def log_since(self, election_id: str, after_seq: int, upto: int | None = None) -> list[tuple]:
        """Every sheet version (all sources) stored after ``after_seq`` (up to ``upto``), in log order.

        Rows are (seq, box, race, source, version, content_hash, total_voters, counts text);
        the counts text is as in ``official_log``. What a follower needs to bring both its
        heads and its tally up to date (``live/follow.py``).
        """
        sql = (
            "SELECT seq, box_id, race_id, source, version, content_hash, total_voters, "
            "total_voters || ',' || ballots_used || ',' || valid || ',' || invalid || ',' "
            "|| voted_by_law || ',' || substr(votes, 2, length(votes) - 2) "
            "FROM sheets WHERE election_id = {p} AND seq > {p} AND seq <= {p} ORDER BY seq"
        )
        with self.engine.connect() as conn:
            raw = conn.connection.driver_connection
            cur = raw.cursor()  # type: ignore[union-attr]
            try:
                cur.execute(sql.format(p="?" if self.dialect == "sqlite" else "%s"), (election_id, after_seq, upto if upto is not None else 2**62))
                return list(cur.fetchall())
            finally:
                cur.close()

    def append_quarantine(self, rows: Sequence[tuple[Any, ...]]) -> None:
        if not rows:
            return
        with self.engine.begin() as conn:
            conn.execute(schema.quarantine.insert(), [dict(zip(QUARANTINE_COLUMNS, r)) for r in rows])

    def heads(self, election_id: str) -> dict[tuple[str, str, str], tuple[int, str, int]]:
        """(box, race, source) -> (latest version, its content hash, its total voters)."""
        out: dict[tuple[str, str, str], tuple[int, str, int]] = {}
        q = text("SELECT box_id, race_id, source, version, content_hash, total_voters FROM sheets WHERE election_id = :e ORDER BY seq")
        with self.engine.connect() as conn:
            for b, r, s, v, h, t in conn.execute(q, {"e": election_id}):
                out[(b, r, s)] = (v, h, t)
        return out

    def official_log(self, election_id: str, *, after_seq: int = 0, chunk: int = 50_000) -> Iterator[list[tuple]]:
        """(seq, box, race, counts JSON) of official sheets in log order, in chunks, through the driver's cursor."""
        # The counts travel as one comma-separated text per row, "total_voters,ballots_used,
        # valid,invalid,voted_by_law,votes...", so a race's rows parse as one flat JSON list.
        sql = (
            "SELECT seq, box_id, race_id, total_voters || ',' || ballots_used || ',' || valid || ',' || invalid || ',' "
            "|| voted_by_law || ',' || substr(votes, 2, length(votes) - 2) "
            "FROM sheets WHERE election_id = {p} AND source = 'official' AND seq > {p} ORDER BY seq"
        )
        with self.engine.connect() as conn:
            raw = conn.connection.driver_connection
            cur = raw.cursor()  # type: ignore[union-attr]
            try:
                cur.execute(sql.format(p="?" if self.dialect == "sqlite" else "%s"), (election_id, after_seq))
                while rows := cur.fetchmany(chunk):
                    yield rows
            finally:
                cur.close()

    def official_counts(self, election_id: str) -> list[tuple]:
        """Every official sheet version, one row per race, aggregated by the database.

        Rows are (race, box ids joined by chr(31), versions, total voters, ballots used,
        valid, invalid, voters by law, votes lists, highest seq), each list a comma-separated
        text in one common order within the race (votes as "[a,b],[c,d]"). Superseded
        versions are included: the caller keeps each box's highest version. Why this
        shape: rebuilding a national night reads ~340,000 rows, and letting the database
        join them per race keeps the per-row work in C (about 3x faster than a cursor).
        One statement, so one snapshot: the highest seq is that of the rows returned.
        """
        if self.dialect == "sqlite":
            agg, sep, num = "group_concat({})", "char(31)", "{}"
            where = "+election_id = ?"  # '+': a plain table scan beats visiting rows through the unique index
        else:
            agg, sep, num = "string_agg({}, ',')", "chr(31)", "{}::text"
            where = "election_id = %s"
        cols = [agg.format(num.format(c)) for c in ("version", "total_voters", "ballots_used", "valid", "invalid", "voted_by_law")]
        box_agg = f"group_concat(box_id, {sep})" if self.dialect == "sqlite" else f"string_agg(box_id, {sep})"
        sql = f"SELECT race_id, {box_agg}, {', '.join(cols)}, {agg.format('votes')}, max(seq) FROM sheets WHERE {where} AND source = 'official' GROUP BY race_id"
        with self.engine.connect() as conn:
            cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            try:
                cur.execute(sql, (election_id,))
                return list(cur.fetchall())
            finally:
                cur.close()

    def max_seq(self, election_id: str) -> int:
        with self.engine.connect() as conn:
            v = conn.execute(text("SELECT max(seq) FROM sheets WHERE election_id = :e"), {"e": election_id}).scalar()
        return int(v or 0)

    def history(self, election_id: str, box_id: str, race_id: str | None = None, source: str | None = None) -> list[StoredSheet]:
        """Every stored version for a box (optionally one race/source), oldest first."""
        t = schema.sheets
        q = select(t).where(t.c.election_id == election_id, t.c.box_id == box_id)
        if race_id:
            q = q.where(t.c.race_id == race_id)
        if source:
            q = q.where(t.c.source == source)
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(t.c.seq)).mappings().all()
        return [_stored(r) for r in rows]

    def count_sheets(self, election_id: str) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM sheets WHERE election_id = :e"), {"e": election_id}).scalar() or 0)

    def quarantined(self, election_id: str, limit: int = 1000) -> list[dict[str, Any]]:
        t = schema.quarantine
        with self.engine.connect() as conn:
            rows = conn.execute(select(t).where(t.c.election_id == election_id).order_by(t.c.id).limit(limit)).mappings().all()
        return [{**dict(r), "errors": json.loads(r["errors"])} for r in rows]

    def count_quarantined(self, election_id: str) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM quarantine WHERE election_id = :e"), {"e": election_id}).scalar() or 0)


def _stored(r: Any) -> StoredSheet:
    counts = {c: r[c] for c in (*schema.COUNT_COLUMNS, *schema.OPTIONAL_COLUMNS)}
    return StoredSheet(
        seq=r["seq"],
        election_id=r["election_id"],
        box_id=r["box_id"],
        race_id=r["race_id"],
        source=r["source"],
        version=r["version"],
        content_hash=r["content_hash"],
        counts=counts,
        votes=json.loads(r["votes"]),
        warnings=json.loads(r["warnings"]),
        submitted_by=r["submitted_by"],
        submitted_at=r["submitted_at"],
        received_at=r["received_at"],
        reason=r["reason"],
        image_ref=r["image_ref"],
        image_sha256=r["image_sha256"],
    )


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")  # durable at commit: we acknowledge only after it
    cur.execute("PRAGMA busy_timeout=30000")
    # 64 MB of page cache (default 2 MB): the unique (box, race, source, version) index of a
    # national election stays in memory, which makes bulk inserts about a third cheaper.
    cur.execute("PRAGMA cache_size=-65536")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def open_store(db: str | None = None, *, migrate_now: bool = True) -> Store:
    url = resolve_url(db)
    if url.startswith("sqlite"):
        engine = create_engine(url)
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(url, pool_pre_ping=True)
    store = Store(engine)
    if migrate_now:
        store.migrate()
    return store
