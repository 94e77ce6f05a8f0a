"""The one schema, for SQLite and PostgreSQL (SQLAlchemy Core).

``sheets`` is append-only: a correction is a new row with the next version for
the same (election, box, race, source); nothing is ever updated or deleted.
``seq`` is the global order of acceptance (the log other processes follow).
``quarantine`` keeps every rejected input with its reasons, including rows
that could not even be parsed.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# BigInteger maps to INTEGER on SQLite so that it becomes the rowid alias.
SeqType = BigInteger().with_variant(Integer(), "sqlite")

schema_migrations = Table(
    "schema_migrations",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("name", String(200), nullable=False),
    Column("applied_at", String(40), nullable=False),
)

elections = Table(
    "elections",
    metadata,
    Column("id", String(100), primary_key=True),
    Column("name", Text, nullable=False),
    Column("date", String(10), nullable=False),
    Column("previous_id", String(100)),
    Column("definition", LargeBinary, nullable=False),  # the election file (formats.election_file), gzip JSON
    Column("loaded_at", String(40), nullable=False),
)

COUNT_COLUMNS = (
    "registered",
    "voted_listed",
    "voted_by_law",
    "total_voters",
    "ballots_used",
    "valid_unchallenged",
    "valid_challenged",
    "valid",
    "invalid",
)
OPTIONAL_COLUMNS = (
    "envelopes_out",
    "envelopes_destroyed",
    "envelopes_received",
    "envelopes_unused",
    "ballots_received",
    "ballots_unused",
)

sheets = Table(
    "sheets",
    metadata,
    Column("seq", SeqType, primary_key=True, autoincrement=True),
    Column("election_id", String(100), nullable=False),
    Column("box_id", String(200), nullable=False),
    Column("race_id", String(200), nullable=False),
    Column("source", String(100), nullable=False),
    Column("version", Integer, nullable=False),
    Column("content_hash", String(32), nullable=False),
    *[Column(c, BigInteger, nullable=False) for c in COUNT_COLUMNS],
    *[Column(c, BigInteger) for c in OPTIONAL_COLUMNS],
    Column("votes", Text, nullable=False),  # JSON array in the race's candidate order
    Column("warnings", Text, nullable=False),  # JSON list of rule codes
    Column("submitted_by", String(200), nullable=False),
    Column("submitted_at", String(40)),
    Column("received_at", String(40), nullable=False),
    Column("reason", Text, nullable=False),
    Column("image_ref", Text, nullable=False),
    Column("image_sha256", String(64), nullable=False),
    UniqueConstraint("election_id", "box_id", "race_id", "source", "version", name="uq_sheets_version"),
)
Index("ix_sheets_election_seq", sheets.c.election_id, sheets.c.seq)

quarantine = Table(
    "quarantine",
    metadata,
    Column("id", SeqType, primary_key=True, autoincrement=True),
    Column("election_id", String(100), nullable=False),
    Column("received_at", String(40), nullable=False),
    Column("submitted_by", String(200), nullable=False),
    Column("origin", Text, nullable=False),  # "file.csv:17", "api", ...
    Column("box_id", String(200)),
    Column("race_id", String(200)),
    Column("source", String(100)),
    Column("raw", Text, nullable=False),  # the input as received
    Column("errors", Text, nullable=False),  # JSON list of issues
)
Index("ix_quarantine_election", quarantine.c.election_id, quarantine.c.id)
