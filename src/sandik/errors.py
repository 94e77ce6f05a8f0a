"""Every error sandik raises on purpose.

    SandikError
    ├── ModelError            an election definition is inconsistent
    ├── NotFound              an id that the election does not know
    ├── FormatError           a file or row that cannot be read (file, line, field)
    ├── SheetRejected         a tally sheet broke a hard rule (carries the issues)
    └── StoreError            the database is not in the state we need
        ├── SchemaVersionError
        └── VersionConflict   another writer stored that sheet version first (reload and retry)

Each carries its context as attributes so that callers (CLI, API) can show it
in their own shape; ``str()`` is a sentence a clerk can read.
"""

from __future__ import annotations

from typing import Any


class SandikError(Exception):
    """Base of all deliberate sandik errors."""

    code = "sandik_error"

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.context = context

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **{k: v for k, v in self.context.items() if v is not None}}


class ModelError(SandikError):
    code = "invalid_election"


class NotFound(SandikError):
    code = "not_found"

    def __init__(self, kind: str, ident: str, *, election_id: str | None = None) -> None:
        where = f" in election {election_id}" if election_id else ""
        super().__init__(f"unknown {kind} {ident!r}{where}", kind=kind, id=ident, election_id=election_id)
        self.kind = kind
        self.ident = ident


class FormatError(SandikError):
    code = "bad_format"

    def __init__(self, message: str, *, source: str | None = None, line: int | None = None, field: str | None = None) -> None:
        where = ":".join(str(x) for x in (source, line) if x is not None)
        prefix = f"{where}: " if where else ""
        field_part = f"field {field!r}: " if field else ""
        super().__init__(f"{prefix}{field_part}{message}", source=source, line=line, field=field)
        self.source = source
        self.line = line
        self.field = field


class SheetRejected(SandikError):
    code = "sheet_rejected"

    def __init__(self, issues: list[Any], *, box_id: str, race_id: str) -> None:
        text = "; ".join(str(i) for i in issues)
        super().__init__(f"box {box_id}, race {race_id}: {text}", box_id=box_id, race_id=race_id)
        self.issues = issues


class StoreError(SandikError):
    code = "store_error"


class VersionConflict(StoreError):
    """A (box, race, source, version) that another writer stored first: the caller reloads its heads and retries."""

    code = "version_conflict"


class SchemaVersionError(StoreError):
    code = "schema_version"
