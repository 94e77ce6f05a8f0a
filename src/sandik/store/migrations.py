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


MIGRATIONS: list[tuple[int, str, Callable[[Connection], None]]] = [
    (1, "initial: elections, sheets, quarantine", _v1_initial),
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
