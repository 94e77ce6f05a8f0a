"""Settings of a server process."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    db: str = "sandik.sqlite"  # SQLite file or postgresql:// URL
    election_id: str | None = None  # the election "current" names (default: the most recent in the store)
    max_body_bytes: int = 5 * 1024 * 1024  # larger write requests are refused with 413
    max_batch_sheets: int = 20_000  # sheets per write request
    sse_min_interval: float = 0.25  # seconds between two SSE frames of one election
    web: bool = True  # serve the website at /
