"""Schema migrations: numbered steps, applied in order, recorded in ``schema_migrations``.

A new release that changes the schema appends a step here; never edit a step
that has shipped. ``migrate`` is idempotent and safe to run at every start.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, inspect, select

from sandik.errors import SchemaVersionError
from sandik.store import schema


def _v1_initial(conn: Connection) -> None:
    for t in (schema.elections, schema.sheets, schema.quarantine):
        t.create(conn, checkfirst=True)


def _v2_tokens_audit(conn: Connection) -> None:
    # Additive: the write API's tokens and its audit log.
    for t in (schema.api_tokens, schema.audit_log):
        t.create(conn, checkfirst=True)


def _v3_observers(conn: Connection) -> None:
    # Additive (issue 5): observers' entries, discrepancies and their history.
    for t in (schema.observer_entries, schema.discrepancies, schema.discrepancy_events):
        t.create(conn, checkfirst=True)


def _v4_race_calls(conn: Connection) -> None:
    # Additive (issue 4): race calls and withdrawals, automatic or by hand.
    schema.race_calls.create(conn, checkfirst=True)


MIGRATIONS: list[tuple[int, str, Callable[[Connection], None]]] = [
    (1, "initial: elections, sheets, quarantine", _v1_initial),
    (2, "api tokens and audit log", _v2_tokens_audit),
    (3, "observers: entries, discrepancies, discrepancy events", _v3_observers),
    (4, "race calls", _v4_race_calls),
]
LATEST = MIGRATIONS[-1][0]


def current_version(conn: Connection) -> int:
    if not inspect(conn).has_table("schema_migrations"):
        return 0
    rows = conn.execute(select(schema.schema_migrations.c.version)).scalars().all()
    return max(rows, default=0)


def migrate(engine: Engine) -> list[int]:
    """Apply every missing step; return the versions applied."""
    applied = []
    with engine.begin() as conn:
        schema.schema_migrations.create(conn, checkfirst=True)
        have = current_version(conn)
        if have > LATEST:
            raise SchemaVersionError(f"database schema is version {have}, newer than this sandik ({LATEST}); upgrade sandik")
        for version, name, step in MIGRATIONS:
            if version <= have:
                continue
            step(conn)
            conn.execute(schema.schema_migrations.insert().values(version=version, name=name, applied_at=datetime.now(UTC).isoformat()))
            applied.append(version)
    return applied
