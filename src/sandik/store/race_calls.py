"""Race calls in the store: append-only log of calls and withdrawals (table ``race_calls``).

The latest row of a race is its current state: a ``call`` row names the
winner, a ``withdraw`` row means no call stands. Automatic calls (lock,
statistical) carry the model state that made them; manual ones the admin's
reason (and the projection the admin saw, when there was one).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from sandik.errors import SandikError
from sandik.store import schema
from sandik.store.repository import Store, now_iso

KINDS = ("manual", "lock", "statistical")


class CallError(SandikError):
    code = "bad_call"


@dataclass(frozen=True)
class CallRecord:
    id: int
    election_id: str
    race_id: str
    action: str
    candidate: str | None
    kind: str
    reason: str
    actor: str
    at: str
    pct_expected_counted: float | None
    model: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "race_id": self.race_id,
            "action": self.action,
            "candidate": self.candidate,
            "kind": self.kind,
            "reason": self.reason,
            "actor": self.actor,
            "at": self.at,
            "pct_expected_vote_counted": self.pct_expected_counted,
            "model": self.model,
        }


def record(
    store: Store,
    election_id: str,
    race_id: str,
    *,
    action: str,
    candidate: str | None,
    kind: str,
    reason: str,
    actor: str,
    pct_expected_counted: float | None = None,
    model: dict[str, Any] | None = None,
) -> CallRecord:
    """Append a call or a withdrawal. The caller checks the race and candidate exist in the election."""
    if action not in ("call", "withdraw"):
        raise CallError(f"action must be 'call' or 'withdraw', not {action!r}", race_id=race_id)
    if kind not in KINDS:
        raise CallError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}", race_id=race_id)
    if action == "call" and not candidate:
        raise CallError("a call names a candidate", race_id=race_id)
    if not reason.strip():
        raise CallError("a reason is required", race_id=race_id)
    row = {
        "election_id": election_id,
        "race_id": race_id,
        "action": action,
        "candidate": candidate if action == "call" else None,
        "kind": kind,
        "reason": reason,
        "actor": actor,
        "at": now_iso(),
        "pct_expected_counted": pct_expected_counted,
        "model": json.dumps(model or {}, ensure_ascii=False, default=str),
    }
    with store.engine.begin() as conn:
        new_id = conn.execute(schema.race_calls.insert().values(**row)).inserted_primary_key[0]
    return CallRecord(id=int(new_id), **{**row, "model": model or {}})  # type: ignore[arg-type]


def history(store: Store, election_id: str, race_id: str | None = None, *, after_id: int = 0) -> list[CallRecord]:
    """Calls and withdrawals in the order they were made (only those after ``after_id``, if given)."""
    t = schema.race_calls
    q = select(t).where(t.c.election_id == election_id)
    if race_id:
        q = q.where(t.c.race_id == race_id)
    if after_id:
        q = q.where(t.c.id > after_id)
    with store.engine.connect() as conn:
        rows = conn.execute(q.order_by(t.c.id)).mappings().all()
    return [
        CallRecord(
            id=r["id"], election_id=r["election_id"], race_id=r["race_id"], action=r["action"], candidate=r["candidate"], kind=r["kind"],
            reason=r["reason"], actor=r["actor"], at=r["at"], pct_expected_counted=r["pct_expected_counted"], model=json.loads(r["model"]),
        )  # fmt: skip
        for r in rows
    ]


def current(store: Store, election_id: str) -> dict[str, CallRecord]:
    """Race id -> its standing call (races whose latest row is a withdrawal are absent)."""
    latest: dict[str, CallRecord] = {}
    for rec in history(store, election_id):
        latest[rec.race_id] = rec
    return {rid: r for rid, r in latest.items() if r.action == "call"}
