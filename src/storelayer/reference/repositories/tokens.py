"""Session tokens: the secret is shown once, only its SHA-256 is stored."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from storelayer.reference.models import SessionToken, User
from storelayer.reference.repositories._ids import id_of
from storelayer.reference.types import utcnow
from storelayer.repository import Repository

#: Lifetime of a session unless told otherwise: one day.
DEFAULT_TTL_SECONDS = 24 * 3600
#: Random bytes in a secret (encoded as 43 URL-safe characters).
SECRET_BYTES = 32


def token_hash(secret: str) -> str:
    """What is stored for ``secret``: a lookup key that cannot be turned back into it.
    (A fast hash is right here: the secret is random, not a guessable password.)"""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedToken:
    """A new session: the row, and the secret to hand to the client — the only time it
    exists outside the client."""

    token: SessionToken
    secret: str = field(repr=False)


class SessionTokenRepository(Repository[SessionToken]):
    """Issue, verify and revoke login sessions."""

    model = SessionToken

    def issue(self, user: User | int, *, ttl_seconds: float = DEFAULT_TTL_SECONDS) -> IssuedToken:
        """A new session for ``user``, valid for ``ttl_seconds``."""
        secret = secrets.token_urlsafe(SECRET_BYTES)
        token = self.create(
            user_id=id_of(user),
            token_hash=token_hash(secret),
            expires_at=utcnow() + dt.timedelta(seconds=ttl_seconds),
        )
        return IssuedToken(token, secret)

    def verify(self, secret: str) -> SessionToken | None:
        """The live session for ``secret`` with its user loaded; None when unknown,
        expired, revoked, or the user is inactive."""
        stmt = (
            select(SessionToken)
            .where(SessionToken.token_hash == token_hash(secret))
            .options(joinedload(SessionToken.user))
        )
        token = self.session.scalars(stmt).one_or_none()
        if token is None or token.revoked_at is not None or token.expires_at <= utcnow():
            return None
        return token if token.user.is_active else None

    def revoke(self, token: SessionToken | str) -> bool:
        """End a session (given its row or its secret); whether a live one was ended."""
        row = token if isinstance(token, SessionToken) else self.get_by(
            token_hash=token_hash(token)
        )
        if row is None or row.revoked_at is not None:
            return False
        self.update(row, revoked_at=utcnow())
        return True

    def revoke_all(self, user: User | int) -> int:
        """End every live session of ``user``; returns how many."""
        live = self.list(user_id=id_of(user), revoked_at__isnull=True)
        now = utcnow()
        for row in live:
            row.revoked_at = now
        self.session.flush()
        return len(live)
