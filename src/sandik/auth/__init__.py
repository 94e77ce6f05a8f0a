"""API tokens with roles, and the audit log of writes.

Roles:
    clerk     enters official sheets, only for boxes inside its assigned areas
    observer  enters its organisation's own copies (source = organisation), never counted
    admin     everything: any source, any area, tokens, the audit log

A token reads ``sdk_<id>_<secret>``. Only ``scrypt(secret, salt)`` is stored;
the id finds the row, the slow hash and a constant-time compare check the secret.
"""

from sandik.auth.tokens import (
    ROLES,
    AuthError,
    Token,
    TokenStore,
    area_allows,
)

__all__ = ["ROLES", "AuthError", "Token", "TokenStore", "area_allows"]
