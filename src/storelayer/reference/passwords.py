"""Password hashing with the standard library's scrypt: salted, slow, self-describing.

A hash is ``b"scrypt$<n>$<r>$<p>$<salt>$<key>"`` (salt and key in base64), so the cost
can be raised later without breaking the hashes already stored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

#: scrypt cost: CPU/memory (n), block size (r), parallelism (p) — OWASP's minimum.
COST = (2**14, 8, 1)
SALT_BYTES = 16
KEY_BYTES = 32
_SCHEME = b"scrypt"


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=r, p=p, dklen=KEY_BYTES, maxmem=256 * n * r + 2**20
    )


def hash_password(password: str, *, cost: tuple[int, int, int] | None = None) -> bytes:
    """A salted scrypt hash of ``password``, ready for ``User.password_hash``
    (``cost``: scrypt's n, r, p; default ``COST``)."""
    if not password:
        raise ValueError("a password must not be empty")
    n, r, p = cost or COST
    salt = secrets.token_bytes(SALT_BYTES)
    key = _derive(password, salt, n, r, p)
    fields = [_SCHEME, str(n).encode(), str(r).encode(), str(p).encode(),
              base64.b64encode(salt), base64.b64encode(key)]
    return b"$".join(fields)


def verify_password(password: str, stored: bytes) -> bool:
    """Whether ``password`` matches ``stored`` (constant-time comparison)."""
    try:
        scheme, n, r, p, salt, key = stored.split(b"$")
        if scheme != _SCHEME:
            return False
        candidate = _derive(password, base64.b64decode(salt), int(n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(candidate, base64.b64decode(key))
