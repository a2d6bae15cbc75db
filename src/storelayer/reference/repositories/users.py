"""Users: creation with a hashed password, lookups, search, authentication."""

from __future__ import annotations

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import selectinload

from storelayer.errors import QueryError
from storelayer.reference.models import User
from storelayer.reference.passwords import hash_password, verify_password
from storelayer.repository import Repository

LIKE_ESCAPE = "\\"


def normalize_email(email: str) -> str:
    """Trimmed and lower-cased: addresses compare the same way on every backend (MySQL's
    default collation ignores case, PostgreSQL's and SQLite's do not)."""
    local, at, domain = email.strip().rpartition("@")
    if not at or not local or not domain:
        raise QueryError(
            "the email given is not an email address: it needs a part before and after an @"
        )
    return f"{local}@{domain}".lower()


def like_pattern(text: str) -> str:
    """``%text%`` with LIKE's wildcards in ``text`` taken literally."""
    escaped = (
        text.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2).replace("%", r"\%").replace("_", r"\_")
    )
    return f"%{escaped}%"


class UserRepository(Repository[User]):
    """The users of the platform."""

    model = User

    def create_user(
        self,
        username: str,
        email: str,
        password: str | None = None,
        *,
        password_hash: bytes | None = None,
        full_name: str | None = None,
        display_name: str | None = None,
        is_active: bool = True,
        is_admin: bool = False,
    ) -> User:
        """A new user; give the ``password`` (hashed here) or a ready ``password_hash``.
        ``Conflict`` when the username or email is taken."""
        if (password is None) == (password_hash is None):
            raise QueryError("create_user() takes a password or a password_hash, not both")
        return self.create(
            username=username,
            email=normalize_email(email),
            password_hash=password_hash if password is None else hash_password(password),
            full_name=full_name,
            display_name=display_name or full_name or username,
            is_active=is_active,
            is_admin=is_admin,
        )

    def get_by_username(self, username: str) -> User | None:
        """The user called ``username``, or None."""
        return self.get_by(username=username)

    def get_by_email(self, email: str) -> User | None:
        """The user with ``email`` (ignoring case), or None."""
        return self.get_by(email=normalize_email(email))

    def search_users(
        self, query: str, *, limit: int = 20, active_only: bool = False
    ) -> list[User]:
        """Users whose username, email or full name contains ``query``, ignoring case,
        ordered by username."""
        pattern = like_pattern(query.strip().lower())
        matches: list[ColumnElement[bool]] = [
            func.lower(column).like(pattern, escape=LIKE_ESCAPE)
            for column in (User.username, User.email, User.full_name)
        ]
        stmt = select(User).where(or_(*matches)).order_by(User.username).limit(limit)
        if active_only:
            stmt = stmt.where(User.is_active.is_(True))
        return list(self.session.scalars(stmt))

    def get_active_users(
        self,
        *,
        limit: int | None = None,
        offset: int | None = None,
        with_projects: bool = False,
    ) -> list[User]:
        """Active users by username; ``with_projects`` loads their projects in one more
        query (instead of one per user)."""
        stmt = select(User).where(User.is_active.is_(True)).order_by(User.username)
        if with_projects:
            stmt = stmt.options(selectinload(User.projects))
        stmt = stmt.limit(limit).offset(offset)
        return list(self.session.scalars(stmt))

    def authenticate(self, login: str, password: str) -> User | None:
        """The active user whose username or email is ``login`` and whose password is
        ``password``; None otherwise (without saying which part was wrong)."""
        user = self.get_by_email(login) if "@" in login else self.get_by_username(login)
        if user is None or not user.is_active:
            return None
        return user if verify_password(password, user.password_hash) else None

    def set_password(self, user: User, password: str) -> User:
        """Replace the user's password."""
        return self.update(user, password_hash=hash_password(password))
