"""Token issue, verification, revocation, and the audit log (SQLite or PostgreSQL)."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from sandik.errors import SandikError
from sandik.store import schema
from sandik.store.repository import Store, now_iso

ROLES = ("clerk", "observer", "admin")
PREFIX = "sdk"

# scrypt cost: ~30-60 ms per check on this hardware, so a stolen table is slow to
# brute-force; verified tokens are remembered in memory (keyed by an HMAC of the
# whole token) so that a busy clerk does not pay it on every request.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


class AuthError(SandikError):
    """A request without the right to do what it asks. ``status`` is the HTTP status to answer."""

    code = "unauthorized"

    def __init__(self, message: str, *, status: int = 401, code: str | None = None, **context: Any) -> None:
        super().__init__(message, **context)
        self.status = status
        if code:
            self.code = code


def _hash(secret: str, salt: str) -> str:
    return hashlib.scrypt(secret.encode(), salt=bytes.fromhex(salt), n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, maxmem=64 * 1024 * 1024, dklen=32).hex()


def area_allows(areas: tuple[str, ...], area_id: str) -> bool:
    """True if ``area_id`` is one of ``areas`` or lies under one (dotted ids: "tr.34.kadikoy" is under "tr.34")."""
    return any(area_id == a or area_id.startswith(a + ".") for a in areas)


@dataclass(frozen=True)
class Token:
    id: str
    name: str
    role: str
    election_id: str | None
    areas: tuple[str, ...]
    organisation: str | None
    created_at: str
    expires_at: str | None
    revoked_at: str | None

    @property
    def source(self) -> str:
        """The sheet source this token writes: 'official' for clerks, the organisation for observers."""
        if self.role == "observer":
            return self.organisation or self.name
        return "official"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role,
            "election_id": self.election_id,
            "areas": list(self.areas),
            "organisation": self.organisation,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "revoked_at": self.revoked_at,
        }


def _token(r: Any) -> Token:
    return Token(
        id=r["id"],
        name=r["name"],
        role=r["role"],
        election_id=r["election_id"],
        areas=tuple(json.loads(r["areas"])),
        organisation=r["organisation"],
        created_at=r["created_at"],
        expires_at=r["expires_at"],
        revoked_at=r["revoked_at"],
    )


@dataclass
class TokenStore:
    store: Store
    _verified: dict[str, str] = field(default_factory=dict)  # HMAC of a full token -> token id
    _key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def create(
        self,
        *,
        name: str,
        role: str,
        areas: list[str] | tuple[str, ...] = (),
        organisation: str | None = None,
        election_id: str | None = None,
        expires_in: timedelta | None = None,
    ) -> tuple[Token, str]:
        """Issue a token; returns it and the secret string (shown once, never stored)."""
        if role not in ROLES:
            raise AuthError(f"unknown role {role!r} (one of {', '.join(ROLES)})", status=422, code="bad_role")
        if role == "clerk" and not areas:
            raise AuthError("a clerk token needs at least one area (--area)", status=422, code="bad_token_request")
        if role == "observer" and not organisation:
            raise AuthError("an observer token needs an organisation (--org)", status=422, code="bad_token_request")
        if organisation == "official":
            raise AuthError("'official' is not an observer organisation", status=422, code="bad_token_request")
        if election_id is not None:
            e = self.store.election(election_id)  # NotFound for an unknown election
            for a in areas:
                e.area(a)  # NotFound for an unknown area
        tid = secrets.token_hex(6)
        secret = secrets.token_urlsafe(24)
        salt = secrets.token_hex(16)
        now = datetime.now(UTC)
        row = {
            "id": tid,
            "name": name,
            "role": role,
            "election_id": election_id,
            "areas": json.dumps(list(areas)),
            "organisation": organisation,
            "salt": salt,
            "secret_hash": _hash(secret, salt),
            "created_at": now.isoformat(timespec="seconds"),
            "expires_at": (now + expires_in).isoformat(timespec="seconds") if expires_in else None,
            "revoked_at": None,
        }
        with self.store.engine.begin() as conn:
            conn.execute(schema.api_tokens.insert().values(**row))
        return _token(row), f"{PREFIX}_{tid}_{secret}"

    def list(self) -> list[Token]:
        with self.store.engine.connect() as conn:
            rows = conn.execute(select(schema.api_tokens).order_by(schema.api_tokens.c.created_at, schema.api_tokens.c.id)).mappings().all()
        return [_token(r) for r in rows]

    def revoke(self, token_id: str) -> Token:
        with self.store.engine.begin() as conn:
            n = conn.execute(update(schema.api_tokens).where(schema.api_tokens.c.id == token_id, schema.api_tokens.c.revoked_at.is_(None)).values(revoked_at=now_iso())).rowcount
            row = conn.execute(select(schema.api_tokens).where(schema.api_tokens.c.id == token_id)).mappings().first()
        if row is None:
            raise AuthError(f"no token with id {token_id!r}", status=404, code="not_found")
        if not n and row["revoked_at"] is None:
            raise AuthError(f"token {token_id!r} could not be revoked", status=409, code="conflict")
        return _token(row)

    def verify(self, presented: str) -> Token:
        """The token a request presents, or AuthError (401) if it is malformed, unknown, wrong, expired or revoked."""
        parts = presented.strip().split("_", 2)
        if len(parts) != 3 or parts[0] != PREFIX or not parts[1] or not parts[2]:
            raise AuthError("malformed API token (expected 'sdk_<id>_<secret>')", code="bad_token")
        tid, secret = parts[1], parts[2]
        # The row is read on every request so that revocation and expiry take effect at once,
        # even when another process (the CLI) revoked the token.
        with self.store.engine.connect() as conn:
            row = conn.execute(select(schema.api_tokens).where(schema.api_tokens.c.id == tid)).mappings().first()
        if row is None:
            raise AuthError("unknown API token", code="bad_token")
        mac = hmac.new(self._key, presented.encode(), "sha256").hexdigest()
        with self._lock:
            known = self._verified.get(mac) == tid
        if not known:
            if not hmac.compare_digest(_hash(secret, row["salt"]), row["secret_hash"]):
                raise AuthError("wrong API token", code="bad_token")
            with self._lock:
                self._verified[mac] = tid
        tok = _token(row)
        if tok.revoked_at:
            raise AuthError(f"API token {tid} was revoked at {tok.revoked_at}", code="token_revoked")
        if tok.expires_at and datetime.fromisoformat(tok.expires_at) <= datetime.now(UTC):
            raise AuthError(f"API token {tid} expired at {tok.expires_at}", code="token_expired")
        return tok

    # --- audit --------------------------------------------------------------------
    def audit(self, *, token: Token | None, actor: str, action: str, election_id: str | None, remote: str, status: int, detail: dict[str, Any]) -> None:
        row = {
            "at": now_iso(),
            "token_id": token.id if token else None,
            "actor": token.name if token else actor,
            "role": token.role if token else None,
            "action": action,
            "election_id": election_id,
            "remote": remote,
            "status": status,
            "detail": json.dumps(detail, ensure_ascii=False, default=str),
        }
        with self.store.engine.begin() as conn:
            conn.execute(schema.audit_log.insert().values(**row))

    def audit_entries(self, *, limit: int = 100, after_id: int = 0) -> list[dict[str, Any]]:
        t = schema.audit_log
        with self.store.engine.connect() as conn:
            rows = conn.execute(select(t).where(t.c.id > after_id).order_by(t.c.id.desc()).limit(limit)).mappings().all()
        return [{**dict(r), "detail": json.loads(r["detail"])} for r in rows]
