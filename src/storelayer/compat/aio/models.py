"""``storelayer.compat.aio.models``: the ``BaseModel`` of the async Database API: a UUID
``id``, ``created_at``/``updated_at`` kept by the data layer, ``to_dict()``."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

from sqlalchemy import Enum, MetaData, String, Uuid
from sqlalchemy.ext.asyncio import AsyncAttrs
from sqlalchemy.orm import DeclarativeBase

from storelayer.reference.base import NAMING_CONVENTION, ModelMixin, TimestampMixin, UUIDPKMixin
from storelayer.reference.types import UTCDateTime


def _values(members: type[enum.Enum]) -> list[str]:
    return [str(member.value) for member in members]


#: Annotations -> column types: ``Mapped[str]`` is a VARCHAR(255) (MySQL needs a
#: length), an enum is stored by its values (``"open"``) in a VARCHAR with a CHECK, the
#: same on every backend; datetimes are aware UTC.
TYPE_ANNOTATION_MAP: dict[Any, Any] = {
    str: String(255),
    uuid.UUID: Uuid,
    dt.datetime: UTCDateTime,
    enum.Enum: Enum(enum.Enum, native_enum=False, length=32, values_callable=_values,
                    validate_strings=True),
}


class Base(AsyncAttrs, DeclarativeBase):
    """The declarative base of the async API's models: their own metadata
    (``DatabaseConnectionManager.initialize()`` creates its tables)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = TYPE_ANNOTATION_MAP


class BaseModel(UUIDPKMixin, TimestampMixin, ModelMixin, Base):
    """A table with a UUID ``id``, ``created_at`` and ``updated_at`` (aware UTC,
    maintained on insert and update), ``to_dict()`` and a short ``repr``."""

    __abstract__ = True
