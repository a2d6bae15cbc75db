"""The declarative base of the reference schema, and the mixins users build on.

* ``NAMING_CONVENTION``: every index and constraint gets a predictable name, so a
  migration written once drops or alters the same name on every backend.
* ``IntegerPKMixin`` / ``UUIDPKMixin``: the primary key.
* ``TimestampMixin``: timezone-aware ``created_at`` / ``updated_at``, set by the data
  layer on insert and update, with a server default for rows written by raw SQL.
* ``ModelMixin``: ``to_dict()`` and a short ``repr``.

``Model`` (integer key) and ``UUIDModel`` combine them on ``ReferenceBase``, which has
SQLAlchemy's ``AsyncAttrs``: ``await user.awaitable_attrs.projects`` loads a
relationship in async code (docs/async.md). An
application defines its own base the same way (see docs/guide/models-and-migrations.md)
so that its tables stay out of the reference schema's metadata.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, ClassVar

from sqlalchemy import MetaData, Uuid, inspect
from sqlalchemy.ext.asyncio import AsyncAttrs
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from storelayer.reference.types import ID_TYPE, UTCDateTime, UtcNow, utcnow

#: Constraint and index names, identical on every backend. Keep names within 63
#: characters (PostgreSQL's limit): longer ones are shortened per dialect.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: Python annotations -> column types, for bases built on these mixins.
TYPE_ANNOTATION_MAP: dict[Any, Any] = {dt.datetime: UTCDateTime, uuid.UUID: Uuid}


class ModelMixin:
    """``to_dict()`` and a short ``repr`` for any mapped class."""

    #: Attributes shown by ``repr`` after the primary key.
    __repr_attrs__: ClassVar[tuple[str, ...]] = ()
    #: Attributes ``to_dict()`` leaves out (secrets, hashes).
    __dict_exclude__: ClassVar[frozenset[str]] = frozenset()

    def to_dict(self, *, exclude: frozenset[str] | set[str] = frozenset()) -> dict[str, Any]:
        """Column attributes by name (relationships are not followed)."""
        skipped = self.__dict_exclude__ | set(exclude)
        return {
            attr.key: getattr(self, attr.key)
            for attr in inspect(type(self)).column_attrs
            if attr.key not in skipped
        }

    def __repr__(self) -> str:
        state = inspect(self)
        mapper = state.mapper
        shown = [mapper.get_property_by_column(col).key for col in mapper.primary_key]
        shown += [name for name in self.__repr_attrs__ if name not in shown]
        loaded = state.dict
        parts = [f"{name}={loaded[name]!r}" for name in shown if name in loaded]
        return f"<{type(self).__name__} {' '.join(parts) or 'transient'}>"


class IntegerPKMixin:
    """An auto-incrementing 64-bit integer ``id``."""

    id: Mapped[int] = mapped_column(
        ID_TYPE, primary_key=True, autoincrement=True, sort_order=-1
    )


class UUIDPKMixin:
    """A random UUID ``id``, made in Python, so it is known before the insert."""

    id: Mapped[uuid.UUID] = mapped_column(
        Uuid, primary_key=True, default=uuid.uuid4, sort_order=-1
    )


class TimestampMixin:
    """``created_at`` and ``updated_at``: aware UTC, maintained on insert and update."""

    created_at: Mapped[dt.datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=UtcNow(), sort_order=1
    )
    updated_at: Mapped[dt.datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow, server_default=UtcNow(), sort_order=1
    )


class ReferenceBase(AsyncAttrs, DeclarativeBase):
    """The declarative base of the reference schema: its own metadata, named constraints,
    and ``awaitable_attrs`` for async code."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = TYPE_ANNOTATION_MAP


class Model(IntegerPKMixin, TimestampMixin, ModelMixin, ReferenceBase):
    """A reference table with an integer key and timestamps."""

    __abstract__ = True


class UUIDModel(UUIDPKMixin, TimestampMixin, ModelMixin, ReferenceBase):
    """A reference table with a UUID key and timestamps."""

    __abstract__ = True
