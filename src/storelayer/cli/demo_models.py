"""The tables ``storelayer demo`` owns: an author and their notes, on their own metadata
so the demo never touches an application's tables. Every name starts ``storelayer_demo_``.
"""

from __future__ import annotations

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

PREFIX = "storelayer_demo_"


class DemoBase(DeclarativeBase):
    """The demo's own declarative base and metadata."""


class Author(DemoBase):
    """Someone who writes notes."""

    __tablename__ = f"{PREFIX}author"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    email: Mapped[str] = mapped_column(String(200))


class Note(DemoBase):
    """A short note, identified for upserts by its unique slug."""

    __tablename__ = f"{PREFIX}note"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    author_id: Mapped[int] = mapped_column(
        ForeignKey(f"{PREFIX}author.id", ondelete="CASCADE"), index=True
    )
