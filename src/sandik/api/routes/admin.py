"""Admin: tokens and the audit log."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from sandik.api.deps import app_state, read_body, remote_of, require_token
from sandik.api.errors import ApiError
from sandik.auth.tokens import ROLES

router = APIRouter(tags=["admin"])


class TokenRequest(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    role: str = Field(description=f"one of {', '.join(ROLES)}")
    areas: list[str] = Field(default_factory=list, description="clerks: area ids they may write under")
    organisation: str | None = Field(default=None, description="observers: their organisation (the source of their sheets)")
    election_id: str | None = None
    expires_in_hours: float | None = Field(default=None, gt=0)


@router.post("/api/tokens", summary="Create a token (admin); the secret is in the answer once and never again", status_code=201)
async def create_token(request: Request) -> dict[str, Any]:
    st = app_state(request)
    admin = await require_token(request, "admin")
    if (request.headers.get("content-type") or "").split(";")[0].strip() != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the token request as application/json")
    raw = await read_body(request, 64 * 1024)
    try:
        req = TokenRequest.model_validate_json(raw)
    except ValueError as exc:
        raise ApiError(422, "invalid_request", f"invalid token request: {exc}".splitlines()[0]) from None
    tok, secret = await asyncio.to_thread(
        st.tokens.create,
        name=req.name,
        role=req.role,
        areas=req.areas,
        organisation=req.organisation,
        election_id=req.election_id,
        expires_in=timedelta(hours=req.expires_in_hours) if req.expires_in_hours else None,
    )
    await asyncio.to_thread(st.tokens.audit, token=admin, actor=admin.name, action="tokens.create", election_id=req.election_id, remote=remote_of(request), status=201, detail=tok.to_dict())
    return {"token": tok.to_dict(), "secret": secret}


@router.get("/api/tokens", summary="List tokens (admin); secrets are never shown")
async def list_tokens(request: Request) -> dict[str, Any]:
    await require_token(request, "admin")
    toks = await asyncio.to_thread(app_state(request).tokens.list)
    return {"tokens": [t.to_dict() for t in toks]}


@router.delete("/api/tokens/{token_id}", summary="Revoke a token (admin)")
async def revoke_token(request: Request, token_id: str) -> dict[str, Any]:
    st = app_state(request)
    admin = await require_token(request, "admin")
    tok = await asyncio.to_thread(st.tokens.revoke, token_id)
    await asyncio.to_thread(st.tokens.audit, token=admin, actor=admin.name, action="tokens.revoke", election_id=None, remote=remote_of(request), status=200, detail={"token_id": token_id})
    return {"token": tok.to_dict()}


@router.get("/api/audit", summary="The audit log of writes, newest first (admin)")
async def audit(request: Request, limit: int = Query(100, ge=1, le=5000)) -> dict[str, Any]:
    await require_token(request, "admin")
    rows = await asyncio.to_thread(app_state(request).tokens.audit_entries, limit=limit)
    return {"entries": json.loads(json.dumps(rows, default=str))}
