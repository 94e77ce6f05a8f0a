"""The one schema, for SQLite and PostgreSQL (SQLAlchemy Core).

``sheets`` is append-only: a correction is a new row with the next version for
the same (election, box, race, source); nothing is ever updated or deleted.
``seq`` is the global order of acceptance (the log other processes follow); reads
by election scan it in that order, so no second index slows the bulk insert.
``quarantine`` keeps every rejected input with its reasons, including rows
that could not even be parsed.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
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

# --- API tokens and the audit log (migration 2) ------------------------------------
# A token is shown once at creation; only its scrypt hash (with a per-token salt)
# is stored. ``areas`` is a JSON list of area ids a clerk may write under.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("role", String(20), nullable=False),  # "clerk", "observer", "admin"
    Column("election_id", String(100)),  # None: any election
    Column("areas", Text, nullable=False),  # JSON list of area ids (clerks)
    Column("organisation", String(100)),  # observers: the source their sheets carry
    Column("salt", String(64), nullable=False),
    Column("secret_hash", String(128), nullable=False),
    Column("created_at", String(40), nullable=False),
    Column("expires_at", String(40)),
    Column("revoked_at", String(40)),
)

# Every write through the API: who, when, what, from where, and how it ended.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", SeqType, primary_key=True, autoincrement=True),
    Column("at", String(40), nullable=False),
    Column("token_id", String(32)),
    Column("actor", String(200), nullable=False),
    Column("role", String(20)),
    Column("action", String(100), nullable=False),
    Column("election_id", String(100)),
    Column("remote", String(200), nullable=False),  # client address (and forwarded-for, if any)
    Column("status", Integer, nullable=False),  # the HTTP status returned
    Column("detail", Text, nullable=False),  # JSON: what was written or why it was refused
)
Index("ix_audit_log_at", audit_log.c.at)

# --- observers (issue 5): volunteers' entries and the discrepancy workflow ----------------
# An observer organisation's entries are kept as typed, one row per volunteer entry;
# a copy confirmed by k identical entries then goes through the ingest as a sheet
# with source=<org> (never counted). Discrepancies between official and confirmed
# copies carry a status; every change of status is an event (history).
observer_entries = Table(
    "observer_entries",
    metadata,
    Column("id", SeqType, primary_key=True, autoincrement=True),
    Column("election_id", String(100), nullable=False),
    Column("org", String(100), nullable=False),
    Column("box_id", String(200), nullable=False),
    Column("race_id", String(200), nullable=False),
    Column("entrant", String(200), nullable=False),
    Column("content_hash", String(32), nullable=False),
    Column("sheet", Text, nullable=False),  # JSON of the sheet as typed
    Column("image_sha256", String(64), nullable=False),
    Column("received_at", String(40), nullable=False),
)
Index("ix_observer_entries_key", observer_entries.c.election_id, observer_entries.c.org, observer_entries.c.box_id, observer_entries.c.race_id)

discrepancies = Table(
    "discrepancies",
    metadata,
    Column("id", SeqType, primary_key=True, autoincrement=True),
    Column("election_id", String(100), nullable=False),
    Column("box_id", String(200), nullable=False),
    Column("race_id", String(200), nullable=False),
    Column("org", String(100), nullable=False),
    Column("status", String(20), nullable=False),  # open, under_review, resolved, dismissed
    Column("kind", String(40), nullable=False),
    Column("detail", Text, nullable=False),  # JSON: field diffs, delta votes
    Column("effect_on_margin", BigInteger, nullable=False),
    Column("official_version", Integer),
    Column("observer_version", Integer),
    Column("opened_at", String(40), nullable=False),
    Column("updated_at", String(40), nullable=False),
    UniqueConstraint("election_id", "box_id", "race_id", "org", name="uq_discrepancies_key"),
)

discrepancy_events = Table(
    "discrepancy_events",
    metadata,
    Column("id", SeqType, primary_key=True, autoincrement=True),
    Column("discrepancy_id", BigInteger, nullable=False),
    Column("at", String(40), nullable=False),
    Column("by", String(200), nullable=False),
    Column("from_status", String(20)),
    Column("to_status", String(20), nullable=False),
    Column("reason", Text, nullable=False),
    Column("corrected_version", Integer),  # the official sheet version that settled it, if any
    Column("snapshot", Text, nullable=False),  # JSON of kind/diffs/effect at the time
)
Index("ix_discrepancy_events_d", discrepancy_events.c.discrepancy_id, discrepancy_events.c.id)

# --- race calls (issue 4): every call and withdrawal, automatic or by hand ---------------
# Append-only: a withdrawal is a new row. ``model`` is the JSON of the model state that
# made an automatic call (or the projection an admin saw); the latest row per race is
# the race's current call.
race_calls = Table(
    "race_calls",
    metadata,
    Column("id", SeqType, primary_key=True, autoincrement=True),
    Column("election_id", String(100), nullable=False),
    Column("race_id", String(200), nullable=False),
    Column("action", String(20), nullable=False),  # "call" or "withdraw"
    Column("candidate", String(200)),  # the called winner (None on a withdrawal)
    Column("kind", String(20), nullable=False),  # "manual", "lock", "statistical"
    Column("reason", Text, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("at", String(40), nullable=False),
    Column("pct_expected_counted", Float),
    Column("model", Text, nullable=False),  # JSON
)
Index("ix_race_calls_race", race_calls.c.election_id, race_calls.c.race_id, race_calls.c.id)
